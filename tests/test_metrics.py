"""Classification metrics computed by hand on a small 3-class case."""

from __future__ import annotations

import pytest
import torch

from minibert.metrics import accuracy, classification_metrics, confusion_matrix, plot_confusion_matrix

# true:  0 0 0 1 1 2
# pred:  0 0 1 1 2 2
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_confusion_matrix_rows_are_true_columns_are_predicted():
    """M[i, j] counts examples of class i predicted as j."""
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_macro_scores_match_the_hand_computation():
    """P = (1, 1/2, 1/2), R = (2/3, 1/2, 1), F1 = (4/5, 1/2, 2/3); macro = their means."""
    m = classification_metrics(Y_TRUE, Y_PRED)
    expected = {"accuracy": 4 / 6, "precision_macro": (1 + 0.5 + 0.5) / 3,
                "recall_macro": (2 / 3 + 0.5 + 1) / 3, "f1_macro": (0.8 + 0.5 + 2 / 3) / 3}
    for key, value in expected.items():
        assert abs(m[key] - value) <= 1e-12, f"{key}: {m[key]} != {value}"
    assert abs(accuracy(Y_TRUE, Y_PRED) - 4 / 6) <= 1e-12


def test_a_class_never_predicted_scores_zero_not_nan():
    """0/0 precision is taken as 0, so macro F1 stays a number and is below accuracy here."""
    m = classification_metrics([0, 1, 1, 1], [1, 1, 1, 1], num_classes=2)
    assert m["per_class"]["precision"][0] == 0.0 and m["per_class"]["f1"][0] == 0.0
    assert abs(m["f1_macro"] - (0 + 2 * 0.75 / 1.75) / 2) <= 1e-12, m["f1_macro"]


def test_mismatched_or_empty_inputs_are_refused():
    """Different lengths or no examples: a ValueError that says so."""
    with pytest.raises(ValueError, match="must match"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        confusion_matrix([], [])


def test_confusion_matrix_png_is_written(tmp_path):
    """plot_confusion_matrix writes a PNG file."""
    path = plot_confusion_matrix(confusion_matrix(Y_TRUE, Y_PRED), ["neg", "mid", "pos"], tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_best_epoch_is_the_first_with_the_highest_dev_accuracy():
    """Strictly better dev accuracy moves the choice; a tie keeps the earlier epoch and its test metrics."""
    from minibert.metrics import BestEpoch

    best = BestEpoch()
    dev = [0.5, 0.7, 0.7, 0.6]
    moved = [best.update(e, {"accuracy": a, "f1_macro": a}, {**classification_metrics(Y_TRUE, Y_PRED), "e": e})
             for e, a in enumerate(dev, start=1)]
    assert moved == [True, True, False, False]
    results = best.results()
    assert results["best_epoch"] == 2 and results["dev_accuracy"] == 0.7 and best.test["e"] == 2
    assert results["test_accuracy"] == pytest.approx(4 / 6) and "test_confusion_matrix" in results


def test_cv_summary_is_the_mean_and_sample_std_over_folds():
    from minibert.metrics import cv_summary

    folds = [{"test_accuracy": a, "test_f1_macro": a - 0.1, "test_confusion_matrix": [[1, 0], [0, 1]],
              "best_epoch": 1, "train_seconds": 2.0, "num_parameters": 10} for a in (0.7, 0.8, 0.9)]
    s = cv_summary(folds)
    assert s["test_accuracy"] == pytest.approx(0.8) and s["cv_accuracy_std"] == pytest.approx(0.1), s
    assert s["test_confusion_matrix_summed"] == [[3, 0], [0, 3]] and s["train_seconds"] == 6.0


# ---------------------------------------------------------------------------
# Formula tests (also run against tutorials/exercises/ex09_classification.py)


def _loop_scores(m: list[list[int]]) -> dict:
    """Precision, recall, F1 per class written as loops over the confusion matrix."""
    k = len(m)
    out = {"precision": [], "recall": [], "f1": []}
    for c in range(k):
        tp = m[c][c]
        predicted = sum(m[i][c] for i in range(k))
        actual = sum(m[c][j] for j in range(k))
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        out["precision"].append(p)
        out["recall"].append(r)
        out["f1"].append(2 * p * r / (p + r) if p + r else 0.0)
    return out


def test_confusion_matrix_counts_every_pair_like_a_loop(lib):
    """M[i][j] = number of (true i, predicted j) pairs, counted with a loop on random labels."""
    import random

    rng = random.Random(0)
    y_true = [rng.randrange(4) for _ in range(200)]
    y_pred = [rng.randrange(4) for _ in range(200)]
    want = [[0] * 4 for _ in range(4)]
    for t, p in zip(y_true, y_pred):
        want[t][p] += 1
    got = lib.confusion_matrix(y_true, y_pred, 4)
    assert torch.as_tensor(got).tolist() == want
    assert torch.as_tensor(lib.confusion_matrix([0, 2], [2, 2])).tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 1]]


def test_per_class_scores_equal_the_definitions_as_loops(lib):
    """P_k, R_k, F1_k from random confusion matrices equal the loop version within 1e-12."""
    gen = torch.Generator().manual_seed(0)
    for k in (2, 3, 5):
        m = torch.randint(0, 20, (k, k), generator=gen)
        m[0, :] = 0 if k == 5 else m[0, :]          # a class that never occurs (support 0)
        got, want = lib.per_class_scores(m), _loop_scores(m.tolist())
        for key in want:
            d = max(abs(a - b) for a, b in zip(got[key], want[key]))
            assert d <= 1e-12, f"K={k} {key}: differs from the loop by {d:.2e}: {got[key]} vs {want[key]}"
        assert list(got["support"]) == m.sum(1).tolist()


def test_per_class_scores_of_the_tutorial_example(lib):
    """Tutorial 09's worked example: P = (1, 1/2, 1/2), R = (2/3, 1/2, 1), F1 = (4/5, 1/2, 2/3)."""
    m = lib.confusion_matrix(Y_TRUE, Y_PRED)
    scores = lib.per_class_scores(torch.as_tensor(m))
    for key, want in (("precision", [1, 0.5, 0.5]), ("recall", [2 / 3, 0.5, 1]), ("f1", [0.8, 0.5, 2 / 3])):
        assert max(abs(a - b) for a, b in zip(scores[key], want)) <= 1e-12, (key, scores[key])
    never_predicted = lib.per_class_scores(torch.tensor([[0, 3], [0, 5]]))
    assert never_predicted["precision"][0] == 0.0 and never_predicted["f1"][0] == 0.0   # 0/0 -> 0, not nan
