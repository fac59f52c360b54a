"""Mini-BERT (minibert/model.py): the formulas, equality with transformers, and properties.

Three kinds of check, as everywhere in this repository:

1. formulas (exercise mode runs them on your code): GELU, LayerNorm and the
   post-LN encoder layer, each written out a second way in float64;
2. the reference: transformers' BERT built from the same config with the same
   random weights (copied through minibert.hf), in eval mode and float32 —
   outputs within 1e-5 (absolute), gradients within 1e-4 (relative);
3. properties: determinism, padding invariance, tied weights, the parameter
   count formula, initialisation, errors on bad input.

Run with ``-s`` to see the measured differences.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import max_abs_diff, require_reference
from minibert.model import (PRESETS, BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel,
                            count_parameters, last_layer_positions, mean_pooling)

TOL = 1e-5        # float32 outputs vs the reference (absolute)
GRAD_TOL = 1e-4   # float32 gradients vs the reference (relative to the largest entry)


def small_config(**overrides) -> BertConfig:
    """A 2-layer, 4-head config small enough for fast tests; dropout on (eval mode turns it off)."""
    base = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, max_position_embeddings=40, type_vocab_size=2)
    return BertConfig(**{**base, **overrides})


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter non-trivial values (LayerNorm gains away from 1, non-zero biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "LayerNorm.weight" in name or name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * noise)
            else:
                p.copy_(0.1 * noise)
    return module


def batch(config: BertConfig, seed: int = 1, B: int = 3, T: int = 14):
    """Input ids, two segments, and padding of different lengths (row 0 has none)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (B, T), generator=g)
    ids[:, 0] = 2                                           # a [CLS]-like first token
    token_type_ids = torch.zeros(B, T, dtype=torch.long)
    token_type_ids[:, T // 2:] = 1                          # second segment
    attention_mask = torch.ones(B, T, dtype=torch.long)
    for b, length in enumerate([T, T - 4, T // 3][:B]):
        attention_mask[b, length:] = 0
        ids[b, length:] = config.pad_token_id
        token_type_ids[b, length:] = 0
    return ids, token_type_ids, attention_mask


def mlm_labels_for(ids: torch.Tensor, attention_mask: torch.Tensor, seed: int = 2) -> torch.Tensor:
    """Labels at ~30% of the real positions (always at least one per row), -100 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    chosen = (torch.rand(ids.shape, generator=g) < 0.3) & attention_mask.bool()
    chosen[:, 1] = True
    return torch.where(chosen, ids, torch.full_like(ids, -100))


def hf_pair(cls_name: str, config: BertConfig, **kwargs):
    """(ours, transformers') with the same random weights, both in eval mode."""
    transformers = require_reference("transformers")
    from minibert import hf

    hf_config = hf.config_to_hf(config, **kwargs)
    hf_config._attn_implementation = "eager"
    torch.manual_seed(0)
    reference = randomize_(getattr(transformers, cls_name)(hf_config)).eval()
    ours = hf.from_transformers(reference).eval()
    return ours, reference


# --------------------------------------------------------------------------- formulas (exercise mode)

def test_gelu_is_x_times_the_standard_normal_cdf(lib):
    """GELU(x) = x Phi(x), Phi the standard normal CDF (the exact erf form, not the tanh one)."""
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    expected = x * torch.distributions.Normal(0.0, 1.0).cdf(x)
    got = lib.gelu(x)
    diff = max_abs_diff(got, expected)
    assert diff <= 1e-12, f"max |gelu - x Phi(x)| = {diff:.3e}"
    tanh_form = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    assert max_abs_diff(got, tanh_form) > 1e-5, "gelu must be the exact erf form, not the tanh approximation"


def test_gelu_matches_torch_kernel_in_float32(lib):
    """lib.gelu equals torch.nn.functional.gelu (which the model calls) in float32."""
    x = torch.randn(4, 7, 16, generator=torch.Generator().manual_seed(0)) * 3
    diff = max_abs_diff(lib.gelu(x), F.gelu(x))
    assert diff <= 1e-6, f"max |gelu - F.gelu| = {diff:.3e}"


def test_layer_norm_matches_its_definition_written_with_loops(lib):
    """y_c = gamma_c (x_c - mean) / sqrt(var + eps) + beta_c, biased variance over the last dim."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, generator=g, dtype=torch.float64) * 4 + 1
    weight = torch.randn(5, generator=g, dtype=torch.float64)
    bias = torch.randn(5, generator=g, dtype=torch.float64)
    eps = 1e-3
    expected = torch.empty_like(x)
    for i in range(2):
        for j in range(3):
            row = x[i, j].tolist()
            mean = sum(row) / 5
            var = sum((v - mean) ** 2 for v in row) / 5
            for c in range(5):
                expected[i, j, c] = weight[c] * (row[c] - mean) / math.sqrt(var + eps) + bias[c]
    diff = max_abs_diff(lib.layer_norm(x, weight, bias, eps), expected)
    assert diff <= 1e-12, f"max |layer_norm - loop formula| = {diff:.3e}"


def test_layer_norm_matches_torch_kernel_and_normalises(lib):
    """lib.layer_norm equals F.layer_norm; with gamma=1, beta=0 each row has mean 0 and variance 1."""
    x = torch.randn(6, 32, generator=torch.Generator().manual_seed(1)) * 5 + 3
    w, b = torch.randn(32), torch.randn(32)
    diff = max_abs_diff(lib.layer_norm(x, w, b, 1e-12), F.layer_norm(x, (32,), w, b, 1e-12))
    assert diff <= 1e-5, f"max |layer_norm - F.layer_norm| = {diff:.3e}"
    y = lib.layer_norm(x.double(), torch.ones(32, dtype=torch.float64), torch.zeros(32, dtype=torch.float64), 1e-12)
    mean_err = y.mean(-1).abs().max().item()
    var_err = (y.var(-1, unbiased=False) - 1).abs().max().item()
    assert mean_err <= 1e-12 and var_err <= 1e-9, f"row mean error {mean_err:.2e}, variance error {var_err:.2e}"


def _post_ln_by_hand(layer, x, mask):
    """The post-LN encoder layer written out in float64 from the layer's own parameters."""
    att = layer.attention
    H = att.num_heads
    B, T, C = x.shape
    d = C // H
    p = {k: v.detach().double() for k, v in layer.state_dict().items()}
    x = x.double()

    def lin(t, name):
        return t @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    def ln(t, name):
        mu = t.mean(-1, keepdim=True)
        var = ((t - mu) ** 2).mean(-1, keepdim=True)
        return (t - mu) / torch.sqrt(var + 1e-12) * p[f"{name}.weight"] + p[f"{name}.bias"]

    q, k, v = (lin(x, f"attention.{n}").view(B, T, H, d).transpose(1, 2) for n in ("query", "key", "value"))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)                            # (B, H, T, T)
    scores = scores.masked_fill(~mask, float("-inf"))
    heads = torch.softmax(scores, -1) @ v                                       # (B, H, T, d)
    a = lin(heads.transpose(1, 2).reshape(B, T, C), "attention.output")
    h = ln(x + a, "attention_norm")
    f = lin(0.5 * (u := lin(h, "intermediate")) * (1 + torch.erf(u / math.sqrt(2))), "output")
    return ln(h + f, "output_norm")


def test_encoder_layer_is_post_ln_attention_then_gelu_feed_forward(lib):
    """y = LN2(h + W2 GELU(W1 h + b1) + b2) with h = LN1(x + MHA(x)); padded keys are ignored."""
    config = small_config()
    torch.manual_seed(0)
    layer = randomize_(lib.BertLayer(config)).eval()
    x = torch.randn(2, 6, config.hidden_size, generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]).bool()[:, None, None, :]
    expected = _post_ln_by_hand(layer, x, mask)
    y, weights = layer(x, mask=mask, output_attentions=False)
    assert weights is None, "no attention weights should be returned unless output_attentions=True"
    diff = max_abs_diff(y, expected)
    assert diff <= 1e-5, f"max |encoder layer - post-LN formula| = {diff:.3e}"
    y2, weights = layer(x, mask=mask, output_attentions=True)
    assert weights is not None and weights.shape == (2, config.num_attention_heads, 6, 6), \
        f"weights should be (B, H, T, T) = (2, 4, 6, 6), got {None if weights is None else tuple(weights.shape)}"
    diff2 = max_abs_diff(y2, expected)
    assert diff2 <= 1e-5, f"explicit attention path: max |layer - formula| = {diff2:.3e}"
    padded = weights[1, :, :, 4:].abs().max().item()
    assert padded == 0.0, f"padding keys got attention weight {padded}"


# --------------------------------------------------------------------------- config

def test_presets_have_the_documented_sizes():
    """tiny 2/128/2, mini 4/256/4, small 4/512/8, medium 8/512/8, base 12/768/12; intermediate = 4 hidden."""
    expected = {"tiny": (2, 128, 2, 8000), "mini": (4, 256, 4, 16000), "small": (4, 512, 8, 30522),
                "medium": (8, 512, 8, 30522), "base": (12, 768, 12, 30522)}
    assert set(PRESETS) == set(expected)
    for name, (layers, hidden, heads, vocab) in expected.items():
        c = BertConfig.from_preset(name)
        got = (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.vocab_size)
        assert got == (layers, hidden, heads, vocab), f"{name}: {got}"
        assert c.intermediate_size == 4 * hidden and c.max_position_embeddings == 512 and c.type_vocab_size == 2


@pytest.mark.parametrize("field, value", [
    ("hidden_size", 0), ("num_hidden_layers", -1), ("vocab_size", 3.5), ("num_attention_heads", 5),
    ("hidden_act", "swish"), ("hidden_dropout_prob", 1.0), ("attention_probs_dropout_prob", -0.1),
    ("layer_norm_eps", 0.0), ("pad_token_id", 120), ("position_embedding_type", "relative_key"),
    ("classifier_dropout", 2.0),
])
def test_invalid_config_raises_value_error_naming_the_field(field, value):
    """Every invalid field value is refused with a ValueError that names the field."""
    with pytest.raises(ValueError, match=field if field != "num_attention_heads" else "divisible"):
        small_config(**{field: value})


def test_config_json_round_trip_and_unknown_preset(tmp_path):
    """save() then load() gives the same config; an unknown preset name is refused."""
    config = small_config(hidden_dropout_prob=0.2, position_embedding_type="sinusoidal")
    config.save(tmp_path / "config.json")
    assert BertConfig.load(tmp_path) == config
    assert BertConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown preset"):
        BertConfig.from_preset("huge")


def test_config_json_written_by_transformers_loads(tmp_path):
    """A config.json from transformers' BertConfig.save_pretrained reads into our BertConfig."""
    transformers = require_reference("transformers")
    hf_config = transformers.BertConfig(vocab_size=99, hidden_size=48, num_hidden_layers=3,
                                        num_attention_heads=6, intermediate_size=96, layer_norm_eps=1e-7)
    hf_config.save_pretrained(tmp_path)
    config = BertConfig.load(tmp_path / "config.json")
    for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "layer_norm_eps", "max_position_embeddings", "type_vocab_size", "pad_token_id"):
        assert getattr(config, name) == getattr(hf_config, name), name


def test_a_config_of_another_model_type_is_refused():
    """model_type 'gpt2' in a config dict -> ValueError naming it."""
    with pytest.raises(ValueError, match="gpt2"):
        BertConfig.from_dict({"model_type": "gpt2", "hidden_size": 64})


# --------------------------------------------------------------------------- equality with transformers

def test_bert_model_matches_transformers_with_padding_and_two_segments():
    """last_hidden_state (real tokens) and pooler_output equal transformers' within 1e-5."""
    config = small_config()
    ours, reference = hf_pair("BertModel", config)
    ids, tt, am = batch(config)
    with torch.no_grad():
        out = ours(ids, tt, am)
        ref = reference(input_ids=ids, token_type_ids=tt, attention_mask=am)
    real = am.bool()
    d_hidden = max_abs_diff(out["last_hidden_state"][real], ref.last_hidden_state[real])
    d_pool = max_abs_diff(out["pooler_output"], ref.pooler_output)
    print(f"\nBertModel vs transformers: max|d last_hidden_state| = {d_hidden:.2e}, "
          f"max|d pooler_output| = {d_pool:.2e}")
    assert d_hidden <= TOL, f"max |d last_hidden_state| = {d_hidden:.3e}"
    assert d_pool <= TOL, f"max |d pooler_output| = {d_pool:.3e}"


def test_every_layers_attention_weights_match_transformers():
    """output_attentions=True returns one (B, H, T, T) tensor per layer, equal to transformers' (eager)."""
    config = small_config(num_hidden_layers=3)
    ours, reference = hf_pair("BertModel", config)
    ids, tt, am = batch(config)
    with torch.no_grad():
        out = ours(ids, tt, am, output_attentions=True)
        ref = reference(input_ids=ids, token_type_ids=tt, attention_mask=am, output_attentions=True)
    assert len(out["attentions"]) == len(ref.attentions) == 3
    diffs = [max_abs_diff(a, b) for a, b in zip(out["attentions"], ref.attentions)]
    print(f"\nattention weights vs transformers, per layer: {['%.2e' % d for d in diffs]}")
    assert max(diffs) <= TOL, f"max |d attention weights| per layer = {diffs}"
    for a in out["attentions"]:
        assert a.shape == (3, config.num_attention_heads, ids.shape[1], ids.shape[1])


def test_fast_and_explicit_attention_paths_give_the_same_hidden_states():
    """The SDPA fast path (no weights) and the explicit path (weights) agree within 1e-5."""
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertModel(config)).eval()
    ids, tt, am = batch(config)
    with torch.no_grad():
        fast = model(ids, tt, am)["last_hidden_state"]
        explicit = model(ids, tt, am, output_attentions=True)["last_hidden_state"]
    diff = max_abs_diff(fast[am.bool()], explicit[am.bool()])
    assert diff <= TOL, f"max |fast - explicit| = {diff:.3e}"


