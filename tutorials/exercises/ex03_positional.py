"""Exercise 03: sinusoidal positional encoding (tutorials/03_positional_encoding.md).

Fill in ``sinusoidal_positional_encoding`` below, then run

    python -m pytest --exercises tests/test_positional.py -q
"""

import math  # noqa: F401

import torch  # noqa: F401

REFERENCE = "minibert.positional"

# Graded hints, shown by `python -m pytest --exercises 03 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "sinusoidal_positional_encoding": [
        "the whole table is one outer product: every position times every frequency gives an angle; "
        "only then take sines and cosines.",
        "build a column of positions and a row of ceil(dim/2) frequencies, multiply them into a table of "
        "angles, and write its sines into the even columns and its cosines into the odd ones. For an odd dim "
        "the cosine of the last frequency has no column. Compute in float64, return float32.",
        "angle[pos, i] = pos * 10000^(-2i/dim) for pair i = 0 .. ceil(dim/2)-1; PE[pos, 2i] = sin(angle), "
        "PE[pos, 2i+1] = cos(angle). The exponent uses the pair index i (2i/dim), not the column index j "
        "(j/dim).",
    ],
}


def sinusoidal_positional_encoding(num_positions, dim):
    r"""Return the float32 table PE of shape (num_positions, dim):

    $PE_{pos,2i} = \sin(pos / 10000^{2i/d})$ and $PE_{pos,2i+1} = \cos(pos / 10000^{2i/d})$, d = dim.

    Column 2i holds a sine, column 2i+1 the cosine of the *same* angle. When dim
    is odd the last column is a sine without its cosine partner.

    Stuck? ``python -m pytest --exercises 03`` shows a hint; ``--hint 2`` and ``--hint 3`` show more.
    """
    raise NotImplementedError("Exercise 03 (tutorials/exercises/ex03_positional.py): "
                              "sinusoidal_positional_encoding is not written yet")
