"""Training-step throughput of our BertForPreTraining against transformers', same everything.

Both models get the same config, the same weights, the same batches and the
same masked positions. One *training step* = forward + MLM/NSP loss + backward
+ AdamW step. The two models alternate step by step inside one process
(``--repeats`` rounds over ``--steps`` batches, the order flipping each time),
so that load from other processes on a shared machine hits both alike.
Reported: tokens/s (batch x sequence positions, padding included) from the
median step time of each model, and the median (with quartiles) of the
per-pair speed-up, transformers' step time / ours.

What differs is only how each library computes the step:

- ours decodes the vocabulary only at the masked positions (sparse MLM: 15%
  of the real tokens instead of every position), runs its last layer after
  the keys and values only where the heads read it (the masked positions
  and [CLS]; ``--full-last-layer`` turns that off), uses the fused
  (single-kernel) AdamW and, as ``minibert pretrain`` does on the CPU, draws
  its dropout masks from 16 random bits per element
  (:mod:`minibert.fast_dropout`; ``--torch-dropout`` turns that off);
- transformers decodes every position and uses ``torch.optim.AdamW`` with
  its defaults, as a training script would.

Both use PyTorch's ``scaled_dot_product_attention`` (transformers' default
``sdpa``); with attention dropout in training it runs its math kernel in both.

Model FLOPs utilisation (MFU): the matmul FLOPs one step needs
(``minibert.flops.training_step_flops``: 3x the forward matmuls, MLM decoded
at the masked positions only and our last layer at the positions it runs
at, so both models are charged the same work, the work our step does)
divided by the step time, over the FLOP/s of the model's own matmul shapes
run alone, back to back, measured in the same process just before and after
the timed steps (the higher of the two is the peak). A shared machine's speed
drifts, by more than half at times, within one run, so a second MFU matches
each step with the same matmuls (``minibert.flops.MatmulProbe``, the faster
of two passes) timed just before its step pair, and reports the median of
those per-step ratios, as the speed-up is a median of per-pair ratios. On a
quiet machine the two agree; on a drifting one the first is low whenever the
steps ran in a slow spell and the peak in a fast one. ``--figure PATH`` draws
both, step pair by step pair, with the speed measured before each pair
(tutorial 07's ``ch07_mfu_drift.png``).

Before timing, the script checks that both give the same loss (eval mode, no
dropout) to 1e-5. ``--profile`` prints where the time goes (torch.profiler).
``--memory`` measures each model's peak resident-memory growth during training
steps, each in a fresh process. Every result prints the allocator setting it ran under and the
minor page faults per step; ``--malloc-tuning`` keeps freed memory in the process for both
models, as ``minibert pretrain`` does by default.

    python scripts/benchmark_pretraining.py --preset tiny mini
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from minibert import hf
from minibert.fast_dropout import use_fast_dropout
from minibert.flops import MatmulProbe, last_layer_rows, mfu, training_step_flops
from minibert.model import BertConfig, BertForPreTraining
from minibert.training_utils import MALLOC_SAYS, hardware_string, keep_freed_memory


def make_batches(config: BertConfig, n: int, batch_size: int, seq_len: int, mask_prob: float, seed: int) -> list:
    """``n`` pretraining batches: two segments, padded rows (lengths in [T/2, T]), ~mask_prob masked."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        B, T = batch_size, seq_len
        lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
        positions = torch.arange(T)
        real = positions[None, :] < lengths[:, None]                                   # (B, T) bool
        ids = torch.randint(5, config.vocab_size, (B, T), generator=g)
        ids[:, 0] = 2                                                                   # [CLS]
        ids[~real] = config.pad_token_id
        token_type_ids = ((positions[None, :] >= (lengths[:, None] // 2)) & real).long()
        candidates = real & (positions[None, :] > 0)
        masked = candidates & (torch.rand(B, T, generator=g) < mask_prob)
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        ids = torch.where(masked, torch.full_like(ids, 4), ids)                         # [MASK] = 4
        batches.append(dict(input_ids=ids, token_type_ids=token_type_ids, attention_mask=real.long(),
                            mlm_labels=labels, nsp_labels=torch.randint(0, 2, (B,), generator=g)))
    return batches


def build(preset: str, dropout: float, seed: int = 0, fast_dropout: bool | None = None):
    """(config, our model, transformers' model) with identical weights; ``fast_dropout`` None = ``FAST_DROPOUT``."""
    config = BertConfig.from_preset(preset, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    ours = BertForPreTraining(config)
    ours.sparse_last_layer = SPARSE_LAST_LAYER
    theirs = hf.to_transformers(ours, attn_implementation="sdpa")
    if FAST_DROPOUT if fast_dropout is None else fast_dropout:
        use_fast_dropout(ours)
    return config, ours, theirs


SPARSE_MLM = None   # None: decode only masked positions (our default); False: decode all (ablation)
SPARSE_LAST_LAYER = True   # False: our last layer runs at every position (ablation)


def our_step(model, optimizer, b) -> torch.Tensor:
    loss = model(b["input_ids"], b["token_type_ids"], b["attention_mask"],
                 mlm_labels=b["mlm_labels"], nsp_labels=b["nsp_labels"], sparse_mlm=SPARSE_MLM)["loss"]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def their_step(model, optimizer, b) -> torch.Tensor:
    loss = model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"],
                 labels=b["mlm_labels"], next_sentence_label=b["nsp_labels"]).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


FAST_DROPOUT = True  # False: our model uses PyTorch's dropout, like transformers (ablation)
FUSED_ADAMW = True  # False: our model gets the same default AdamW as transformers (ablation)


def optimizers(ours, theirs, lr=1e-4):
    our_opt = (torch.optim.AdamW(ours.parameters(), lr=lr, fused=True) if FUSED_ADAMW
               else torch.optim.AdamW(ours.parameters(), lr=lr))
    return our_opt, torch.optim.AdamW(theirs.parameters(), lr=lr)


def check_same_loss(ours, theirs, b) -> float:
    """|loss ours - loss transformers| in eval mode (no dropout) on one batch."""
    ours.eval(), theirs.eval()
    with torch.no_grad():
        a = ours(b["input_ids"], b["token_type_ids"], b["attention_mask"],
                 mlm_labels=b["mlm_labels"], nsp_labels=b["nsp_labels"])["loss"].item()
        c = theirs(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"],
                   labels=b["mlm_labels"], next_sentence_label=b["nsp_labels"]).loss.item()
    ours.train(), theirs.train()
    return abs(a - c)


def _masked(b) -> int:
    """Number of masked positions (MLM targets) in a batch."""
    return int((b["mlm_labels"] != -100).sum())


def _last_rows(b) -> int | None:
    """Positions at which our last layer runs for this batch (None: all of them)."""
    return last_layer_rows(b["mlm_labels"]) if SPARSE_LAST_LAYER and SPARSE_MLM is None else None


def timed_step(step, model, optimizer, b, faults: list | None = None) -> float:
    """Seconds of one training step; appends the minor page faults it caused to ``faults`` (Linux, macOS)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt if faults is not None else 0
    start = time.perf_counter()
    step(model, optimizer, b)
    seconds = time.perf_counter() - start
    if faults is not None:
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return seconds


def bench(preset: str, args) -> dict:
    """Median training-step throughput of both models, alternating step by step."""
    config, ours, theirs = build(preset, args.dropout)
    batches = make_batches(config, args.steps, args.batch_size, args.seq_len, args.mask_prob, seed=1)
    diff = check_same_loss(ours, theirs, batches[0])
    if diff > 1e-5:
        raise SystemExit(f"{preset}: losses differ by {diff:.3e} > 1e-5; the comparison is not fair.")
    opt_ours, opt_theirs = optimizers(ours, theirs)
    for _ in range(args.warmup):
        our_step(ours, opt_ours, batches[0])
        their_step(theirs, opt_theirs, batches[0])
    probe = MatmulProbe(config, args.batch_size, args.seq_len, _masked(batches[0]),
                        last_layer_rows=_last_rows(batches[0]))
    peak_before = probe.flops_per_second(repeats=5)
    times = {"ours": [], "transformers": []}
    faults = {"ours": [], "transformers": []}   # page faults: the allocator's cost shows here as a count
    trace = []   # per pair: the matmul speed measured just before it (FLOP/s), the step FLOPs, both step times
    ratios = []
    for r in range(args.repeats):
        for i, b in enumerate(batches):
            order = [("ours", our_step, ours, opt_ours), ("transformers", their_step, theirs, opt_theirs)]
            if (r + i) % 2:
                order.reverse()                       # alternate who goes first
            speed_now = probe.flops_per_second(repeats=2)   # the machine's matmul speed at this moment
            pair = {name: timed_step(step, model, opt, b, faults[name]) for name, step, model, opt in order}
            flops = training_step_flops(config, args.batch_size, args.seq_len, _masked(b), _last_rows(b))
            for name, seconds in pair.items():
                times[name].append(seconds)
            ratios.append(pair["transformers"] / pair["ours"])
            trace.append(dict(speed=speed_now, flops=flops, **pair))
    peak = max(peak_before, probe.flops_per_second(repeats=5))
    tokens = args.batch_size * args.seq_len
    med = {k: tokens / statistics.median(v) for k, v in times.items()}
    masked = sum(_masked(b) for b in batches) / (tokens * len(batches))
    step_flops = statistics.mean(training_step_flops(config, args.batch_size, args.seq_len, _masked(b),
                                                     _last_rows(b)) for b in batches)
    utilisation = {k: mfu(step_flops, statistics.median(v), peak) for k, v in times.items()}
    # each step's MFU against the matmul speed measured just before its pair
    matched = {k: [mfu(t["flops"], t[k], t["speed"]) for t in trace] for k in times}
    speeds = [t["speed"] for t in trace]
    return dict(preset=preset, loss_diff=diff, ours=med["ours"], transformers=med["transformers"],
                flops_per_token=step_flops / tokens, peak_gflops=peak / 1e9,
                mfu_ours=utilisation["ours"], mfu_transformers=utilisation["transformers"],
                mfu_matched={k: statistics.median(v) for k, v in matched.items()},
                mfu_matched_q=statistics.quantiles(matched["ours"], n=4, method="inclusive")
                if len(ratios) > 1 else matched["ours"] * 3,
                speed_gflops=(statistics.median(speeds) / 1e9, min(speeds) / 1e9, max(speeds) / 1e9),
                trace=trace, peak=peak,
                ratio=statistics.median(ratios),
                ratio_q=statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3,
                masked_fraction=masked, pairs=len(ratios),
                faults_ours=statistics.median(faults["ours"]),
                faults_transformers=statistics.median(faults["transformers"]))


def plot_drift(results: list[dict], path: Path, title: str = "") -> None:
    """Draw, per preset, the matmul speed before each step pair and our step's MFU both ways, into a PNG.

    Top row: the speed of the model's matmuls measured just before each pair
    (GFLOP/s) and the peak of the MFU line (the better of the measurements
    before and after the timed steps). Bottom row: each of our steps' MFU
    against that speed ("matched") and against the peak. ``results``
    are :func:`bench` dicts, which carry ``trace`` and ``peak``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 6.4), sharex="col", squeeze=False)
    for column, r in enumerate(results):
        pairs = range(1, len(r["trace"]) + 1)
        top, bottom = axes[0][column], axes[1][column]
        top.plot(pairs, [t["speed"] / 1e9 for t in r["trace"]], "o-", color="tab:gray",
                 label="matmuls alone, just before the pair")
        top.axhline(r["peak"] / 1e9, ls="--", color="black",
                    label=f"peak, best of before and after the steps ({r['peak'] / 1e9:.0f})")
        top.set_ylabel("GFLOP/s")
        top.set_ylim(0, 1.1 * max(r["peak"], *(t["speed"] for t in r["trace"])) / 1e9)
        top.set_title(f"{r['preset']}: the machine's matmul speed")
        top.legend(loc="lower left", fontsize=8)
        matched = [mfu(t["flops"], t["ours"], t["speed"]) for t in r["trace"]]
        against_peak = [mfu(t["flops"], t["ours"], r["peak"]) for t in r["trace"]]
        bottom.plot(pairs, matched, "o-", color="tab:blue",
                    label=f"matched to the speed before it (median {statistics.median(matched):.2f})")
        bottom.plot(pairs, against_peak, "s-", color="tab:orange", alpha=0.8,
                    label=f"against the peak (median {statistics.median(against_peak):.2f})")
        bottom.set_ylim(0, max(1.0, *matched, *against_peak) + 0.05)   # no point clipped
        bottom.set_xlabel("step pair (ours and transformers', alternating)")
        bottom.set_ylabel("MFU of our step")
        bottom.set_title(f"{r['preset']}: our step's MFU, two ways")
        bottom.legend(loc="lower left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compile_payback(preset: str, args) -> dict:
    """Ours compiled (``torch.compile``, inductor) against ours eager, side by side: does compiling pay back?

    Eager is the model as benchmarked above (fast dropout unless
    ``--torch-dropout``); the compiled one uses PyTorch's dropout, as
    ``minibert pretrain --compile`` does.

    The compile time is the wall time of the first compiled steps (three
    batches, so a recompile for another number of masked positions counts)
    minus three eager steps. The steady-state step times then alternate
    eagerly-run and compiled steps on the same batches. ``payback_steps`` is
    how many steps the compiled model needs to earn its compile time back
    (``None``: it is not faster, so it never does).
    """
    config, eager, _ = build(preset, args.dropout)
    # as `minibert pretrain --compile` does: PyTorch's dropout, which inductor fuses with its own RNG
    _, compiled_base, _ = build(preset, args.dropout, fast_dropout=False)
    batches = make_batches(config, args.steps, args.batch_size, args.seq_len, args.mask_prob, seed=1)
    opt_eager = torch.optim.AdamW(eager.parameters(), lr=1e-4, fused=True)
    opt_compiled = torch.optim.AdamW(compiled_base.parameters(), lr=1e-4, fused=True)
    compiled = torch.compile(compiled_base)
    start = time.perf_counter()
    for b in batches[:3]:
        our_step(compiled, opt_compiled, b)
    first_compiled = time.perf_counter() - start
    start = time.perf_counter()
    for b in batches[:3]:
        our_step(eager, opt_eager, b)
    first_eager = time.perf_counter() - start
    times = {"eager": [], "compiled": []}
    for r in range(args.repeats):
        for i, b in enumerate(batches):
            order = [("eager", eager, opt_eager), ("compiled", compiled, opt_compiled)]
            for name, model, opt in (order if (r + i) % 2 == 0 else order[::-1]):
                times[name].append(timed_step(our_step, model, opt, b))
    step = {k: statistics.median(v) for k, v in times.items()}
    compile_seconds = first_compiled - first_eager
    saved = step["eager"] - step["compiled"]
    return dict(preset=preset, compile_seconds=compile_seconds, eager_step=step["eager"],
                compiled_step=step["compiled"], speedup=step["eager"] / step["compiled"],
                payback_steps=compile_seconds / saved if saved > 0 else None)


def profile(preset: str, args) -> None:
    """Print the most expensive operators of a few training steps of each model."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    config, ours, theirs = build(preset, args.dropout)
    batches = make_batches(config, 3, args.batch_size, args.seq_len, args.mask_prob, seed=1)
    opt_ours, opt_theirs = optimizers(ours, theirs)
    ours.train(), theirs.train()
    runs = (("ours", our_step, ours, opt_ours), ("transformers", their_step, theirs, opt_theirs))
    for name, step, model, opt in runs:
        step(model, opt, batches[0])
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for b in batches:
                step(model, opt, b)
        print(f"\n=== {preset}: {name}, {len(batches)} training steps ===")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows))


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS = now, VmHWM = peak since the last reset), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")


def memory_child(preset: str, which: str, args) -> None:
    """In a fresh process: peak resident memory growth (MiB) during 3 training steps of one model.

    Linux lets a process reset its peak-RSS counter (write 5 to
    /proc/self/clear_refs), so model construction does not count; the figure
    is the peak during the steps minus the resident memory just before them
    (activations, gradients, optimizer state, logits).
    """
    config, ours, theirs = build(preset, args.dropout)
    batches = make_batches(config, 3, args.batch_size, args.seq_len, args.mask_prob, seed=1)
    opt_ours, opt_theirs = optimizers(ours, theirs)
    if which == "ours":
        del theirs, opt_theirs
        step, model, opt = our_step, ours.train(), opt_ours
    else:
        del ours, opt_ours
        step, model, opt = their_step, theirs.train(), opt_theirs
    import gc
    gc.collect()
    before = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    for b in batches:
        step(model, opt, b)
    print(f"{_status_mb('VmHWM') - before:.1f}")


def measure_memory(preset: str, which: str, args) -> float:
    cmd = [sys.executable, __file__, "--preset", preset, "--_memory-child", which,
           *(["--dense-mlm"] if args.dense_mlm else []), *(["--default-adamw"] if args.default_adamw else []),
           *(["--full-last-layer"] if args.full_last_layer else []),
           *(["--torch-dropout"] if args.torch_dropout else []), *(["--malloc-tuning"] if args.malloc_tuning else []),
           "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
           "--mask-prob", str(args.mask_prob), "--dropout", str(args.dropout), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()
    return float(out[-1])


def allocator_setting(tuned: str | None = None) -> str:
    """The malloc tuning this process runs under: ``--malloc-tuning``'s (``tuned``, what
    :func:`minibert.training_utils.keep_freed_memory` returned), else ``GLIBC_TUNABLES``, else glibc's defaults."""
    if tuned == "kept (mallopt)":
        return f"{MALLOC_SAYS[tuned]} (--malloc-tuning), as minibert pretrain does by default"
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return f"GLIBC_TUNABLES={tunables}" if tunables else "glibc malloc defaults (GLIBC_TUNABLES unset)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", default=["tiny", "mini"], help="model presets to compare")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per batch (default 32)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--mask-prob", type=float, default=0.15, help="fraction of real tokens masked (0.15)")
    parser.add_argument("--dropout", type=float, default=0.1, help="hidden and attention dropout (0.1, as BERT)")
    parser.add_argument("--steps", type=int, default=3, help="distinct batches per repetition (3)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds over the batches; medians reported (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per model first (1)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table per model")
    parser.add_argument("--profile-rows", type=int, default=15, help="rows of the profiler table (15)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure each model's peak memory growth during training steps (Linux)")
    parser.add_argument("--dense-mlm", action="store_true",
                        help="ablation: our model decodes every position, like transformers")
    parser.add_argument("--full-last-layer", action="store_true",
                        help="ablation: our last layer runs at every position, like transformers, instead of only "
                             "where the heads read it (the masked positions and [CLS])")
    parser.add_argument("--default-adamw", action="store_true",
                        help="ablation: our model uses the default (non-fused) AdamW, like transformers")
    parser.add_argument("--compile", action="store_true",
                        help="instead: time our model compiled (torch.compile) against eager, side by side, with "
                             "the compile time and the steps it needs to pay that back")
    parser.add_argument("--torch-dropout", action="store_true",
                        help="ablation: our model draws its dropout masks with PyTorch's bernoulli, like transformers")
    parser.add_argument("--malloc-tuning", action="store_true",
                        help="keep freed memory in the process as `minibert pretrain` does by default "
                             "(minibert.training_utils.keep_freed_memory), for both models; default: glibc's "
                             "defaults (or GLIBC_TUNABLES)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also draw, per preset, the matmul speed before each step pair and our step's MFU "
                             "matched to it and against the best peak, into this PNG")
    parser.add_argument("--_memory-child", dest="memory_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tuned = keep_freed_memory() if args.malloc_tuning else None
    global SPARSE_MLM, SPARSE_LAST_LAYER, FUSED_ADAMW, FAST_DROPOUT
    SPARSE_MLM = False if args.dense_mlm else None
    SPARSE_LAST_LAYER = not args.full_last_layer
    FUSED_ADAMW = not args.default_adamw
    FAST_DROPOUT = not args.torch_dropout

    if args.memory_child:
        memory_child(args.preset[0], args.memory_child, args)
        return 0
    print(f"# torch {torch.__version__}, {args.threads} threads, batch {args.batch_size} x {args.seq_len}, "
          f"mask {args.mask_prob}, dropout {args.dropout}, {args.steps} steps x {args.repeats} alternating repeats"
          f"{', ours with dense MLM' if args.dense_mlm else ''}"
          f"{', ours with the full last layer' if args.full_last_layer else ''}"
          f"{', ours with default AdamW' if args.default_adamw else ''}"
          f"{', ours with PyTorch dropout' if args.torch_dropout else ''}")
    # The allocator changes both models' speeds (freed large blocks returned to the OS are page-faulted back
    # in on the next step), so a result names the setting it ran under; tutorial 07 has the measurement.
    print(f"# allocator: {allocator_setting(tuned)}")
    drawn = []
    for preset in args.preset:
        if args.profile:
            profile(preset, args)
            continue
        if args.compile:
            c = compile_payback(preset, args)
            payback = (f"pays back after {c['payback_steps']:,.0f} steps" if c["payback_steps"] is not None
                       else "never pays back (not faster)")
            print(f"{preset:6s} eager {args.batch_size * args.seq_len / c['eager_step']:7.0f} tok/s   compiled "
                  f"{args.batch_size * args.seq_len / c['compiled_step']:7.0f} tok/s   speed-up {c['speedup']:.2f}x   "
                  f"compile time {c['compile_seconds']:.1f} s: {payback}", flush=True)
            continue
        r = bench(preset, args)
        drawn.append(r)
        q1, _, q3 = r["ratio_q"]
        line = (f"{preset:6s} ours {r['ours']:7.0f} tok/s   transformers {r['transformers']:7.0f} tok/s   "
                f"speed-up {r['ratio']:.2f}x (quartiles {q1:.2f}-{q3:.2f}, {r['pairs']} step pairs)   "
                f"|d loss| {r['loss_diff']:.1e}   masked {100 * r['masked_fraction']:.1f}% of positions\n"
                f"       {r['flops_per_token'] / 1e6:.2f} MFLOP/token per step, matmul peak {r['peak_gflops']:.0f} "
                f"GFLOP/s on the model's shapes, MFU ours {r['mfu_ours']:.2f}, "
                f"transformers {r['mfu_transformers']:.2f}\n"
                f"       MFU against the matmul speed measured just before each step pair (median of the steps): "
                f"ours {r['mfu_matched']['ours']:.2f} (quartiles {r['mfu_matched_q'][0]:.2f}-"
                f"{r['mfu_matched_q'][2]:.2f}), transformers {r['mfu_matched']['transformers']:.2f}; "
                f"that speed {r['speed_gflops'][0]:.0f} GFLOP/s (median; {r['speed_gflops'][1]:.0f}-"
                f"{r['speed_gflops'][2]:.0f})\n"
                f"       minor page faults per step (median): ours {r['faults_ours']:,.0f}, "
                f"transformers {r['faults_transformers']:,.0f}")
        if args.memory:
            m_ours, m_theirs = measure_memory(preset, "ours", args), measure_memory(preset, "transformers", args)
            line += f"   peak memory growth ours {m_ours:.0f} MiB, transformers {m_theirs:.0f} MiB"
        print(line, flush=True)
    if args.figure and drawn:
        plot_drift(drawn, args.figure, title=f"scripts/benchmark_pretraining.py, batch {args.batch_size} x "
                   f"{args.seq_len}; {hardware_string(torch.device('cpu'))}; "
                   f"{allocator_setting(tuned).split(' (')[0]}")
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
