"""Classification metrics: accuracy, macro precision / recall / F1, confusion matrix.

Everything is computed from the confusion matrix $M$ ($K \\times K$, rows =
true class, columns = predicted class, $M_{ij}$ = number of examples of class
$i$ predicted as $j$):

* accuracy $= \\sum_i M_{ii} / \\sum_{ij} M_{ij}$
* precision of class $k$: $P_k = M_{kk} / \\sum_i M_{ik}$ (column sum),
  recall $R_k = M_{kk} / \\sum_j M_{kj}$ (row sum),
  $F1_k = 2 P_k R_k / (P_k + R_k)$; a 0/0 is taken as 0.
* macro averages: the unweighted means over the $K$ classes,
  e.g. $F1_{macro} = \\frac{1}{K}\\sum_k F1_k$.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch


def _as_ids(values, name: str) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.long).reshape(-1)
    if t.numel() and t.min() < 0:
        raise ValueError(f"{name} holds negative class ids; classes must be 0..K-1.")
    return t


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> torch.Tensor:
    """$M_{ij}$ = #examples with true class $i$ predicted as $j$; shape ``(K, K)``, int64.

    ``y_true``, ``y_pred``: sequences (or tensors) of class ids, same length N.
    ``num_classes`` K defaults to 1 + the largest id seen.
    """
    t, p = _as_ids(y_true, "y_true"), _as_ids(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.numel()} labels but y_pred has {p.numel()}; they must match.")
    if t.numel() == 0:
        raise ValueError("no examples: y_true and y_pred are empty.")
    k = num_classes if num_classes is not None else int(max(t.max(), p.max())) + 1
    if int(max(t.max(), p.max())) >= k:
        raise ValueError(f"a class id is >= num_classes={k}.")
    return torch.bincount(t * k + p, minlength=k * k).reshape(k, k)


def accuracy(y_true, y_pred) -> float:
    """Fraction of examples whose prediction equals the label."""
    t, p = _as_ids(y_true, "y_true"), _as_ids(y_pred, "y_pred")
    if t.shape != p.shape or t.numel() == 0:
        raise ValueError(f"need two equally long, non-empty label lists; got {t.numel()} and {p.numel()}.")
    return (t == p).double().mean().item()


def _safe_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b > 0, a / b.clamp(min=1e-300), torch.zeros_like(a))


def per_class_scores(matrix: torch.Tensor) -> dict:
    """Per-class precision $P_k$, recall $R_k$, $F1_k$ and support from a confusion matrix."""
    m = matrix.double()
    tp = m.diagonal()
    precision = _safe_div(tp, m.sum(0))
    recall = _safe_div(tp, m.sum(1))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": matrix.sum(1).tolist()}


def classification_metrics(y_true, y_pred, num_classes: int | None = None) -> dict:
    """Accuracy, macro precision / recall / F1, per-class scores and the confusion matrix.

    Returns a JSON-ready dict: ``accuracy``, ``precision_macro``,
    ``recall_macro``, ``f1_macro``, ``per_class`` and ``confusion_matrix``
    (list of rows).
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    scores = per_class_scores(matrix)
    k = matrix.shape[0]
    return {
        "accuracy": matrix.diagonal().sum().item() / matrix.sum().item(),
        "precision_macro": sum(scores["precision"]) / k,
        "recall_macro": sum(scores["recall"]) / k,
        "f1_macro": sum(scores["f1"]) / k,
        "per_class": scores,
        "confusion_matrix": matrix.tolist(),
    }


