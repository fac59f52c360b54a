"""Exercise 07: the learning-rate schedule and the AdamW groups of the pretraining loop
(tutorials/07_pretraining_on_wikitext.md).

Fill in ``learning_rate`` and ``parameter_groups`` below, then run

    python -m pytest --exercises tests/test_pretrain.py -q
"""

import torch  # noqa: F401

REFERENCE = "minibert.training_utils"


def learning_rate(step, max_steps, warmup_steps, peak_lr):
    r"""Linear warm-up to ``peak_lr`` over ``warmup_steps`` steps, then linear decay to 0 at ``max_steps``.

    For step $s$ (0-based), $W$ = warmup_steps, $S$ = max_steps, $\eta$ = peak_lr:
    $\eta_s = \eta (s + 1) / W$ when $s < W$, else $\eta (S - s) / (S - W)$ (never below 0).

    Hint: two branches; guard the division when max_steps == warmup_steps.
    """
    raise NotImplementedError(
        "Exercise 07 (tutorials/exercises/ex07_training_loop.py): write learning_rate; "
        "peak_lr * (step + 1) / warmup_steps during warm-up, then peak_lr * (max_steps - step) / (max_steps - warmup_steps).")


def parameter_groups(model, weight_decay):
    """Two AdamW parameter groups: ``[{"params": [...], "weight_decay": weight_decay},
    {"params": [...], "weight_decay": 0.0}]``.

    Biases and LayerNorm weights/biases go to the second group (no decay),
    every other trainable tensor to the first. Each tensor appears once, even
    when two modules share it (the MLM decoder and the word embeddings).

    Hint: which tensors have fewer than two dimensions?
    """
    raise NotImplementedError(
        "Exercise 07 (tutorials/exercises/ex07_training_loop.py): write parameter_groups; "
        "loop over model.parameters() and split on parameter.dim() >= 2.")
