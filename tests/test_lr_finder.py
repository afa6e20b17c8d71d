"""The LR range test: suggestion rules on known curves, weights restored, `lrlab find-lr`, and
`lr = "auto"` in a study."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from lrlab import config
from lrlab.cli import main
from lrlab.lr_finder import RangeTest, range_test, suggest_minimum, suggest_steepest, suggest_valley
from lrlab.study import prepare

LRS = np.logspace(-5, 1, 61)  # ten points per decade


def curve() -> np.ndarray:
    """Flat at 2.3 up to 1e-3, falls to 0.5 at 1e-1 (steepest near 1e-2), then explodes."""
    x = np.log10(LRS)
    loss = 2.3 - 1.8 / (1 + np.exp(-4 * (x + 2)))
    return np.where(x > -1, 0.5 + 5 * (x + 1) ** 2, loss)


def test_rules_on_a_known_curve():
    loss = curve()
    assert suggest_steepest(LRS, loss) == pytest.approx(1e-2, rel=0.3)
    assert suggest_minimum(LRS, loss) == pytest.approx(1e-1 / 10, rel=0.3)
    assert 1e-3 < suggest_valley(LRS, loss) < 1e-1


def test_steepest_looks_only_on_the_way_down_to_the_bottom():
    """Past the lowest loss the LR is already too high; a steep drop there (a noisy bump, as CIFAR-10 gave at
    LR 0.8 on the CPU config) must not be the steepest suggestion."""
    loss = curve()
    bumped = loss.copy()
    after = np.flatnonzero(LRS > 0.2)[:4]  # past the bottom at 0.1: a rise, then a drop steeper than the fall
    bumped[after] = [2.0, 3.5, 0.6, 0.7]
    assert suggest_steepest(LRS, bumped) == suggest_steepest(LRS, loss) == pytest.approx(1e-2, rel=0.3)
    assert suggest_steepest(LRS, loss[::-1].copy()) == LRS[0]  # lowest at the start: nothing falls before it
    # a sharp last step into the bottom (a short sweep): the step before it, not the bottom's LR (minimum/10's edge)
    lrs = np.geomspace(1e-3, 1.0, 7)
    assert suggest_steepest(lrs, np.array([1.0, 0.95, 0.9, 0.85, 0.8, 0.3, 0.9])) == lrs[4]


def test_valley_ignores_an_early_dip_of_the_plateau():
    """A noisy plateau that dips once below the "loss starts to fall" level far before the real fall must not
    move the valley: the fall's start is searched back from the bottom."""
    loss = curve()
    dipped = loss.copy()
    dipped[3] -= 0.5  # at 2e-5, four decades before the fall
    assert suggest_valley(LRS, dipped) == suggest_valley(LRS, loss) == pytest.approx(10**-1.8, rel=0.01)


def test_a_curve_that_cannot_place_a_valley_comes_with_a_caution_that_says_which_way():
    flat = RangeTest([1e-3, 1e-2, 1e-1], [2.3, 2.29, 2.28], [2.3, 2.29, 2.28], False, fall=0.01)
    assert "fell by only 1.0%" in flat.caution() and flat.caution().endswith("find-lr --steps more, or a wider "
                                                                             "--start-lr/--end-lr")  # fmt: skip
    assert dataclasses.replace(flat, fall=0.2).caution() is None
    rose = dataclasses.replace(flat, fall=0.0, bottom="start")
    assert rose.caution().endswith("below start_lr; the suggestions are unreliable: find-lr --start-lr lower")
    falling = dataclasses.replace(flat, fall=0.4, bottom="end")
    assert falling.caution().startswith("the loss was still falling at the sweep's end (0.1)")
    assert falling.caution().endswith("find-lr --end-lr higher")
    assert dataclasses.replace(falling, stopped_early=True).caution() is None  # it diverged: the valley is inside
    # a study's own test cannot take find-lr's flags: the way out there is an LR given
    assert falling.caution(study=True).endswith("give the LR with --auto-lr LR, or set the LRs by hand")


def test_a_sweep_that_ends_before_the_valley_says_so():
    p = prepare(config.load(None, QUICK))
    torch.manual_seed(0)
    model = p.build().eval()
    short = range_test(model, p.inputs, p.cfg.train, p.device, start_lr=1e-6, end_lr=1e-3, steps=40)
    assert short.bottom == "end" and not short.stopped_early and "still falling" in short.caution()
    assert not model.training and all(w.grad is None for w in model.parameters())  # left as it came


def plotted_range_test(test: RangeTest, monkeypatch):
    """The figure plot_range_test draws (drawn, not saved)."""
    from lrlab import plots
    from lrlab.lr_finder import plot_range_test

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    plot_range_test(test, "unused.png")
    (fig,) = figures
    fig.canvas.draw()
    return fig