def test_pretraining_logits_and_loss_match_transformers():
    """MLM logits (all positions), NSP logits and the total loss equal transformers' within 1e-5."""
    config = small_config()
    ours, reference = hf_pair("BertForPreTraining", config)
    ids, tt, am = batch(config)
    labels = mlm_labels_for(ids, am)
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad():
        dense = ours(ids, tt, am, sparse_mlm=False)
        out = ours(ids, tt, am, mlm_labels=labels, nsp_labels=nsp)
        ref = reference(input_ids=ids, token_type_ids=tt, attention_mask=am, labels=labels,
                        next_sentence_label=nsp)
    real = am.bool()
    d_mlm = max_abs_diff(dense["mlm_logits"][real], ref.prediction_logits[real])
    d_nsp = max_abs_diff(out["nsp_logits"], ref.seq_relationship_logits)
    d_loss = abs(out["loss"].item() - ref.loss.item())
    print(f"\nBertForPreTraining vs transformers: max|d mlm_logits| = {d_mlm:.2e}, "
          f"max|d nsp_logits| = {d_nsp:.2e}, |d loss| = {d_loss:.2e}")
    assert d_mlm <= TOL, f"max |d mlm_logits| = {d_mlm:.3e}"
    assert d_nsp <= TOL, f"max |d nsp_logits| = {d_nsp:.3e}"
    assert d_loss <= TOL, f"|d loss| = {d_loss:.3e} (ours {out['loss'].item()}, ref {ref.loss.item()})"


