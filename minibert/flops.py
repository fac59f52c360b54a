r"""How much arithmetic a pretraining step is: matmul FLOPs and model FLOPs utilisation (MFU).

A training step of a transformer is almost all matrix multiplication. This
module counts those multiplications from the config and the batch shape, so
a speed (tokens/s) can be turned into a fraction of what the machine can do:

$$\text{MFU} = \frac{\text{FLOPs of one step} / \text{step time}}{\text{peak matmul FLOP/s}}.$$

The count follows the usual convention: a multiply-add is 2 FLOPs, the
backward pass costs twice the forward pass (one matmul for the gradient of
the input, one for the gradient of the weight), so a training step is
$3\times$ the forward matmuls. Elementwise work (GELU, LayerNorm, softmax,
dropout, the optimizer) is *not* counted: it is what MFU shows as lost time.
"""

from __future__ import annotations

import time

import torch

from .model import IGNORE_INDEX, BertConfig, last_layer_width


def forward_matmul_flops(config: BertConfig, batch_size: int, seq_len: int, num_masked: int,
                         last_layer_rows: int | None = None) -> int:
    r"""Matmul FLOPs of one forward pass of :class:`~minibert.model.BertForPreTraining` with sparse MLM.

    With $B$ sequences of $T$ positions (padding included), $C$ hidden,
    $I$ intermediate, $L$ layers, $V$ vocabulary, $M$ masked positions
    (the MLM head decodes only those) and $R$ = ``last_layer_rows`` positions
    at which the last layer runs after its keys and values ($R = BQ$ from
    :func:`~minibert.model.last_layer_positions`; default $R = BT$, every
    position):

    $$F = (L-1)\,\bigl(\underbrace{8BTC^2}_{Q,K,V,O} + \underbrace{4BT^2C}_{QK^\top,\ AV}
          + \underbrace{4BTCI}_{\text{FFN}}\bigr)
          + \underbrace{4BTC^2}_{K,V} + \underbrace{4RC^2}_{Q,O} + \underbrace{4RTC}_{QK^\top,\ AV}
          + \underbrace{4RCI}_{\text{FFN}}
          + \underbrace{2BC^2}_{\text{pooler}} + \underbrace{4BC}_{\text{NSP}}
          + \underbrace{2MC^2 + 2MCV}_{\text{MLM transform, decoder}}.$$

    With $R = BT$ the last layer costs what every other layer does. The
    attention term does not depend on the number of heads: $H$ heads of
    width $C/H$ do $H \cdot 2T^2(C/H) = 2T^2C$ per sequence for scores and as
    much for the weighted sum of values. Embedding look-ups are not matmuls.
    """
    B, T, M = batch_size, seq_len, num_masked
    R = B * T if last_layer_rows is None else last_layer_rows
    C, I, L, V = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    per_layer = 8 * B * T * C * C + 4 * B * T * T * C + 4 * B * T * C * I
    last_layer = 4 * B * T * C * C + 4 * R * C * C + 4 * R * T * C + 4 * R * C * I
    return (L - 1) * per_layer + last_layer + 2 * B * C * C + 4 * B * C + 2 * M * C * C + 2 * M * C * V


def training_step_flops(config: BertConfig, batch_size: int, seq_len: int, num_masked: int,
                        last_layer_rows: int | None = None) -> int:
    r"""Matmul FLOPs of one training step: $3F$ (forward, then backward for inputs and weights)."""
    return 3 * forward_matmul_flops(config, batch_size, seq_len, num_masked, last_layer_rows)


def last_layer_rows(mlm_labels: torch.Tensor) -> int:
    """$R = BQ$: the positions at which the last layer runs for this batch (sparse MLM, ``mlm_labels`` (B, T))."""
    return mlm_labels.shape[0] * last_layer_width(mlm_labels != IGNORE_INDEX)


#: Which entries of :func:`model_matmul_shapes` are attention products (listed per sequence and head).
ATTENTION_ROWS = (2, 3)


