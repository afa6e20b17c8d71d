"""Classification metrics of a run's test predictions (scikit-learn), and the study's table:
one row per schedule, the mean of each metric over its finished seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

# The original study's four columns (macro averages), then the weighted averages.
TABLE_METRICS = ("accuracy", "precision", "recall", "f1")
ALL_METRICS = (*TABLE_METRICS, "precision_weighted", "recall_weighted", "f1_weighted")


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro and weighted precision/recall/F1, per-class report and confusion matrix."""
    labels = list(range(len(classes)))
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for avg, suffix in (("macro", ""), ("weighted", "_weighted")):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out[f"precision{suffix}"], out[f"recall{suffix}"], out[f"f1{suffix}"] = float(p), float(r), float(f)
    report = classification_report(
        y_true, y_pred, labels=labels, target_names=classes, output_dict=True, zero_division=0
    )
    out["per_class"] = {c: report[c] for c in classes}
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    out["classes"] = list(classes)
    return out


def study_table(rows: list[dict[str, Any]], schedules: Sequence[str]) -> list[dict[str, Any]]:
    """One row per schedule (in the given order): the mean of each metric over its `ok` runs,
    with the number of finished and diverged seeds."""
    table = []
    for name in schedules:
        mine = [r for r in rows if r["schedule"] == name]
        ok = [r for r in mine if r["status"] == "ok"]
        row: dict[str, Any] = {
            "schedule": name,
            "n": len(ok),
            "diverged": sum(r["status"] == "diverged" for r in mine),
        }
        for m in ALL_METRICS:
            vals = [float(r[m]) for r in ok if r.get(m) not in (None, "")]
            row[m] = float(np.mean(vals)) if vals else math.nan
        table.append(row)
    return table


def format_table(table: list[dict[str, Any]], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """The study's table as GitHub Markdown (also readable as plain text in a terminal)."""
    head = ["schedule", *metrics, "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for row in table:
        cells = [row["schedule"]] + ["—" if math.isnan(row[m]) else f"{row[m]:.4f}" for m in metrics]
        seeds = str(row["n"]) + (f" ({row['diverged']} diverged)" if row["diverged"] else "")
        lines.append("| " + " | ".join([*cells, seeds]) + " |")
    return "\n".join(lines)