def test_every_gradient_matches_transformers_after_one_backward_pass():
    """After loss.backward(), each parameter's gradient equals transformers' within 1e-4 relative."""
    from minibert import hf

    config = small_config()
    ours, reference = hf_pair("BertForPreTraining", config)
    ids, tt, am = batch(config)
    labels, nsp = mlm_labels_for(ids, am), torch.tensor([1, 0, 1])
    ours(ids, tt, am, mlm_labels=labels, nsp_labels=nsp)["loss"].backward()
    reference(input_ids=ids, token_type_ids=tt, attention_mask=am, labels=labels,
              next_sentence_label=nsp).loss.backward()
    ref_params = dict(reference.named_parameters())
    worst, checked, key_bias_noise = (0.0, ""), 0, 0.0
    for name, p in ours.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        g_ref = ref_params[hf.our_key_to_hf(name)].grad
        if name.endswith("attention.key.bias"):
            # softmax(s + c) = softmax(s): a key bias shifts every score of a query row by the same
            # amount, so its true gradient is 0 and both libraries only show float32 round-off.
            noise = max(p.grad.abs().max().item(), g_ref.abs().max().item())
            assert noise <= 1e-6, f"{name}: gradient should be ~0, got {noise:.3e}"
            key_bias_noise = max(key_bias_noise, noise)
            continue
        rel = max_abs_diff(p.grad, g_ref) / max(g_ref.abs().max().item(), 1e-12)
        assert rel <= GRAD_TOL, f"{name}: relative gradient difference {rel:.3e}"
        worst = max(worst, (rel, name))
        checked += 1
    print(f"\ngradients vs transformers: {checked} parameters, worst relative difference "
          f"{worst[0]:.2e} ({worst[1]}); key-bias gradients (exactly 0 in theory) at most {key_bias_noise:.1e}")


