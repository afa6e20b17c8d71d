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


def test_lr_sensitivity_shows_the_peaks_where_every_run_diverged(tmp_path, monkeypatch):
    from pathlib import Path

    from lrlab import plots
    from lrlab.results import Run

    def run(base: str, peak: float, ok: bool) -> Run:
        result = {"schedule": f"{base}@{peak:g}", "seed": 0, "status": "ok" if ok else "diverged",
                  "test": {"accuracy": 0.9} if ok else None}  # fmt: skip
        return Run(Path("."), result, {"base_schedule": base, "peak_lr_axis": peak})

    runs = [run(b, pk, pk < 100) for b in ("standard", "onecycle") for pk in (0.01, 1.0, 100.0)]
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    plots.plot_sensitivity(runs, tmp_path / "lr_sensitivity.png")
    (ax,) = figures[0].axes
    low, high = ax.get_xlim()
    assert ax.get_xscale() == "log" and low < 0.01 and high > 100  # the diverged peak lies inside the axis
    crosses = [c for c in ax.collections if c.get_offsets().shape[0] and c.get_offsets()[0][0] == 100]
    assert len(crosses) == 2 and crosses[0].get_offsets()[0][1] != crosses[1].get_offsets()[0][1]  # not on top
