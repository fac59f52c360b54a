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


def gelu(x):
    r"""$\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\,(1 + \mathrm{erf}(x / \sqrt 2))$, element-wise, any shape.

    Use the exact erf form (``torch.erf``), not the tanh approximation.
    """
    raise NotImplementedError(
        "Exercise 04 (tutorials/exercises/ex04_bert_layers.py): write gelu; "
        "x * Phi(x) with Phi(x) = (1 + erf(x / sqrt(2))) / 2.")


def layer_norm(x, weight, bias, eps):
    r"""$y = \gamma \odot (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta$ over the last dimension.

    x (..., C); weight = $\gamma$ (C,); bias = $\beta$ (C,); eps = $\epsilon$.
    $\mu$ and $\sigma^2$ are the mean and the *biased* variance (divide by C) of the last dimension.
    """
    raise NotImplementedError(
        "Exercise 04 (tutorials/exercises/ex04_bert_layers.py): write layer_norm; "
        "mean and biased variance over dim -1 (keepdim=True), normalise, then scale by weight and add bias.")


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

        Steps:
        1. a, weights = self.attention(x, mask=mask, return_weights=output_attentions)
        2. h = self.attention_norm(x + self.dropout(a))               # residual, then LayerNorm
        3. f = self.output(self.act(self.intermediate(h)))            # (B, T, I) -> (B, T, C)
        4. y = self.output_norm(h + self.dropout(f)); return y, weights
        """
        raise NotImplementedError(
            "Exercise 04 (tutorials/exercises/ex04_bert_layers.py): write BertLayer.forward; "
            "attention, add the input, LayerNorm; feed-forward with GELU, add, LayerNorm (post-LN).")