def test_sequence_classification_logits_and_loss_match_transformers():
    """BertForSequenceClassification logits and cross-entropy loss equal transformers' within 1e-5."""
    config = small_config()
    ours, reference = hf_pair("BertForSequenceClassification", config, num_labels=3)
    ids, tt, am = batch(config)
    labels = torch.tensor([2, 0, 1])
    with torch.no_grad():
        out = ours(ids, tt, am, labels=labels)
        ref = reference(input_ids=ids, token_type_ids=tt, attention_mask=am, labels=labels)
    d_logits = max_abs_diff(out["logits"], ref.logits)
    d_loss = abs(out["loss"].item() - ref.loss.item())
    print(f"\nBertForSequenceClassification vs transformers: max|d logits| = {d_logits:.2e}, "
          f"|d loss| = {d_loss:.2e}")
    assert d_logits <= TOL and d_loss <= TOL, f"max |d logits| = {d_logits:.3e}, |d loss| = {d_loss:.3e}"


# --------------------------------------------------------------------------- MLM: sparse decoding and loss

def test_sparse_mlm_gives_the_dense_loss_and_the_dense_logits_at_masked_positions():
    """Decoding only labelled positions: same loss to 1e-6, rows = dense logits in row-major order."""
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertForPreTraining(config)).eval()
    ids, tt, am = batch(config)
    labels = mlm_labels_for(ids, am)
    with torch.no_grad():
        sparse = model(ids, tt, am, mlm_labels=labels)
        dense = model(ids, tt, am, mlm_labels=labels, sparse_mlm=False)
    n = int((labels != -100).sum())
    assert sparse["mlm_logits"].shape == (n, config.vocab_size)
    assert dense["mlm_logits"].shape == (*ids.shape, config.vocab_size)
    d_loss = abs(sparse["mlm_loss"].item() - dense["mlm_loss"].item())
    d_rows = max_abs_diff(sparse["mlm_logits"], dense["mlm_logits"][labels != -100])
    print(f"\nsparse vs dense MLM: |d loss| = {d_loss:.2e}, max|d logits| = {d_rows:.2e} ({n} positions)")
    assert d_loss <= 1e-6, f"|sparse - dense MLM loss| = {d_loss:.3e}"
    assert d_rows <= 1e-5, f"max |sparse rows - dense logits at labelled positions| = {d_rows:.3e}"