def model_matmul_shapes(config: BertConfig, batch_size: int, seq_len: int, num_masked: int,
                        last_layer_rows: int | None = None) -> list[tuple]:
    """The (m, k, n) of every distinct matmul in one forward pass, with how many times it runs.

    Returns ``[(m, k, n, count), ...]``; ``sum(2*m*k*n*count)`` equals
    :func:`forward_matmul_flops`. Attention products are batched over
    sequences and heads, so they are listed per (sequence, head); the last
    layer's, with $Q = R/B$ queries per sequence, per (sequence, head) too.
    """
    B, T, M = batch_size, seq_len, num_masked
    R = B * T if last_layer_rows is None else last_layer_rows
    C, I, L, V = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    H = config.num_attention_heads
    D = C // H
    return [
        (B * T, C, C, 4 * (L - 1) + 2),    # query, key, value, output projections (last layer: key, value)
        (R, C, C, 2),                      # last layer: query and output projections
        (T, D, T, 2 * B * H * (L - 1)),    # scores Q K^T and weighted values A V (same FLOPs)
        (R // B, D, T, 2 * B * H),         # the same in the last layer, R/B queries per sequence
        (B * T, C, I, L - 1),              # FFN in
        (B * T, I, C, L - 1),              # FFN out
        (R, C, I, 1),                      # last layer's FFN in
        (R, I, C, 1),                      # last layer's FFN out
        (B, C, C, 1),                      # pooler
        (B, C, 2, 1),                      # NSP
        (M, C, C, 1),                      # MLM transform
        (M, C, V, 1),                      # MLM decoder (masked positions only)
    ]


class MatmulProbe:
    """This model's own matmuls, built once and timed on demand: the machine's matmul speed for this model.

    Holds operands for every shape of :func:`model_matmul_shapes` (attention
    as one ``bmm`` over sequences x heads), each to be run ``count`` times,
    so that one pass does the FLOPs of one forward pass. :meth:`flops_per_second`
    runs the pass and returns FLOPs / seconds. Built once, it can be timed
    next to every training step (``scripts/benchmark_pretraining.py``): then
    the step and the speed it is compared with are measured at the same
    moment, which matters on a machine whose speed drifts. On a GPU pass
    ``device`` (and ``dtype=torch.bfloat16`` for a bf16 run): the timing
    waits for the device.
    """

    def __init__(self, config: BertConfig, batch_size: int, seq_len: int, num_masked: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                 last_layer_rows: int | None = None):
        self.device = torch.device(device)
        B, H = batch_size, config.num_attention_heads
        shapes = model_matmul_shapes(config, batch_size, seq_len, num_masked, last_layer_rows)
        self.work = []
        for i, (m, k, n, count) in enumerate(shapes):
            if i in ATTENTION_ROWS:   # attention: batched over B*H, `count // (B*H)` times
                a = torch.randn(B * H, m, k, dtype=dtype, device=self.device)
                b = torch.randn(B * H, k, n, dtype=dtype, device=self.device)
                self.work.append((torch.bmm, a, b, count // (B * H)))
            else:
                a = torch.randn(m, k, dtype=dtype, device=self.device)
                b = torch.randn(k, n, dtype=dtype, device=self.device)
                self.work.append((torch.mm, a, b, count))
        self.flops = 2 * sum(m * k * n * c for m, k, n, c in shapes)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def flops_per_second(self, repeats: int = 1) -> float:
        """FLOPs / seconds of the fastest of ``repeats`` timed passes, after one untimed run of each shape."""
        for fn, a, b, _ in self.work:                 # warm-up
            fn(a, b)
        self._sync()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for fn, a, b, count in self.work:
                for _ in range(count):
                    fn(a, b)
            self._sync()
            best = min(best, time.perf_counter() - start)
        return self.flops / best


def measure_matmul_peak(config: BertConfig, batch_size: int, seq_len: int, num_masked: int,
                        repeats: int = 5, dtype: torch.dtype = torch.float32,
                        device: torch.device | str = "cpu", last_layer_rows: int | None = None) -> float:
    """FLOP/s of this model's own matmuls run alone, back to back: the machine's limit for this model.

    The fastest of ``repeats`` passes of a :class:`MatmulProbe` (each shape
    of :func:`model_matmul_shapes` run its count of times). What a training
    step achieves divided by this is its MFU.
    """
    return MatmulProbe(config, batch_size, seq_len, num_masked, dtype, device,
                       last_layer_rows).flops_per_second(repeats)


def mfu(step_flops: float, step_seconds: float, peak_flops_per_second: float) -> float:
    r"""Model FLOPs utilisation: $\frac{\text{step FLOPs} / \text{step seconds}}{\text{peak FLOP/s}}$."""
    return step_flops / step_seconds / peak_flops_per_second
