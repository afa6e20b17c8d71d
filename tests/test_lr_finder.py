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


def test_valley_ignores_an_early_dip_of_the_plateau():
    """A noisy plateau that dips once below the "loss starts to fall" level far before the real fall must not
    move the valley: the fall's start is searched back from the bottom."""
    loss = curve()
    dipped = loss.copy()
    dipped[3] -= 0.5  # at 2e-5, four decades before the fall
    assert suggest_valley(LRS, dipped) == suggest_valley(LRS, loss) == pytest.approx(10**-1.8, rel=0.01)


def test_a_flat_curve_comes_with_a_caution():
    flat = RangeTest([1e-3, 1e-2, 1e-1], [2.3, 2.29, 2.28], [2.3, 2.29, 2.28], False, fall=0.01)
    assert "fell by only 1.0%" in flat.caution()
    assert dataclasses.replace(flat, fall=0.2).caution() is None


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
    assert main([*args, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "steepest" in printed and "valley" in printed and "weights restored" in printed
    saved = json.loads((tmp_path / "find-lr.json").read_text())
    assert set(saved["suggestions"]) == {"steepest", "minimum/10", "valley"}
    assert (tmp_path / "find-lr.png").stat().st_size > 5000
    assert len((tmp_path / "find-lr.csv").read_text().splitlines()) > 10


def test_auto_lr_in_a_study_uses_the_valley_rule():
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


def test_find_lr_refuses_bad_steps_before_making_its_folder(tmp_path, capsys):
    assert main(["find-lr", "--steps", "0", "--out", str(tmp_path / "x")]) == 2
    assert "steps must be at least 10, got 0" in capsys.readouterr().err and not (tmp_path / "x").exists()
