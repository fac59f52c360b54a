"""Where a pretraining step's time goes, part by part, timed directly instead of with the profiler.

For each part of our training step -- one encoder layer's attention, its
feed-forward network, its two residual + dropout + LayerNorm blocks, the
whole layer, the MLM head with its loss (and the loss alone), and the AdamW
step -- the script times forward + backward of that part alone (median of
``--repeats``) and, alternating with it, the *same matmuls alone*: every
matrix product the part does in its forward and backward pass (for each
``nn.Linear`` the forward product, the input gradient and the weight
gradient; for attention the two batched products of scores and weighted
values and the four of their gradients), with the same shapes and operand
layouts, back to back.

    matmul share = (time of the part's matmuls alone) / (time of the part).

A part with share 0.9 spends 10% of its time outside its matrix products
(softmax, GELU, LayerNorm, dropout, copies, bias sums, autograd). This is the
MFU of that part against the speed its own matmuls reach. It bounds what
the whole step can reach: the step is made of its layers, the MLM head and
parts without matmuls, so it is no more matmul-bound than the more
matmul-bound of its layers and its head. Why not ``torch.profiler``: on some machines (a virtual AMD EPYC in
tutorial 07) its table charged the large elementwise kernels several times
what a timer around the same work measures (the MLM log-softmax: 33 ms a
call, against the few ms of the loss row here) and summed to more self time
than the steps took; a timer around a part, run alone, avoids both.

The model is ours with the dropout that ``minibert pretrain`` uses on the
CPU (:mod:`minibert.fast_dropout`; ``--torch-dropout`` for PyTorch's), in
training mode, at batch 32 x 128 with padded rows (lengths in [T/2, T]) and
15% of the real tokens masked, freed memory kept in the process (as
``minibert pretrain`` runs).

    python scripts/layer_time_budget.py --preset tiny mini
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from minibert.attention import padding_mask
from minibert.fast_dropout import use_fast_dropout
from minibert.model import BertConfig, BertForPreTraining
from minibert.training_utils import keep_freed_memory


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def linear_matmuls(rows: int, d_in: int, d_out: int) -> list[tuple]:
    """The three products of an ``nn.Linear`` (d_in -> d_out) on ``rows`` inputs, forward and backward.

    Each entry is ``(a_shape, a_transposed, b_shape, b_transposed)``: the
    operand is made with the shape as stored and then transposed, so the
    layout is the one autograd uses. Forward $Y = X W^\\top$, input gradient
    $G W$, weight gradient $G^\\top X$.
    """
    return [((rows, d_in), False, (d_out, d_in), True),    # X W^T
            ((rows, d_out), False, (d_out, d_in), False),  # G W
            ((rows, d_out), True, (rows, d_in), False)]    # G^T X


def attention_matmuls(batch_heads: int, queries: int, keys: int, head_dim: int) -> list[tuple]:
    """The batched products of attention forward and backward (per sequence x head, batched).

    Forward $S = Q K^\\top$, $Y = A V$; backward $dA = dY\\,V^\\top$,
    $dV = A^\\top dY$, $dQ = dS\\,K$, $dK = dS^\\top Q$.
    """
    n, q, t, d = batch_heads, queries, keys, head_dim
    return [((n, q, d), False, (n, t, d), True),     # Q K^T
            ((n, q, t), False, (n, t, d), False),    # A V
            ((n, q, d), False, (n, t, d), True),     # dY V^T
            ((n, q, t), True, (n, q, d), False),     # A^T dY
            ((n, q, t), False, (n, t, d), False),    # dS K
            ((n, q, t), True, (n, q, d), False)]     # dS^T Q


def product_flops(products: list[tuple]) -> int:
    """FLOPs of ``products`` (see :func:`linear_matmuls`): $2mkn$ per (m, k) x (k, n) product, times its batch."""
    total = 0
    for a_shape, a_t, b_shape, b_t in products:
        m, k = (a_shape[-1], a_shape[-2]) if a_t else (a_shape[-2], a_shape[-1])
        n = b_shape[-2] if b_t else b_shape[-1]
        batch = a_shape[0] if len(a_shape) == 3 else 1
        total += 2 * batch * m * k * n
    return total


def matmuls_alone(products: list[tuple]):
    """A function running ``products`` (see :func:`linear_matmuls`) back to back, on random operands."""
    work = []
    for a_shape, a_t, b_shape, b_t in products:
        a, b = torch.randn(a_shape), torch.randn(b_shape)
        work.append((a.transpose(-1, -2) if a_t else a, b.transpose(-1, -2) if b_t else b))

    def run() -> None:
        for a, b in work:
            torch.matmul(a, b)
    return run


def alternating_median_ms(first, second, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Median times (ms) of ``first()`` and ``second()`` called alternately, so that drift hits both alike."""
    for _ in range(warmup):
        first(), second()
    times = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[0]), 1e3 * statistics.median(times[1])


