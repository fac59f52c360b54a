"""FLOPs of a pretraining step: the closed formula equals a count of the matmuls a real step runs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from minibert import flops
from minibert.flops import (ATTENTION_ROWS, MatmulProbe, forward_matmul_flops, last_layer_rows, model_matmul_shapes,
                            mfu, training_step_flops)
from minibert.model import BertConfig, BertForPreTraining


def _batch(vocab: int, B: int, T: int, masked_per_row: int, seed: int = 0) -> dict:
    """Row b has ``masked_per_row - b % 2`` masked positions (so the last layer's rows are padded)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    labels = torch.full_like(ids, -100)
    for b in range(B):
        n = masked_per_row - b % 2
        labels[b, 1:1 + n] = ids[b, 1:1 + n]
    return dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids),
                mlm_labels=labels, nsp_labels=torch.randint(0, 2, (B,), generator=g))


@pytest.mark.parametrize("sparse_last_layer", [True, False])
@pytest.mark.parametrize("preset,B,T,masked", [("tiny", 4, 32, 5), ("mini", 2, 48, 7)])
def test_step_flops_formula_equals_counted_matmuls(preset, B, T, masked, sparse_last_layer):
    """3 x the forward formula = the FLOPs torch's flop counter sees in one forward + backward (train mode),
    with the last layer at the positions the heads read (R = B x Q rows) and at every position (R = B x T)."""
    config = BertConfig.from_preset(preset, vocab_size=1000)
    torch.manual_seed(0)
    model = BertForPreTraining(config).train()     # train mode: attention runs as counted bmm's
    model.sparse_last_layer = sparse_last_layer
    b = _batch(config.vocab_size, B, T, masked)
    M = int((b["mlm_labels"] != -100).sum())
    rows = last_layer_rows(b["mlm_labels"]) if sparse_last_layer else None
    if sparse_last_layer:
        assert rows == B * (1 + masked)             # [CLS] + the most masked positions of any row
    with FlopCounterMode(display=False) as counter:
        model(b["input_ids"], b["token_type_ids"], b["attention_mask"], mlm_labels=b["mlm_labels"],
              nsp_labels=b["nsp_labels"])["loss"].backward()
    counted = counter.get_total_flops()
    formula = training_step_flops(config, B, T, M, rows)
    assert counted == formula, f"{preset}: flop counter {counted:,} vs formula {formula:,}"


@pytest.mark.parametrize("rows", [None, 32 * 23])
def test_matmul_shapes_add_up_to_the_forward_formula(rows):
    """The shape list the peak measurement runs is the same arithmetic as the formula, with or without the
    last layer trimmed to ``rows`` positions."""
    config = BertConfig.from_preset("tiny")
    shapes = model_matmul_shapes(config, 32, 128, 600, rows)
    assert 2 * sum(m * k * n * c for m, k, n, c in shapes) == forward_matmul_flops(config, 32, 128, 600, rows)
    assert all(shapes[i][2] == 128 and shapes[i][1] == config.head_dim for i in ATTENTION_ROWS)


def test_trimmed_last_layer_formula_is_the_full_one_at_every_position():
    """R = B x T (every position) gives the untrimmed count; each row fewer saves the same FLOPs."""
    config = BertConfig.from_preset("mini")
    full = forward_matmul_flops(config, 8, 64, 50)
    assert forward_matmul_flops(config, 8, 64, 50, 8 * 64) == full
    C, I, T = config.hidden_size, config.intermediate_size, 64
    assert full - forward_matmul_flops(config, 8, 64, 50, 8 * 64 - 1) == 4 * C * C + 4 * T * C + 4 * C * I


@pytest.mark.parametrize("rows", [None, 4 * 5])
def test_matmul_probe_times_exactly_one_forward_pass_of_matmuls(rows, monkeypatch):
    """Each timed pass of the probe runs the forward formula's FLOPs (counted by torch, not taken from the
    shape list), and the speed is those FLOPs over the fastest pass: the warm-up is not timed."""
    config = BertConfig.from_preset("tiny", vocab_size=300)
    probe = MatmulProbe(config, 4, 16, 9, last_layer_rows=rows)
    assert probe.flops == forward_matmul_flops(config, 4, 16, 9, rows)
    counted = []
    for repeats in (1, 2):
        with FlopCounterMode(display=False) as counter:
            probe.flops_per_second(repeats)
        counted.append(counter.get_total_flops())
    assert counted[1] - counted[0] == probe.flops, "one more timed pass must add one forward pass of matmuls"
    clock = iter([100.0, 103.0, 110.0, 112.0, 120.0, 124.0])   # three passes of 3 s, 2 s and 4 s
    monkeypatch.setattr(flops.time, "perf_counter", lambda: next(clock))
    assert probe.flops_per_second(3) == pytest.approx(probe.flops / 2.0)


def test_mfu_is_achieved_over_peak():
    """MFU = (FLOPs / seconds) / peak: 1e9 FLOPs in 0.5 s against a 4e9 FLOP/s peak is 0.5."""
    assert mfu(1e9, 0.5, 4e9) == pytest.approx(0.5)


