"""scripts/partial_init.py: a BERT folder copied with named parts drawn afresh from BERT's initialisation."""

from __future__ import annotations

import pytest
import torch
from helpers import load_script

from minibert import BertConfig, BertForPreTraining
from minibert.hf import save_pretrained


def _folder(tmp_path):
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.from_preset("tiny", vocab_size=50, hidden_size=16, intermediate_size=32,
                                                      num_attention_heads=2, max_position_embeddings=16))
    with torch.no_grad():                      # "pretrained": move every LayerNorm and bias off its initial value
        for p in model.parameters():
            p.add_(0.5)
    save_pretrained(model, tmp_path / "src")
    return tmp_path / "src"


def test_only_the_named_parts_are_redrawn_and_they_get_bert_init(tmp_path):
    from safetensors.torch import load_file

    module = load_script("partial_init")
    src = _folder(tmp_path)
    assert module.main([str(src), "--reinit", "embeddings", "layer1", "--out", str(tmp_path / "out")]) == 0
    before, after = load_file(str(src / "model.safetensors")), load_file(str(tmp_path / "out" / "model.safetensors"))
    assert before.keys() == after.keys()
    redrawn = {k for k in before if not torch.equal(before[k], after[k])}
    assert redrawn == {k for k in before if k.startswith(("bert.embeddings.", "bert.encoder.layer.1."))} | (
        {"cls.predictions.decoder.weight"} & before.keys())
    assert torch.equal(after["bert.embeddings.LayerNorm.weight"], torch.ones(16))
    assert torch.equal(after["bert.encoder.layer.1.output.dense.bias"], torch.zeros(16))
    w = after["bert.embeddings.word_embeddings.weight"]
    assert w[1:].std().item() == pytest.approx(0.02, rel=0.15) and abs(w.mean().item()) < 0.005
    assert torch.equal(w[0], torch.zeros(16)), "the padding row must start at 0, as in --mode scratch"
    assert (tmp_path / "out" / "config.json").read_text() == (src / "config.json").read_text()


def test_an_unknown_part_is_named(tmp_path):
    module = load_script("partial_init")
    src = _folder(tmp_path)
    with pytest.raises(SystemExit, match="--reinit 'head'"):
        module.main([str(src), "--reinit", "head", "--out", str(tmp_path / "out")])


def test_centring_removes_the_mean_word_embedding_and_nothing_else(tmp_path):
    from safetensors.torch import load_file

    module = load_script("partial_init")
    src = _folder(tmp_path)
    assert module.main([str(src), "--center-word-embeddings", "--out", str(tmp_path / "out")]) == 0
    before, after = load_file(str(src / "model.safetensors")), load_file(str(tmp_path / "out" / "model.safetensors"))
    key = "bert.embeddings.word_embeddings.weight"
    assert after[key].mean(dim=0).abs().max().item() < 1e-6
    assert torch.allclose(after[key], before[key] - before[key].mean(dim=0), atol=1e-6)
    assert all(torch.equal(before[k], after[k]) for k in before if k not in (key, "cls.predictions.decoder.weight"))
    with pytest.raises(SystemExit):
        module.main([str(src), "--out", str(tmp_path / "none")])


def test_embedding_stats_tell_random_rows_from_rows_that_share_a_direction():
    module = load_script("partial_init")
    g = torch.Generator().manual_seed(0)
    random_rows = torch.randn(4005, 64, generator=g)
    assert module.embedding_stats(random_rows)["mean_unit_row_length"] == pytest.approx(4000 ** -0.5, rel=0.2)
    shared = random_rows * 0.1 + torch.ones(64)                  # every row leans the same way
    assert module.embedding_stats(shared)["mean_unit_row_length"] > 0.9
    assert module.embedding_stats(2 * random_rows)["median_row_norm"] == pytest.approx(
        2 * module.embedding_stats(random_rows)["median_row_norm"], rel=1e-6)
