"""FLOPs of a pretraining step: the closed formula equals a count of the matmuls a real step runs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from minibert.flops import forward_matmul_flops, model_matmul_shapes, mfu, training_step_flops
from minibert.model import BertConfig, BertForPreTraining


def _batch(vocab: int, B: int, T: int, masked_per_row: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 1:1 + masked_per_row] = ids[:, 1:1 + masked_per_row]
    return dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids),
                mlm_labels=labels, nsp_labels=torch.randint(0, 2, (B,), generator=g))


@pytest.mark.parametrize("preset,B,T,masked", [("tiny", 4, 32, 5), ("mini", 2, 48, 7)])
def test_step_flops_formula_equals_counted_matmuls(preset, B, T, masked):
    """3 x the forward formula = the FLOPs torch's flop counter sees in one forward + backward (train mode)."""
    config = BertConfig.from_preset(preset, vocab_size=1000)
    torch.manual_seed(0)
    model = BertForPreTraining(config).train()     # train mode: attention runs as counted bmm's
    b = _batch(config.vocab_size, B, T, masked)
    M = B * masked
    with FlopCounterMode(display=False) as counter:
        model(b["input_ids"], b["token_type_ids"], b["attention_mask"], mlm_labels=b["mlm_labels"],
              nsp_labels=b["nsp_labels"])["loss"].backward()
    counted = counter.get_total_flops()
    formula = training_step_flops(config, B, T, M)
    assert counted == formula, f"{preset}: flop counter {counted:,} vs formula {formula:,}"


def test_matmul_shapes_add_up_to_the_forward_formula():
    """The shape list the peak measurement runs is the same arithmetic as the formula."""
    config = BertConfig.from_preset("tiny")
    shapes = model_matmul_shapes(config, 32, 128, 600)
    assert 2 * sum(m * k * n * c for m, k, n, c in shapes) == forward_matmul_flops(config, 32, 128, 600)


def test_mfu_is_achieved_over_peak():
    """MFU = (FLOPs / seconds) / peak: 1e9 FLOPs in 0.5 s against a 4e9 FLOP/s peak is 0.5."""
    assert mfu(1e9, 0.5, 4e9) == pytest.approx(0.5)


def test_benchmark_script_names_its_allocator_and_compares_both_models(monkeypatch, capsys):
    """A tiny run of scripts/benchmark_pretraining.py: the allocator setting is printed (it moves both speeds)."""
    from helpers import load_script, require_reference
    require_reference("transformers")
    bench = load_script("benchmark_pretraining")
    threads = torch.get_num_threads()
    try:
        for tunables, expected in [("glibc.malloc.trim_threshold=1", "GLIBC_TUNABLES=glibc.malloc.trim_threshold=1"),
                                   (None, "glibc malloc defaults")]:
            if tunables is None:
                monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
            else:
                monkeypatch.setenv("GLIBC_TUNABLES", tunables)
            assert bench.main(["--preset", "tiny", "--batch-size", "2", "--seq-len", "16", "--steps", "1",
                               "--repeats", "1", "--threads", str(threads)]) == 0
            out = capsys.readouterr().out
            assert f"# allocator: {expected}" in out
            assert "tiny   ours" in out and "transformers" in out and "MFU ours" in out
    finally:
        torch.set_num_threads(threads)
