"""Summary, plots and report of a study, rebuilt from its run folders alone (no training)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt
import numpy as np

from lrlab import store
from lrlab.metrics import ALL_METRICS, TABLE_METRICS, format_table, study_table

EPOCH_COLUMNS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
]
SUMMARY_COLUMNS = [
    "schedule",
    "seed",
    "status",
    *ALL_METRICS,
    "best_val_accuracy",
    "best_epoch",
    "final_val_accuracy",
    "epochs_run",
    "peak_lr",
    "seconds",
]
PLOTS = {
    "lr": "Learning rate against optimizer step",
    "val_accuracy": "Validation accuracy against epoch",
    "metrics": "Test metrics per schedule",
    "confusion": "Confusion matrix of the best schedule",
}


def run_folders(out: Path) -> list[Path]:
    """Every finished run under a study folder (a folder with result.json)."""
    return sorted(p.parent for p in out.glob("runs/*/seed-*/result.json"))


def _row(folder: Path) -> dict[str, Any]:
    res = store.read_json(folder / "result.json")
    row = {k: res.get(k) for k in SUMMARY_COLUMNS if k in res}
    for m in ALL_METRICS:
        row[m] = res.get("test", {}).get(m)
    return row


def schedule_order(out: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Schedules in the study config's order, then any others in order of appearance."""
    names: list[str] = []
    study = out / "study.json"
    if study.exists():
        names = list(store.read_json(study)["config"]["schedules"])
    for r in rows:
        if r["schedule"] not in names:
            names.append(r["schedule"])
    return names


def write_summary(out: Path) -> list[dict[str, Any]]:
    """summary.csv: one row per finished run, sorted by schedule (config order) then seed."""
    rows = [_row(f) for f in run_folders(out)]
    order = {n: i for i, n in enumerate(schedule_order(out, rows))}
    rows.sort(key=lambda r: (order[r["schedule"]], r["seed"]))
    store.write_csv(out / "summary.csv", rows, SUMMARY_COLUMNS)
    return rows


