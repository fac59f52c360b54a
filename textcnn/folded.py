r"""A trained TextCNN folded into lookup tables for fast inference: the same logits, no convolution.

The first layer of Kim's CNN is linear in the word vectors, and a word's
vector depends only on the word. So the part of a filter's response that
word $v$ contributes at offset $j$ of a window can be computed once, for
every word of the vocabulary, after training:

$$\mathbf{w} \cdot \mathbf{x}_{i:i+h-1} + b
  = b + \sum_{j=0}^{h-1} W_{h,j}\, \mathbf{e}(x_{i+j})
  = b + \sum_{j=0}^{h-1} P_{h,j}[x_{i+j}],
  \qquad P_{h,j}[v] = W_{h,j}\, \mathbf{e}(v) \in \mathbb{R}^{F},$$

where $W_{h,j}$ (``F x C``) holds the weights of the $F$ filters of width
$h$ for the word at offset $j$ and $\mathbf{e}(v)$ is word $v$'s vector
($C = k$, or $2k$ with the two channels of ``multichannel`` stacked). A
window's pre-activation becomes $h$ table look-ups and $h$ additions of
$F$-vectors instead of $h \cdot C \cdot F$ multiply-adds: $C$ (300 or 600)
times less arithmetic. ReLU, max over time, and the output layer follow as
in :class:`textcnn.model.TextCNN` (dropout is off at inference).

The price is memory: the tables hold $(V+1) \cdot \sum_h h \cdot F$ numbers
(Kim's 3/4/5 x 100 filters: 1,200 per word, against 300 or 600 for the
embeddings), and they are fixed: a folded model cannot be trained. The one
extra row, index $V$, is a zero vector's contribution (all zeros); padding
positions, a short sentence's missing words and ``wide`` mode's edges use
it, exactly as the model zeroes those word vectors. Only the order of the
floating-point sums differs from the convolution, so the logits agree to
float32 round-off (``tests/test_textcnn_model.py`` checks $\le 10^{-5}$).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from textcnn.model import TextCNN


def filter_response_tables(vectors: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""Every word's contribution to every filter at every offset of a window, for filters of one width $h$.

    $$P_j[v, f] = \sum_{c} W[f, c, j]\, e(v)_c, \qquad j = 0 \dots h-1,$$

    i.e. $P_{h,j}[v] = W_{h,j}\, \mathbf{e}(v)$ of the module text.

    Args:
        vectors: word vectors $\mathbf{e}(v)$, ``(V, C)``.
        weight: the filters of width $h$ as ``nn.Conv1d`` holds them, ``(F, C, h)``.

    Returns:
        ``(h, V, F)``: ``P[j]`` is the table of offset $j$ (contiguous, ready for ``F.embedding``).
    """
    return torch.einsum("vc,fcj->jvf", vectors, weight).contiguous()


class FoldedTextCNN(nn.Module):
    """Inference-only TextCNN whose convolutions are per-word tables (see the module text).

    Build it with :meth:`from_model`; ``forward(ids, lengths)`` returns the
    logits the model's ``eval()`` forward gives, up to float32 round-off.
    """

    def __init__(self, model: TextCNN):
        super().__init__()
        self.config = model.config
        with torch.no_grad():
            vectors = model.embed(torch.arange(model.config.vocab_size, device=model.embedding.weight.device))  # (V, C)
            vectors = torch.cat([vectors, vectors.new_zeros(1, vectors.shape[1])])  # row V: a zero vector
            for n, conv in enumerate(model.convs):
                self.register_buffer(f"table_{n}", filter_response_tables(vectors, conv.weight))  # (h, V+1, F)
                self.register_buffer(f"bias_{n}", conv.bias.detach().clone())
            self.register_buffer("fc_weight", model.fc.weight.detach().clone())
            self.register_buffer("fc_bias", model.fc.bias.detach().clone())
        self.zero_id = model.config.vocab_size
        self.eval()

    @classmethod
    def from_model(cls, model: TextCNN) -> "FoldedTextCNN":
        """Fold a trained :class:`TextCNN` (any mode, narrow or wide padding)."""
        return cls(model)

    def _filter_max(self, ids: torch.Tensor, lengths: torch.Tensor, n: int, h: int) -> torch.Tensor:
        """$\\hat c$ of the filters of width $h$: ReLU(sum of $h$ look-ups + b), max over the valid windows."""
        table, bias = getattr(self, f"table_{n}"), getattr(self, f"bias_{n}")
        T = ids.shape[1]
        windows = T - h + 1
        s = bias + F.embedding(ids[:, 0:windows], table[0])  # (B, windows, F)
        for j in range(1, h):
            s = s + F.embedding(ids[:, j:j + windows], table[j])
        last_start = (lengths - h).clamp(min=0)  # the model's rule: windows past max(n-h, 0) are excluded
        valid = torch.arange(windows, device=ids.device)[None, :] <= last_start[:, None]  # (B, windows)
        return F.relu(s).masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B, F)

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, num_classes)`` for token ids ``(B, T)`` with ``lengths`` ``(B,)``."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        ids = ids.masked_fill(positions[None, :] >= lengths[:, None], self.zero_id)  # padding = zero vectors
        pooled = []
        for n, h in enumerate(self.config.window_sizes):
            x, nx = ids, lengths
            if self.config.conv_padding == "wide":  # h-1 zero vectors on both sides
                x, nx = F.pad(ids, (h - 1, h - 1), value=self.zero_id), lengths + 2 * (h - 1)
            if x.shape[1] < h:  # shorter than one window: pad with zero vectors
                x = F.pad(x, (0, h - x.shape[1]), value=self.zero_id)
            pooled.append(self._filter_max(x, nx, n, h))
        return F.linear(torch.cat(pooled, dim=-1), self.fc_weight, self.fc_bias)

    def table_numbers(self) -> int:
        """Numbers held by the look-up tables: $(V+1) \\cdot \\sum_h h \\cdot F$."""
        return sum(getattr(self, f"table_{n}").numel() for n in range(len(self.config.window_sizes)))
