"""Exercise 07: the learning-rate schedule and the AdamW groups of the pretraining loop
(tutorials/07_pretraining_on_wikitext.md).

Fill in ``learning_rate`` and ``parameter_groups`` below, then run

    python -m pytest --exercises tests/test_pretrain.py -q
"""

import torch  # noqa: F401

REFERENCE = "minibert.training_utils"

# Graded hints, shown by `python -m pytest --exercises 07 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "learning_rate": [
        "two straight lines that meet at the peak: one rising during warm-up, one falling to zero at the end.",
        "during warm-up the rate grows in proportion to the number of steps done (count the current one); "
        "after it, in proportion to the steps still to go. Think about what happens when there is no decay "
        "phase at all (max_steps equal to warmup_steps), and past max_steps.",
        "eta_s = eta (s + 1) / W for s < W; eta_s = eta (S - s) / (S - W) for s >= W, never below 0.",
    ],
    "parameter_groups": [
        "biases and LayerNorm parameters have something in common that weight matrices and embedding tables "
        "do not: look at their shapes.",
        "one pass over the model's trainable parameters, sorting each into 'decay' or 'no decay' by its "
        "number of dimensions. A tensor shared by two modules (the tied decoder) must appear only once: "
        "model.parameters() already yields it once.",
    ],
}


def learning_rate(step, max_steps, warmup_steps, peak_lr):
    r"""Linear warm-up to ``peak_lr`` over ``warmup_steps`` steps, then linear decay to 0 at ``max_steps``.

    For step $s$ (0-based), $W$ = warmup_steps, $S$ = max_steps, $\eta$ = peak_lr:
    $\eta_s = \eta (s + 1) / W$ when $s < W$, else $\eta (S - s) / (S - W)$ (never below 0).
    """
    raise NotImplementedError("Exercise 07 (tutorials/exercises/ex07_training_loop.py): "
                              "learning_rate is not written yet")


def parameter_groups(model, weight_decay):
    """Two AdamW parameter groups: ``[{"params": [...], "weight_decay": weight_decay},
    {"params": [...], "weight_decay": 0.0}]``.

    Biases and LayerNorm weights/biases go to the second group (no decay),
    every other trainable tensor to the first. Each tensor appears once, even
    when two modules share it (the MLM decoder and the word embeddings).
    """
    raise NotImplementedError("Exercise 07 (tutorials/exercises/ex07_training_loop.py): "
                              "parameter_groups is not written yet")