def batch(config: BertConfig, batch_size: int, seq_len: int, seed: int = 0) -> dict:
    """A padded batch: hidden states (B, T, C), its attention mask, and the masked positions (15% of real)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(seq_len // 2, seq_len + 1, (batch_size,), generator=g)
    real = torch.arange(seq_len)[None, :] < lengths[:, None]                    # (B, T)
    masked = real & (torch.rand(batch_size, seq_len, generator=g) < 0.15)
    masked[:, 0] = False                                                        # never [CLS]
    x = torch.randn(batch_size, seq_len, config.hidden_size, generator=g)
    labels = torch.randint(5, config.vocab_size, (int(masked.sum()),), generator=g)
    return {"x": x, "mask": padding_mask(real.long()), "masked": masked, "labels": labels}


def budget(preset: str | BertConfig, batch_size: int = 32, seq_len: int = 128, repeats: int = 20,
           fast_dropout: bool = True, seed: int = 0) -> list[dict]:
    """Rows ``{"part", "ms", "matmul_ms", "share", "flops"}`` for one training step's parts (module docstring).

    ``flops`` counts the part's listed matmuls (forward and backward) and
    ``run`` is the timed function (forward + backward of the part), so that
    a test can count what it really multiplies; ``matmul_ms``, ``share`` and
    ``flops`` are None for AdamW, which has no matmuls.
    """
    config = BertConfig.from_preset(preset) if isinstance(preset, str) else preset
    torch.manual_seed(seed)
    model = BertForPreTraining(config)
    if fast_dropout:
        use_fast_dropout(model)
    model.train()
    layer = model.bert.layers[0]
    b = batch(config, batch_size, seq_len, seed)
    B, T, C = b["x"].shape
    I, H = config.intermediate_size, config.num_attention_heads
    N, M = B * T, len(b["labels"])
    x = b["x"].requires_grad_()
    grad = torch.randn_like(x)

    def forward_backward(f):
        def run() -> None:
            f().backward(grad)
        return run

    def residual_norm():
        return layer.attention_norm(x + layer.dropout(x))

    def ffn():
        return layer.output(layer.act(layer.intermediate(x)))

    hidden = x.detach()[b["masked"]].requires_grad_()           # (M, C): the masked positions' outputs

    def mlm_head_and_loss() -> None:
        logits = model.mlm(hidden)                              # (M, V)
        torch.nn.functional.cross_entropy(logits, b["labels"]).backward()

    logits = torch.randn(M, config.vocab_size, requires_grad=True)

    def mlm_loss_alone() -> None:
        torch.nn.functional.cross_entropy(logits, b["labels"]).backward()

    attention = [p for _ in range(4) for p in linear_matmuls(N, C, C)] + attention_matmuls(B * H, T, T, C // H)
    ffn_products = linear_matmuls(N, C, I) + linear_matmuls(N, I, C)
    parts = [
        ("attention (Q, K, V, O, scores, softmax, dropout)", forward_backward(lambda: layer.attention(x, b["mask"])[0]),
         attention),
        ("feed-forward (W1, GELU, W2)", forward_backward(ffn), ffn_products),
        ("residual + dropout + LayerNorm (x2 per layer)", forward_backward(residual_norm), []),
        ("whole encoder layer", forward_backward(lambda: layer(x, b["mask"])[0]), attention + ffn_products),
        (f"MLM head + loss ({M} masked positions, V = {config.vocab_size})", mlm_head_and_loss,
         linear_matmuls(M, C, C) + linear_matmuls(M, C, config.vocab_size)),
        ("  of which the loss (log-softmax + NLL)", mlm_loss_alone, []),
    ]
    rows = []
    for name, run, products in parts:
        if products:
            ms, matmul_ms = alternating_median_ms(run, matmuls_alone(products), repeats)
        else:
            ms, matmul_ms = median_ms(run, repeats), 0.0
        rows.append({"part": name, "ms": ms, "matmul_ms": matmul_ms, "share": matmul_ms / ms,
                     "flops": product_flops(products), "run": run})
    # AdamW over every parameter, with gradients present (as in the step).
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    rows.append({"part": "AdamW (fused), all parameters", "ms": median_ms(optimizer.step, repeats),
                 "matmul_ms": None, "share": None, "flops": None, "run": optimizer.step})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", default=["tiny", "mini"], help="model presets (tiny mini)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per batch (32)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (128)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per part; medians reported (20)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--torch-dropout", action="store_true",
                        help="PyTorch's dropout instead of minibert.fast_dropout's (as minibert pretrain on CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    print(f"# torch {torch.__version__}, {args.threads} threads, batch {args.batch_size} x {args.seq_len}, "
          f"{'PyTorch' if args.torch_dropout else 'fast'} dropout, median of {args.repeats}; "
          f"forward + backward of each part alone, then the same matmuls alone")
    for preset in args.preset:
        print(f"\n{preset}: {'part':55s} {'time (ms)':>10s} {'its matmuls alone (ms)':>23s} {'matmul share':>13s}")
        for r in budget(preset, args.batch_size, args.seq_len, args.repeats, not args.torch_dropout):
            mm = "" if r["matmul_ms"] is None else f"{r['matmul_ms']:.1f}"
            share = "" if r["share"] is None else f"{r['share']:.2f}"
            print(f"{'':{len(preset) + 2}s}{r['part']:55s} {r['ms']:10.1f} {mm:>23s} {share:>13s}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
