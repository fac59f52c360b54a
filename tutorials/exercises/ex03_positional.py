"""Exercise 03: sinusoidal positional encoding (tutorials/03_positional_encoding.md).

Fill in ``sinusoidal_positional_encoding`` below, then run

    python -m pytest --exercises tests/test_positional.py -q
"""

import math  # noqa: F401

import torch  # noqa: F401

REFERENCE = "minibert.positional"


def sinusoidal_positional_encoding(num_positions, dim):
    r"""Return the float32 table PE of shape (num_positions, dim):

    $PE_{pos,2i} = \sin(pos / 10000^{2i/d})$ and $PE_{pos,2i+1} = \cos(pos / 10000^{2i/d})$, d = dim.

    Column 2i holds a sine, column 2i+1 the cosine of the *same* angle. When dim
    is odd the last column is a sine without its cosine partner.

    Hint: pos = torch.arange(num_positions)[:, None]; two_i = torch.arange(0, dim, 2);
    fill pe[:, 0::2] and pe[:, 1::2]. Compute in float64, return .float().
    """
    raise NotImplementedError(
        "Exercise 03 (tutorials/exercises/ex03_positional.py): write sinusoidal_positional_encoding; "
        "angle = pos / 10000**(2i/dim); sin in the even columns, cos in the odd columns.")