def _colors(names: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def new_figure(size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure and its axes (one place that imports pyplot for every plot of lrlab)."""
    return plt.subplots(figsize=size)


def save_figure(fig: Any, path: Path) -> None:
    """Save a figure atomically (temporary file, then rename) and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def plot_lr(
    traces: dict[str, list[tuple[int, float]]],
    path: Path,
    title: str = PLOTS["lr"],
    momentum: dict[str, list[tuple[int, float]]] | None = None,
) -> None:
    """Overlay of LR against step, one line per schedule; scheduled momentum in a panel below."""
    colors = _colors(list(traces))
    rows = 2 if momentum else 1
    fig, axes = plt.subplots(
        rows, 1, figsize=(8, 4 + 2 * (rows - 1)), sharex=True, squeeze=False, height_ratios=[2, 1][:rows]
    )
    ax = axes[0][0]
    for name, tr in traces.items():
        steps, lrs = zip(*tr, strict=True) if tr else ((), ())
        ax.plot(steps, lrs, label=name, color=colors[name], lw=1.6)
    ax.set(ylabel="learning rate", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if momentum:
        mx = axes[1][0]
        for name, tr in momentum.items():
            steps, ms = zip(*tr, strict=True)
            mx.plot(steps, ms, color=colors[name], lw=1.4, ls="--")
        mx.set(ylabel="momentum")
        mx.grid(alpha=0.3)
    axes[-1][0].set(xlabel="optimizer step")
    save_figure(fig, path)


def _plot_val(curves: dict[str, list[list[dict[str, str]]]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = _colors(list(curves))
    for name, runs in curves.items():
        n = min((len(r) for r in runs), default=0)
        if n == 0:
            continue
        acc = np.array([[float(e["val_accuracy"]) for e in r[:n]] for r in runs])
        x = np.arange(1, n + 1)
        ax.plot(x, acc.mean(0), label=f"{name} (n={len(runs)})", color=colors[name], lw=1.8)
        if len(runs) > 1:
            ax.fill_between(x, acc.min(0), acc.max(0), color=colors[name], alpha=0.15, lw=0)
    ax.set(
        xlabel="epoch",
        ylabel="validation accuracy",
        title=PLOTS["val_accuracy"] + " (band: min–max over seeds)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    save_figure(fig, path)


def _plot_metrics(rows: list[dict[str, Any]], names: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(names) + 2), 4))
    width = 0.8 / len(TABLE_METRICS)
    cmap = plt.get_cmap("Set2")
    for j, m in enumerate(TABLE_METRICS):
        for i, name in enumerate(names):
            vals = [float(r[m]) for r in rows if r["schedule"] == name and r["status"] == "ok"]
            x = i + (j - (len(TABLE_METRICS) - 1) / 2) * width
            if vals:
                ax.bar(x, np.mean(vals), width, color=cmap(j), label=m if i == 0 else None)
                ax.scatter([x] * len(vals), vals, s=10, color="black", zorder=3)
    ax.set_xticks(range(len(names)), names, rotation=20)
    lows = [float(r[m]) for r in rows if r["status"] == "ok" for m in TABLE_METRICS]
    ax.set_ylim(max(0.0, min(lows, default=0.0) - 0.05), 1.0)
    ax.set(ylabel="test score (macro)", title=PLOTS["metrics"] + " (bars: mean, dots: seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=4, loc="lower right")
    save_figure(fig, path)


def _plot_confusion(name: str, results: list[dict[str, Any]], path: Path) -> None:
    cm = np.sum([np.array(r["test"]["confusion_matrix"]) for r in results], axis=0)
    classes = results[0]["test"]["classes"]
    fig, ax = plt.subplots(figsize=(5 + 0.2 * len(classes), 4.5 + 0.2 * len(classes)))
    ax.imshow(cm, cmap="Blues")
    if len(classes) <= 20:
        ticks = range(len(classes))
        ax.set_xticks(ticks, classes, rotation=90, fontsize=7)
        ax.set_yticks(ticks, classes, fontsize=7)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if v > cm.max() / 2 else "black",
            )
    ax.set(xlabel="predicted", ylabel="true", title=f"{name}: test confusion (summed over {len(results)} seeds)")
    save_figure(fig, path)


def build_report(out: Path, schedules: list[str] | None = None) -> list[dict[str, Any]]:
    """Write summary.csv, plots/*.png and report.md from the run folders; return the table."""
    rows = write_summary(out)
    names = schedules or schedule_order(out, rows)
    table = study_table(rows, names)
    folders = run_folders(out)
    by_name = {n: [f for f in folders if f.parent.name == n] for n in names}
    plots = out / "plots"
    traces = {}
    for n, fs in by_name.items():
        if fs:
            traces[n] = [(int(r["step"]), float(r["lr"])) for r in store.read_csv(fs[0] / "lr.csv")]
    plot_lr(traces, plots / "lr.png")
    _plot_val(
        {n: [store.read_csv(f / "epochs.csv") for f in fs] for n, fs in by_name.items()},
        plots / "val_accuracy.png",
    )
    _plot_metrics(rows, names, plots / "metrics.png")
    ranked = [r for r in table if not math.isnan(r["accuracy"])]
    best = max(ranked, key=lambda r: r["accuracy"])["schedule"] if ranked else None
    if best:
        results = [store.read_json(f / "result.json") for f in by_name[best]]
        _plot_confusion(best, [r for r in results if "test" in r], plots / "confusion.png")
    store.write_text(out / "report.md", _markdown(out, table, rows, best))
    return table


def _markdown(out: Path, table: list[dict[str, Any]], rows: list[dict[str, Any]], best: str | None) -> str:
    study = store.read_json(out / "study.json") if (out / "study.json").exists() else {}
    cfg, prov = study.get("config", {}), study.get("provenance", {})
    first = run_folders(out)[:1]
    run_cfg = store.read_json(first[0] / "config.json") if first else {}
    data, model = run_cfg.get("data", {}), run_cfg.get("model", {})
    lines = [f"# lrlab study: {cfg.get('name', out.name)}", ""]
    if cfg:
        m, t = cfg["model"], cfg["train"]
        sizes = ", ".join(f"{k} {data.get(k, '?')}" for k in ("train", "val", "test"))
        lines += [
            f"GoogLeNet ({model.get('stem', m['stem'])} stem, width {m['width']}, "
            f"{model.get('parameters', 0):,} parameters) on **{data.get('name', '?')}** "
            f"({sizes} images; test split: {data.get('test_source', '?')}), "
            f"{t['optimizer']} for {t['epochs']} epochs, "
            f"batch {t['batch_size']}, seeds {cfg['seeds']}. Same initial weights and batch order "
            "for every schedule of a seed.",
            "",
        ]
    lines += [
        "## Results",
        "",
        "Metrics on the test split (precision, recall and F1 are macro averages), mean over seeds:",
        "",
        format_table(table),
        "",
    ]
    if best:
        lines += [f"Highest mean accuracy: **{best}**.", ""]
    for key, title in PLOTS.items():
        if (out / "plots" / f"{key}.png").exists():
            lines += [f"### {title}", "", f"![{title}](plots/{key}.png)", ""]
    lines += [
        "## Runs",
        "",
        "| schedule | seed | status | accuracy | best val (epoch) | seconds |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        acc = "—" if r.get("accuracy") is None else f"{float(r['accuracy']):.4f}"
        bv = r.get("best_val_accuracy")
        best_val = "—" if bv in (None, -1.0) else f"{float(bv):.4f} ({r.get('best_epoch')})"
        lines.append(
            f"| {r['schedule']} | {r['seed']} | {r['status']} | {acc} | {best_val} | {float(r['seconds']):.1f} |"
        )
    if prov:
        lines += [
            "",
            f"lrlab {prov.get('lrlab')} (commit {prov.get('git_commit') or 'n/a'}), torch "
            f"{prov.get('torch')}, device {prov.get('device')}. Per-run files: `runs/<schedule>/seed-<k>/`.",
        ]
    return "\n".join(lines) + "\n"