def plot_confusion_matrix(matrix, label_names: Sequence[str], path, title: str = "") -> Path:
    """Draw the confusion matrix (counts, rows true, columns predicted) as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = torch.as_tensor(matrix)
    k = m.shape[0]
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.2, 1.2 * k + 1.6))
    ax.imshow(m.numpy(), cmap="Blues")
    ax.set_xticks(range(k), label_names)
    ax.set_yticks(range(k), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = m.max().item() / 2
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(m[i, j])), ha="center", va="center",
                    color="white" if m[i, j] > threshold else "black")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# model selection and cross-validation summaries


class BestEpoch:
    """Keep the epoch with the best dev accuracy (the earliest on ties) and its test metrics.

    ``update(epoch, dev, test)`` takes two :func:`classification_metrics`
    dicts (``test`` may be ``None``) and returns ``True`` when this epoch is
    the new best, i.e. its dev accuracy is strictly higher than every earlier
    one. :meth:`results` gives the flat keys of ``results.json``.
    """

    def __init__(self):
        self.epoch = None
        self.dev = None
        self.test = None

    def update(self, epoch: int, dev: dict, test: dict | None = None) -> bool:
        if self.dev is not None and dev["accuracy"] <= self.dev["accuracy"]:
            return False
        self.epoch, self.dev, self.test = epoch, dev, test
        return True

    def results(self) -> dict:
        """``best_epoch``, ``dev_accuracy``, ``dev_f1_macro`` and, with a test set, ``test_accuracy``,
        ``test_f1_macro``, ``test_precision_macro``, ``test_recall_macro``, ``test_confusion_matrix``."""
        if self.epoch is None:
            raise ValueError("no epoch was evaluated, so there is no best epoch.")
        out = {"best_epoch": self.epoch, "dev_accuracy": self.dev["accuracy"], "dev_f1_macro": self.dev["f1_macro"]}
        if self.test is not None:
            out.update(test_accuracy=self.test["accuracy"], test_f1_macro=self.test["f1_macro"],
                       test_precision_macro=self.test["precision_macro"],
                       test_recall_macro=self.test["recall_macro"],
                       test_confusion_matrix=self.test["confusion_matrix"])
        return out


def cv_summary(fold_results: Sequence[dict]) -> dict:
    r"""Mean and sample standard deviation over cross-validation folds.

    For fold accuracies $a_1 \dots a_K$ (``fold_results[k]["test_accuracy"]``):
    $\bar a = \frac{1}{K}\sum_k a_k$ and
    $s = \sqrt{\frac{1}{K-1}\sum_k (a_k - \bar a)^2}$ (``cv_accuracy_std``;
    0 for one fold); the same for macro F1, precision and recall
    (``cv_f1_macro_mean``/``_std``, ...). ``test_accuracy``/``test_f1_macro``
    (and ``test_precision_macro``/``test_recall_macro``) are the means, the
    test confusion matrices are summed, times are summed (``train_seconds``).
    """
    import statistics

    if not fold_results:
        raise ValueError("no fold has results yet.")
    accs = [r["test_accuracy"] for r in fold_results]
    f1s = [r["test_f1_macro"] for r in fold_results]
    std = statistics.stdev if len(fold_results) > 1 else (lambda values: 0.0)
    matrix = torch.tensor([r["test_confusion_matrix"] for r in fold_results]).sum(0)
    macro = {}
    for key in ("precision_macro", "recall_macro"):
        values = [r[f"test_{key}"] for r in fold_results if f"test_{key}" in r]
        if len(values) == len(fold_results):
            macro.update({f"test_{key}": statistics.mean(values), f"cv_{key}_mean": statistics.mean(values),
                          f"cv_{key}_std": std(values)})
    return {
        "cv_folds": len(fold_results),
        "cv_accuracy_mean": statistics.mean(accs), "cv_accuracy_std": std(accs),
        "test_accuracy": statistics.mean(accs),
        "test_f1_macro": statistics.mean(f1s), "cv_f1_macro_mean": statistics.mean(f1s), "cv_f1_macro_std": std(f1s),
        **macro,
        "fold_test_accuracy": accs, "fold_best_epoch": [r["best_epoch"] for r in fold_results],
        "test_confusion_matrix_summed": matrix.tolist(),
        "train_seconds": sum(r["train_seconds"] for r in fold_results),
        "num_parameters": round(statistics.mean(r["num_parameters"] for r in fold_results)),
        "std_note": "sample standard deviation (n-1) over the folds",
    }
