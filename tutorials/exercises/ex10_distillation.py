"""Exercise 10: the knowledge-distillation losses (Hinton et al. 2015; Tang et al. 2019).

Fill in the three functions below, then run the formula tests against your code:

    python -m pytest tests/test_distillation.py --exercises -q

The tests compare your losses with the formulas written as loops in float64,
check their gradients (including why the T^2 is there), and check that a
one-hot teacher at T = 1 gives the cross-entropy.
"""

from __future__ import annotations

import torch

REFERENCE = "textcnn.kd"


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float = 1.0) -> torch.Tensor:
    """Hinton's soft-target term, averaged over the batch.

    $$\\mathcal{L}_{soft} = \\frac{T^2}{B} \\sum_b \\sum_c p^t_{bc} (\\log p^t_{bc} - \\log p^s_{bc}),
      \\quad p^t_b = \\mathrm{softmax}(z^t_b / T), \\quad p^s_b = \\mathrm{softmax}(z^s_b / T)$$

    student_logits z^s and teacher_logits z^t: (B, C). Returns a scalar.

    Hints: torch.nn.functional.log_softmax of the logits divided by T;
    F.kl_div wants the student's LOG-probabilities first; reduction
    "batchmean" divides by B ("mean" would divide by B * C); multiply by T**2;
    the teacher is a constant (detach it).
    """
    raise NotImplementedError(
        "Exercise 10 (tutorials/exercises/ex10_distillation.py): return "
        "T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) averaged over the batch.")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor | None = None, temperature: float = 1.0,
                      alpha: float = 1.0) -> torch.Tensor:
    """Hinton et al. (2015): alpha * soft-target term + (1 - alpha) * cross-entropy on the gold labels.

    $$\\mathcal{L} = \\alpha \\mathcal{L}_{soft} + (1 - \\alpha) \\frac{1}{B} \\sum_{b: y_b \\ne -100}
      -\\log \\mathrm{softmax}(z^s_b)_{y_b}$$

    labels: (B,) class ids, -100 for a sentence without a gold label (it
    contributes only the soft term, but the sum is still divided by the whole
    batch B). The cross-entropy uses T = 1. With alpha = 1 the labels are not
    needed (may be None).

    Hint: F.cross_entropy(..., ignore_index=-100, reduction="sum") / B.
    """
    raise NotImplementedError(
        "Exercise 10 (tutorials/exercises/ex10_distillation.py): return "
        "alpha * soft_target_loss + (1 - alpha) * summed cross-entropy / B.")


def logit_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Tang et al. (2019): the squared distance between logit vectors, averaged over the batch.

    $$\\mathcal{L}_{mse} = \\frac{1}{B} \\sum_b \\lVert z^t_b - z^s_b \\rVert_2^2$$

    Note: F.mse_loss's default divides by B * C, not B.
    """
    raise NotImplementedError(
        "Exercise 10 (tutorials/exercises/ex10_distillation.py): return "
        "the squared logit distance summed over classes, averaged over the batch.")