def test_last_layer_positions_put_cls_first_then_the_wanted_positions_in_order():
    """Slot 0 is position 0; then each row's wanted positions ascending; Q = the largest count; filler not picked."""
    wanted = torch.zeros(3, 8, dtype=torch.bool)
    wanted[0, [2, 5, 6]] = True
    wanted[1, [0, 3]] = True                       # [CLS] itself wanted: listed once, in slot 0
    positions, picked = last_layer_positions(wanted)    # row 2 wants nothing
    assert positions.shape == picked.shape == (3, 4)
    assert positions[:, 0].tolist() == [0, 0, 0]
    assert positions[0].tolist() == [0, 2, 5, 6] and positions[1, :2].tolist() == [0, 3]
    assert picked.tolist() == [[False, True, True, True], [True, True, False, False], [False] * 4]
    assert torch.equal(positions[picked], wanted.nonzero()[:, 1])      # row-major order, as full[wanted]


def test_last_layer_run_only_where_wanted_gives_the_full_outputs_there():
    """BertModel(wanted=...): last_hidden_state = the full one at the wanted positions (row-major), same pooler,
    and the last layer's attention weights = the full ones at those queries; with padding, <= 1e-6."""
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertModel(config)).eval()
    ids, tt, am = batch(config)
    wanted = mlm_labels_for(ids, am) != -100
    wanted[2] = False                                  # a row with nothing wanted: only its [CLS] runs
    wanted[1, 0] = True                                # [CLS] wanted too
    with torch.no_grad():
        full = model(ids, tt, am, output_attentions=True)
        part = model(ids, tt, am, output_attentions=True, wanted=wanted)
    positions, _ = last_layer_positions(wanted)
    assert part["last_hidden_state"].shape == (int(wanted.sum()), config.hidden_size)
    d_h = max_abs_diff(part["last_hidden_state"], full["last_hidden_state"][wanted])
    d_p = max_abs_diff(part["pooler_output"], full["pooler_output"])
    index = positions[:, None, :, None].expand(-1, config.num_attention_heads, -1, ids.shape[1])
    d_w = max_abs_diff(part["attentions"][-1], full["attentions"][-1].gather(2, index))
    d_first = max_abs_diff(part["attentions"][0], full["attentions"][0])
    print(f"\nlast layer at {int(wanted.sum())} wanted positions: max|d h| = {d_h:.2e}, max|d pooler| = {d_p:.2e}, "
          f"max|d weights| = {d_w:.2e}")
    assert max(d_h, d_p, d_w, d_first) <= 1e-6, (d_h, d_p, d_w, d_first)
    with pytest.raises(TypeError, match="wanted must be a boolean"):
        model(ids, tt, am, wanted=wanted.long())


