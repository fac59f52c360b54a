"""Exercise 09: the confusion matrix and the per-class scores behind macro-F1.

Fill in the two functions below, then run the formula tests against your code:

    python -m pytest tests/test_metrics.py --exercises -q

The tests compare your functions with the definitions written as Python
loops, with the worked example of tutorial 09, and check that a class that
is never predicted scores 0 (not NaN).
"""

from __future__ import annotations

import torch

REFERENCE = "minibert.metrics"


def confusion_matrix(y_true, y_pred, num_classes=None) -> torch.Tensor:
    """$M_{ij}$ = the number of examples of true class $i$ predicted as class $j$.

    y_true, y_pred: sequences (or tensors) of class ids, same length N;
    num_classes K defaults to 1 + the largest id seen. Returns a (K, K)
    int64 tensor: rows are the true class, columns the prediction.

    Hint: one pass over the pairs, or torch.bincount of y_true * K + y_pred.
    """
    raise NotImplementedError(
        "Exercise 09 (tutorials/exercises/ex09_classification.py): count M[i, j] = #(true i, predicted j).")


def per_class_scores(matrix) -> dict:
    """Precision, recall, F1 and support of every class, from a confusion matrix $M$ (K, K).

    $$P_k = \\frac{M_{kk}}{\\sum_i M_{ik}}, \\quad R_k = \\frac{M_{kk}}{\\sum_j M_{kj}}, \\quad
      F1_k = \\frac{2 P_k R_k}{P_k + R_k}, \\quad \\text{support}_k = \\sum_j M_{kj}$$

    A 0/0 (a class never predicted, or never present) is taken as 0.
    Returns ``{"precision": [...], "recall": [...], "f1": [...], "support": [...]}``,
    lists of K Python floats (support: ints). Macro-F1 is then ``sum(f1) / K``.
    """
    raise NotImplementedError(
        "Exercise 09 (tutorials/exercises/ex09_classification.py): precision = diagonal / column sums, "
        "recall = diagonal / row sums, F1 = their harmonic mean, 0 where a sum is 0.")
