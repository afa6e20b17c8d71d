"""Classification metrics of a run's test predictions, by scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

# The original study's four columns (macro averages), then the weighted averages.
TABLE_METRICS = ("accuracy", "precision", "recall", "f1")
ALL_METRICS = (*TABLE_METRICS, "precision_weighted", "recall_weighted", "f1_weighted")


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro and weighted precision/recall/F1, per-class report and confusion matrix."""
    labels = list(range(len(classes)))
    # averages over the classes that occur (in truth or prediction), as scikit-learn's default: a class
    # a test folder lacks and no prediction names has no precision or recall, not a zero one
    present = sorted(set(y_true) | set(y_pred))
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for avg, suffix in (("macro", ""), ("weighted", "_weighted")):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average=avg, zero_division=0)
        out[f"precision{suffix}"], out[f"recall{suffix}"], out[f"f1{suffix}"] = float(p), float(r), float(f)
    # per class as classification_report's dict gives it, but from its arrays: in that dict a class named
    # "accuracy" or "macro avg" (an image folder's) was overwritten by the summary rows of the same names
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out["per_class"] = {
        c: {"precision": float(p[i]), "recall": float(r[i]), "f1-score": float(f[i]), "support": int(n[i])}
        for i, c in enumerate(classes)
    }
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    out["classes"] = list(classes)
    return out
