"""Fine-tuning and inference speed of a BERT classifier, last layer everywhere vs at [CLS] only, side by side.

A classifier with ``pooler`` or ``cls`` pooling reads one vector per
sentence, [CLS]'s, so after the keys and values its last encoder layer has
only one position to compute (``BertForSequenceClassification.sparse_last_layer``,
``--last-layer read`` in ``minibert finetune`` / ``minibert classify`` /
``--teacher-last-layer read`` in ``textcnn distill``). This script times both
ways on the same model, weights and batches, alternating, so that drift on
the machine hits both alike:

- a fine-tuning step: forward, cross-entropy, backward and AdamW, in training
  mode (dropout on);
- inference: forward in eval mode under ``torch.no_grad()``.

It reports the median time of each and the median of the per-pair ratios
(full / trimmed) with quartiles, and checks first that both give the same
logits in eval mode (max abs diff, float32). Batches: ``--batch-size``
sentences padded to ``--seq-len``, lengths drawn uniformly between
``--min-len`` and ``--seq-len`` (defaults 32, 64, 16: SST-2-like sentences),
random token ids, random weights (speed does not depend on the values).

    python scripts/classifier_speed.py --preset tiny mini small base
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

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


def compare(preset: str, batch_size: int = 32, seq_len: int = 64, min_len: int = 16, repeats: int = 10,
            steps: int = 3, seed: int = 0) -> dict:
    """Time both ways for one preset; returns medians (seconds), ratio quartiles and the eval logits' difference."""
    config = BertConfig.from_preset(preset)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config, 2)
    batches = make_batches(config, steps, batch_size, seq_len, min_len, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    model.eval()
    with torch.no_grad():
        diffs = []
        for ids, mask, _ in batches:
            model.sparse_last_layer = False
            full = model(ids, attention_mask=mask)["logits"]
            model.sparse_last_layer = True
            diffs.append((model(ids, attention_mask=mask)["logits"] - full).abs().max().item())

    def train_step(batch) -> None:
        ids, mask, labels = batch
        model.train()
        model(ids, attention_mask=mask, labels=labels)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def infer(batch) -> None:
        model.eval()
        model(batch[0], attention_mask=batch[1])

    result = {"preset": preset, "max_abs_diff": max(diffs)}
    for name, fn in (("train", train_step), ("infer", infer)):
        times = {False: [], True: []}
        for trimmed in (False, True):                 # warm-up, untimed
            model.sparse_last_layer = trimmed
            fn(batches[0])
        for r in range(repeats):
            for b in batches:
                for trimmed in ((False, True) if r % 2 == 0 else (True, False)):
                    model.sparse_last_layer = trimmed
                    start = time.perf_counter()
                    fn(b)
                    times[trimmed].append(time.perf_counter() - start)
        ratios = [f / t for f, t in zip(times[False], times[True])]
        result[name] = {"full": statistics.median(times[False]), "trimmed": statistics.median(times[True]),
                        "ratio": tuple(statistics.quantiles(ratios, n=4))}   # (q1, median, q3)
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
    args = parser.parse_args(argv)
    if not 1 <= args.min_len <= args.seq_len:
        parser.error(f"--min-len must be between 1 and --seq-len ({args.seq_len}), got {args.min_len}")
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    print(f"# torch {torch.__version__}, {args.threads} threads, batch {args.batch_size} x {args.seq_len} "
          f"(lengths {args.min_len}-{args.seq_len}), {args.steps} batches x {args.repeats} alternating repeats, "
          f"freed memory kept; pooler classifier, last layer everywhere (full) vs at [CLS] only (trimmed)")
    for preset in args.preset:
        r = compare(preset, args.batch_size, args.seq_len, args.min_len, args.repeats, args.steps)
        for name, label in (("train", "fine-tuning step"), ("infer", "inference")):
            t = r[name]
            q1, q2, q3 = t["ratio"]
            print(f"{preset:6s} {label:16s} full {1e3 * t['full']:8.1f} ms   trimmed {1e3 * t['trimmed']:8.1f} ms   "
                  f"speed-up {q2:.2f}x (quartiles {q1:.2f}-{q3:.2f})", flush=True)
        print(f"{preset:6s} eval logits, trimmed vs full: max abs diff {r['max_abs_diff']:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
