"""Scaled dot-product attention and multi-head attention, written out.

Two paths compute the same numbers:

* the *explicit* path, :func:`scaled_dot_product_attention`, spells the
  formula out line by line and returns the attention weights (tutorials,
  exercises, heatmaps);
* the *fast* path, ``torch.nn.functional.scaled_dot_product_attention``,
  is a fused kernel that never materialises the weights. ``MultiHeadAttention``
  uses it whenever the weights are not asked for.

``tests/test_attention.py`` and ``tests/test_multi_head_attention.py`` prove
that the two paths, PyTorch's kernels and HF transformers' BERT attention all
agree.

Mask convention (PyTorch's): a *boolean* tensor where ``True`` means "this
query may attend to this key" and ``False`` means "hide this key".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["scaled_dot_product_attention", "MultiHeadAttention", "padding_mask"]


def _check_mask(mask: torch.Tensor, where: str) -> None:
    """Reject masks that would be silently misread (float masks, 0/1 integer masks)."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        kind = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"{where}: mask must be a boolean tensor (True = may attend), got {kind}; "
                        f"convert a 0/1 attention_mask with `attention_mask.bool()`.")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None,
                                 dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Attention of every query over every key, written out step by step.

    $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V$$

    Symbols and arguments:

    * $Q$ = ``q``, shape ``(..., T_q, d_k)``: one query vector per position asking "what do I need?";
    * $K$ = ``k``, shape ``(..., T_k, d_k)``: one key vector per position saying "what do I hold?";
    * $V$ = ``v``, shape ``(..., T_k, d_v)``: what each position hands over when attended to;
    * $d_k$ = ``q.shape[-1]``; dividing by $\sqrt{d_k}$ keeps the scores at unit
      variance when the entries of $q$ and $k$ have unit variance;
    * $M$ is built from ``mask`` (boolean, broadcastable to ``(..., T_q, T_k)``):
      $M_{ij} = 0$ where ``mask`` is True (query $i$ may see key $j$) and
      $M_{ij} = -\infty$ where it is False, so hidden keys get weight exactly 0.

    A query row whose keys are *all* masked has nothing to attend to; its
    weights and output are zeros (never NaN).

    ``dropout_p > 0`` applies dropout to the weights (scaling the survivors by
    $1/(1-p)$), as BERT does during training; pass 0 in evaluation.

    Returns ``(output, weights)``: output ``(..., T_q, d_v)`` and the weights
    actually used to mix the values, ``(..., T_q, T_k)`` (after dropout, if any).
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"scaled_dot_product_attention: q, k, v need at least 2 dims (..., T, d), "
                         f"got shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}.")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: q and k must share the last dim d_k, "
                         f"got q {tuple(q.shape)} and k {tuple(k.shape)}.")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: k and v must have the same number of positions "
                         f"T_k (dim -2), got k {tuple(k.shape)} and v {tuple(v.shape)}.")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}.")

    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        _check_mask(mask, "scaled_dot_product_attention")
        try:
            torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            raise ValueError(f"scaled_dot_product_attention: mask of shape {tuple(mask.shape)} does not broadcast "
                             f"to the scores' shape (..., T_q, T_k) = {tuple(scores.shape)}.") from None
        # Add -inf (not multiply by 0!) *before* the softmax: exp(-inf) = 0 exactly.
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k), each row sums to 1
    if mask is not None:
        # A row with every key masked is softmax(-inf, ..., -inf) = 0/0 = NaN; make it 0.
        weights = weights.masked_fill(~mask, 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    output = weights @ v  # (..., T_q, d_v)
    return output, weights


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a BERT ``attention_mask`` (B, T) of 1 = token, 0 = padding into a boolean (B, 1, 1, T) mask.

    The result broadcasts over heads and query positions: every query may see
    every real token and no padding token.
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"padding_mask: attention_mask must have shape (B, T), got {tuple(attention_mask.shape)}.")
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T)