def test_sparse_last_layer_gives_the_same_loss_and_every_gradient():
    """Pretraining with the last layer only at the masked positions and [CLS] = at every position: the loss and the
    gradient of every parameter agree to float32 round-off (1e-6 absolute)."""
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertForPreTraining(config)).eval()
    ids, tt, am = batch(config)
    labels = mlm_labels_for(ids, am)
    nsp = torch.tensor([0, 1, 1])
    results = {}
    for trimmed in (True, False):
        model.sparse_last_layer = trimmed
        model.zero_grad(set_to_none=True)
        out = model(ids, tt, am, mlm_labels=labels, nsp_labels=nsp)
        out["loss"].backward()
        results[trimmed] = (out, {n: p.grad.clone() for n, p in model.named_parameters()})
    (a, grads_a), (b, grads_b) = results[True], results[False]
    d_loss = abs(a["loss"].item() - b["loss"].item())
    d_logits = max(max_abs_diff(a["mlm_logits"], b["mlm_logits"]), max_abs_diff(a["nsp_logits"], b["nsp_logits"]))
    d_grad = max(max_abs_diff(grads_a[n], grads_b[n]) for n in grads_a)
    print(f"\nsparse vs full last layer: |d loss| = {d_loss:.2e}, max|d logits| = {d_logits:.2e}, "
          f"max|d grad| = {d_grad:.2e}")
    assert d_loss <= 1e-6 and d_logits <= 1e-6 and d_grad <= 1e-6, (d_loss, d_logits, d_grad)
    assert grads_a[f"bert.layers.{config.num_hidden_layers - 1}.intermediate.weight"].abs().max() > 0


@pytest.mark.parametrize("pooling", ["pooler", "cls"])
def test_classifier_with_the_last_layer_at_cls_only_gives_the_same_logits_loss_and_gradients(pooling):
    """A classifier that reads only [CLS] may run its last layer there alone: logits, loss and the gradient of
    every parameter equal the full layer's to float32 round-off (1e-6 absolute), padding included, with fewer
    matmul FLOPs (the switch really takes the other path)."""
    from torch.utils.flop_counter import FlopCounterMode
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertForSequenceClassification(config, 3, pooling=pooling)).eval()
    ids, tt, am = batch(config)
    labels = torch.tensor([0, 2, 1])
    results = {}
    for trimmed in (True, False):
        model.sparse_last_layer = trimmed
        model.zero_grad(set_to_none=True)
        counter = FlopCounterMode(display=False)
        with counter:
            out = model(ids, tt, am, labels=labels)
        out["loss"].backward()
        results[trimmed] = (out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
                            counter.get_total_flops())
    (a, grads_a, flops_a), (b, grads_b, flops_b) = results[True], results[False]
    assert grads_a.keys() == grads_b.keys()
    d_logits = max_abs_diff(a["logits"], b["logits"])
    d_grad = max(max_abs_diff(grads_a[n], grads_b[n]) for n in grads_a)
    print(f"\n{pooling}: [CLS]-only vs full last layer: max|d logits| = {d_logits:.2e}, max|d grad| = {d_grad:.2e}, "
          f"forward FLOPs {flops_a:,} vs {flops_b:,}")
    assert d_logits <= 1e-6 and abs(a["loss"].item() - b["loss"].item()) <= 1e-6 and d_grad <= 1e-6
    assert grads_a[f"bert.layers.{config.num_hidden_layers - 1}.intermediate.weight"].abs().max() > 0
    assert flops_a < flops_b


def test_classifier_with_mean_pooling_keeps_the_full_last_layer():
    """Mean pooling reads every position: the switch must not change its logits at all."""
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertForSequenceClassification(config, 3, pooling="mean")).eval()
    ids, tt, am = batch(config)
    with torch.no_grad():
        full = model(ids, tt, am)["logits"]
        model.sparse_last_layer = True
        assert torch.equal(model(ids, tt, am)["logits"], full)


def test_mlm_loss_is_the_mean_cross_entropy_over_labelled_positions_only():
    """MLM loss = mean over positions with label != -100 of -log softmax(z)[label] (no padding)."""
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertForPreTraining(config)).eval()
    ids, tt, am = batch(config)
    labels = mlm_labels_for(ids, am)
    with torch.no_grad():
        out = model(ids, tt, am, mlm_labels=labels, sparse_mlm=False)
    logp = torch.log_softmax(out["mlm_logits"].double(), dim=-1)
    terms = [-logp[b, t, labels[b, t]].item() for b in range(ids.shape[0]) for t in range(ids.shape[1])
             if labels[b, t] != -100]
    expected = sum(terms) / len(terms)
    diff = abs(out["mlm_loss"].item() - expected)
    assert diff <= 1e-5, f"mlm_loss {out['mlm_loss'].item()} vs hand mean {expected} over {len(terms)} positions"


