r"""Knowledge-distillation losses: what a student learns from a teacher's logits.

A teacher (a fine-tuned BERT) gives class scores $\mathbf{z}^t$ for a
sentence; the student (a TextCNN) gives $\mathbf{z}^s$. Three losses, all
averaged over the $B$ sentences of a batch:

* **soft targets** (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge
  in a Neural Network"): the KL divergence from the teacher's distribution at
  temperature $T$ to the student's, times $T^2$ (:func:`soft_target_loss`);
* **Hinton's full loss**, soft targets plus the ordinary cross-entropy on the
  gold label, weighted by $\alpha$ (:func:`distillation_loss`);
* **logit matching** (Tang et al. 2019, "Distilling Task-Specific Knowledge
  from BERT into Simple Neural Networks"): the squared distance between the
  two logit vectors (:func:`logit_mse_loss`).

Why $T^2$: the gradient of the soft term with respect to the student's
logits is $\alpha T (\mathrm{softmax}(\mathbf{z}^s/T) - \mathrm{softmax}(\mathbf{z}^t/T)) / B$,
and the difference of the two softened distributions shrinks like $1/T^2$ for
large $T$; the $T^2$ keeps the soft term's gradients on the same scale
whatever the temperature, so $\alpha$ means the same at $T = 2$ and $T = 20$
(tests/test_distillation.py checks both claims; tutorial 10 explains them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from minibert.model import IGNORE_INDEX  # the label of a sentence without a gold label (-100)

LOSSES = ("kd", "mse", "kd+ce")


def soft_targets(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""The softened distribution $p_i = \exp(z_i / T) / \sum_j \exp(z_j / T)$.

    Args:
        logits: $\mathbf{z}$, ``(B, C)`` class scores.
        temperature: $T > 0$; $T = 1$ is the ordinary softmax, larger $T$
            gives a flatter distribution that shows how the teacher ranks the
            wrong classes ("dark knowledge").

    Returns:
        $\mathbf{p}$, ``(B, C)``, rows summing to one.
    """
    if temperature <= 0:
        raise ValueError(f"the temperature must be > 0, got {temperature}.")
    return torch.softmax(logits / temperature, dim=-1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float = 1.0) -> torch.Tensor:
    r"""Hinton's soft-target term $T^2 \cdot \mathrm{KL}(\mathbf{p}^t \,\|\, \mathbf{p}^s)$, averaged over the batch.

    $$\mathcal{L}_{soft} = \frac{T^2}{B} \sum_{b=1}^{B} \sum_{c=1}^{C}
      p^t_{bc} \left(\log p^t_{bc} - \log p^s_{bc}\right), \qquad
      \mathbf{p}^t_b = \mathrm{softmax}(\mathbf{z}^t_b / T), \quad
      \mathbf{p}^s_b = \mathrm{softmax}(\mathbf{z}^s_b / T).$$

    Computed as ``F.kl_div(log_softmax(z_s / T), log_softmax(z_t / T),
    log_target=True, reduction="batchmean") * T**2``: ``kl_div`` wants the
    student's *log*-probabilities as its input, and ``batchmean`` divides the
    sum by $B$ (``mean`` would also divide by $C$).

    Args:
        student_logits: $\mathbf{z}^s$, ``(B, C)``.
        teacher_logits: $\mathbf{z}^t$, ``(B, C)``; treated as constants
            (detached).
        temperature: $T > 0$.

    Returns:
        A scalar tensor.
    """
    _check_logits(student_logits, teacher_logits)
    if temperature <= 0:
        raise ValueError(f"the temperature must be > 0, got {temperature}.")
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)  # (B, C)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)  # (B, C)
    kl = F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean")
    return kl * temperature ** 2


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor | None = None, temperature: float = 1.0,
                      alpha: float = 1.0) -> torch.Tensor:
    r"""Hinton et al. (2015): soft targets at temperature $T$ plus the hard-label cross-entropy.

    $$\mathcal{L} = \alpha\, T^2\, \frac{1}{B}\sum_{b} \mathrm{KL}\!\left(\mathrm{softmax}(\mathbf{z}^t_b/T)
      \,\|\, \mathrm{softmax}(\mathbf{z}^s_b/T)\right)
      + (1-\alpha)\, \frac{1}{B} \sum_{b:\, y_b \ne -100} -\log \mathrm{softmax}(\mathbf{z}^s_b)_{y_b}$$

    The cross-entropy uses $T = 1$. A sentence whose label is
    ``IGNORE_INDEX`` (-100: an augmented sentence, which has no gold label)
    contributes only the soft term; the sum is still divided by the whole
    batch $B$, so every sentence has the same weight.

    Args:
        student_logits: $\mathbf{z}^s$, ``(B, C)``.
        teacher_logits: $\mathbf{z}^t$, ``(B, C)`` (detached).
        labels: $y$, ``(B,)`` gold class ids or -100; needed when $\alpha < 1$.
        temperature: $T > 0$.
        alpha: $\alpha \in [0, 1]$, the weight of the soft term.

    Returns:
        A scalar tensor.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    loss = alpha * soft_target_loss(student_logits, teacher_logits, temperature)
    if alpha < 1.0:
        if labels is None:
            raise ValueError("alpha < 1 weights the hard-label cross-entropy; pass the labels.")
        ce = F.cross_entropy(student_logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
        loss = loss + (1.0 - alpha) * ce / student_logits.shape[0]
    return loss


def logit_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    r"""Tang et al. (2019): the squared distance between the logit vectors, averaged over the batch.

    $$\mathcal{L}_{mse} = \frac{1}{B} \sum_{b=1}^{B} \lVert \mathbf{z}^t_b - \mathbf{z}^s_b \rVert_2^2$$

    (``F.mse_loss(z_s, z_t)`` with its default ``mean`` is this divided by
    the number of classes $C$.) Matching logits is the $T \to \infty$ limit
    of the soft-target loss, up to a factor and the logits' means (Hinton et
    al. 2015, section 2.1).

    Args:
        student_logits: $\mathbf{z}^s$, ``(B, C)``.
        teacher_logits: $\mathbf{z}^t$, ``(B, C)`` (detached).

    Returns:
        A scalar tensor.
    """
    _check_logits(student_logits, teacher_logits)
    diff = student_logits - teacher_logits.detach()  # (B, C)
    return diff.pow(2).sum(dim=-1).mean()


def student_loss(name: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                 labels: torch.Tensor | None = None, temperature: float = 1.0,
                 alpha: float = 0.5) -> torch.Tensor:
    r"""The loss ``textcnn distill --loss NAME`` trains with.

    ``kd``: :func:`soft_target_loss` alone ($\alpha = 1$); ``kd+ce``:
    :func:`distillation_loss` with ``alpha``; ``mse``: :func:`logit_mse_loss`.
    """
    if name == "kd":
        return soft_target_loss(student_logits, teacher_logits, temperature)
    if name == "kd+ce":
        return distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)
    if name == "mse":
        return logit_mse_loss(student_logits, teacher_logits)
    raise ValueError(f"unknown distillation loss {name!r}; choose one of {', '.join(LOSSES)}.")


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must both be (B, C); got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}.")
