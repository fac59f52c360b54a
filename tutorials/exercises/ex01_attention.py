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

# Graded hints, shown by `python -m pytest --exercises 01 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "scaled_dot_product_attention": [
        "every query is compared with every key by a dot product; which matrix product gives all of them "
        "at once, and which axis of k must be swapped for it?",
        "four steps: scores (T_q, T_k) from q and k, scaled by 1/sqrt(d_k); hidden keys pushed to -infinity "
        "*before* the softmax; softmax over the keys (the last axis); the weights times v. Rows that are all "
        "hidden come out of the softmax as NaN: replace their weights by 0.",
        "scores_ij = sum_c q_ic k_jc / sqrt(d_k); M_ij = 0 where mask is True, -inf where False; "
        "w_ij = exp(scores_ij + M_ij) / sum_j' exp(scores_ij' + M_ij'); output_i = sum_j w_ij v_j. "
        "Dropout, when dropout_p > 0, applies to w (zero some entries, divide the rest by 1 - p).",
    ],
}


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    r"""Return ``(output, weights)`` of $\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)\,V$.

    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v); mask is boolean,
    True = may attend, broadcastable to (..., T_q, T_k), or None.
    output (..., T_q, d_v); weights (..., T_q, T_k).

    $M$ is 0 where ``mask`` is True and $-\infty$ where it is False. A query
    row whose keys are all masked gets weights 0 and output 0 (not NaN). With
    ``dropout_p > 0`` the weights are dropped out (always, as in training).

    Stuck? ``python -m pytest --exercises 01`` shows a hint; ``--hint 2`` and
    ``--hint 3`` show more (never the code).
    """
    raise NotImplementedError("Exercise 01 (tutorials/exercises/ex01_attention.py): "
                              "scaled_dot_product_attention is not written yet")
