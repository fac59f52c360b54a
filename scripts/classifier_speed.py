"""Fine-tuning and inference speed of a BERT classifier, the default step against a faster one, side by side.

Three switches make a classifier's CPU step faster without changing what it
computes, and this script times each against the default on the same model,
weights and batches, alternating, so that drift on the machine hits both
alike (``--compare``):

- ``last-layer``: with ``pooler`` or ``cls`` pooling a classifier reads one
  vector per sentence, [CLS]'s, so after the keys and values its last encoder
  layer has only one position to compute
  (``BertForSequenceClassification.sparse_last_layer``; ``--last-layer read``
  in ``minibert finetune`` / ``minibert classify``, ``--teacher-last-layer
  read`` in ``textcnn distill``);
- ``fast-step``: dropout masks from 16 random bits per element
  (:mod:`minibert.fast_dropout`) and the one-kernel AdamW (``--fast-dropout on
  --fused-adamw`` in ``minibert finetune``): other random draws and float32
  round-off, the same model and objective;
- ``all``: the three together.

Timed: a fine-tuning step (forward, cross-entropy, backward and AdamW, in
training mode, dropout on) and inference (forward in eval mode under
``torch.no_grad()``; dropout and the optimizer play no part there, so
``fast-step`` must give 1.00x: a check on the noise). It reports the median
time of each and the median of the per-pair ratios (default / faster) with
quartiles, and checks first that both give the same logits in eval mode (max
abs diff, float32). Batches: ``--batch-size`` sentences padded to
``--seq-len``, lengths drawn uniformly between ``--min-len`` and
``--seq-len`` (defaults 32, 64, 16: SST-2-like sentences), random token ids,
random weights (speed does not depend on the values).

    python scripts/classifier_speed.py --preset tiny mini small base
    python scripts/classifier_speed.py --preset tiny mini small --compare fast-step
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from minibert.fast_dropout import use_fast_dropout
from minibert.model import BertConfig, BertForSequenceClassification
from minibert.training_utils import keep_freed_memory


def make_batches(config: BertConfig, n: int, batch_size: int, seq_len: int, min_len: int, seed: int = 0) -> list:
    """``n`` padded batches ``(input_ids, attention_mask, labels)``, lengths uniform in [min_len, seq_len]."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        lengths = torch.randint(min_len, seq_len + 1, (batch_size,), generator=g)
        mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()           # (B, T)
        ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), generator=g)
        ids[:, 0] = 2                                                                # [CLS]
        ids = ids.masked_fill(mask == 0, config.pad_token_id)
        batches.append((ids, mask, torch.randint(0, 2, (batch_size,), generator=g)))
    return batches


#: What each ``--compare`` turns on in the faster model: (16-bit dropout, fused AdamW, last layer at [CLS] only).
COMPARISONS = {"last-layer": (False, False, True), "fast-step": (True, True, False), "all": (True, True, True)}


def compare(preset: str, batch_size: int = 32, seq_len: int = 64, min_len: int = 16, repeats: int = 10,
            steps: int = 3, seed: int = 0, what: str = "last-layer") -> dict:
    """Time the default step and the ``what`` one (:data:`COMPARISONS`) for one preset.

    Returns ``{"preset", "max_abs_diff", "train", "infer"}``, the last two
    ``{"base": median s, "fast": median s, "ratio": (q1, median, q3) of base / fast}``.
    """
    fast_dropout, fused, trimmed = COMPARISONS[what]
    config = BertConfig.from_preset(preset)
    torch.manual_seed(seed)
    base = BertForSequenceClassification(config, 2)
    fast = copy.deepcopy(base)
    fast.sparse_last_layer = trimmed
    if fast_dropout:
        use_fast_dropout(fast)
    models = {"base": base, "fast": fast}
    optimizers = {"base": torch.optim.AdamW(base.parameters(), lr=1e-5),
                  "fast": torch.optim.AdamW(fast.parameters(), lr=1e-5, fused=fused or None)}
    batches = make_batches(config, steps, batch_size, seq_len, min_len, seed)

    with torch.no_grad():
        diffs = [(fast.eval()(ids, attention_mask=mask)["logits"] - base.eval()(ids, attention_mask=mask)["logits"])
                 .abs().max().item() for ids, mask, _ in batches]

    def train_step(which: str, batch) -> None:
        ids, mask, labels = batch
        model, optimizer = models[which].train(), optimizers[which]
        model(ids, attention_mask=mask, labels=labels)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def infer(which: str, batch) -> None:
        models[which].eval()(batch[0], attention_mask=batch[1])

    result = {"preset": preset, "max_abs_diff": max(diffs)}
    for name, fn in (("train", train_step), ("infer", infer)):
        times = {"base": [], "fast": []}
        for which in times:                            # warm-up, untimed
            fn(which, batches[0])
        for r in range(repeats):
            for b in batches:
                for which in (("base", "fast") if r % 2 == 0 else ("fast", "base")):
                    start = time.perf_counter()
                    fn(which, b)
                    times[which].append(time.perf_counter() - start)
        ratios = [b / f for b, f in zip(times["base"], times["fast"])]
        result[name] = {"base": statistics.median(times["base"]), "fast": statistics.median(times["fast"]),
                        "ratio": tuple(statistics.quantiles(ratios, n=4, method="inclusive"))}   # (q1, median, q3)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", default=["tiny", "mini"], help="model presets (tiny mini)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch (32)")
    parser.add_argument("--seq-len", type=int, default=64, help="padded length, [CLS] and [SEP] included (64)")
    parser.add_argument("--min-len", type=int, default=16, help="shortest sentence in tokens (16)")
    parser.add_argument("--steps", type=int, default=3, help="distinct batches per repetition (3)")
    parser.add_argument("--repeats", type=int, default=10, help="rounds over the batches; medians reported (10)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--compare", choices=tuple(COMPARISONS), default="last-layer",
                        help="the faster step: last-layer = last layer at [CLS] only (default); fast-step = 16-bit "
                             "dropout masks and the fused AdamW; all = the three")
    args = parser.parse_args(argv)
    if not 1 <= args.min_len <= args.seq_len:
        parser.error(f"--min-len must be between 1 and --seq-len ({args.seq_len}), got {args.min_len}")
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    faster = {"last-layer": "last layer at [CLS] only", "fast-step": "16-bit dropout masks and fused AdamW",
              "all": "16-bit dropout masks, fused AdamW and last layer at [CLS] only"}[args.compare]
    print(f"# torch {torch.__version__}, {args.threads} threads, batch {args.batch_size} x {args.seq_len} "
          f"(lengths {args.min_len}-{args.seq_len}), {args.steps} batches x {args.repeats} alternating repeats, "
          f"freed memory kept; pooler classifier, the default step (base) vs {faster} (fast)")
    for preset in args.preset:
        r = compare(preset, args.batch_size, args.seq_len, args.min_len, args.repeats, args.steps, what=args.compare)
        for name, label in (("train", "fine-tuning step"), ("infer", "inference")):
            t = r[name]
            q1, q2, q3 = t["ratio"]
            print(f"{preset:6s} {label:16s} base {1e3 * t['base']:8.1f} ms   fast {1e3 * t['fast']:8.1f} ms   "
                  f"speed-up {q2:.2f}x (quartiles {q1:.2f}-{q3:.2f})", flush=True)
        print(f"{preset:6s} eval logits, fast vs base: max abs diff {r['max_abs_diff']:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
