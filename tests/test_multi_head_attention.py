"""Multi-head attention: Concat(head_1, ..., head_H) W^O with head_h = Attention(X W^Q_h, X W^K_h, X W^V_h).

Checked against transformers' BERT attention (``BertSelfAttention`` followed by
``BertSelfOutput.dense``) and ``torch.nn.MultiheadAttention`` with copied
weights, plus the equality of the explicit and the fast path and the role of
the mask and dropout. Tests that take ``lib`` run against
tutorials/exercises/ex02_multi_head_attention.py with ``pytest --exercises``.
"""

from __future__ import annotations

import pytest
import torch

from helpers import max_abs_diff, require_reference

FLOAT32_TOL = 1e-5


def _batch(B=3, T=7, C=32, seed=0):
    """Random hidden states and a 0/1 attention_mask with right padding of different lengths."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, generator=g)
    lengths = torch.tensor([T, max(T - 2, 1), 2])[:B]
    attention_mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T), 1 = token
    return x, attention_mask


def _mask4d(attention_mask):
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T), True = may attend


def _mha(lib, C=32, H=4, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return lib.MultiHeadAttention(C, H, dropout=dropout).eval()


def _bert_attention(C, H):
    """A transformers BertAttention in eval mode, eager attention, random weights."""
    transformers = require_reference("transformers")
    config = transformers.BertConfig(hidden_size=C, num_attention_heads=H, intermediate_size=4 * C,
                                     attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    config._attn_implementation = "eager"
    from transformers.models.bert.modeling_bert import BertAttention

    torch.manual_seed(1)
    return BertAttention(config).eval()


def test_multi_head_attention_equals_transformers_bert_attention_with_padding(lib):
    """With BERT's weights copied in, output = BertSelfOutput.dense(BertSelfAttention(x)) and the weights agree (float32)."""
    C, H = 32, 4
    bert = _bert_attention(C, H)
    mha = _mha(lib, C, H)
    for name in ("query", "key", "value"):
        getattr(mha, name).load_state_dict(getattr(bert.self, name).state_dict())
    mha.output.load_state_dict(bert.output.dense.state_dict())

    x, attention_mask = _batch(C=C)
    additive = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    with torch.no_grad():
        context, ref_weights = bert.self(x, attention_mask=additive)
        ref = bert.output.dense(context)
        fast, none = mha(x, mask=_mask4d(attention_mask))
        explicit, weights = mha(x, mask=_mask4d(attention_mask), return_weights=True)
    d_fast, d_explicit, d_w = max_abs_diff(fast, ref), max_abs_diff(explicit, ref), max_abs_diff(weights, ref_weights)
    print(f"max |ours - transformers BertAttention|: fast path {d_fast:.3e}, explicit path {d_explicit:.3e}, "
          f"weights {d_w:.3e}")
    assert none is None, "weights must be None when return_weights=False"
    assert d_fast <= FLOAT32_TOL, f"fast path differs from transformers by {d_fast:.3e}"
    assert d_explicit <= FLOAT32_TOL, f"explicit path differs from transformers by {d_explicit:.3e}"
    assert d_w <= FLOAT32_TOL, f"attention weights differ from transformers by {d_w:.3e}"


def test_multi_head_attention_equals_torch_nn_multiheadattention(lib):
    """With copied weights, output and per-head weights equal torch.nn.MultiheadAttention (key_padding_mask) in float32."""
    C, H = 32, 4
    mha = _mha(lib, C, H)
    torch.manual_seed(2)
    ref = torch.nn.MultiheadAttention(C, H, batch_first=True).eval()
    with torch.no_grad():
        # torch packs W^Q, W^K, W^V into one (3C, C) matrix, in that order.
        ref.in_proj_weight.copy_(torch.cat([mha.query.weight, mha.key.weight, mha.value.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.query.bias, mha.key.bias, mha.value.bias]))
        ref.out_proj.weight.copy_(mha.output.weight)
        ref.out_proj.bias.copy_(mha.output.bias)

    x, attention_mask = _batch(C=C)
    with torch.no_grad():
        # torch's key_padding_mask uses the opposite convention: True = ignore this key.
        ref_out, ref_w = ref(x, x, x, key_padding_mask=attention_mask == 0, average_attn_weights=False)
        out, w = mha(x, mask=_mask4d(attention_mask), return_weights=True)
        fast, _ = mha(x, mask=_mask4d(attention_mask))
    d_out, d_w, d_fast = max_abs_diff(out, ref_out), max_abs_diff(w, ref_w), max_abs_diff(fast, ref_out)
    print(f"max |ours - torch.nn.MultiheadAttention|: explicit {d_out:.3e}, fast {d_fast:.3e}, weights {d_w:.3e}")
    assert d_out <= FLOAT32_TOL and d_fast <= FLOAT32_TOL, f"outputs differ by {d_out:.3e} / {d_fast:.3e}"
    assert d_w <= FLOAT32_TOL, f"weights differ by {d_w:.3e}"


@pytest.mark.parametrize("dtype, tol", [(torch.float32, FLOAT32_TOL), (torch.float64, 1e-12)], ids=["float32", "float64"])
def test_fast_path_equals_explicit_path(lib, dtype, tol):
    """forward without weights (F.scaled_dot_product_attention) equals forward with weights (explicit formula)."""
    mha = _mha(lib, 48, 6).to(dtype)
    x, attention_mask = _batch(C=48)
    x = x.to(dtype)
    with torch.no_grad():
        fast, _ = mha(x, mask=_mask4d(attention_mask))
        explicit, w = mha(x, mask=_mask4d(attention_mask), return_weights=True)
        fast_nomask, _ = mha(x)
        explicit_nomask, _ = mha(x, return_weights=True)
    diff = max(max_abs_diff(fast, explicit), max_abs_diff(fast_nomask, explicit_nomask))
    print(f"max |fast - explicit| ({dtype}) = {diff:.3e}")
    assert w.shape == (3, 6, 7, 7), f"weights shape {tuple(w.shape)}, expected (B, H, T, T) = (3, 6, 7, 7)"
    assert diff <= tol, f"fast and explicit paths differ by {diff:.3e}"