def test_benchmark_script_names_its_allocator_and_compares_both_models(monkeypatch, capsys, tmp_path):
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
            figure = tmp_path / f"drift_{tunables is None}.png"
            assert bench.main(["--preset", "tiny", "--batch-size", "2", "--seq-len", "16", "--steps", "1",
                               "--repeats", "2", "--threads", str(threads), "--figure", str(figure)]) == 0
            out = capsys.readouterr().out
            assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {figure}" in out
            assert f"# allocator: {expected}" in out
            assert "tiny   ours" in out and "transformers" in out and "MFU ours" in out
            matched = out.split("measured just before each step pair (median of the steps): ours ")[1]
            assert 0 < float(matched.split()[0]) < 10
    finally:
        torch.set_num_threads(threads)


def test_benchmark_matched_mfu_is_the_median_of_its_per_pair_trace():
    """The matched MFU the benchmark prints (and draws) is each of our steps' FLOPs / seconds over the matmul
    speed timed just before its pair, one trace row per pair, median over the pairs."""
    import argparse
    import statistics

    from helpers import load_script, require_reference
    require_reference("transformers")
    bench = load_script("benchmark_pretraining")
    args = argparse.Namespace(batch_size=2, seq_len=16, mask_prob=0.15, dropout=0.1, steps=2, repeats=2, warmup=1)
    r = bench.bench("tiny", args)
    assert len(r["trace"]) == r["pairs"] == 4
    per_pair = [t["flops"] / t["ours"] / t["speed"] for t in r["trace"]]
    assert r["mfu_matched"]["ours"] == pytest.approx(statistics.median(per_pair))
    assert r["speed_gflops"][1] * 1e9 == pytest.approx(min(t["speed"] for t in r["trace"])) and r["speed_gflops"][1] > 0
    assert r["peak"] / 1e9 == pytest.approx(r["peak_gflops"])


def test_the_memory_child_process_gets_every_ablation_flag(monkeypatch):
    """--memory measures in a fresh process: it must run the same model as the timed one, ablations included."""
    import argparse
    from types import SimpleNamespace

    from helpers import load_script
    bench = load_script("benchmark_pretraining")
    commands = []

    def fake_run(cmd, **kwargs):
        commands.append(cmd)
        return SimpleNamespace(stdout="12.5\n")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    ablations = ("dense_mlm", "default_adamw", "full_last_layer", "torch_dropout", "malloc_tuning")
    args = argparse.Namespace(**{a: True for a in ablations}, batch_size=2, seq_len=16, mask_prob=0.15,
                              dropout=0.1, threads=1)
    assert bench.measure_memory("tiny", "ours", args) == 12.5
    for a in ablations:
        assert "--" + a.replace("_", "-") in commands[0], f"--memory's child process is not given --{a}"


def test_layer_time_budget_lists_exactly_the_matmuls_each_part_runs():
    """scripts/layer_time_budget.py times each part against "the same matmuls alone": they must be the same.

    For every part, the FLOPs of the products it lists (forward, input and
    weight gradients, attention's six batched products) must equal what
    ``torch.utils.flop_counter`` counts while the part really runs forward
    and backward; and a layer's list must be 3x the forward formula's layer term.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from helpers import load_script
    budget = load_script("layer_time_budget")
    config = BertConfig.from_preset("tiny", vocab_size=300)
    B, T = 4, 16
    rows = budget.budget(config, batch_size=B, seq_len=T, repeats=1)
    assert [r["part"].split(" (")[0] for r in rows] == [
        "attention", "feed-forward", "residual + dropout + LayerNorm", "whole encoder layer", "MLM head + loss",
        "  of which the loss", "AdamW"]
    for row in rows:
        assert row["ms"] > 0
        if row["flops"] is None:
            continue
        counter = FlopCounterMode(display=False)
        with counter:
            row["run"]()
        assert counter.get_total_flops() == row["flops"], row["part"]
        assert row["share"] == pytest.approx(row["matmul_ms"] / row["ms"])
    C, I = config.hidden_size, config.intermediate_size
    layer = next(r for r in rows if r["part"] == "whole encoder layer")
    assert layer["flops"] == 3 * (8 * B * T * C * C + 4 * B * T * T * C + 4 * B * T * C * I)
    assert layer["flops"] == rows[0]["flops"] + rows[1]["flops"] > 0


def test_layer_time_budget_prints_a_table_per_preset(monkeypatch, capsys):
    """The script's command line: one table per preset, with the matmul share of every part that has matmuls."""
    from helpers import load_script
    budget = load_script("layer_time_budget")
    monkeypatch.setattr(budget, "keep_freed_memory", lambda: None)     # leave this process's allocator alone
    threads = torch.get_num_threads()
    try:
        assert budget.main(["--preset", "tiny", "--batch-size", "2", "--seq-len", "8", "--repeats", "1",
                            "--threads", str(threads)]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "tiny: part" in out and "matmul share" in out
    assert "whole encoder layer" in out and "AdamW" in out
