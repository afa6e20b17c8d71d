"""The study's plots (matplotlib, files only): LR schedules, per-epoch curves with a band over
seeds, final accuracy per schedule, differences from the baseline, LR sensitivity, confusion matrix."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.ticker import (
    FixedFormatter,
    FixedLocator,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

from lrlab import store
from lrlab.config import schedule_of
from lrlab.errors import unknown
from lrlab.results import LEVEL, Run
from lrlab.stats import Comparison


def new_figure(size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure and its axes (one place that imports pyplot for every plot of lrlab)."""
    return plt.subplots(figsize=size)


def image_format(path: Path) -> str:
    """The image format a plot file's name asks for ("lr.svg": svg), one of matplotlib's; PNG for a
    name without an extension (/dev/stdout). An extension matplotlib cannot write is refused."""
    ext = path.suffix[1:].lower()
    if not ext:
        return "png"
    formats = set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"}  # pgf: needs a TeX installation
    if ext not in formats:
        raise unknown(f"image format of {str(path)!r}:", ext, sorted(formats))
    return ext


def save_figure(fig: Any, path: Path) -> None:
    """Save a figure in the format its name asks for (`image_format`) atomically (temporary file,
    then rename; straight into a device or pipe) and free it."""
    real = store.landing(path)
    fmt = image_format(path)
    try:
        with warnings.catch_warnings():
            # a name in a script the font lacks (CJK in DejaVu Sans) is drawn as boxes; matplotlib's two-line
            # warning per glyph, with its source path, said nothing that the plot does not show
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
            if real is None:
                with store.open_stream(path) as f:
                    fig.savefig(f, dpi=110, bbox_inches="tight", format=fmt)
                return
            tmp = real.with_name(f".{real.name}.tmp")
            try:
                fig.savefig(tmp, dpi=110, bbox_inches="tight", format=fmt)
                tmp.replace(real)
            except BaseException as e:  # a full disk, a folder without write permission; Ctrl-C
                tmp.unlink(missing_ok=True)
                if isinstance(e, OSError):
                    raise store.write_failed(real, e) from None
                raise
    finally:
        plt.close(fig)


