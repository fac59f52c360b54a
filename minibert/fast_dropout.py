r"""Dropout with a cheaper random mask: a training-speed switch for the CPU.

Dropout keeps each element with probability $1 - p$ and scales the survivors
so that the expectation is unchanged:

$$\mathrm{Dropout}(x)_i = \frac{m_i\, x_i}{1 - p}, \qquad m_i \sim \mathrm{Bernoulli}(1 - p).$$

On the CPU, PyTorch draws each $m_i$ from its own 32-bit random number
(``bernoulli_``), and at the ``tiny`` preset that is a sixth of a training
step (``python scripts/benchmark_pretraining.py --preset tiny --profile``).
This module draws **16 bits per element** instead: one 64-bit random word
gives four elements, each keeps its element when its 16-bit lane $u_i$,
uniform on $\{0, \dots, 65535\}$, is at least $d = \mathrm{round}(65536\,p)$:

$$m_i = [u_i \ge d], \qquad P(m_i = 0) = p' = d / 65536, \qquad
  \mathrm{Dropout}'(x)_i = \frac{m_i\, x_i}{1 - p'}.$$

$p'$ differs from $p$ by at most $2^{-17} \approx 7.6\times10^{-6}$ (for
$p = 0.1$: $p' = 6554/65536 = 0.1000061$), and the survivors are scaled by the
exact $1/(1-p')$, so the output is still unbiased: $E[\mathrm{Dropout}'(x)] = x$.
The numbers come from PyTorch's default generator, so a seeded run is
reproducible and ``--resume`` stays exact. Only the random stream differs
from ``nn.Dropout``; no test of the model against ``transformers`` runs
dropout (it is random in both).

The model itself (:mod:`minibert.model`) keeps ``nn.Dropout`` and PyTorch's
fused attention, so it reads as the formulas do. :func:`use_fast_dropout`
swaps the dropouts of a built model in place:

* every ``nn.Dropout`` becomes a :class:`FastDropout` with the same $p$;
* every :class:`~minibert.attention.MultiHeadAttention` computes its
  attention in training through the explicit path with this dropout on the
  weights (the fused kernel draws its own mask and cannot take ours).

On a GPU, PyTorch's dropout is already one fused kernel and this switch buys
nothing; ``minibert pretrain --fast-dropout auto`` (the default) turns it on
for the CPU only.
"""

from __future__ import annotations

import torch
from torch import nn

from minibert.attention import MultiHeadAttention

__all__ = ["drop_count", "fast_dropout", "FastDropout", "use_fast_dropout", "uses_fast_dropout"]

LANES = 65536   # values of one 16-bit lane


def drop_count(p: float) -> int:
    r"""$d = \mathrm{round}(65536\,p)$: how many of the 65,536 lane values drop their element ($p' = d/65536$)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"fast_dropout: p must be in [0, 1), got {p}.")
    return min(round(p * LANES), LANES - 1)


def keep_mask(shape: torch.Size, p: float, device: torch.device | str = "cpu",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    r"""(boolean keep mask $m$ of ``shape``, scale $1/(1-p')$): 16 random bits per element.

    One int64 word over the full 64-bit range gives four independent uniform
    int16 lanes in $[-32768, 32767]$; lane $u - 32768 \ge d - 32768$ keeps.
    """
    d = drop_count(p)
    n = 1
    for size in shape:
        n *= size
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-2 ** 63, None, generator=generator)      # every one of the 2^64 bit patterns
    lanes = words.view(torch.int16)[:n].view(shape)          # (shape) uniform on [-32768, 32767]
    return lanes >= d - LANES // 2, LANES / (LANES - d)


class _MaskAndScale(torch.autograd.Function):
    """$y = m \\odot x \\cdot s$ and $\\partial L/\\partial x = m \\odot \\partial L/\\partial y \\cdot s$, saving only $m$ (1 byte per element)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        # aten's dropout backward is exactly grad * mask * scale, in one pass: reuse it both ways.
        return torch.ops.aten.native_dropout_backward(x, keep, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return torch.ops.aten.native_dropout_backward(grad, keep, ctx.scale), None, None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    r"""$\mathrm{Dropout}'(x)$ (module docstring): drop with probability $p' = \mathrm{round}(65536 p)/65536$.

    Identity when ``training`` is False or $p = 0$, like ``F.dropout``.
    """
    if not training or p == 0.0:
        return x
    keep, scale = keep_mask(x.shape, p, x.device)
    return _MaskAndScale.apply(x, keep, scale)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with :func:`fast_dropout`'s 16-bit mask; same ``p``, same train/eval behaviour."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Swap, in place, every ``nn.Dropout`` of ``model`` for :class:`FastDropout` and route attention through it.

    Returns ``model``. Parameters, state dict and evaluation-mode outputs are
    unchanged (dropout is the identity in eval mode).
    """
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, name, FastDropout(child.p).train(child.training))   # keep the train/eval mode
        if isinstance(module, MultiHeadAttention):
            module.weights_dropout = fast_dropout
    return model


def uses_fast_dropout(model: nn.Module) -> bool:
    """True when :func:`use_fast_dropout` has been applied to ``model``."""
    return any(isinstance(m, FastDropout) for m in model.modules()) or any(
        isinstance(m, MultiHeadAttention) and m.weights_dropout is not None for m in model.modules())