def test_range_test_plot_keeps_the_raw_loss_in_view(monkeypatch):
    """The raw loss dips well below the smoothed one where the loss falls: the lower limit takes it too; the
    upper limit still stops short of a diverging tail."""
    smoothed = list(curve())
    losses = [v - (0.4 if 1e-3 < lr < 1e-1 else 0.0) for lr, v in zip(LRS, smoothed, strict=True)]
    test = RangeTest(list(LRS), losses, smoothed, True, {"steepest": 1e-2, "minimum/10": 1e-2, "valley": 1e-2})
    (ax,) = plotted_range_test(test, monkeypatch).axes
    low, high = ax.get_ylim()
    assert low <= min(losses) < min(smoothed) and high < max(smoothed)  # max: 0.5 + 5 * 2**2
    assert ax.get_xscale() == "log"
    # a bottom so low that 4x it is under the starting plateau (digits: 0.46 against 2.3): the plateau stays in view
    deep = [v - 0.45 if 0.05 < lr < 0.2 else v for lr, v in zip(LRS, smoothed, strict=True)]
    (ax,) = plotted_range_test(dataclasses.replace(test, smoothed=deep, losses=deep), monkeypatch).axes
    assert 4 * min(deep) < 2.3 < ax.get_ylim()[1] < max(deep)
    assert [t.get_text() for t in ax.get_legend().get_texts()][2:] == ["steepest: 0.01", "minimum/10: 0.01",
                                                                        "valley: 0.01"]  # fmt: skip


def test_coinciding_suggestions_do_not_hide_each_other(monkeypatch):
    """Two rules at one LR: both lines' colours show along it (the one drawn last does not cover the other)."""
    import matplotlib.colors as mcolors

    test = RangeTest(list(LRS), list(curve()), list(curve()), True, {"steepest": 1e-3, "minimum/10": 1e-2,
                                                                     "valley": 1e-2})  # fmt: skip
    fig = plotted_range_test(test, monkeypatch)
    (ax,) = fig.axes
    ax.get_legend().remove()  # its samples hold both colours too
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)
    x = round(ax.transData.transform((1e-2, 1.0))[0])
    box = ax.get_window_extent()
    column = pixels[round(pixels.shape[0] - box.y1) + 2 : round(pixels.shape[0] - box.y0) - 2, x - 1 : x + 2]
    for color in ("C2", "C3"):  # minimum/10's and valley's
        target = 255 * np.asarray(mcolors.to_rgb(color))
        assert (np.linalg.norm(column - target, axis=-1) < 40).sum() > 20, color


QUICK = {"data.limit": 300, "train.batch_size": 32, "model.width": 0.125}


def test_range_test_restores_weights_and_stops_on_divergence():
    p = prepare(config.load(None, QUICK))
    torch.manual_seed(0)
    model = p.build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    test = range_test(model, p.inputs, p.cfg.train, p.device, start_lr=1e-4, end_lr=1e4, steps=60)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert test.stopped_early and len(test.lrs) < 60  # 1e4 diverges
    assert set(test.suggestions) == {"steepest", "minimum/10", "valley"}
    assert all(1e-4 <= v <= 1e4 for v in test.suggestions.values())


def test_find_lr_command(tmp_path, capsys):
    args = ["find-lr", "--limit", "300", "--batch-size", "32", "--width", "0.125", "--steps", "40"]
    assert main([*args, "--out", str(tmp_path), "--progress"]) == 0
    said = capsys.readouterr()
    printed = said.out
    assert "find-lr: step 40/40 (100%)" in said.err  # --progress into a pipe: its bar as lines, to the end
    assert "steepest" in printed and "valley" in printed and "weights restored" in printed
    assert "with the LR at " in printed
    # another sweep than a study's: the valley it finds is not the one "auto" would take
    assert '<- the rule of lr = "auto", whose own test sweeps 1e-05 to 10 in 200 steps' in printed
    saved = json.loads((tmp_path / "find-lr.json").read_text())
    assert set(saved["suggestions"]) == {"steepest", "minimum/10", "valley"}
    assert (tmp_path / "find-lr.png").stat().st_size > 5000
    assert len((tmp_path / "find-lr.csv").read_text().splitlines()) > 10


