"""Exercise 01: scaled dot-product attention (tutorials/01_scaled_dot_product_attention.md).

Fill in the body of ``scaled_dot_product_attention`` below, then run

    python -m pytest --exercises tests/test_attention.py -q

The tests are the same ones that check the library; they pass when your
function gives the library's numbers (and PyTorch's, and transformers').
"""

import math  # noqa: F401  (you will want math.sqrt)

import torch  # noqa: F401
import torch.nn.functional as F  # noqa: F401  (F.dropout)

REFERENCE = "minibert.attention"


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    r"""Return ``(output, weights)`` of $\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)\,V$.

    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v); mask is boolean,
    True = may attend, broadcastable to (..., T_q, T_k), or None.
    output (..., T_q, d_v); weights (..., T_q, T_k).

    Steps:
    1. scores = q @ k^T / sqrt(d_k)                 (transpose the last two dims of k)
    2. where mask is False, set the score to -inf    (``scores.masked_fill(~mask, float("-inf"))``)
    3. weights = softmax over the keys (the last dim)
    4. a row whose keys are all masked is NaN now: set masked weights to 0
    5. if dropout_p > 0: weights = F.dropout(weights, p=dropout_p, training=True)
    6. output = weights @ v
    """
    raise NotImplementedError(
        "Exercise 01 (tutorials/exercises/ex01_attention.py): write scaled_dot_product_attention; "
        "scores = q @ k.transpose(-2, -1) / sqrt(d_k), mask with -inf, softmax over the last dim, then @ v.")
