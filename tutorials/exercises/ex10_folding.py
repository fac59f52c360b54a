"""Exercise 10 (second part): fold a trained TextCNN's convolution into per-word tables.

Fill in the function below, then run the formula tests against your code:

    python -m pytest tests/test_textcnn_model.py --exercises 10 -q

The test compares your tables with the formula written as loops in float64.
"""

from __future__ import annotations

import torch

REFERENCE = "textcnn.folded"


def filter_response_tables(vectors: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Every word's contribution to every filter at every offset of a window, for filters of one width h.

    $$P_j[v, f] = \\sum_{c} W[f, c, j]\\, e(v)_c, \\qquad j = 0 \\dots h-1$$

    vectors e: (V, C) word vectors; weight W: (F, C, h), as nn.Conv1d holds it.
    Returns (h, V, F), contiguous.

    Hints: one torch.einsum over the shared index c does it ("vc,fcj->jvf");
    or, for each j, vectors @ weight[:, :, j].T is (V, F).
    """
    raise NotImplementedError(
        "Exercise 10 (tutorials/exercises/ex10_folding.py): return P with P[j, v, f] = "
        "sum_c weight[f, c, j] * vectors[v, c], shape (h, V, F).")
