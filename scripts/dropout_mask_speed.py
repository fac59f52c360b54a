"""How long the dropout of one training step takes with three ways of building the same 16-bit mask.

All three draw the same random lanes (``minibert.fast_dropout.random_lanes``, through ``keep_mask``
or ``scaled_keep_mask``) and give the same numbers; they differ only in how the 0 / scale multiplier
is made from them:

- ``where``: boolean mask ``lanes >= t``, then ``torch.where(keep, scale, 0.0)``
  (``minibert.fast_dropout`` until 2026-12-06);
- ``bool-to``: boolean mask, then ``keep.to(torch.float32).mul_(scale)``;
- ``ge-out``: ``torch.ge(lanes, t, out=float_tensor)``, then ``mul_(scale)``
  (``minibert.fast_dropout.scaled_keep_mask``, now).

For each preset it times dropout forward and backward (``y = x * multiplier``,
then ``y.backward(g)``) on the shapes one training step drops: the embeddings
and two residual branches per layer (B, T, C), and the attention weights of
each layer (B, H, T, T). The ways take turns, and the medians over
``--repeats`` are reported, with the time per training step (each shape times
how often a step drops it).

    python scripts/dropout_mask_speed.py --preset tiny mini
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minibert.fast_dropout import keep_mask, scaled_keep_mask
from minibert.model import BertConfig
from minibert.training_utils import keep_freed_memory


def where_multiplier(shape: torch.Size, p: float) -> torch.Tensor:
    """The previous construction: boolean mask, then ``torch.where(keep, scale, 0.0)``."""
    keep, scale = keep_mask(shape, p)
    return torch.where(keep, scale, 0.0)


def bool_to_multiplier(shape: torch.Size, p: float) -> torch.Tensor:
    """Boolean mask converted with ``.to(float32)``, then scaled in place."""
    keep, scale = keep_mask(shape, p)
    return keep.to(torch.float32).mul_(scale)


def dropout_seconds(make_multiplier, x: torch.Tensor, g: torch.Tensor, p: float) -> float:
    """Seconds of one dropout forward (multiplier and product) and backward."""
    x = x.detach().requires_grad_()
    start = time.perf_counter()
    y = x * make_multiplier(x.shape, p)
    y.backward(g)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", default=["tiny", "mini"], help="model presets (shapes)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per batch (32)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (128)")
    parser.add_argument("--p", type=float, default=0.1, help="dropout probability (0.1)")
    parser.add_argument("--repeats", type=int, default=30, help="timed repetitions per way and shape (30)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()                      # as `minibert pretrain` runs: no page faults in the timing
    ways = {"where": where_multiplier, "bool-to": bool_to_multiplier,
            "ge-out": lambda shape, p: scaled_keep_mask(shape, p)}
    print(f"dropout forward + backward, p = {args.p}, {args.threads} threads, median of {args.repeats}")
    print("| preset | tensor | shape | per step | where (ms) | bool-to (ms) | ge-out (ms) | where / ge-out |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for preset in args.preset:
        c = BertConfig.from_preset(preset)
        B, T, L = args.batch_size, args.seq_len, c.num_hidden_layers
        shapes = [("hidden states", (B, T, c.hidden_size), 1 + 2 * L),
                  ("attention weights", (B, c.num_attention_heads, T, T), L)]
        total = dict.fromkeys(ways, 0.0)
        for name, shape, per_step in shapes:
            x, g = torch.randn(shape), torch.randn(shape)
            times = {k: [] for k in ways}
            for r in range(args.repeats + 1):
                order = list(ways.items())[r % 3:] + list(ways.items())[:r % 3]     # rotate who goes first
                for k, make in order:
                    seconds = dropout_seconds(make, x, g, args.p)
                    if r:                                       # the first round warms up
                        times[k].append(seconds)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            for k in ways:
                total[k] += med[k] * per_step
            print(f"| `{preset}` | {name} | {tuple(shape)} | {per_step} | {med['where']:.2f} | "
                  f"{med['bool-to']:.2f} | {med['ge-out']:.2f} | {med['where'] / med['ge-out']:.2f}x |")
        print(f"| `{preset}` | **one step's dropout** | | | {total['where']:.1f} | {total['bool-to']:.1f} | "
              f"{total['ge-out']:.1f} | {total['where'] / total['ge-out']:.2f}x |")


if __name__ == "__main__":
    main()