def test_padding_does_not_change_the_outputs_of_real_tokens(lib):
    """A sequence padded with garbage gives, at its real tokens, the same output as the unpadded sequence."""
    mha = _mha(lib)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, 32, generator=g)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 32, generator=g)], dim=1)  # (1, 7, 32)
    mask = _mask4d(torch.tensor([[1, 1, 1, 1, 0, 0, 0]]))
    with torch.no_grad():
        alone, _ = mha(x)
        with_pad, _ = mha(padded, mask=mask)
    diff = max_abs_diff(alone, with_pad[:, :4])
    assert diff <= FLOAT32_TOL, f"real-token outputs moved by {diff:.3e} when padding was added"


def test_without_positions_permuting_tokens_permutes_the_output(lib):
    """MultiHeadAttention(P x) = P MultiHeadAttention(x): without positions, order is invisible."""
    mha = _mha(lib)
    x, _ = _batch()
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, _ = mha(x)
        out_p, _ = mha(x[:, perm])
    diff = max_abs_diff(out_p, out[:, perm])
    assert diff <= FLOAT32_TOL, f"MHA(Px) - P MHA(x) = {diff:.3e}"


def test_attention_dropout_acts_only_in_training_mode(lib):
    """dropout > 0: eval mode is deterministic and equals a dropout-free module; training mode drops weights."""
    x, attention_mask = _batch()
    mha = _mha(lib, dropout=0.5)
    plain = _mha(lib, dropout=0.0)
    plain.load_state_dict(mha.state_dict())
    with torch.no_grad():
        eval_out, _ = mha(x, mask=_mask4d(attention_mask))
        ref_out, _ = plain(x, mask=_mask4d(attention_mask))
        mha.train()
        torch.manual_seed(0)
        _, w = mha(x, mask=_mask4d(attention_mask), return_weights=True)
        train_out, _ = mha(x, mask=_mask4d(attention_mask))
    assert max_abs_diff(eval_out, ref_out) <= FLOAT32_TOL, "eval mode must not apply dropout"
    real = _mask4d(attention_mask).expand_as(w)
    dropped = (w[real] == 0).float().mean().item()
    assert 0.35 < dropped < 0.65, f"fraction of attention weights dropped in training = {dropped:.3f}, expected ~0.5"
    assert max_abs_diff(train_out, eval_out) > 1e-3, "training-mode output should differ from eval mode"


def test_hidden_size_not_divisible_by_heads_raises_value_error(lib):
    """hidden_size % num_heads != 0 is refused with a ValueError (heads must split the hidden vector evenly)."""
    with pytest.raises(ValueError):
        lib.MultiHeadAttention(30, 4)


def test_submodules_have_bert_checkpoint_names(lib):
    """query, key, value, output are nn.Linear(C, C) with bias: the names BERT checkpoints use."""
    mha = lib.MultiHeadAttention(32, 4)
    names = sorted(n for n, _ in mha.named_parameters())
    assert names == sorted(f"{m}.{p}" for m in ("query", "key", "value", "output") for p in ("weight", "bias")), names
    assert all(getattr(mha, m).weight.shape == (32, 32) for m in ("query", "key", "value", "output"))


def test_library_error_for_indivisible_heads_names_both_numbers():
    """The library's ValueError says hidden_size must be divisible by num_heads and quotes both values."""
    from minibert.attention import MultiHeadAttention

    with pytest.raises(ValueError, match=r"hidden_size \(30\) must be divisible by num_heads \(4\)"):
        MultiHeadAttention(30, 4)


def test_a_two_dimensional_padding_mask_is_rejected_with_a_hint():
    """Passing the (B, T) attention_mask directly would broadcast wrongly; it is refused with a pointer to padding_mask."""
    from minibert.attention import MultiHeadAttention, padding_mask

    mha = MultiHeadAttention(32, 4)
    x, attention_mask = _batch()
    with pytest.raises(ValueError, match="padding_mask"):
        mha(x, mask=attention_mask.bool())
    out, _ = mha(x, mask=padding_mask(attention_mask))
    assert out.shape == x.shape


@pytest.mark.parametrize("return_weights", [False, True], ids=["fast", "explicit"])
def test_queries_at_some_positions_give_the_full_output_there(return_weights):
    """``queries=x[:, idx]``: every output row (and weight row) = the self-attention's at idx, both paths, <= 1e-6."""
    from minibert.attention import MultiHeadAttention
    x, attention_mask = _batch()
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    idx = torch.tensor([[0, 3, 4], [0, 1, 1], [0, 6, 2]])                       # (B, Q); repeats and padding allowed
    xq = x.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))
    with torch.no_grad():
        full, full_w = mha(x, mask=_mask4d(attention_mask), return_weights=return_weights)
        part, part_w = mha(x, mask=_mask4d(attention_mask), return_weights=return_weights, queries=xq)
    assert part.shape == (3, 3, 32)
    diff = max_abs_diff(part, full.gather(1, idx[..., None].expand(-1, -1, 32)))
    assert diff <= 1e-6, f"max |output at queries - full output there| = {diff:.3e}"
    if return_weights:
        expected_w = full_w.gather(2, idx[:, None, :, None].expand(-1, 4, -1, 7))
        assert max_abs_diff(part_w, expected_w) <= 1e-6
    with pytest.raises(ValueError, match="queries must have shape"):
        mha(x, queries=xq[:, :, :16])
