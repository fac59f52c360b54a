"""Kim (2014), "Convolutional Neural Networks for Sentence Classification".

A sentence of $n$ words is a matrix $\\mathbf{x}_{1:n}$ of word vectors
($n \\times k$). A filter $\\mathbf{w} \\in \\mathbb{R}^{h k}$ looks at $h$
consecutive words at a time and produces one feature per position:

$$c_i = f(\\mathbf{w} \\cdot \\mathbf{x}_{i:i+h-1} + b), \\qquad i = 1 \\dots n-h+1,$$

with $f$ = ReLU. Max-over-time pooling keeps the strongest match anywhere in
the sentence, $\\hat c = \\max_i c_i$, so a filter acts as an n-gram detector
and the sentence length drops out. 3 window sizes x 100 filters give 300
features; dropout (p = 0.5) and a linear layer give the class scores. After
every update each class's weight row of the output layer is rescaled to
$\\lVert \\mathbf{w}_y \\rVert_2 \\le s = 3$ (:meth:`TextCNN.apply_max_norm`).

Embedding modes (Kim's four CNN rows):

* ``rand``: vectors start $U[-0.25, 0.25]$ and are trained;
* ``static``: pretrained vectors, frozen;
* ``non-static``: pretrained vectors, fine-tuned;
* ``multichannel``: two copies of the pretrained vectors, one frozen and one
  fine-tuned; each filter has weights for both channels and the two results
  are added, which is one convolution over the two channels stacked along
  the feature axis.

Convolution padding (``TextCNNConfig.conv_padding``):

* ``narrow`` (default, the paper's formula above): $n-h+1$ windows, all of
  them inside the sentence;
* ``wide`` (Kim's released Theano code): $h-1$ zero vectors on both sides of
  the sentence, so $n+h-1$ windows, every one touching at least one real
  word (:func:`wide_pad`); a word at the edge takes part in as many windows
  as a word in the middle.

Padding never changes a prediction: positions past a sentence's length are
zeroed before the convolution and windows that start past
$\\max(n-h, 0)$ are excluded from the max (a sentence shorter than $h$ is
treated as padded with zero vectors up to $h$ words, whatever the batch);
in ``wide`` mode this holds for the padded sentence of $n + 2(h-1)$ words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

MODES = ("rand", "static", "non-static", "multichannel")
CONV_PADDINGS = ("narrow", "wide")


@dataclass
class TextCNNConfig:
    """Hyper-parameters of a TextCNN (defaults: Kim 2014)."""

    vocab_size: int
    num_classes: int
    embedding_dim: int = 300
    window_sizes: tuple = (3, 4, 5)
    num_filters: int = 100
    dropout: float = 0.5
    max_norm: float = 3.0
    mode: str = "rand"
    padding_idx: int = 0
    init_range: float = 0.25
    conv_padding: str = "narrow"

    def __post_init__(self):
        self.window_sizes = tuple(int(h) for h in self.window_sizes)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}.")
        if self.conv_padding not in CONV_PADDINGS:
            raise ValueError(f"conv_padding must be one of {CONV_PADDINGS}, got {self.conv_padding!r}.")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}.")
        if not self.window_sizes or min(self.window_sizes) < 1:
            raise ValueError(f"window_sizes must be positive integers, got {self.window_sizes}.")
        for name in ("vocab_size", "embedding_dim", "num_filters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if not self.max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {self.max_norm}.")

    def to_dict(self) -> dict:
        """Plain dict for JSON / checkpoints."""
        return asdict(self)


def conv_max_over_time(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       lengths: torch.Tensor) -> torch.Tensor:
    """Narrow convolution over time, ReLU, then max over the valid positions.

    $$c_i = \\mathrm{ReLU}(\\mathbf{w} \\cdot \\mathbf{x}_{i:i+h-1} + b), \\qquad
      \\hat c = \\max_{0 \\le i \\le \\max(n-h,\\,0)} c_i$$

    for every filter and every sentence, where $\\mathbf{x}_{i:i+h-1}$ are the
    $h$ word vectors starting at word $i$ (0-based) and $n$ the sentence's
    length. Words at positions $\\ge n$ count as zero vectors, so padding (and
    whatever the padded positions hold) never changes $\\hat c$.

    Args:
        x: word vectors ``(B, T, C)`` ($C$ = embedding size x channels).
        weight: filters ``(F, C, h)``; ``weight[f, :, j]`` multiplies word $i+j$.
        bias: ``(F,)``.
        lengths: ``(B,)`` number of real words $n \\ge 1$ in each sentence.

    Returns:
        $\\hat c$, shape ``(B, F)``.
    """
    B, T, C = x.shape
    num_filters, c_in, h = weight.shape
    if c_in != C:
        raise ValueError(f"weight has {c_in} input channels but x has {C} features per word.")
    if lengths.shape != (B,) or int(lengths.min()) < 1 or int(lengths.max()) > T:
        raise ValueError(f"lengths must be {B} values in 1..{T}, got {lengths.tolist()}.")
    positions = torch.arange(T, device=x.device)
    x = x * (positions[None, :] < lengths[:, None]).unsqueeze(-1).to(x.dtype)  # zero the padding
    if T < h:  # a batch of short sentences: pad with zero vectors to one full window
        x = F.pad(x, (0, 0, 0, h - T))
    c = F.relu(F.conv1d(x.transpose(1, 2), weight, bias))  # (B, F, T'-h+1)
    last_start = (lengths - h).clamp(min=0)  # (B,) last valid window start
    valid = torch.arange(c.shape[-1], device=x.device)[None, :] <= last_start[:, None]  # (B, T'-h+1)
    return c.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(dim=-1)  # (B, F)


def wide_pad(x: torch.Tensor, lengths: torch.Tensor, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Put $h-1$ zero vectors before and after every sentence (the wide convolution).

    Sentence $b$ of $n$ words becomes
    $\\tilde{\\mathbf{x}} = [\\mathbf{0}_{1:h-1}, \\mathbf{x}_{1:n}, \\mathbf{0}_{1:h-1}]$
    of $\\tilde n = n + 2(h-1)$ words, so :func:`conv_max_over_time` on
    $(\\tilde{\\mathbf{x}}, \\tilde n)$ computes

    $$c_i = \\mathrm{ReLU}(\\mathbf{w} \\cdot \\tilde{\\mathbf{x}}_{i:i+h-1} + b), \\qquad
      \\hat c = \\max_{0 \\le i \\le n+h-2} c_i,$$

    the $n+h-1$ windows that hold at least one real word (window $i$ covers
    words $i-h+1 \\dots i$ of the original sentence, 0-based). Words at
    positions $\\ge n$ are zeroed first, so padding still never changes $\\hat c$.

    Args:
        x: word vectors ``(B, T, C)``.
        lengths: ``(B,)`` real words $n \\ge 1$ per sentence.
        h: the filter width.

    Returns:
        ``(B, T + 2(h-1), C)`` padded vectors and ``(B,)`` lengths $n + 2(h-1)$.
    """
    T = x.shape[1]
    positions = torch.arange(T, device=x.device)
    x = x * (positions[None, :] < lengths[:, None]).unsqueeze(-1).to(x.dtype)  # zero the padding
    return F.pad(x, (0, 0, h - 1, h - 1)), lengths + 2 * (h - 1)  # (B, T + 2(h-1), C), (B,)


