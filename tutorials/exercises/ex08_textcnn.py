"""Exercise 08: Kim's convolution over word vectors and max-over-time pooling.

Fill in the function below, then run the formula tests against your code:

    python -m pytest tests/test_textcnn.py --exercises -q

The tests compare your function with the formula written as Python loops,
and check that padding never changes the result.
"""

from __future__ import annotations

import torch

REFERENCE = "textcnn.model"


def conv_max_over_time(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       lengths: torch.Tensor) -> torch.Tensor:
    """Narrow convolution over time, ReLU, then max over the valid positions.

    $$c_i = \\mathrm{ReLU}(\\mathbf{w} \\cdot \\mathbf{x}_{i:i+h-1} + b), \\qquad
      \\hat c = \\max_{0 \\le i \\le \\max(n-h,\\,0)} c_i$$

    x: word vectors (B, T, C); weight: filters (F, C, h), weight[f, :, j]
    multiplies word i+j; bias: (F,); lengths: (B,) real words n >= 1 per
    sentence. Words at positions >= n count as zero vectors (a sentence
    shorter than h is padded with zeros to h words). Returns (B, F).

    Hints: zero the padded positions of x; torch.nn.functional.conv1d wants
    (B, C, T); mask the window starts i > max(n - h, 0) with -inf before the max.
    """
    raise NotImplementedError(
        "Exercise 08 (tutorials/exercises/ex08_textcnn.py): compute "
        "c_i = relu(w . x[i:i+h] + b) for every filter and take the max over the valid i.")
