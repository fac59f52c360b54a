r"""Mimetic initialisation of self-attention (Trockman & Kolter, 2023, "Mimetic Initialization of Self-Attention Layers").

BERT's initialisation draws every weight from $\mathcal N(0, 0.02^2)$, so at step 0 every attention
logit is close to 0 and every head averages its whole sequence. Trained attention layers look
different: the products $W^Q_h{}^{\top} W^K_h$ have a clear positive diagonal (a token attends to
tokens that look like it) and $W^O W^V$ a negative one. Mimetic initialisation starts there:

$$W^{Q}_h{}^{\top} W^{K}_h \approx \alpha_1 Z_1 + \beta_1 I, \qquad W^O W^V \approx \alpha_2 Z_2 - \beta_2 I,
  \qquad (Z_i)_{jk} \sim \mathcal N(0, 1/C),$$

each factorised by a singular value decomposition $A = U S V^{\top}$: the left factor is
$U\sqrt S$, the right one $\sqrt S V^{\top}$ (for a head of $d = C/H$ dimensions, the first $d$
singular directions: the best rank-$d$ approximation of $A$).

Why this project has it: the next-sentence task on WikiText is solved by noticing that B repeats
rare pieces of A (tutorial 07), i.e. by heads in which a piece attends to its own copies. Under
BERT's initialisation such heads have to be found from a near-zero gradient; under mimetic
initialisation every head starts as one. Only the initial weights change: the model, its
forward pass and its checkpoints are BERT's, and transformers loads them as before.
"""
from __future__ import annotations

import torch
from torch import nn

from minibert.attention import MultiHeadAttention

__all__ = ["ATTENTION_INITS", "mimetic_factors", "mimetic_attention_init_"]

#: ``--attention-init`` choices: BERT's normal initialisation, or mimetic on top of it.
ATTENTION_INITS = ("bert", "mimetic")


def mimetic_factors(size: int, alpha: float, beta: float, rank: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Factors $L$ (size × rank) and $R$ (rank × size) with $L R \approx A = \alpha Z + \beta I$.

    $Z_{jk} \sim \mathcal N(0, 1/\text{size})$; with $A = U S V^{\top}$,
    $L = U_{:, :r} \sqrt{S_{:r}}$ and $R = \sqrt{S_{:r}} V^{\top}_{:r, :}$ ($r$ = ``rank``), so $LR$ is the best
    rank-$r$ approximation of $A$ and equals it when $r$ = ``size``. ``beta`` may be negative.
    """
    if not 1 <= rank <= size:
        raise ValueError(f"mimetic_factors: rank must be in 1..{size}, got {rank}.")
    z = torch.randn(size, size, generator=generator, dtype=torch.float64) / size ** 0.5
    a = alpha * z + beta * torch.eye(size, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(a)
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).float(), (root[:, None] * vh[:rank]).float()


@torch.no_grad()
def mimetic_attention_init_(model: nn.Module, qk: tuple[float, float] = (0.7, 0.7),
                            vo: tuple[float, float] = (0.4, 0.4), generator: torch.Generator | None = None) -> int:
    r"""Re-initialise every :class:`~minibert.attention.MultiHeadAttention` in ``model`` mimetically; returns how many.

    For each head $h$ (rows $hd \dots (h+1)d - 1$ of ``query.weight`` and ``key.weight``, which
    ``nn.Linear`` stores as (out, in)): $W^Q_h = L^{\top}$, $W^K_h = R$ from
    :func:`mimetic_factors` with $(\alpha_1, \beta_1)$ = ``qk`` and rank $d$, so the logit
    $x^{\top} W^Q_h{}^{\top} W^K_h\, y / \sqrt d$ starts near $\beta_1\, x^{\top} y / \sqrt d$ — large when $x$ and
    $y$ are alike. ``value.weight`` = $R$, ``output.weight`` = $L$ from one full-rank draw with
    $(\alpha_2, -\beta_2)$ = ``vo``, so ``output.weight @ value.weight`` $= \alpha_2 Z_2 - \beta_2 I$.
    Biases stay 0. The defaults are the paper's values for vision transformers, $\alpha_1 = \beta_1 = 0.7$,
    $\alpha_2 = \beta_2 = 0.4$.
    """
    count = 0
    for module in model.modules():
        if not isinstance(module, MultiHeadAttention):
            continue
        C, d = module.hidden_size, module.head_dim
        for h in range(module.num_heads):
            left, right = mimetic_factors(C, qk[0], qk[1], d, generator)           # (C, d), (d, C)
            module.query.weight[h * d:(h + 1) * d] = left.T
            module.key.weight[h * d:(h + 1) * d] = right
        left, right = mimetic_factors(C, vo[0], -vo[1], C, generator)              # (C, C), (C, C)
        module.value.weight.copy_(right)
        module.output.weight.copy_(left)
        for lin in (module.query, module.key, module.value, module.output):
            lin.bias.zero_()
        count += 1
    return count
