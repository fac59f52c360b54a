"""Checkpoint conversion (minibert/hf.py): the name table, folders both ways, and clear errors.

The transformers folders here are real checkpoint folders written by
transformers itself (``save_pretrained``; and a legacy ``pytorch_model.bin``),
since no pretrained weights can be downloaded in the test environment. Run
with ``-s`` to see the measured differences.
"""

from __future__ import annotations

import json

import pytest
import torch

from helpers import max_abs_diff, require_reference
from minibert import hf
from minibert.model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel

TOL = 1e-5


def small_config(**overrides) -> BertConfig:
    base = dict(vocab_size=90, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                intermediate_size=48, max_position_embeddings=32)
    return BertConfig(**{**base, **overrides})


def randomize_(module, seed=0):
    """Non-trivial values everywhere (LayerNorm gains away from 1, non-zero biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.2 * noise if name.endswith(("LayerNorm.weight", "norm.weight")) else 0.1 * noise)
    return module


def inputs(config, B=2, T=10):
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(5, config.vocab_size, (B, T), generator=g)
    tt = torch.zeros_like(ids)
    tt[:, T // 2:] = 1
    am = torch.ones_like(ids)
    am[1, T - 3:] = 0
    return ids, tt, am


def hf_outputs(model, ids, tt, am):
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=tt, attention_mask=am)
    name = type(model).__name__
    if name == "BertForPreTraining":
        return out.prediction_logits, out.seq_relationship_logits
    if name == "BertForSequenceClassification":
        return (out.logits,)
    return out.last_hidden_state, out.pooler_output


def our_outputs(model, ids, tt, am):
    with torch.no_grad():
        out = model(ids, tt, am) if not isinstance(model, BertForPreTraining) else model(ids, tt, am, sparse_mlm=False)
    if isinstance(model, BertForPreTraining):
        return out["mlm_logits"], out["nsp_logits"]
    if isinstance(model, BertForSequenceClassification):
        return (out["logits"],)
    return out["last_hidden_state"], out["pooler_output"]


def worst(a_outputs, b_outputs, am):
    """Largest difference over all outputs, at real (non-padding) positions for per-token tensors."""
    diffs = []
    for a, b in zip(a_outputs, b_outputs):
        if a.dim() == 3:
            a, b = a[am.bool()], b[am.bool()]
        diffs.append(max_abs_diff(a, b))
    return max(diffs)


# --------------------------------------------------------------------------- the table

@pytest.mark.parametrize("cls", [BertModel, BertForPreTraining, BertForSequenceClassification])
def test_name_table_is_a_bijection_onto_transformers_parameter_names(cls):
    """Every parameter of ours maps to a distinct transformers parameter of the same class and back."""
    transformers = require_reference("transformers")
    config = small_config()
    ours = cls(config, 2) if cls is BertForSequenceClassification else cls(config)
    hf_config = hf.config_to_hf(config, num_labels=2)
    theirs = getattr(transformers, cls.__name__)(hf_config)
    their_names = {n if cls is not BertModel else f"bert.{n}" for n, _ in theirs.named_parameters()}
    our_names = [f"bert.{n}" if cls is BertModel else n for n, _ in ours.named_parameters()]
    mapped = [hf.our_key_to_hf(n) for n in our_names]
    assert len(set(mapped)) == len(mapped), "two of our parameters map to one transformers name"
    assert set(mapped) == their_names - set(hf.TIED_HF_KEYS), \
        f"unmapped: {sorted(their_names - set(mapped))}, extra: {sorted(set(mapped) - their_names)}"
    assert [hf.hf_key_to_ours(m) for m in mapped] == our_names


# --------------------------------------------------------------------------- live models and folders

@pytest.mark.parametrize("cls_name", ["BertModel", "BertForPreTraining", "BertForSequenceClassification"])
def test_from_transformers_gives_the_same_outputs(cls_name):
    """A live transformers model converted to ours gives the same outputs (eval mode, float32)."""
    transformers = require_reference("transformers")
    config = small_config()
    reference = randomize_(getattr(transformers, cls_name)(hf.config_to_hf(config, num_labels=3))).eval()
    ours = hf.from_transformers(reference).eval()
    ids, tt, am = inputs(config)
    diff = worst(our_outputs(ours, ids, tt, am), hf_outputs(reference, ids, tt, am), am)
    print(f"\nfrom_transformers({cls_name}): max |d output| = {diff:.2e}")
    assert diff <= TOL, f"max |d output| = {diff:.3e}"


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_round_trip_ours_folder_transformers_ours_leaves_outputs_unchanged(tmp_path, safe):
    """ours -> save_pretrained -> transformers.from_pretrained (no missing keys) -> ours: same outputs."""
    transformers = require_reference("transformers")
    config = small_config()
    torch.manual_seed(0)
    ours = randomize_(BertForPreTraining(config)).eval()
    hf.save_pretrained(ours, tmp_path, safe_serialization=safe)
    assert (tmp_path / ("model.safetensors" if safe else "pytorch_model.bin")).is_file()
    theirs, info = transformers.BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    back = hf.from_transformers(theirs.eval())
    ids, tt, am = inputs(config)
    d_theirs = worst(our_outputs(ours, ids, tt, am), hf_outputs(theirs.eval(), ids, tt, am), am)
    d_back = worst(our_outputs(ours, ids, tt, am), our_outputs(back, ids, tt, am), am)
    print(f"\nround trip ({'safetensors' if safe else 'bin'}): ours vs transformers {d_theirs:.2e}, "
          f"ours vs ours-after-round-trip {d_back:.2e}")
    assert d_theirs <= TOL and d_back == 0.0, f"transformers {d_theirs:.3e}, round trip {d_back:.3e}"


@pytest.mark.parametrize("cls", [BertModel, BertForSequenceClassification])
def test_exported_encoder_and_classifier_load_in_transformers_without_missing_keys(tmp_path, cls):
    """save_pretrained of a BertModel / BertForSequenceClassification loads in the same transformers class."""
    transformers = require_reference("transformers")
    config = small_config()
    ours = randomize_(cls(config, 4) if cls is BertForSequenceClassification else cls(config)).eval()
    hf.save_pretrained(ours, tmp_path)
    theirs, info = getattr(transformers, cls.__name__).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ids, tt, am = inputs(config)
    diff = worst(our_outputs(ours, ids, tt, am), hf_outputs(theirs.eval(), ids, tt, am), am)
    assert diff <= TOL, f"max |d output| = {diff:.3e}"


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_real_transformers_checkpoint_folder_loads_and_runs(tmp_path, fmt):
    """A folder written by transformers (safetensors, or legacy pytorch_model.bin) loads into ours."""
    transformers = require_reference("transformers")
    config = small_config()
    reference = randomize_(transformers.BertForPreTraining(hf.config_to_hf(config))).eval()
    reference.save_pretrained(tmp_path)
    if fmt == "bin":            # transformers 5 writes safetensors only; build the legacy layout by hand
        (tmp_path / "model.safetensors").unlink()
        torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    ours = hf.load_pretrained(tmp_path, BertForPreTraining)
    ids, tt, am = inputs(config)
    diff = worst(our_outputs(ours, ids, tt, am), hf_outputs(reference, ids, tt, am), am)
    print(f"\ntransformers folder ({fmt}) -> ours: max |d output| = {diff:.2e}")
    assert diff <= TOL, f"max |d output| = {diff:.3e}"
    encoder = hf.load_pretrained(tmp_path)             # BertModel: the heads are ignored
    with torch.no_grad():
        h = encoder(ids, tt, am)["last_hidden_state"]
        ref_h = reference.bert(input_ids=ids, token_type_ids=tt, attention_mask=am).last_hidden_state
    assert max_abs_diff(h[am.bool()], ref_h[am.bool()]) <= TOL


def test_folder_holding_only_bert_model_weights_loads_into_bert_model(tmp_path):
    """transformers.BertModel.save_pretrained (keys without 'bert.') loads into our BertModel."""
    transformers = require_reference("transformers")
    config = small_config()
    reference = randomize_(transformers.BertModel(hf.config_to_hf(config))).eval()
    reference.save_pretrained(tmp_path)
    ours = hf.load_pretrained(tmp_path, BertModel)
    ids, tt, am = inputs(config)
    diff = worst(our_outputs(ours, ids, tt, am), hf_outputs(reference, ids, tt, am), am)
    assert diff <= TOL, f"max |d output| = {diff:.3e}"
    with pytest.raises(ValueError, match="missing tensors.*cls.predictions"):
        hf.load_pretrained(tmp_path, BertForPreTraining)


def test_pretrained_encoder_loads_into_a_classifier_with_a_fresh_head(tmp_path):
    """Fine-tuning start: a pretraining folder into BertForSequenceClassification warns about the new head."""
    config = small_config()
    pretrained = randomize_(BertForPreTraining(config)).eval()
    hf.save_pretrained(pretrained, tmp_path)
    with pytest.warns(UserWarning, match="classifier"):
        clf = hf.load_pretrained(tmp_path, BertForSequenceClassification, num_labels=3)
    ids, tt, am = inputs(config)
    with torch.no_grad():
        a = clf.bert(ids, tt, am)["pooler_output"]
        b = pretrained.bert(ids, tt, am)["pooler_output"]
    assert max_abs_diff(a, b) == 0.0 and clf.classifier.out_features == 3


def test_sinusoidal_model_exports_its_fixed_table_as_positions():
    """With fixed sinusoidal positions, the transformers model gets the table and gives the same outputs."""
    require_reference("transformers")
    config = small_config(position_embedding_type="sinusoidal")
    ours = randomize_(BertModel(config)).eval()
    theirs = hf.to_transformers(ours)
    ids, tt, am = inputs(config)
    diff = worst(our_outputs(ours, ids, tt, am), hf_outputs(theirs, ids, tt, am), am)
    assert diff <= TOL, f"max |d output| = {diff:.3e}"


def test_tf_style_gamma_beta_names_are_accepted():
    """Old checkpoints name LayerNorm parameters gamma/beta; they load like weight/bias."""
    config = small_config()
    source = randomize_(BertModel(config)).eval()
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in hf.to_hf_state_dict(source).items()}
    assert any(k.endswith("gamma") for k in state)
    target = hf.load_hf_state_dict(BertModel(config), state).eval()
    ids, tt, am = inputs(config)
    assert worst(our_outputs(source, ids, tt, am), our_outputs(target, ids, tt, am), am) == 0.0


# --------------------------------------------------------------------------- errors

def test_missing_unexpected_and_misshaped_tensors_are_named():
    """Each kind of mismatch raises a ValueError naming the offending tensor."""
    config = small_config()
    state = hf.to_hf_state_dict(BertModel(config))
    missing = {k: v for k, v in state.items() if k != "bert.pooler.dense.weight"}
    with pytest.raises(ValueError, match=r"bert\.pooler\.dense\.weight"):
        hf.load_hf_state_dict(BertModel(config), missing)
    extra = {**state, "bert.encoder.layer.0.attention.self.rotary.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match="rotary"):
        hf.load_hf_state_dict(BertModel(config), extra)
    wrong = {**state, "bert.pooler.dense.bias": torch.zeros(5)}
    with pytest.raises(ValueError, match=r"bert\.pooler\.bias.*\(5,\)"):
        hf.load_hf_state_dict(BertModel(config), wrong)


def test_untied_decoder_is_refused():
    """A checkpoint whose decoder weight differs from the word embeddings cannot be tied: clear error."""
    config = small_config()
    state = hf.to_hf_state_dict(BertForPreTraining(config))
    state["cls.predictions.decoder.weight"] = torch.randn(config.vocab_size, config.hidden_size)
    with pytest.raises(ValueError, match="differs"):
        hf.load_hf_state_dict(BertForPreTraining(config), state)


def test_folder_of_another_model_type_is_refused_by_name(tmp_path):
    """config.json with model_type 'roberta' -> ValueError naming 'roberta'."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta", "hidden_size": 24}))
    with pytest.raises(ValueError, match="roberta"):
        hf.load_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json"):
        hf.load_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("text,words", [("{not json", "is not valid JSON"), ("[1, 2]", "holds a JSON list"),
                                        ('{"model_type": "bert", "hidden_size": "big"}', "not a usable BERT config")])