def test_loss_is_mlm_plus_nsp_and_each_head_alone_works():
    """loss = mlm_loss + nsp_loss; with only one kind of label, loss is that one."""
    config = small_config()
    model = BertForPreTraining(config).eval()
    ids, tt, am = batch(config)
    labels, nsp = mlm_labels_for(ids, am), torch.tensor([0, 1, 1])
    with torch.no_grad():
        both = model(ids, tt, am, mlm_labels=labels, nsp_labels=nsp)
        mlm_only = model(ids, tt, am, mlm_labels=labels)
        nsp_only = model(ids, tt, am, nsp_labels=nsp)
        neither = model(ids, tt, am)
    assert abs(both["loss"].item() - (both["mlm_loss"] + both["nsp_loss"]).item()) <= 1e-6
    assert mlm_only["loss"].item() == mlm_only["mlm_loss"].item() and "nsp_loss" not in mlm_only
    assert nsp_only["loss"].item() == nsp_only["nsp_loss"].item() and "mlm_loss" not in nsp_only
    assert "loss" not in neither and neither["mlm_logits"].shape == (*ids.shape, config.vocab_size)
    assert neither["nsp_logits"].shape == (ids.shape[0], 2)


# --------------------------------------------------------------------------- properties

def test_eval_mode_is_deterministic_and_train_mode_uses_dropout():
    """Two eval-mode passes give identical outputs; train mode (dropout 0.1) changes them."""
    config = small_config()
    model = BertForPreTraining(config).eval()
    ids, tt, am = batch(config)
    with torch.no_grad():
        a = model(ids, tt, am)["mlm_logits"]
        b = model(ids, tt, am)["mlm_logits"]
        model.train()
        c = model(ids, tt, am)["mlm_logits"]
    assert torch.equal(a, b), "eval mode gave different outputs on the same input"
    assert max_abs_diff(a, c) > 1e-4, "train mode should apply dropout"