def _colors(names: list[str]) -> dict[str, Any]:
    """tab20's ten dark hues first, then their light shades: neighbours in the list never get two
    shades of one hue, and up to ten schedules get ten distinct hues; then tab20b's and tab20c's
    colours (an LR axis of six schedules at four peaks has 24 names), repeating only past 60."""
    tab20 = plt.get_cmap("tab20")
    palette = [tab20(i) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    palette += [plt.get_cmap(m)(i) for i in range(20) for m in ("tab20b", "tab20c")]
    families: dict[str, list[str]] = {}  # schedule -> its names (its peaks, on an LR axis)
    for n in names:
        families.setdefault(schedule_of(n), []).append(n)
    if len(families) < len(names) and len(families) <= 10:  # an LR axis: a hue per schedule, a shade per peak LR
        return _shades(families, palette)
    return {n: palette[i % len(palette)] for i, n in enumerate(names)}


def _shades(families: dict[str, list[str]], palette: list[Any]) -> dict[str, Any]:
    """Each schedule's `schedule@peak` names in its hue (palette's in turn), from dark (its first peak) to light
    (its last): the lines of one schedule read as one family, its peaks in order (18 lines in 18 unrelated colours
    did not)."""
    out = {}
    for hue, mine in zip(palette, families.values(), strict=False):
        base_rgb = np.asarray(mcolors.to_rgb(hue))
        for k, name in enumerate(mine):
            f = -0.45 + k / (len(mine) - 1) if len(mine) > 1 else 0.0  # -0.45 (darker) .. 0.55 (lighter)
            rgb = base_rgb * (1 + f) if f < 0 else base_rgb + (1 - base_rgb) * f
            out[name] = (*rgb.tolist(), 1.0)
    return out


def _dashes(series: dict[str, Any]) -> dict[str, Any]:
    """A line style per series: dashed where a series runs on top of one drawn before it (a warm-up
    into a constant LR hides the constant baseline for most of training), so that the earlier line
    shows through the gaps; solid otherwise. Running on top: equal over a stretch of consecutive
    points, a tenth of them and at least 3 (a crossing, or two accuracies of k/270 that happen to
    match at one epoch, is not)."""
    drawn: list[np.ndarray] = []
    styles = {}
    for name, values in series.items():
        v = np.asarray(values, dtype=float)
        need = max(3, math.ceil(0.1 * v.size))
        on_top = any(_longest_run(np.isclose(v, u, rtol=1e-9, atol=0)) >= need for u in drawn if u.shape == v.shape)
        styles[name] = (0, (5, 3)) if on_top else "-"
        drawn.append(v)
    return styles


def _longest_run(same: np.ndarray) -> int:
    """The most consecutive True values."""
    best = run = 0
    for s in same:
        run = run + 1 if s else 0
        best = max(best, run)
    return best


def plot_lr(
    traces: dict[str, list[tuple[int, float]]],
    path: Path,
    title: str = "Learning rate against optimizer step",
    momentum: dict[str, list[tuple[int, float]]] | None = None,
) -> None:
    """Overlay of LR against step, one line per schedule; scheduled momentum in a panel below."""
    colors = _colors(list(traces))
    styles = _dashes({n: [lr for _, lr in tr] for n, tr in traces.items()})
    rows = 2 if momentum else 1
    fig, axes = plt.subplots(
        rows, 1, figsize=(8, 4 + 2 * (rows - 1)), sharex=True, squeeze=False, height_ratios=[2, 1][:rows]
    )
    ax = axes[0][0]
    for name, tr in traces.items():
        steps, lrs = zip(*tr, strict=True) if tr else ((), ())
        ax.plot(steps, lrs, label=name, color=colors[name], lw=1.6, ls=styles[name])
    peaks = [max(lr for _, lr in tr) for tr in traces.values() if tr]
    if peaks and min(peaks) > 0 and max(peaks) / min(peaks) > 30:  # an LR axis: peaks decades apart
        ax.set_yscale("log")  # else the small peaks lie flat along zero (zero LRs are left out)
        ax.set_ylim(bottom=min(peaks) / 1e3)  # three decades under the smallest peak: the shapes, not 1e-7 tails
    ax.set(ylabel="learning rate" + (" (log scale)" if ax.get_yscale() == "log" else ""), title=title)
    ax.grid(alpha=0.3)
    # beside the plot when there are several lines, so that the legend hides none of them (inside, it
    # covered the warm-up starts at the lower left)
    many = len(traces) > 4
    ax.legend(fontsize=8, ncol=1 if many else 2, **({"loc": "upper left", "bbox_to_anchor": (1.01, 1)} if many else {}))
    if momentum:
        mx = axes[1][0]
        for name, tr in momentum.items():
            steps, ms = zip(*tr, strict=True)
            mx.plot(steps, ms, color=colors[name], lw=1.4, ls=styles[name])  # as its LR line above: no legend
        mx.set(ylabel="momentum")
        mx.grid(alpha=0.3)
    axes[-1][0].set(xlabel="optimizer step")
    save_figure(fig, path)


def plot_curves(groups: dict[str, list[Run]], key: str, ylabel: str, path: Path) -> None:
    """A per-epoch quantity, mean over seeds with a min–max band."""
    fig, ax = new_figure((8, 4))
    colors = _colors(list(groups))
    arrays = {}  # per schedule: seeds × epochs, over the epochs every finished seed has
    for name, runs in groups.items():
        curves = [[float(e[key]) for e in r.csv("epochs.csv")] for r in runs if r.ok]
        n = min((len(c) for c in curves), default=0)
        if n:
            arrays[name] = np.array([c[:n] for c in curves])
    styles = _dashes({name: arr.mean(0) for name, arr in arrays.items()})
    for name, arr in arrays.items():
        x = np.arange(1, arr.shape[1] + 1)
        label = f"{name} (n={len(arr)})"
        ax.plot(x, arr.mean(0), label=label, color=colors[name], lw=1.8, ls=styles[name])
        if len(arr) > 1:
            ax.fill_between(x, arr.min(0), arr.max(0), color=colors[name], alpha=0.15, lw=0)
    banded = any(len(arr) > 1 for arr in arrays.values())  # (one seed each: no band to speak of)
    title = f"{ylabel.capitalize()} against epoch" + (" (band: min–max over seeds)" if banded else " (one seed each)")
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no 1.5 ticks
    if key.endswith("loss"):
        ax.set_yscale("log")
        # plain numbers (0.3, 0.5, 2), not 3×10⁻¹, at 1-2-5 steps, minor ticks too: a loss spans under a decade
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=20))
        ax.yaxis.set_minor_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3)
    if arrays:  # (none where every run diverged); beside the plot past four lines, as plot_lr's
        many = len(arrays) > 4
        ax.legend(fontsize=8, ncol=1 if many else 2, **({"loc": "upper left", "bbox_to_anchor": (1.01, 1)} if many
                                                        else {}))  # fmt: skip
    save_figure(fig, path)


