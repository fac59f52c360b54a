"""Exercise 02: multi-head attention (tutorials/02_multi_head_attention.md).

Fill in ``__init__`` and ``forward`` of ``MultiHeadAttention`` below, then run

    python -m pytest --exercises tests/test_multi_head_attention.py -q

Your module receives the weights of a transformers ``BertAttention`` and of a
``torch.nn.MultiheadAttention`` in the tests, so keep the submodule names
``query``, ``key``, ``value``, ``output``.
"""

import torch  # noqa: F401
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401  (F.scaled_dot_product_attention is the fast path)

# The explicit formula from exercise 01 (the library's version, so that this
# exercise does not depend on your solution of the previous one).
from minibert.attention import scaled_dot_product_attention  # noqa: F401

REFERENCE = "minibert.attention"

# Graded hints, shown by `python -m pytest --exercises 02 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "MultiHeadAttention": [
        "the H heads do not get their own Linear layers: one Linear(C, C) per projection holds all heads, "
        "head h owns a slice of d = C / H of its outputs.",
        "project x three times, cut each (B, T, C) result into H chunks of d per token, move the head axis "
        "next to the batch axis so chapter 01's attention treats (B, H) as batch, attend, undo the move, "
        "glue the heads back to C features, and apply the output projection.",
        "shapes: (B, T, C) -> (B, T, H, d) -> (B, H, T, d); after attention (B, H, T, d) -> (B, T, H, d) -> "
        "(B, T, C). Cutting (B, T, C) straight into (B, H, T, d) has the right shape and the wrong numbers. "
        "Dropout probability is self.dropout in train() mode and 0 in eval() mode.",
    ],
}


class MultiHeadAttention(nn.Module):
    r"""$\mathrm{MHA}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H) W^O$,
    $\mathrm{head}_h = \mathrm{Attention}(X W^Q_h, X W^K_h, X W^V_h)$.

    x (B, T, C) with C = hidden_size; H = num_heads; each head has d = C / H dims.
    """

    def __init__(self, hidden_size, num_heads, dropout=0.0):
        super().__init__()
        # Needs: a ValueError (saying why) when hidden_size is not divisible by num_heads; the attributes
        # num_heads, head_dim and dropout; four Linear(C, C) layers named query, key, value, output.
        raise NotImplementedError("Exercise 02 (tutorials/exercises/ex02_multi_head_attention.py): "
                                  "MultiHeadAttention.__init__ is not written yet")

    def forward(self, x, mask=None, return_weights=False):
        """Return ``(output (B, T, C), weights (B, H, T, T) or None)``.

        mask: boolean, True = may attend, broadcastable to (B, H, T, T), e.g. (B, 1, 1, T).
        Attention dropout (probability ``self.dropout``) acts only in training mode.
        With ``return_weights`` the explicit formula runs and its weights are returned;
        without, you may use PyTorch's fused kernel (both must give the same output).
        """
        raise NotImplementedError("Exercise 02 (tutorials/exercises/ex02_multi_head_attention.py): "
                                  "MultiHeadAttention.forward is not written yet")