class MultiHeadAttention(nn.Module):
    r"""Multi-head self-attention: $H$ attentions in parallel on slices of the hidden vector.

    $$\mathrm{head}_h = \mathrm{Attention}(X W^Q_h, X W^K_h, X W^V_h), \qquad
      \mathrm{MHA}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\, W^O$$

    * $X$ = ``x``, shape ``(B, T, C)`` with $C$ = ``hidden_size``;
    * $W^Q, W^K, W^V$ = ``query``, ``key``, ``value`` (``nn.Linear(C, C)`` each,
      with bias); head $h$ uses output columns $h d, \dots, (h+1)d - 1$ with
      $d = C / H$ (``head_dim``), $H$ = ``num_heads``;
    * $W^O$ = ``output`` (``nn.Linear(C, C)``) mixes the concatenated heads.

    The submodule names map one-to-one onto BERT checkpoints:
    ``attention.self.{query,key,value}`` and ``attention.output.dense``.

    ``dropout`` is applied to the attention weights in training mode only.
    ``training_attention`` (default ``None``): a function ``(q, k, v, mask, p)
    -> output`` that replaces the fused kernel in training when dropout is on;
    :func:`minibert.fast_dropout.use_fast_dropout` sets it, because the fused
    kernel draws its own dropout mask.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_size <= 0 or num_heads <= 0:
            raise ValueError(f"MultiHeadAttention: hidden_size and num_heads must be positive, "
                             f"got {hidden_size} and {num_heads}.")
        if hidden_size % num_heads != 0:
            raise ValueError(f"MultiHeadAttention: hidden_size ({hidden_size}) must be divisible by "
                             f"num_heads ({num_heads}) so that every head gets hidden_size / num_heads dims.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.dropout = dropout
        self.training_attention: Callable | None = None
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.shape
        return t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_weights: bool = False,
                queries: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Self-attention over ``x`` (B, T, C).

        ``mask``: boolean, True = may attend, with 4 dims broadcastable to
        (B, H, T, T); for padding use :func:`padding_mask` (shape (B, 1, 1, T)).
        ``queries`` (B, Q, C), optional: the vectors that ask, when only some
        positions need an output (e.g. ``x`` at those positions); they attend
        to the keys and values of all of ``x``, and ``mask`` must then
        broadcast to (B, H, Q, T). Default: every position of ``x`` asks.
        Returns ``(output (B, Q, C), weights (B, H, Q, T) or None)``, Q = T by
        default; the weights are computed (explicit path) only when
        ``return_weights=True``.
        """
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"MultiHeadAttention: x must have shape (B, T, {self.hidden_size}), "
                             f"got {tuple(x.shape)}.")
        if mask is not None:
            _check_mask(mask, "MultiHeadAttention")
            if mask.dim() != 4:
                raise ValueError(f"MultiHeadAttention: mask must have 4 dims broadcastable to (B, H, T, T), "
                                 f"got shape {tuple(mask.shape)}; for a (B, T) padding mask use "
                                 f"minibert.attention.padding_mask(attention_mask).")
        if queries is None:
            queries = x
        elif queries.dim() != 3 or queries.shape[0] != x.shape[0] or queries.shape[-1] != self.hidden_size:
            raise ValueError(f"MultiHeadAttention: queries must have shape ({x.shape[0]}, Q, {self.hidden_size}), "
                             f"got {tuple(queries.shape)}.")
        B, Q, C = queries.shape
        q = self._split_heads(self.query(queries))  # (B, H, Q, d)
        k = self._split_heads(self.key(x))          # (B, H, T, d)
        v = self._split_heads(self.value(x))        # (B, H, T, d)
        p = self.dropout if self.training else 0.0

        if return_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=p)  # (B, H, Q, d)
        elif p > 0.0 and self.training_attention is not None:
            y, weights = self.training_attention(q, k, v, mask, p), None                # (B, H, Q, d)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, Q, d)
            if mask is not None:
                # Same guarantee as the explicit path on every backend: a fully masked query row is 0.
                y = y.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
            weights = None

        y = y.transpose(1, 2).reshape(B, Q, C)  # (B, Q, H*d) = (B, Q, C): concatenate the heads
        return self.output(y), weights