def test_find_lr_says_the_lr_and_the_loss_where_it_diverged(tmp_path, capsys, monkeypatch):
    """The number after "diverged" was the LR, read as the loss: the line names the LR and gives the loss."""
    from lrlab import lr_finder

    lrs = [1e-3 * 2**i for i in range(14)]  # up to 8.19
    smoothed = [2.3] * 10 + [2.0, 1.5, 4.0, 9.3]
    stopped = RangeTest(lrs, [v + 0.1 for v in smoothed], smoothed, True, {"steepest": 0.5, "valley": 0.6}, 0.35)
    monkeypatch.setattr(lr_finder, "range_test", lambda *a, **k: stopped)
    assert main(["find-lr", "--limit", "300", "--width", "0.125", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "stopped when the loss diverged (smoothed loss 9.3) with the LR at 8.19; weights restored" in printed


def test_find_lr_takes_a_config_whose_schedules_do_not_fit_its_steps(tmp_path, capsys, monkeypatch):
    """The test trains no schedule: the default study's uneven-cyclic, whose half-epoch rise is under a step at
    --limit 100, refused find-lr --limit 100. Its keys are still checked; a data key it does not read is said."""
    from lrlab import lr_finder

    curve = [2.3 - 0.1 * i for i in range(10)]
    fell = RangeTest([1e-3 * 2**i for i in range(10)], curve, curve, False, {"valley": 0.01}, 0.4)
    monkeypatch.setattr(lr_finder, "range_test", lambda *a, **k: fell)
    args = ["find-lr", "--limit", "100", "--width", "0.125", "--download", "--out", str(tmp_path)]
    assert main([*args, "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "note: data.download not read: the digits come with scikit-learn" in out
    assert "note: --epochs not read: the range test trains --steps steps" in out
    assert main(args) == 0 and "--epochs not read" not in capsys.readouterr().out
    assert main([*args, "--set", "schedules.standard.lr=-1"]) == 2
    assert "schedules.standard.lr: a learning rate must be positive, got -1" in capsys.readouterr().err


def test_auto_lr_in_a_study_uses_the_valley_rule(short_range_test):
    cfg = config.load(None, QUICK)
    cfg.schedules = {
        "auto-cyclic": {"type": "cyclic", "base_lr": "auto", "max_lr": "auto", "up_epochs": 1},
        "fixed": {"type": "constant", "lr": 0.05},
    }
    p = prepare(cfg)
    lr = p.auto_lr["lr"]
    assert p.auto_lr["rule"] == "valley" and lr == p.auto_lr["suggestions"]["valley"]
    assert p.specs["auto-cyclic"]["max_lr"] == lr and p.specs["auto-cyclic"]["base_lr"] == pytest.approx(lr / 10)
    assert p.schedules["auto-cyclic"].peak_lr == lr
    assert p.specs["fixed"] == {"type": "constant", "lr": 0.05}


def test_range_test_reads_a_streamed_split_with_the_runs_loader_workers(monkeypatch):
    """data.loader_workers decode a streamed image folder's batches in the range test as in the run (the test read
    them in its own process)."""
    from lrlab import lr_finder

    p = prepare(config.load(None, {**QUICK, "data.loader_workers": 3}))
    asked = []

    def spy(*args, **kwargs):
        asked.append(args[4:] + tuple(kwargs.values()))
        return batches(*args, **kwargs)

    batches = lr_finder.batches
    monkeypatch.setattr(lr_finder, "batches", spy)
    range_test(p.build(), p.inputs, p.cfg.train, p.device, steps=10)
    assert asked and all(a == (3,) for a in asked), asked


def test_range_test_trains_as_the_run_does():
    """The range test measures the loss as the run's training step makes it: under the run's precision
    and layout (here bf16 autocast and channels_last on the CPU) and with its auxiliary heads."""
    import copy

    import torch.nn.functional as F

    from lrlab.training import Normalize

    over = {**QUICK, "train.precision": "bf16", "train.channels_last": "on", "model.aux_heads": True,
            "data.augment": "none"}  # fmt: skip
    p = prepare(config.load(None, over))
    torch.manual_seed(0)
    model = p.build()
    twin = copy.deepcopy(model)
    torch.manual_seed(7)  # dropout masks
    test = range_test(model, p.inputs, p.cfg.train, p.device, seed=0, start_lr=1e-3, end_lr=1, steps=10)
    assert next(model.parameters()).is_contiguous()  # the layout is put back with the weights
    train = p.inputs.train
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: p.cfg.train.batch_size]
    x = Normalize.of(p.inputs.mean, p.inputs.std, p.device)(train.images[idx])
    twin.to(memory_format=torch.channels_last).train()
    torch.manual_seed(7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, aux = twin.forward_with_aux(x.contiguous(memory_format=torch.channels_last))
        bf16_loss = F.cross_entropy(logits, train.labels[idx]).item()
    assert len(aux) == 2 and test.losses[0] == bf16_loss
    torch.manual_seed(7)
    assert F.cross_entropy(twin.forward_with_aux(x)[0], train.labels[idx]).item() != bf16_loss  # fp32 differs


@pytest.mark.parametrize("steps", ["0", "100001"])
def test_find_lr_refuses_bad_steps_before_making_its_folder(steps, tmp_path, capsys):
    assert main(["find-lr", "--steps", steps, "--out", str(tmp_path / "x")]) == 2
    said = f"steps must be in [10, 100,000], got {steps}"
    assert said in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_find_lr_refuses_an_lr_past_a_floats_range_before_making_its_folder(tmp_path, capsys):
    # (torch's SGD raised "value cannot be converted to type float without overflow" at 1e300)
    assert main(["find-lr", "--end-lr", "1e300", "--out", str(tmp_path / "x")]) == 2
    said = "end_lr must be at most 1e+06 (no network trains above it), got 1e+300"
    assert said in capsys.readouterr().err and not (tmp_path / "x").exists()
