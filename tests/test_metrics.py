"""A run's test metrics against scikit-learn computed directly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from lrlab.metrics import classification_metrics


def test_macro_and_weighted_averages_match_sklearn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 200).tolist(), rng.integers(0, 5, 200).tolist()
    m = classification_metrics(y_true, y_pred, list("abcde"))
    for avg, suffix in (("macro", ""), ("weighted", "_weighted")):
        assert m[f"precision{suffix}"] == pytest.approx(precision_score(y_true, y_pred, average=avg))
        assert m[f"recall{suffix}"] == pytest.approx(recall_score(y_true, y_pred, average=avg))
        assert m[f"f1{suffix}"] == pytest.approx(f1_score(y_true, y_pred, average=avg))
    assert np.array(m["confusion_matrix"]).sum() == 200 and set(m["per_class"]) == set("abcde")


def test_a_class_absent_from_the_test_split_does_not_count_as_zero():
    m = classification_metrics([0, 0, 1, 1], [0, 0, 1, 1], ["cat", "dog", "frog"])
    assert m["accuracy"] == m["precision"] == m["recall"] == m["f1"] == 1.0
    assert m["per_class"]["frog"]["support"] == 0 and len(m["confusion_matrix"]) == 3
    wrong = classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], ["cat", "dog", "frog"])
    assert wrong["precision"] == pytest.approx((1 + 1 + 0) / 3)  # predicted frog: it counts
    # scikit-learn's default, kept on purpose: the predicted frog counts with recall 0 (0/0), so macro recall is
    # over cat, dog and frog, (0.5 + 1 + 0) / 3, not (0.5 + 1) / 2 over the classes the test split has
    assert (
        wrong["recall"]
        == pytest.approx(0.5)
        == recall_score([0, 0, 1, 1], [0, 2, 1, 1], average="macro", zero_division=0)
    )
    assert wrong["f1"] == pytest.approx(f1_score([0, 0, 1, 1], [0, 2, 1, 1], average="macro", zero_division=0))


def test_per_class_rows_are_those_of_classification_report_whatever_the_class_names():
    """The same numbers as scikit-learn's per-class report, also for classes named like its summary rows (an image
    folder's "accuracy" or "macro avg" class was overwritten by them, a number where a row was)."""
    from sklearn.metrics import classification_report

    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 4, 120).tolist(), rng.integers(0, 4, 120).tolist()
    plain = list("abcd")
    report = classification_report(y_true, y_pred, labels=range(4), target_names=plain, output_dict=True,
                                   zero_division=0)  # fmt: skip
    assert classification_metrics(y_true, y_pred, plain)["per_class"] == {c: report[c] for c in plain}
    named = ["accuracy", "macro avg", "weighted avg", "d"]
    rows = classification_metrics(y_true, y_pred, named)["per_class"]
    assert [rows[n] for n in named] == [report[c] for c in plain]
