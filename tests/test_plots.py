"""Pure helpers behind the report's plots."""

from __future__ import annotations

import math

import pytest

from lrlab.plots import fraction_axis


def test_fraction_axis_stops_at_one_and_zero():
    # a two-seed t-interval of [0.76, 1.18] around dots at 0.95 and 0.99
    low, high = fraction_axis([0.76, 1.18, 0.95, 0.99])
    assert low == pytest.approx(0.76 - 0.05 * 0.24)
    assert high == pytest.approx(1.0 + 0.05 * 0.24)
    low, high = fraction_axis([-0.3, 0.2])
    assert low == pytest.approx(-0.01) and high == pytest.approx(0.21)


def test_fraction_axis_ignores_nan_and_handles_one_value():
    assert fraction_axis([math.nan]) is None and fraction_axis([]) is None
    low, high = fraction_axis([0.5, math.nan])
    assert low < 0.5 < high and high - low == pytest.approx(0.001)


def test_colors_are_tab10_then_their_light_shades():
    import matplotlib.pyplot as plt

    from lrlab.plots import _colors

    names = [f"s{i}" for i in range(12)]
    colors = _colors(names)
    assert [colors[f"s{i}"] for i in range(10)] == [plt.get_cmap("tab10")(i) for i in range(10)]
    assert len(set(colors.values())) == 12 and colors["s10"] == plt.get_cmap("tab20")(1)
    assert len(set(_colors([f"s{i}" for i in range(60)]).values())) == 60  # was 20: s20 took s0's colour


def test_an_lr_axis_gives_each_schedule_a_hue_and_each_peak_a_shade_of_it():
    import colorsys

    import matplotlib.pyplot as plt

    from lrlab.plots import _colors

    names = [f"{b}@{p}" for b in ("standard", "onecycle") for p in ("0.01", "0.1", "1")]
    colors = _colors(names)
    assert len(set(colors.values())) == 6
    for i, b in enumerate(("standard", "onecycle")):
        mine = [colors[f"{b}@{p}"][:3] for p in ("0.01", "0.1", "1")]
        hue = colorsys.rgb_to_hsv(*plt.get_cmap("tab10")(i)[:3])[0]
        assert all(abs(colorsys.rgb_to_hsv(*c)[0] - hue) < 0.02 for c in mine)  # the schedule's own hue
        assert sum(mine[0]) < sum(mine[1]) < sum(mine[2])  # dark at its first peak, light at its last
    assert _colors(["a", "b"]) == {"a": plt.get_cmap("tab10")(0), "b": plt.get_cmap("tab10")(1)}  # (no axis)


def test_a_line_on_top_of_an_earlier_one_is_dashed():
    from lrlab.plots import _dashes

    constant = [0.1] * 100
    warmup = [0.1 * min(1.0, i / 20) for i in range(100)]  # joins the constant at step 20
    cosine = [0.05 * (1 + math.cos(math.pi * i / 99)) for i in range(100)]
    styles = _dashes({"standard": constant, "warmup": warmup, "cosine": cosine, "short": [0.1] * 5})
    assert styles["standard"] == "-" and styles["cosine"] == "-" and styles["short"] == "-"
    assert styles["warmup"] != "-"
    # a stretch of a tenth of the points (at least 3) is running on top; fewer, or scattered, is not
    assert _dashes({"a": constant, "b": constant[:10] + [0.2] * 90})["b"] != "-"
    assert _dashes({"a": constant, "b": constant[:9] + [0.2] * 91})["b"] == "-"
    assert _dashes({"a": constant, "b": [0.1, 0.2] * 50})["b"] == "-"  # equal at every other point
    accuracy = [0.1, 0.3, 0.9, 0.95, 0.97, 0.96, 0.98, 0.98]  # 8 epochs: one epoch's match is chance
    assert _dashes({"a": accuracy, "b": [0.2, 0.3, 0.8, 0.95, 0.9, 0.96, 0.97, 0.98]})["b"] == "-"
    assert _dashes({"a": accuracy, "b": [0.2, 0.3, 0.9, 0.95, 0.9, 0.96, 0.97, 0.98]})["b"] != "-"