class TextCNN(nn.Module):
    """Kim's CNN: embeddings -> parallel convolutions + max-over-time -> dropout -> linear.

    ``vectors`` (``(vocab_size, embedding_dim)``) initialise the embeddings in
    the ``static``, ``non-static`` and ``multichannel`` modes; without them
    every mode starts from $U[-r, r]$, $r$ = ``config.init_range``. The
    padding row is zero. ``sparse_embedding=True`` makes the trained
    embedding produce sparse gradients (only the rows of the batch's words),
    for an optimizer that updates just those rows (see
    :class:`textcnn.train.Adadelta`).
    """

    def __init__(self, config: TextCNNConfig, vectors: torch.Tensor | None = None,
                 sparse_embedding: bool = False):
        super().__init__()
        self.config = config
        V, k = config.vocab_size, config.embedding_dim
        if vectors is None:
            vectors = torch.empty(V, k).uniform_(-config.init_range, config.init_range)
        if tuple(vectors.shape) != (V, k):
            raise ValueError(f"vectors have shape {tuple(vectors.shape)}, expected ({V}, {k}).")
        vectors = vectors.clone().float()
        vectors[config.padding_idx] = 0.0
        self.embedding = nn.Embedding(V, k, padding_idx=config.padding_idx, sparse=sparse_embedding)
        self.embedding.weight.data.copy_(vectors)
        if config.mode == "static":
            self.embedding.weight.requires_grad_(False)
        self.static_embedding = None
        channels = 1
        if config.mode == "multichannel":
            self.static_embedding = nn.Embedding(V, k, padding_idx=config.padding_idx)
            self.static_embedding.weight.data.copy_(vectors)
            self.static_embedding.weight.requires_grad_(False)
            channels = 2
        self.convs = nn.ModuleList(
            nn.Conv1d(channels * k, config.num_filters, h) for h in config.window_sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(config.num_filters * len(config.window_sizes), config.num_classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Word vectors ``(B, T, C)``; in multichannel mode the trained and frozen channels are concatenated."""
        x = self.embedding(ids)  # (B, T, k)
        if self.static_embedding is not None:
            x = torch.cat([x, self.static_embedding(ids)], dim=-1)  # (B, T, 2k)
        return x

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector $\\mathbf{z} = [\\hat c_1, \\dots, \\hat c_m]$, ``(B, m)``."""
        x = self.embed(ids)  # (B, T, C)
        pooled = []
        for conv in self.convs:
            if self.config.conv_padding == "wide":  # h-1 zero vectors on both sides
                xw, nw = wide_pad(x, lengths, conv.weight.shape[-1])  # (B, T+2(h-1), C), (B,)
                pooled.append(conv_max_over_time(xw, conv.weight, conv.bias, nw))
            else:
                pooled.append(conv_max_over_time(x, conv.weight, conv.bias, lengths))
        return torch.cat(pooled, dim=-1)  # (B, num_filters * len(window_sizes))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) ``(B, num_classes)`` for token ids ``(B, T)`` with ``lengths`` ``(B,)``."""
        return self.fc(self.dropout(self.features(ids, lengths)))

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        """Rescale each class's output weight row: $\\mathbf{w}_y \\leftarrow \\mathbf{w}_y \\cdot \\min(1, s / \\lVert \\mathbf{w}_y \\rVert_2)$."""
        w = self.fc.weight  # (num_classes, m)
        norms = w.norm(dim=1, keepdim=True)
        w.mul_((self.config.max_norm / norms.clamp(min=1e-12)).clamp(max=1.0))

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (all, or only those that receive updates)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def pad_batch(id_lists, pad_id: int = 0, min_length: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad lists of token ids into ``ids (B, T)`` and ``lengths (B,)``.

    ``T`` = max(longest list, ``min_length``). An empty list becomes one
    ``pad_id`` word of length 1 (a sentence whose words were all removed by
    cleaning still gets a prediction).
    """
    id_lists = [list(ids) if len(ids) else [pad_id] for ids in id_lists]
    lengths = torch.tensor([len(ids) for ids in id_lists], dtype=torch.long)
    T = max(int(lengths.max()), min_length)
    out = torch.full((len(id_lists), T), pad_id, dtype=torch.long)
    for row, ids in enumerate(id_lists):
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out, lengths