def test_a_broken_config_json_is_named_with_what_is_wrong(tmp_path, text, words):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=words) as info:
        hf.load_pretrained(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_truncated_or_empty_weights_file_is_named(tmp_path, weights, damage):
    hf.save_pretrained(BertModel(small_config()), tmp_path, safe_serialization=weights == "model.safetensors")
    path = tmp_path / weights
    path.write_bytes(b"" if damage == "empty" else path.read_bytes()[:200])
    with pytest.raises(ValueError, match="is empty" if damage == "empty" else "truncated") as info:
        hf.load_pretrained(tmp_path)
    assert str(path) in str(info.value)


def test_saving_one_weights_format_removes_the_other(tmp_path):
    """A folder never holds both model.safetensors and pytorch_model.bin, so what loads is what was written."""
    hf.save_pretrained(BertModel(small_config()), tmp_path)
    hf.save_pretrained(BertModel(small_config()), tmp_path, safe_serialization=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "pytorch_model.bin"]


def test_classifier_with_hidden_layer_cannot_be_exported(tmp_path):
    """transformers has no hidden classification layer: exporting one is refused with a reason."""
    model = BertForSequenceClassification(small_config(), 2, hidden_layer_size=8)
    with pytest.raises(ValueError, match="hidden ReLU layer"):
        hf.save_pretrained(model, tmp_path)


# --------------------------------------------------------------------------- training checkpoints and the CLI

def test_export_command_turns_a_training_checkpoint_into_a_transformers_folder(tmp_path, capsys):
    """`minibert export --checkpoint c.pt --out dir` writes a folder transformers loads with no missing keys."""
    transformers = require_reference("transformers")
    config = small_config()
    model = randomize_(BertForPreTraining(config)).eval()
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "config": config.to_dict(), "step": 3}, checkpoint)
    from minibert.cli import main as cli_main

    assert cli_main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "hf")]) == 0
    assert "wrote" in capsys.readouterr().out
    theirs, info = transformers.BertForPreTraining.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ids, tt, am = inputs(config)
    diff = worst(our_outputs(model, ids, tt, am), hf_outputs(theirs.eval(), ids, tt, am), am)
    assert diff <= TOL, f"max |d output| = {diff:.3e}"
    assert cli_main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2


def test_load_checkpoint_strips_ddp_and_compile_prefixes(tmp_path):
    """State dicts saved from a DDP- or torch.compile-wrapped model ('module.', '_orig_mod.') still load."""
    config = small_config()
    model = randomize_(BertForPreTraining(config)).eval()
    state = {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model": state, "config": config.to_dict()}, tmp_path / "c.pt")
    loaded = hf.load_checkpoint(tmp_path / "c.pt")
    ids, tt, am = inputs(config)
    assert worst(our_outputs(model, ids, tt, am), our_outputs(loaded, ids, tt, am), am) == 0.0
    torch.save({"weights": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt is not one, not a minibert checkpoint .*model, config"):
        hf.load_checkpoint(tmp_path / "bad.pt")