def test_lr_sensitivity_puts_diverged_runs_in_a_strip_of_their_own(tmp_path, monkeypatch):
    """A diverged run has no accuracy: its cross must not sit inside the accuracy axes, where any height reads as
    an accuracy, but in a strip under them labelled "diverged", on the shared LR axis (a peak where every run
    diverged still lies inside it), one row per schedule so that crosses at one peak do not hide each other."""
    from pathlib import Path

    from lrlab import plots
    from lrlab.results import Run

    def run(base: str, peak: float, ok: bool, seed: int = 0) -> Run:
        result = {"schedule": f"{base}@{peak:g}", "seed": seed, "status": "ok" if ok else "diverged",
                  "test": {"accuracy": 0.9} if ok else None}  # fmt: skip
        return Run(Path("."), result, {"base_schedule": base, "peak_lr_axis": peak})

    runs = [run(b, pk, pk < 100) for b in ("standard", "onecycle") for pk in (0.01, 1.0, 100.0)]
    runs.append(run("standard", 1.0, False, seed=1))  # one seed of two diverged at 1.0
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    plots.plot_sensitivity(runs, tmp_path / "lr_sensitivity.png")
    ax, strip = figures[0].axes
    low, high = ax.get_xlim()
    assert ax.get_xscale() == "log" and low < 0.01 and high > 100  # the diverged peak lies inside the axis
    assert strip.get_xlim() == ax.get_xlim() and strip.get_ylabel() == "diverged"
    assert all(c.get_offsets().shape[0] == 0 or 100 not in c.get_offsets()[:, 0] for c in ax.collections)
    figures[0].canvas.draw()  # lays the strip out
    assert strip.get_window_extent().y1 <= ax.get_window_extent().y0  # under the accuracy axes, not inside them
    rows = {tuple(xy) for c in strip.collections for xy in c.get_offsets().tolist()}
    assert rows == {(1.0, 0.0), (100.0, 0.0), (100.0, 1.0)}  # standard's row, then onecycle's
    assert [t.get_text() for t in strip.get_yticklabels()] == ["standard", "onecycle"]


def test_lr_sensitivity_without_diverged_runs_has_no_strip(tmp_path, monkeypatch):
    from pathlib import Path

    from lrlab import plots
    from lrlab.results import Run

    runs = [Run(Path("."), {"schedule": f"a@{pk:g}", "seed": 0, "status": "ok", "test": {"accuracy": 0.5 + pk}},
                {"base_schedule": "a", "peak_lr_axis": pk}) for pk in (0.01, 0.1)]  # fmt: skip
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    plots.plot_sensitivity(runs, tmp_path / "lr_sensitivity.png")
    (ax,) = figures[0].axes
    assert ax.get_xlabel() == "peak learning rate"


def test_a_name_the_font_cannot_draw_warns_nothing(tmp_path):
    import warnings

    from lrlab.plots import new_figure, save_figure

    fig, ax = new_figure((3, 2))
    ax.set_title("猫 and 狗")  # class names in a script DejaVu Sans lacks: boxes, not two warning lines each
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_figure(fig, tmp_path / "cjk.png")
    assert (tmp_path / "cjk.png").stat().st_size > 0


def test_a_study_whose_every_run_diverged_is_plotted(tmp_path, monkeypatch):
    """Every run diverged (an LR far too high): the report exists to say so, so its plots must not fail (the
    accuracy plot's seed offsets had one entry for no seed; the curves asked for a legend of no lines)."""
    import warnings
    from pathlib import Path

    from lrlab import plots
    from lrlab.results import Run, study_table

    groups = {name: [Run(Path("."), {"schedule": name, "seed": seed, "status": "diverged", "test": None}, {})
                     for seed in (0, 1)] for name in ("standard", "onecycle")}  # fmt: skip
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels found to put in legend"
        plots.plot_final(study_table(groups), groups, tmp_path / "accuracy.png")
        plots.plot_curves(groups, "val_accuracy", "validation accuracy", tmp_path / "val_accuracy.png")
    assert len(figures) == 2
    texts = [t.get_text() for t in figures[0].axes[0].texts]
    assert texts == ["2 diverged", "2 diverged"]


