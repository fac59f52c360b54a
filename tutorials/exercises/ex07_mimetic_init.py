"""Exercise 07 (third part): the factors of mimetic attention initialisation
(tutorials/07_pretraining_on_wikitext.md, "Mimetic initialisation: heads that start as matchers").

Fill in ``mimetic_factors`` below, then run

    python -m pytest --exercises 07
"""

import torch  # noqa: F401

REFERENCE = "minibert.attention_init"

# Graded hints, shown by `python -m pytest --exercises 07 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "mimetic_factors": [
        "build the target matrix A = alpha Z + beta I first; a singular value decomposition splits any matrix "
        "into a left and a right factor.",
        "draw Z with torch.randn(size, size, generator=generator, dtype=torch.float64) / sqrt(size) (the tests "
        "replay this stream), take torch.linalg.svd(A) and keep the first `rank` singular directions.",
        "u, s, vh = svd(A); root = sqrt(s[:rank]); L = u[:, :rank] * root; R = root[:, None] * vh[:rank]; "
        "return both as float32; refuse a rank outside 1..size with ValueError.",
    ],
}


def mimetic_factors(size, alpha, beta, rank, generator=None):
    r"""Factors $L$ (size × rank) and $R$ (rank × size) with $L R \approx A = \alpha Z + \beta I$.

    $Z_{jk} \sim \mathcal N(0, 1/\text{size})$, drawn in float64 with ``torch.randn(size, size,
    generator=generator, dtype=torch.float64) / size ** 0.5``; with $A = U S V^{\top}$,
    $L = U_{:, :r} \sqrt{S_{:r}}$ and $R = \sqrt{S_{:r}} V^{\top}_{:r, :}$ ($r$ = ``rank``), returned as
    float32: $LR$ is the best rank-$r$ approximation of $A$ and equals $A$ when $r$ = ``size``.
    ``rank`` outside $1..\text{size}$ raises ``ValueError``.
    """
    raise NotImplementedError("Exercise 07 (tutorials/exercises/ex07_mimetic_init.py): "
                              "mimetic_factors is not written yet")
