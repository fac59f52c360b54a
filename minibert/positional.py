"""Sinusoidal positional encoding (Vaswani et al., 2017, *Attention Is All You Need*, section 3.5).

Attention alone ignores word order: permute the tokens and the outputs are
permuted the same way. Adding a position-dependent vector to each token
embedding breaks that symmetry. The sinusoidal table needs no training, and
for every frequency the encoding of position $p + k$ is a fixed rotation of
the encoding of $p$, so relative offsets are easy to read off.

(BERT itself learns its position embeddings; ``minibert.model`` uses a
learned table. This module is the fixed alternative, and a building block of
the tutorials.)
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["sinusoidal_positional_encoding", "SinusoidalPositionalEncoding"]


def sinusoidal_positional_encoding(num_positions: int, dim: int) -> torch.Tensor:
    r"""The table of sinusoidal position vectors, shape ``(num_positions, dim)``, float32.

    $$PE_{pos,\,2i} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad
      PE_{pos,\,2i+1} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)$$

    * $pos$ = row index, $0 \le pos <$ ``num_positions``;
    * $d$ = ``dim``; column $2i$ holds the sine and column $2i + 1$ the cosine of
      the same angle (interleaved, as in the paper), with frequency
      $\omega_i = 10000^{-2i/d}$ from 1 (fast) down to about $1/10000$ (slow).

    When ``dim`` is odd the last column is a sine whose cosine partner is cut off.
    Computed in float64 and returned as float32.
    """
    if not isinstance(num_positions, int) or not isinstance(dim, int) or num_positions < 0 or dim <= 0:
        raise ValueError(f"sinusoidal_positional_encoding: need integers num_positions >= 0 and dim >= 1, "
                         f"got num_positions={num_positions!r}, dim={dim!r}.")
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]        # (P, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)                   # (ceil(d/2),) = 0, 2, 4, ...
    omega = torch.exp(-math.log(10000.0) * two_i / dim)                    # 10000^(-2i/d)
    angle = pos * omega                                                    # (P, ceil(d/2))
    pe = torch.zeros(num_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)                                         # even columns: sin
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])                          # odd columns: cos (one fewer if d odd)
    return pe.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Add the sinusoidal table to a batch of embeddings: ``x + PE[:T]``.

    The table lives in the buffer ``pe`` (num_positions, dim): it moves with
    ``.to(device)`` but is not a parameter, so no optimizer ever changes it.
    It is not saved in ``state_dict`` either (it is a pure function of the sizes).
    """

    def __init__(self, num_positions: int, dim: int):
        super().__init__()
        self.num_positions = num_positions
        self.dim = dim
        self.register_buffer("pe", sinusoidal_positional_encoding(num_positions, dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, C) with C = ``dim`` and T <= ``num_positions``; returns x + PE[:T] (B, T, C)."""
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"SinusoidalPositionalEncoding: x must have shape (B, T, {self.dim}), "
                             f"got {tuple(x.shape)}.")
        T = x.shape[1]
        if T > self.num_positions:
            raise ValueError(f"SinusoidalPositionalEncoding: sequence length {T} exceeds the "
                             f"{self.num_positions} positions of the table; build it with more positions.")
        return x + self.pe[:T].to(x.dtype)  # (B, T, C) + (T, C)