def fraction_axis(values: list[float]) -> tuple[float, float] | None:
    """Y limits for values that are fractions (accuracies) and their intervals: a t-interval over
    two or three seeds can reach past 1 or below 0, a fraction cannot, so the axis stops 5 % of
    its span beyond [0, 1] and such a bar runs off the edge instead of squashing the dots."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return None
    low, high = max(min(finite), 0.0), min(max(finite), 1.0)
    pad = 0.05 * max(high - low, 0.01)
    return low - pad, high + pad


def plot_final(
    table: list[dict[str, Any]], groups: dict[str, list[Run]], path: Path, floor: float | None = None
) -> None:
    """Final test accuracy per schedule: every seed a dot, the mean and its interval as a bar. A seed keeps
    its place beside every schedule's bar and a grey line joins its runs, so the pairing the comparisons
    rest on shows: seeds that move together make parallel lines, however wide the bars. `floor`: the accuracy
    of always answering the commonest class, a dotted line where it falls inside the axis."""
    names = [row["schedule"] for row in table]
    fig, ax = new_figure((max(6, 0.9 * len(names) + 2), 4))
    colors = _colors(names)
    seeds = sorted({r.seed for row in table for r in groups[row["schedule"]] if r.ok})
    offset = dict(zip(seeds, np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 else [0.0] * len(seeds),
                      strict=True))  # fmt: skip
    joined: dict[int, list[tuple[float, float]]] = {seed: [] for seed in seeds}
    for i, row in enumerate(table):
        done = [r for r in groups[row["schedule"]] if r.ok]
        for r in done:
            joined[r.seed].append((i + offset[r.seed], r.metric("accuracy")))
        for seed in seeds:  # a seed this schedule did not finish: its line breaks here (matplotlib stops at nan)
            if not any(r.seed == seed for r in done):
                joined[seed].append((i + offset[seed], math.nan))
        xs, vals = [i + offset[r.seed] for r in done], [r.metric("accuracy") for r in done]
        # the dots over the mean's bar: a seed near the mean was hidden behind it
        ax.scatter(xs, vals, s=24, color=colors[row["schedule"]], edgecolors="white", linewidths=0.6, zorder=5)
        s = row["accuracy"]
        if s.n:
            ax.plot([i - 0.3, i + 0.3], [s.mean, s.mean], color="black", lw=1.5, zorder=4)
        if s.n > 1:
            ax.errorbar(i, s.mean, yerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]], color="black", capsize=6, lw=1.2)
        if row["diverged"]:
            ax.annotate(f"{row['diverged']} diverged", (i, 0.02), xycoords=("data", "axes fraction"),
                        ha="center", fontsize=8, color="crimson")  # fmt: skip
    if len(table) > 1:
        for points in joined.values():
            if sum(math.isfinite(v) for _, v in points) > 1:
                ax.plot(*zip(*points, strict=True), color="0.6", lw=0.7, alpha=0.7, zorder=2)
    ends = [v for row in table if row["accuracy"].n for v in (row["accuracy"].ci_low, row["accuracy"].ci_high)]
    ends += [r.metric("accuracy") for runs in groups.values() for r in runs if r.ok]
    if (limits := fraction_axis(ends)) is not None:
        ax.set_ylim(*limits)
        if floor is not None and limits[0] <= floor <= limits[1]:  # (not stretching the axis down to it)
            ax.axhline(floor, color="0.45", ls=":", lw=1, zorder=1)
            ax.annotate("commonest class", (1, floor), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                        textcoords="offset points", ha="right", fontsize=8, color="0.35")  # fmt: skip
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    many = any(row["accuracy"].n > 1 for row in table)
    shown = (
        f"seeds as dots (a seed's runs joined), mean and {LEVEL:.0%} interval" if many else "one seed each, no interval"
    )
    ax.set(ylabel="test accuracy", title=f"Final test accuracy: {shown}")
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


# Okabe and Ito's blue and vermillion: a verdict's colour that colour-blind readers tell apart too (the verdict
# is also written beside its row)
VERDICT_COLORS = {"better": "#0072B2", "worse": "#D55E00"}


def plot_differences(rows: list[tuple[Comparison, np.ndarray, str]], baseline: str, path: Path) -> None:
    """A forest plot of the comparisons: per row (comparison, the paired differences seed by seed, the text
    beside it; labelled with its schedule) every seed's difference a dot, the mean difference a diamond and its
    interval a bar, 0 a dashed line, coloured by verdict. Where the bar crosses 0 the seeds have not shown a
    difference; the dots show whether one seed made it."""
    fig, ax = new_figure((7.5, 0.5 * len(rows) + 1.7))
    for y, (c, diffs, note) in zip(range(len(rows) - 1, -1, -1), rows, strict=True):  # the first row on top
        color = VERDICT_COLORS.get(c.verdict, "0.35")
        if diffs.size:
            # above and below the bar by turns, none on it: seeds that moved alike (k/n of one test split) overlap
            i = np.arange(diffs.size)
            spread = np.where(i % 2, -1, 1) * (0.12 + 0.1 * (i // 2) / max(1, (diffs.size - 1) // 2))
            ax.scatter(diffs, y + spread, s=20, color=color, alpha=0.6, linewidths=0, zorder=3)
        if math.isfinite(c.diff_ci_low) and c.diff_ci_low < c.diff_ci_high:
            ax.errorbar(c.diff_mean, y, xerr=[[c.diff_mean - c.diff_ci_low], [c.diff_ci_high - c.diff_mean]],
                        fmt="none", ecolor=color, elinewidth=2.2, capsize=5, zorder=4)  # fmt: skip
        if c.n:
            ax.scatter([c.diff_mean], [y], marker="D", s=42, color=color, edgecolors="white", linewidths=0.8,
                       zorder=5)  # fmt: skip
        ax.annotate(note, (1, y), xycoords=("axes fraction", "data"), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=8, color=color)  # fmt: skip
    ax.axvline(0, color="0.3", lw=0.9, ls="--", zorder=1)
    ax.set_yticks(range(len(rows) - 1, -1, -1), [c.schedule for c, *_ in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+.3g}" if v else "0"))
    tested = any(c.n > 1 for c, *_ in rows)
    title = f"Seeds as dots, mean difference and {LEVEL:.0%} interval (unadjusted)" if tested else (
        "One seed's difference each: no interval")  # fmt: skip
    ax.set(xlabel=f"difference in test accuracy from {baseline}, paired by seed", title=title)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)


def plot_confusion(name: str, runs: list[Run], path: Path) -> None:
    cm = np.sum([np.array(r.result["test"]["confusion_matrix"]) for r in runs], axis=0)
    classes = runs[0].result["test"]["classes"]
    k = len(classes)
    fig, ax = new_figure((5 + 0.2 * k, 4.5 + 0.2 * k))
    ax.imshow(cm, cmap="Blues")
    if k <= 20:
        ax.set_xticks(range(k), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(k), classes, fontsize=7)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6, color="white" if v > cm.max() / 2 else "black")
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title=f"{name}: test confusion matrix" + (f" (summed over {len(runs)} seeds)" if len(runs) > 1 else ""),
    )
    save_figure(fig, path)


def plot_sensitivity(runs: list[Run], path: Path) -> None:
    """Final accuracy against the peak LR of the LR axis, one line per schedule. A diverged run has no
    accuracy, so its cross goes in a strip of its own under the plot, labelled "diverged" and sharing the LR
    axis, one row per schedule with a diverged run so that crosses at one peak do not hide each other."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    bases = list(dict.fromkeys(r.config.get("base_schedule", r.name) for r in runs))
    colors = _colors(bases)
    fig, ax = new_figure((7, 4.5))
    diverged: dict[str, list[float]] = {}  # schedule: the peaks where a run of it diverged
    for base in bases:
        mine = [r for r in runs if r.config.get("base_schedule") == base]
        peaks = sorted({float(r.config["peak_lr_axis"]) for r in mine})
        means = []
        for pk in peaks:
            at = [r for r in mine if float(r.config["peak_lr_axis"]) == pk]
            ok = [r.metric("accuracy") for r in at if r.ok]
            # above the line's mean markers (a seed at the mean, or at another schedule's, stays in view)
            ax.scatter([pk] * len(ok), ok, s=12, color=colors[base], alpha=0.6, edgecolors="white", linewidths=0.4,
                       zorder=3)  # fmt: skip
            if len(ok) < len(at):
                diverged.setdefault(base, []).append(pk)
            means.append(float(np.mean(ok)) if ok else math.nan)
        ax.plot(peaks, means, marker="o", markersize=7, markerfacecolor="none", color=colors[base], label=base)
    ax.set_xscale("log")
    # ticks at the peaks the runs used, labelled as given (%g): a log axis's own minor labels (3×10⁻², 4×10⁻²)
    # ran into each other and left some peaks unlabelled
    tested = sorted({float(r.config["peak_lr_axis"]) for r in runs})
    ax.xaxis.set_major_locator(FixedLocator(tested))
    ax.xaxis.set_major_formatter(FixedFormatter([f"{v:g}" for v in tested]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set(ylabel="test accuracy", title="LR sensitivity (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    bottom = ax
    if diverged:
        # a cross inside the accuracy axes, at any height, reads as an accuracy: the strip keeps them apart; the
        # shared LR axis autoscales over both, so a peak where every run diverged still lies inside it
        high = 0.2 + 0.16 * len(diverged)  # inches; the figure grows by it, so the accuracy axes keep about their size
        fig.set_size_inches(7, 4.5 + high + 0.1)
        bottom = make_axes_locatable(ax).append_axes("bottom", size=high, pad=0.1, sharex=ax)
        for row, (base, peaks) in enumerate(diverged.items()):
            bottom.scatter(peaks, [row] * len(peaks), marker="x", s=40, color=colors[base])
        bottom.set_ylim(len(diverged) - 0.4, -0.6)  # rows in the legend's order, top down
        bottom.set_yticks(range(len(diverged)), list(diverged), fontsize=7)
        bottom.set_ylabel("diverged", rotation=0, ha="right", va="center")
        bottom.grid(axis="x", alpha=0.3)
        ax.tick_params(labelbottom=False)
    bottom.set_xlabel("peak learning rate")
    save_figure(fig, path)