def test_padding_does_not_change_outputs_at_real_positions():
    """Appending padding tokens (masked out) leaves hidden states of real tokens and the pooler unchanged."""
    config = small_config()
    torch.manual_seed(0)
    model = randomize_(BertModel(config)).eval()
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, config.vocab_size, (2, 9), generator=g)
    tt = torch.zeros_like(ids)
    padded_ids = torch.cat([ids, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    padded_mask = torch.cat([torch.ones(2, 9), torch.zeros(2, 6)], dim=1).long()
    with torch.no_grad():
        short = model(ids, tt)
        long = model(padded_ids, torch.zeros_like(padded_ids), padded_mask)
    d = max_abs_diff(short["last_hidden_state"], long["last_hidden_state"][:, :9])
    d_pool = max_abs_diff(short["pooler_output"], long["pooler_output"])
    assert d <= TOL and d_pool <= TOL, f"padding changed real positions by {d:.3e}, pooler by {d_pool:.3e}"


def test_tied_decoder_weight_is_the_word_embedding_tensor():
    """The MLM decoder weight and the word embeddings are one Parameter; both uses feed its gradient."""
    config = small_config()
    model = BertForPreTraining(config)
    emb = model.bert.embeddings.word_embeddings.weight
    assert model.mlm.decoder.weight is emb
    assert sum(1 for p in model.parameters() if p is emb) == 1
    ids, tt, am = batch(config)
    labels = mlm_labels_for(ids, am)
    model(ids, tt, am, mlm_labels=labels)["mlm_loss"].backward()
    unused = sorted(set(range(config.vocab_size)) - set(ids.flatten().tolist()))
    decoder_only = emb.grad[unused].abs().sum().item()
    assert decoder_only > 0, "rows of tokens absent from the input got no gradient from the decoder"


def test_every_parameter_receives_gradient_including_positions():
    """After one MLM+NSP backward pass no parameter (learned positions included) has a zero gradient."""
    config = small_config()
    model = BertForPreTraining(config).train()
    ids, tt, am = batch(config)
    model(ids, tt, am, mlm_labels=mlm_labels_for(ids, am), nsp_labels=torch.tensor([0, 1, 0]))["loss"].backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, f"parameters without gradient: {dead}"


def test_initialisation_follows_bert():
    """Weights ~ N(0, initializer_range^2), biases 0, LayerNorm gain 1 and bias 0, padding row 0."""
    config = BertConfig.from_preset("tiny", initializer_range=0.05)
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    for name, p in model.named_parameters():
        if "norm.weight" in name:
            assert torch.all(p == 1), name
        elif name.endswith("bias"):
            assert torch.all(p == 0), name
        elif p.numel() > 10000:
            std = p.std().item()
            assert abs(std - 0.05) <= 0.005, f"{name}: std {std:.4f}, expected 0.05"
    pad_row = model.bert.embeddings.word_embeddings.weight[config.pad_token_id]
    assert torch.all(pad_row == 0), "the padding token's embedding should start at 0"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_parameter_count_formula_equals_the_number_of_parameters(preset):
    """count_parameters (closed form) equals sum(p.numel()) for BertModel, pretraining and classifiers."""
    config = BertConfig.from_preset(preset)
    with torch.device("meta"):                       # shapes only: no memory, no initialisation cost
        models = {
            "none": (BertModel(config), {}),
            "pretraining": (BertForPreTraining(config), {}),
            "classification": (BertForSequenceClassification(config, 5), {"num_labels": 5}),
            "hidden": (BertForSequenceClassification(config, 3, hidden_layer_size=64),
                       {"num_labels": 3, "hidden_layer_size": 64}),
        }
    for heads, (model, kwargs) in models.items():
        actual = sum(p.numel() for p in model.parameters())
        formula = count_parameters(config, "classification" if heads == "hidden" else heads, **kwargs)
        assert formula == actual, f"{preset}/{heads}: formula {formula:,} vs numel {actual:,}"


def test_sinusoidal_positions_are_fixed_and_counted_out():
    """position_embedding_type='sinusoidal' adds the fixed table (no parameters) instead of a learned one."""
    config = small_config(position_embedding_type="sinusoidal")
    model = BertModel(config).eval()
    assert model.embeddings.position_embeddings is None
    assert count_parameters(config) == sum(p.numel() for p in model.parameters())
    assert not any("position" in n for n, _ in model.named_parameters())
    ids = torch.randint(5, config.vocab_size, (1, 7))
    emb = model.embeddings
    x = emb.word_embeddings(ids) + emb.token_type_embeddings.weight[0] + emb.sinusoidal.pe[:7]
    expected = F.layer_norm(x, (config.hidden_size,), emb.norm.weight, emb.norm.bias, config.layer_norm_eps)
    diff = max_abs_diff(emb(ids), expected)
    assert diff <= 1e-6, f"sinusoidal embeddings differ from word + segment + PE by {diff:.3e}"


def test_classifier_with_hidden_relu_layer_follows_its_formula():
    """y = W_o ReLU(W_h p + b_h) + b_o on the pooled output p (eval mode: no dropout)."""
    config = small_config()
    model = randomize_(BertForSequenceClassification(config, 4, hidden_layer_size=16)).eval()
    ids, tt, am = batch(config)
    with torch.no_grad():
        p = model.bert(ids, tt, am)["pooler_output"]
        expected = model.classifier(torch.relu(model.hidden(p)))
        got = model(ids, tt, am)["logits"]
    assert max_abs_diff(got, expected) <= 1e-6


def test_mean_pooling_ignores_padding():
    """mean_pooling averages only positions whose attention_mask is 1."""
    h = torch.arange(24, dtype=torch.float32).view(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    got = mean_pooling(h, mask)
    expected = torch.stack([h[0, :2].mean(0), h[1].mean(0)])
    assert max_abs_diff(got, expected) == 0.0


def test_bad_inputs_raise_one_clear_error():
    """Mismatched shapes, too-long sequences and sparse_mlm without labels give ValueErrors."""
    config = small_config()
    model = BertForPreTraining(config)
    ids = torch.randint(5, 100, (2, 6))
    with pytest.raises(ValueError, match="token_type_ids"):
        model(ids, token_type_ids=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.randint(5, 100, (1, config.max_position_embeddings + 1)))
    with pytest.raises(ValueError, match="sparse_mlm"):
        model(ids, sparse_mlm=True)
    with pytest.raises(ValueError, match="mlm_labels"):
        model(ids, mlm_labels=torch.full((2, 5), -100))
    with pytest.raises(ValueError, match="num_labels"):
        BertForSequenceClassification(config, 1)