def test_a_seeds_grey_line_breaks_where_a_schedule_did_not_finish_it(tmp_path, monkeypatch):
    """Seed 1 diverged in the middle schedule: its line joined the first schedule's dot straight to the third's,
    crossing the middle column as if it had a run there."""
    from pathlib import Path

    from lrlab import plots
    from lrlab.metrics import ALL_METRICS
    from lrlab.results import Run, study_table

    def run(name, seed, acc):
        scores = dict.fromkeys(ALL_METRICS, acc)  # (study_table summarises each)
        status = {"status": "diverged", "test": None} if acc is None else {"status": "ok", "test": scores}
        return Run(Path("."), {"schedule": name, "seed": seed, **status}, {})

    accs = {"standard": (0.5, 0.6), "annealing": (0.7, None), "onecycle": (0.8, 0.9)}
    groups = {name: [run(name, seed, acc) for seed, acc in enumerate(pair)] for name, pair in accs.items()}
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    plots.plot_final(study_table(groups), groups, tmp_path / "accuracy.png")
    grey = [line.get_ydata() for line in figures[0].axes[0].lines if line.get_color() == "0.6"]
    seed0, seed1 = sorted(grey, key=lambda y: y[0])
    assert list(seed0) == [0.5, 0.7, 0.8]
    assert seed1[0] == 0.6 and math.isnan(seed1[1]) and seed1[2] == 0.9  # a gap at annealing, not a line across


def test_differences_plot_shows_each_seed_the_mean_and_its_interval_in_order(tmp_path, monkeypatch):
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_rgba

    from lrlab import plots
    from lrlab.stats import Comparison

    def comp(name: str, n: int, mean: float, low: float, high: float, verdict: str) -> Comparison:
        return Comparison(name, "standard", n, mean, low, high, 0.01, 0.02, 0.03, 3, "t-test", verdict)

    rows = [
        (comp("onecycle", 3, 0.02, 0.01, 0.03, "better"), np.array([0.01, 0.02, 0.03]), "better"),
        (comp("warmup", 2, -0.01, -0.01, -0.01, "no clear difference"), np.array([-0.01, -0.01]), "n"),
        (comp("cyclic", 0, math.nan, math.nan, math.nan, "no pairs"), np.array([]), "no pairs"),
    ]
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    plots.plot_differences(rows, "standard", tmp_path / "differences.png")
    (ax,) = figures[0].axes
    labels = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True))
    assert labels == {2: "onecycle", 1: "warmup", 0: "cyclic"}  # the first on top
    points = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    dots = [p for p in points if len(p) > 1]  # the seeds' dots (a diamond is one point)
    assert sorted(dots[0][:, 0]) == [0.01, 0.02, 0.03] and np.allclose(dots[0][:, 1].round(2), [2.12, 1.88, 2.22])
    assert list(dots[1][:, 0]) == [-0.01, -0.01] and np.allclose(dots[1][:, 1], [1.12, 0.88])  # none on the bar
    diamonds = [tuple(p[0]) for p in points if len(p) == 1]
    assert diamonds == [(0.02, 2.0), (-0.01, 1.0)]  # none for the row without pairs
    bars = [seg for c in ax.collections for seg in getattr(c, "get_segments", list)() if len(seg) == 2]
    spans = {(tuple(np.round(s[0], 9)), tuple(np.round(s[1], 9))) for s in bars}
    assert ((0.01, 2.0), (0.03, 2.0)) in spans  # onecycle's interval, at its row
    assert not any(s[0][1] == 1.0 and s[0][0] != s[1][0] for s in bars)  # no-spread warmup: no bar drawn
    notes = {t.get_text(): t.get_color() for t in ax.texts}
    assert to_rgba(notes["better"]) == to_rgba(plots.VERDICT_COLORS["better"]) and "no pairs" in notes
    assert ax.get_xlim()[0] < -0.01 and ax.get_xlim()[1] > 0.03
    assert ax.get_title() == "Seeds as dots, mean difference and 95% interval (unadjusted)"
    # one pair each (a one-seed study): the title promises no interval
    plots.plot_differences([(comp("onecycle", 1, 0.02, math.nan, math.nan, "untested"), np.array([0.02]), "u")],
                           "standard", tmp_path / "differences.png")  # fmt: skip
    assert figures[-1].axes[0].get_title() == "One seed's difference each: no interval"
