"""Exercise 07 (second part): the 16-bit dropout mask of the fast CPU step
(tutorials/07_pretraining_on_wikitext.md, "Speed: where a training step's time goes").

Fill in ``keep_mask`` below, then run

    python -m pytest --exercises 07
"""

import torch  # noqa: F401

REFERENCE = "minibert.fast_dropout"

# Graded hints, shown by `python -m pytest --exercises 07 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "keep_mask": [
        "one random 64-bit integer holds four independent 16-bit numbers: draw a quarter as many words as "
        "there are elements, and reinterpret their bytes.",
        "fill an int64 tensor of ceil(n / 4) words with every one of the 2^64 bit patterns (random_ with "
        "from = -2**63 and to = None: the default range leaves the top bit at 0), view it as int16, keep the "
        "first n lanes, reshape. A lane is uniform on [-32768, 32767]; compare it with a threshold built "
        "from d = round(65536 p).",
        "d = min(round(65536 p), 65535); keep = lanes >= d - 32768; scale = 65536 / (65536 - d).",
    ],
}


def keep_mask(shape, p, device="cpu", generator=None):
    r"""(boolean keep mask of ``shape``, scale $1/(1-p')$) from 16 random bits per element.

    With $d = \mathrm{round}(65536\,p)$ and each element's 16-bit lane $u_i$
    uniform on $\{0, \dots, 65535\}$: keep element $i$ when $u_i \ge d$, so
    $P(\text{drop}) = p' = d/65536$, and scale the survivors by
    $65536 / (65536 - d) = 1/(1-p')$. Draw the lanes four at a time from
    int64 words over the full 64-bit range (``generator`` as in
    ``Tensor.random_``); as int16 a lane is $u_i - 32768$. ``p`` must be in
    $[0, 1)$ (raise ``ValueError`` otherwise).
    """
    raise NotImplementedError("Exercise 07 (tutorials/exercises/ex07_fast_dropout.py): "
                              "keep_mask is not written yet")
