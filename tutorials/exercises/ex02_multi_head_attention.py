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


class MultiHeadAttention(nn.Module):
    r"""$\mathrm{MHA}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H) W^O$,
    $\mathrm{head}_h = \mathrm{Attention}(X W^Q_h, X W^K_h, X W^V_h)$.

    x (B, T, C) with C = hidden_size; H = num_heads; each head has d = C / H dims.
    """

    def __init__(self, hidden_size, num_heads, dropout=0.0):
        super().__init__()
        # 1. raise ValueError (saying why) if hidden_size is not divisible by num_heads
        # 2. store num_heads, head_dim = hidden_size // num_heads, dropout
        # 3. four nn.Linear(hidden_size, hidden_size): self.query, self.key, self.value, self.output
        raise NotImplementedError(
            "Exercise 02 (tutorials/exercises/ex02_multi_head_attention.py): write MultiHeadAttention.__init__; "
            "check hidden_size % num_heads, then create the Linear layers query, key, value, output.")

    def forward(self, x, mask=None, return_weights=False):
        """Return ``(output (B, T, C), weights (B, H, T, T) or None)``.

        mask: boolean, True = may attend, broadcastable to (B, H, T, T), e.g. (B, 1, 1, T).

        Steps:
        1. q, k, v = self.query(x), ... each (B, T, C) -> view (B, T, H, d) -> transpose to (B, H, T, d)
        2. attention dropout probability p = self.dropout in training mode, 0 in eval mode
        3. if return_weights: y, w = scaled_dot_product_attention(q, k, v, mask, p)
           else:              y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p); w = None
        4. y (B, H, T, d) -> transpose (B, T, H, d) -> reshape (B, T, C); return self.output(y), w
        """
        raise NotImplementedError(
            "Exercise 02 (tutorials/exercises/ex02_multi_head_attention.py): write MultiHeadAttention.forward; "
            "split into heads (B, H, T, d), attend, merge the heads back to (B, T, C), apply self.output.")
