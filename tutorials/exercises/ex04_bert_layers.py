"""Exercise 04: the pieces of a BERT layer (tutorials/04_mini_bert.md).

Write ``gelu``, ``layer_norm`` and ``BertLayer.forward`` below, then run

    python -m pytest --exercises tests/test_model.py -q

The tests compare your functions with the formulas written out in float64
(loops, the normal CDF) and with PyTorch's kernels, and your encoder layer with
the post-LN formula computed from its own parameters. ``BertLayer.__init__``
is given: keep its submodule names, the tests read them.
"""

import math  # noqa: F401

import torch  # noqa: F401
import torch.nn as nn
import torch.nn.functional as F

# Multi-head attention from exercise 02 (the library's version, so this
# exercise does not depend on your earlier solution).
from minibert.attention import MultiHeadAttention

REFERENCE = "minibert.model"

# Graded hints, shown by `python -m pytest --exercises 04 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "gelu": [
        "Phi is the cumulative distribution function of a standard normal variable; torch has the error "
        "function erf that it is made of.",
        "Phi(x) = (1 + erf(x / sqrt 2)) / 2, element-wise; multiply by x. Not the tanh approximation.",
    ],
    "layer_norm": [
        "every token is normalised on its own: statistics over the last axis only, kept broadcastable.",
        "subtract the mean of the last axis, divide by the square root of (variance + eps), then scale by "
        "weight and shift by bias.",
        "mu = (1/C) sum_c x_c; sigma^2 = (1/C) sum_c (x_c - mu)^2 (divide by C, not C - 1: the 'biased' "
        "variance); y = weight * (x - mu) / sqrt(sigma^2 + eps) + bias.",
    ],
    "BertLayer": [
        "post-LN: each sub-layer's output is added to its input, and *then* normalised.",
        "two blocks. Attention block: attention on x, dropout, add x, attention_norm. Feed-forward block: "
        "intermediate, GELU, output, dropout, add the block's input, output_norm. Return the weights only "
        "when asked for.",
        "h = LN_1(x + Dropout(MHA(x))); y = LN_2(h + Dropout(W_2 GELU(W_1 h + b_1) + b_2)). The second "
        "residual adds h, not x.",
    ],
}


def gelu(x):
    r"""$\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\,(1 + \mathrm{erf}(x / \sqrt 2))$, element-wise, any shape.

    Use the exact erf form (``torch.erf``), not the tanh approximation.
    """
    raise NotImplementedError("Exercise 04 (tutorials/exercises/ex04_bert_layers.py): gelu is not written yet")


def layer_norm(x, weight, bias, eps):
    r"""$y = \gamma \odot (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta$ over the last dimension.

    x (..., C); weight = $\gamma$ (C,); bias = $\beta$ (C,); eps = $\epsilon$.
    $\mu$ and $\sigma^2$ are the mean and the *biased* variance (divide by C) of the last dimension.
    """
    raise NotImplementedError("Exercise 04 (tutorials/exercises/ex04_bert_layers.py): "
                              "layer_norm is not written yet")


class BertLayer(nn.Module):
    r"""One post-LN encoder layer:
    $h = \mathrm{LN}_1(x + \mathrm{Dropout}(\mathrm{MHA}(x)))$,
    $y = \mathrm{LN}_2(h + \mathrm{Dropout}(W_2\,\mathrm{GELU}(W_1 h + b_1) + b_2))$.
    """

    def __init__(self, config):
        super().__init__()
        C, I = config.hidden_size, config.intermediate_size
        self.attention = MultiHeadAttention(C, config.num_attention_heads,
                                            dropout=config.attention_probs_dropout_prob)
        self.attention_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)    # LN_1
        self.intermediate = nn.Linear(C, I)                                   # W_1, b_1
        self.output = nn.Linear(I, C)                                         # W_2, b_2
        self.output_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)       # LN_2
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.act = F.gelu

    def forward(self, x, mask=None, output_attentions=False):
        """x (B, T, C); mask bool (B, 1, 1, T) or None. Return ``(y (B, T, C), weights or None)``.

        ``weights`` are the attention weights (B, H, T, T) when ``output_attentions``, else None.
        """
        raise NotImplementedError("Exercise 04 (tutorials/exercises/ex04_bert_layers.py): "
                                  "BertLayer.forward is not written yet")
