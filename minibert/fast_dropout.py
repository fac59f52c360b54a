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
  attention in training with :func:`attention_with_fast_dropout` (the fused
  kernel draws its own mask and cannot take ours).

On a GPU, PyTorch's dropout is already one fused kernel and this switch buys
nothing; ``minibert pretrain --fast-dropout auto`` (the default) turns it on
for the CPU only. ``minibert finetune --fast-dropout`` offers the same, off by
default so that its documented tables repeat step for step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from minibert.attention import MultiHeadAttention

__all__ = ["drop_count", "random_lanes", "keep_mask", "scaled_keep_mask", "fast_dropout", "FastDropout",
           "attention_with_fast_dropout", "use_fast_dropout", "SETTINGS", "applies"]

LANES = 65536   # values of one 16-bit lane


def drop_count(p: float) -> int:
    r"""$d = \mathrm{round}(65536\,p)$: how many of the 65,536 lane values drop their element ($p' = d/65536$)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"fast_dropout: p must be in [0, 1), got {p}.")
    return min(round(p * LANES), LANES - 1)


def random_lanes(shape: torch.Size, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""16 random bits per element: int16 lanes of ``shape``, each uniform on $[-32768, 32767]$.

    One int64 word over the full 64-bit range gives four independent lanes
    (a lane is $u - 32768$ for $u$ uniform on $\{0, \dots, 65535\}$).
    """
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-2 ** 63, None, generator=generator)      # every one of the 2^64 bit patterns
    return words.view(torch.int16)[:n].view(shape)           # (shape) uniform on [-32768, 32767]


def keep_mask(shape: torch.Size, p: float, device: torch.device | str = "cpu",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    r"""(boolean keep mask $m$ of ``shape``, scale $1/(1-p')$): 16 random bits per element.

    Element $i$ is kept when its lane (:func:`random_lanes`) $u_i - 32768 \ge d - 32768$,
    $d = \mathrm{round}(65536\,p)$; the scale is $65536 / (65536 - d)$.
    """
    d = drop_count(p)
    return random_lanes(shape, device, generator) >= d - LANES // 2, LANES / (LANES - d)


def scaled_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The dropout multiplier $m_i / (1 - p')$ in ``dtype``: :func:`keep_mask`'s mask times its scale.

    The same random lanes and comparison as :func:`keep_mask` (the same seed
    gives the same mask), built for speed: the comparison's 0/1 goes into a
    float tensor given as ``out=``, which is then scaled in place. On the
    CPU the boolean route is slower: with ``torch.where(keep, scale, 0.0)`` a
    step's whole dropout (random bits, multiplier, product and backward)
    took 1.25-1.35 times as long, with ``keep.to(dtype).mul_(scale)`` about
    1.1 times (``python scripts/dropout_mask_speed.py``; tutorial 07, "Speed").
    """
    d = drop_count(p)
    lanes = random_lanes(shape, device, generator)
    multiplier = torch.empty(shape, dtype=dtype, device=device)
    torch.ge(lanes, d - LANES // 2, out=multiplier)          # 1.0 = kept, 0.0 = dropped
    return multiplier.mul_(LANES / (LANES - d))


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    r"""$\mathrm{Dropout}'(x)$ (module docstring): drop with probability $p' = \mathrm{round}(65536 p)/65536$.

    The mask is made once as floats, $m_i / (1 - p')$, so the forward pass and
    autograd's backward pass ($\partial L/\partial x_i = m_i\,\partial L/\partial y_i / (1-p')$)
    are one multiplication each; the saved mask costs 4 bytes per element
    (PyTorch's dropout saves 1), which the CPU's memory easily holds.
    Identity when ``training`` is False or $p = 0$, like ``F.dropout``.
    """
    if not training or p == 0.0:
        return x
    return x * scaled_keep_mask(x.shape, p, x.dtype, x.device)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with :func:`fast_dropout`'s 16-bit mask; same ``p``, same train/eval behaviour."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def attention_with_fast_dropout(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                                p: float) -> torch.Tensor:
    r"""Training attention $\mathrm{Dropout}'\bigl(\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)\bigr)\,V$.

    The numbers of :func:`minibert.attention.scaled_dot_product_attention`
    with :func:`fast_dropout` on the weights (``tests/test_fast_dropout.py``
    checks them and their gradients), written for speed: the scale and the
    mask are applied inside the matrix product (``torch.baddbmm``), the
    dropout mask is one multiplication, and the fix for
    query rows with no key to attend to (their weights would be NaN; they
    are set to 0) runs only when the mask has such a row. ``q``, ``k``, ``v``
    ``(B, H, T, d)``; ``mask`` boolean, broadcastable, True = may attend.
    Returns the output ``(B, H, T, d)``. (The check for such rows reads one
    boolean from the device, which on a GPU waits for it: a CPU function.)
    """
    *batch, T_q, d_k = q.shape
    T_k = k.shape[-2]
    q3, k3 = q.reshape(-1, T_q, d_k), k.reshape(-1, T_k, d_k)                       # (B*H, T, d)
    scale = 1.0 / math.sqrt(d_k)
    every_row_has_a_key = mask is None or bool(mask.any(dim=-1).all())
    if mask is not None and every_row_has_a_key:
        # M as an additive bias (0 or -inf), added inside the matrix product: baddbmm = M + scale * Q K^T
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
        bias = bias.expand(*batch, bias.shape[-2], T_k).reshape(-1, bias.shape[-2], T_k)   # (B*H, 1 or T, T)
        scores = torch.baddbmm(bias, q3, k3.transpose(1, 2), alpha=scale).view(*batch, T_q, T_k)
    else:
        scores = torch.bmm(q3, k3.transpose(1, 2)).mul_(scale).view(*batch, T_q, T_k)
        if mask is not None:   # masked_fill (not a bias) so that no gradient reaches the hidden scores
            scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)                                        # (B, H, T, T)
    if not every_row_has_a_key:                                                    # softmax(-inf, ...) = NaN -> 0
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    return fast_dropout(weights, p) @ v


#: The values of the commands' ``--fast-dropout``.
SETTINGS = ("auto", "on", "off")


def applies(setting: str, device: torch.device, compiled: bool = False) -> bool:
    """Whether a ``--fast-dropout`` setting turns the 16-bit masks on for a model on ``device``.

    ``on``: always; ``off``: never; ``auto``: for an eager (not ``compiled``)
    model on the CPU, the one place it makes the step faster.
    """
    if setting not in SETTINGS:
        raise ValueError(f"--fast-dropout must be one of {', '.join(SETTINGS)}, got {setting!r}.")
    return setting == "on" or (setting == "auto" and device.type == "cpu" and not compiled)


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
            module.training_attention = attention_with_fast_dropout
    return model

