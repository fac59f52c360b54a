"""Exercise 08: Kim's convolution over word vectors and max-over-time pooling.

Fill in the function below, then run the formula tests against your code:

    python -m pytest tests/test_textcnn.py --exercises -q

The tests compare your function with the formula written as Python loops,
and check that padding never changes the result.
"""

from __future__ import annotations

import torch

REFERENCE = "textcnn.model"

# Graded hints, shown by `python -m pytest --exercises 08 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "conv_max_over_time": [
        "a filter sliding along the words is a 1-D convolution with the word-vector features as channels; "
        "the hard part is the padding, not the convolution.",
        "make the padded positions zero vectors, convolve (mind which axis the channels must be on), apply "
        "the ReLU, and take the max only over window starts that exist in each sentence.",
        "c_i = ReLU(sum_j sum_c weight[f, c, j] x[i + j, c] + bias[f]); valid starts are i = 0 .. max(n - h, 0) "
        "for a sentence of n words (shorter than h: one window, filled with zero vectors); hide the other "
        "starts with -infinity before the max.",
    ],
}


def conv_max_over_time(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       lengths: torch.Tensor) -> torch.Tensor:
    """Narrow convolution over time, ReLU, then max over the valid positions.

    $$c_i = \\mathrm{ReLU}(\\mathbf{w} \\cdot \\mathbf{x}_{i:i+h-1} + b), \\qquad
      \\hat c = \\max_{0 \\le i \\le \\max(n-h,\\,0)} c_i$$

    x: word vectors (B, T, C); weight: filters (F, C, h), weight[f, :, j]
    multiplies word i+j; bias: (F,); lengths: (B,) real words n >= 1 per
    sentence. Words at positions >= n count as zero vectors (a sentence
    shorter than h is padded with zeros to h words). Returns (B, F).

    Stuck? ``python -m pytest --exercises 08`` shows a hint; ``--hint 2`` and ``--hint 3`` show more.
    """
    raise NotImplementedError("Exercise 08 (tutorials/exercises/ex08_textcnn.py): "
                              "conv_max_over_time is not written yet")
