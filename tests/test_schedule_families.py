"""Every family against the library schedule of the same shape, presets, warm-up curves,
momentum schedules, the metric-driven plateau, and resuming a trace."""

from __future__ import annotations

import math

import pytest
import torch

from lrlab.errors import ConfigError
from lrlab.schedules import PRESETS, Plan, compile_schedule, resolve_auto, uses_auto

from .test_schedules import PLAN, assert_close, lrs, torch_lrs

S = torch.optim.lr_scheduler


@pytest.mark.parametrize(
    ("T0", "mult", "eta"), [(10, 1, 0.0), (7, 2, 0.001), (5, 3, 0.01), (33, 1, 0.0), (2, 10, 0.0), (1, 6, 0.0),
                            (3, 100, 0.0), (1, 10**15, 0.0)]
)  # fmt: skip
def test_sgdr_matches_torch(T0, mult, eta):
    theirs = torch_lrs(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=T0, T_mult=mult, eta_min=eta), 200, 0.3)
    spec = {"type": "sgdr", "lr": 0.3, "period_steps": T0, "t_mult": mult, "min_lr": eta}
    # torch anneals by recursion; its rounding drifts slightly from the closed form
    assert_close(lrs(spec, Plan(200, 10)), theirs, rel=1e-7)


def test_sgdr_restarts_at_every_cycle_start_for_large_t_mult():
    # float rounding at a cycle boundary once put restarts at min_lr for t_mult 6, 10, 100, ...
    for T0 in range(1, 40):
        for mult in (6, 10, 100):
            v = lrs({"type": "sgdr", "lr": 0.1, "period_steps": T0, "t_mult": mult}, Plan(400, 10))
            starts = [T0 * (mult**n - 1) // (mult - 1) for n in range(6)]
            assert all(v[s] == pytest.approx(0.1) for s in starts if s < 400), (T0, mult)


def test_sgdr_huge_t_mult_is_one_cycle_and_peaks_stay_above_min_lr():
    assert_close(lrs({"type": "sgdr", "lr": 0.1, "period_steps": 1, "t_mult": 1e308}), [0.1] * 100)
    # a first cycle of 10 steps is a cosine, whatever the t_mult: T0 · t_mult past the float range made it flat
    theirs = torch_lrs(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=10**15), 10, 0.1)
    for mult in (1e15, 1e305, 1e308):
        v = lrs({"type": "sgdr", "lr": 0.1, "period_steps": 10, "t_mult": mult}, Plan(40, 10))
        assert_close(v[:10], theirs) and v[10:] == pytest.approx([0.0] * 30)
    v = lrs({"type": "sgdr", "lr": 0.1, "min_lr": 0.05, "period_steps": 3, "peak_decay": 0.3})
    assert min(v) == pytest.approx(0.05) and max(v) == pytest.approx(0.1)
    assert v[3] == pytest.approx(0.05)  # the second cycle's peak 0.03 is held at min_lr


def test_sgdr_peak_decay_and_cycle_warmup():
    v = lrs({"type": "sgdr", "lr": 1.0, "period_steps": 20, "peak_decay": 0.5, "cycle_warmup_steps": 4})
    assert v[0] == 0.0 and v[4] == pytest.approx(1.0)  # warm-up at the start of the first cycle
    assert v[20] == 0.0 and v[24] == pytest.approx(0.5)  # and of the second, to half the peak
    assert v[44] == pytest.approx(0.25)


@pytest.mark.parametrize(("milestones", "gamma"), [([30, 80], 0.1), ([10, 20, 30, 95], 0.5)])
def test_multistep_matches_torch(milestones, gamma):
    theirs = torch_lrs(lambda o: S.MultiStepLR(o, milestones=milestones, gamma=gamma), 100, 0.2)
    assert_close(lrs({"type": "multistep", "lr": 0.2, "milestones_steps": milestones, "gamma": gamma}), theirs)


def test_multistep_units():
    a = lrs({"type": "multistep", "lr": 0.2, "milestones_epochs": [5, 8]})
    assert a == lrs({"type": "multistep", "lr": 0.2, "milestones_frac": [0.5, 0.8]})
    assert a[49] == pytest.approx(0.2) and a[50] == pytest.approx(0.02) and a[80] == pytest.approx(0.002)


@pytest.mark.parametrize("gamma", [0.99, 0.95])
def test_exponential_matches_torch(gamma):
    theirs = torch_lrs(lambda o: S.ExponentialLR(o, gamma=gamma), 100, 0.5)
    assert_close(lrs({"type": "exponential", "lr": 0.5, "gamma": gamma}), theirs)


def test_exponential_staircase_matches_torch_stepped_once_an_epoch():
    """ExponentialLR stepped at each epoch's end (its usual use) holds the LR through an epoch; every_epochs = 1
    alone decays smoothly within it (as torch stepped every batch with gamma ** (1 / steps per epoch))."""
    per_epoch = torch_lrs(lambda o: S.ExponentialLR(o, gamma=0.9), 10, 0.5)  # 10 epochs of 10 steps (PLAN)
    spec = {"type": "exponential", "lr": 0.5, "gamma": 0.9, "every_epochs": 1}
    assert_close(lrs({**spec, "staircase": True}), [lr for lr in per_epoch for _ in range(10)])
    smooth = lrs(spec)
    assert smooth[10] == pytest.approx(0.45) and 0.45 < smooth[5] < 0.5


@pytest.mark.parametrize(("power", "total"), [(1.0, 100), (2.0, 60), (0.5, 100)])
def test_polynomial_matches_torch(power, total):
    theirs = torch_lrs(lambda o: S.PolynomialLR(o, total_iters=total, power=power), 100, 0.4)
    spec = {"type": "polynomial", "lr": 0.4, "power": power, "decay_steps": total}
    assert_close(lrs(spec), theirs, rel=1e-7)  # torch's recursive form rounds differently


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_matches_keras_formula(staircase):
    # Keras InverseTimeDecay(0.5, decay_steps=7, decay_rate=0.3, staircase): lr / (1 + rate · p), p = step / 7
    # (floored with staircase); written out here, Keras not being a dependency
    theirs = [0.5 / (1 + 0.3 * (s // 7 if staircase else s / 7)) for s in range(100)]
    ours = lrs({"type": "inverse_time", "lr": 0.5, "decay_rate": 0.3, "every_steps": 7, "staircase": staircase})
    assert_close(ours, theirs)


def test_cosine_over_a_decay_length_then_holds():
    # Keras CosineDecay(0.4, decay_steps=60, alpha=0.25): lr · ((1 − α) · ½(1 + cos(π · min(s, 60) / 60)) + α)
    theirs = [0.4 * (0.75 * 0.5 * (1 + math.cos(math.pi * min(s, 60) / 60)) + 0.25) for s in range(100)]
    assert_close(lrs({"type": "cosine", "lr": 0.4, "min_lr": 0.1, "decay_steps": 60}), theirs)
    assert lrs({"type": "cosine", "lr": 0.4, "decay_frac": 1.0}) == lrs({"type": "cosine", "lr": 0.4})


@pytest.mark.parametrize(("lb", "ub", "decay"), [(-7.0, 3.0, None), (-6.0, 4.0, 60)])
def test_tanh_matches_timm_formula(lb, ub, decay):
    # timm TanhLRScheduler(t_initial=T, lb, ub, lr_min) stepped per update, one cycle: lr_min + ½(lr − lr_min)
    # (1 − tanh(lb(1 − t/T) + ub·t/T)), then lr_min past T (cycle_limit 1); written out, timm not a dependency
    T = decay or 100
    theirs = [0.01 + 0.5 * 0.39 * (1 - math.tanh(lb * (1 - s / T) + ub * s / T)) if s < T else 0.01 for s in range(100)]
    spec = {"type": "tanh", "lr": 0.4, "min_lr": 0.01, "lb": lb, "ub": ub}
    assert_close(lrs({**spec, **({"decay_steps": decay} if decay else {})}), theirs)


def test_plateau_matches_torch():
    metric = [1.0, 0.9, 0.91, 0.92, 0.93, 0.89, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 0.5, 0.6, 0.7, 0.8]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref = S.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    sched = compile_schedule(
        {"type": "plateau", "lr": 0.1, "factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 0.01}, Plan(160, 10)
    )
    for epoch, m in enumerate(metric):
        assert sched.lr(epoch * 10 + 3) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), epoch
        ref.step(m)
        sched.observe({"val_loss": m})
    assert sched.lr(159) < 0.1  # it did reduce


def test_plateau_after_warmup_watches_the_latest_epochs():
    # 10 steps per epoch, 2 warm-up epochs: epochs ending in the warm-up are not watched, and the
    # decision at an epoch uses the epochs just finished (not ones lagged by the warm-up)
    spec = {"type": "plateau", "lr": 0.1, "patience": 0, "warmup_epochs": 2}
    sched = compile_schedule(spec, PLAN)
    for loss in (5.0, 4.0, 1.0, 1.0, 0.5, 0.5):  # falls in the warm-up, then flat, better, flat
        sched.observe({"val_loss": loss})
    assert sched.lr(20) == sched.lr(39) == 0.1  # epochs 3 and 4 start at the full LR
    assert sched.lr(40) == pytest.approx(0.01)  # epoch 4's 1.0 is no better than epoch 3's
    assert sched.lr(50) == pytest.approx(0.01)  # epoch 5's 0.5 is
    assert sched.lr(60) == pytest.approx(0.001)  # epoch 6's is not
    v = lrs(spec)[:21]
    assert v == sorted(v)  # the ramp rises to the plateau's LR


def test_plateau_watching_accuracy():
    sched = compile_schedule({"type": "plateau", "lr": 0.1, "patience": 0, "watch": "val_accuracy"}, PLAN)
    for acc in (0.5, 0.6, 0.6):
        sched.observe({"val_accuracy": acc, "val_loss": 1.0})
    assert sched.lr(25) == 0.1 and sched.lr(35) == pytest.approx(0.01)


def fastai_reference(lr_max: float, total: int, pct: float, div: float, div_final: float) -> list[float]:
    """fastai's fit_one_cycle LR, written from its documented definition: combine_scheds over
    progress s/total of two SchedCos phases, (lr_max/div -> lr_max) then (lr_max -> lr_max/div_final)."""

    def sched_cos(start, end, pos):
        return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2

    out = []
    for s in range(total):
        pos = s / total
        if pos < pct:
            out.append(sched_cos(lr_max / div, lr_max, pos / pct))
        else:
            out.append(sched_cos(lr_max, lr_max / div_final, (pos - pct) / (1 - pct)))
    return out


@pytest.mark.parametrize("total", [100, 157])
def test_fastai_onecycle_preset(total):
    ours = lrs({"type": "fastai-onecycle", "max_lr": 0.01}, Plan(total, 10))
    assert_close(ours, fastai_reference(0.01, total, 0.25, 25.0, 1e5))
    s = compile_schedule({"type": "fastai-onecycle", "max_lr": 0.01}, Plan(total, 10))
    assert s.momentum(0) == pytest.approx(0.95) and min(s.momentum(i) for i in range(total)) == pytest.approx(
        0.85, abs=1e-4
    )


def test_fastai_div_final_sets_the_last_lr_as_fastai_does():
    spec = {"type": "onecycle", "max_lr": 0.01, "peak_frac": 0.25, "convention": "fastai", "div_final": 1e4}
    assert_close(lrs(spec), fastai_reference(0.01, 100, 0.25, 25.0, 1e4))
    # on the preset, div_factor changes the start only (fastai's div_final stays 1e5); a torch-style
    # final_div_factor replaces the preset's div_final
    assert_close(lrs({"type": "fastai-onecycle", "max_lr": 0.01, "div_factor": 10}),
                 fastai_reference(0.01, 100, 0.25, 10.0, 1e5))  # fmt: skip
    torch_style = {"type": "onecycle", "max_lr": 0.01, "peak_frac": 0.25, "convention": "fastai", "final_div_factor": 4}
    assert lrs({"type": "fastai-onecycle", "max_lr": 0.01, "final_div_factor": 4}) == lrs(torch_style)
    with pytest.raises(ConfigError, match=r"schedules\.s\.div_final: give final_div_factor .* not both"):
        compile_schedule({"type": "onecycle", "max_lr": 0.1, "div_final": 1e5, "final_div_factor": 1e4}, PLAN, "s")
    with pytest.raises(ConfigError, match=r"schedules\.s\.div_final: the last LR, max_lr/div_final, must not be above"):
        compile_schedule({"type": "onecycle", "max_lr": 0.1, "div_final": 5}, PLAN, "s")


def test_torch_onecycle_preset_matches_torch_defaults():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    ref = S.OneCycleLR(opt, max_lr=0.1, total_steps=120)  # every default, momentum cycling included
    s = compile_schedule({"type": "torch-onecycle", "max_lr": 0.1}, Plan(120, 12))
    for i in range(120):
        assert s.lr(i) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        assert s.momentum(i) == pytest.approx(opt.param_groups[0]["momentum"], rel=1e-9)
        opt.step()
        ref.step()


def test_fastai_flat_cos_and_preset_override():
    v = lrs({"type": "fastai-flat-cos", "lr": 0.2})
    assert v[:75] == [0.2] * 75 and v[99] < 0.01
    s = compile_schedule({"type": "torch-cyclic", "base_lr": 0.01, "max_lr": 0.1, "up_epochs": 1}, PLAN)
    assert s.lr(10) == pytest.approx(0.1)  # the user's up_epochs replaces the preset's up_steps
    assert set(PRESETS) >= {"torch-onecycle", "fastai-onecycle"}


def test_cosine_warmup_curve():
    v = lrs({"type": "constant", "lr": 1.0, "warmup_steps": 10, "warmup_curve": "cos"})
    assert v[0] == 0 and v[5] == pytest.approx(0.5) and v[2] < 0.2 and v[10] == 1.0


def test_inverse_momentum_mirrors_the_lr():
    s = compile_schedule(
        {"type": "cosine", "lr": 0.1, "momentum": {"type": "inverse", "low": 0.85, "high": 0.95}}, PLAN
    )
    assert s.momentum(0) == pytest.approx(0.85)  # LR at its peak: momentum at its low
    assert s.momentum(99) == pytest.approx(0.95, abs=1e-3)
    # a step schedule never reaches its family's floor (0): the span is the run's, 0.1 down to 0.025
    step = {"type": "step", "lr": 0.1, "every_steps": 34, "gamma": 0.5, "momentum": {"type": "inverse"}}
    s = compile_schedule(step, PLAN)
    assert [s.momentum(i) for i in (0, 34, 68, 99)] == pytest.approx([0.85, 0.95 - 0.1 / 3, 0.95, 0.95])
    # the schedule's LR bounds stay the family's (an LR axis scales by them), with or without the table
    plain = compile_schedule({k: v for k, v in step.items() if k != "momentum"}, PLAN)
    assert (s.floor_lr, s.peak_lr) == (plain.floor_lr, plain.peak_lr)


def test_explicit_momentum_schedule():
    s = compile_schedule(
        {"type": "constant", "lr": 0.1, "momentum": {"type": "cosine", "lr": 0.99, "min_lr": 0.9}}, PLAN
    )
    assert s.momentum(0) == pytest.approx(0.99) and s.momentum(50) == pytest.approx(0.945)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (
            {"type": "constant", "lr": 0.1, "momentum": {"type": "inverse", "low": 0.99, "high": 0.9}},
            "momentum",
        ),
        ({"type": "constant", "lr": 0.1, "momentum": {"type": "constant", "lr": 1.5}}, "momentum"),
        ({"type": "constant", "lr": 0.1, "momentum": {"type": "inverse", "hi": 0.9}}, "momentum.hi"),
        (
            {"type": "onecycle", "max_lr": 0.1, "cycle_momentum": True, "momentum": {"type": "inverse"}},
            "not both",
        ),
        ({"type": "sgdr", "lr": 0.1, "period_steps": 10, "cycle_warmup_steps": 10}, "cycle_warmup"),
        ({"type": "sgdr", "lr": 0.1, "period_steps": 10, "t_mult": 0.5}, "t_mult"),
        ({"type": "multistep", "lr": 0.1, "milestones_frac": 0.5}, "milestones_frac"),
        ({"type": "multistep", "lr": 0.1, "milestones_frac": [0.5, 2]}, "milestones_frac"),
        ({"type": "exponential", "lr": 0.1, "gamma": 1.5}, "gamma"),
        ({"type": "polynomial", "lr": 0.1, "power": 0}, "power"),
        ({"type": "tanh", "lr": 0.1, "lb": 3, "ub": -7}, "schedules.s.lb: must be below ub (-7) for the LR to fall"),
        ({"type": "tanh", "lr": 0.1, "min_lr": 0.2}, "schedules.s.min_lr"),
        ({"type": "plateau", "lr": 0.1, "watch": "train_loss"}, "watch"),
        ({"type": "plateau", "lr": 0.1, "patience": 1.5}, "patience"),
        ({"type": "flat_anneal", "lr": 0.1, "flat_frac": 1.0}, "flat_frac"),
        ({"type": "onecycle", "max_lr": 0.1, "convention": "keras"}, "convention"),
        ({"type": "constant", "lr": 0.1, "warmup_steps": 5, "warmup_curve": "exp"}, "warmup_curve"),
        ({"type": "onecycle", "max_lr": "auto"}, "LR range test"),
        ({"type": "onecycle", "max_lr": 0.1, "cycle_momentum": True, "max_momentum": 1.2}, "max_momentum"),
        ({"type": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "up_steps": 5, "cycle_momentum": True,
          "base_momentum": -0.5}, "base_momentum"),
        ({"type": "onecycle", "max_lr": 0.1, "base_momentum": 0.8}, "base_momentum: used only with cycle_momentum"),
        ({"type": "torch-onecycle", "max_lr": 0.1, "cycle_momentum": False, "max_momentum": 0.9}, "max_momentum"),
        ({"type": "sgdr", "lr": 0.1, "period_epochs": 0}, "schedules.s.period_epochs: must be longer"),
        # divisors: checked before the LR range is worked out from them (a 0 was a ZeroDivisionError)
        ({"type": "onecycle", "max_lr": 0.1, "div_factor": 0}, "schedules.s.div_factor: must be at least 1, got 0"),
        ({"type": "onecycle", "max_lr": 0.1, "final_div_factor": 0}, "schedules.s.final_div_factor: must be at least"),
        ({"type": "torch-onecycle", "max_lr": 0.1, "div_factor": 0}, "schedules.s.div_factor: must be at least 1"),
        ({"type": "flat_anneal", "lr": 0.1, "final_div_factor": 0}, "schedules.s.final_div_factor: must be at least 1"),
        ({"type": "fastai-flat-cos", "lr": 0.1, "final_div_factor": 0}, "schedules.s.final_div_factor: must be at"),
        ({"type": "onecycle", "max_lr": 0.1, "cycle_momentum": True, "base_momentum": 0.95, "max_momentum": 0.9},
         "schedules.s.base_momentum: the momentum at the LR's peak must not be above max_momentum (0.95 > 0.9)"),
        ({"type": "constant", "lr": 0.1, "warmup_start_lr": 0.01},
         "schedules.s.warmup_start_lr: used only with a warm-up (warmup_steps|_epochs|_frac above 0); none is set"),
        # a warm-up of length 0 is none (its start LR was dropped without a word, type warmup was a constant)
        ({"type": "constant", "lr": 0.1, "warmup_steps": 0, "warmup_start_lr": 0.05},
         "schedules.s.warmup_start_lr: used only with a warm-up"),
        ({"type": "warmup", "lr": 0.1, "warmup_epochs": 0}, "'warmup' needs warmup_steps|_epochs|_frac, longer"),
        # SGDR's cycle warm-up starts at min_lr (0): a warm-up before it rose from 0 to 0
        ({"type": "sgdr", "lr": 0.1, "period_steps": 10, "cycle_warmup_steps": 3, "warmup_steps": 5},
         "schedules.s.warmup_steps: the warm-up rises to the schedule's first LR, which is 0 here"),
        # a momentum table inside a momentum table, or cycled momentum there, was checked and then ignored
        ({"type": "constant", "lr": 0.1, "momentum": {"type": "constant", "lr": 0.9, "momentum": {"type": "constant",
          "lr": 0.5}}}, "schedules.s.momentum.momentum: a momentum table's values are the momentum"),
        ({"type": "constant", "lr": 0.1, "momentum": {"type": "cyclic", "base_lr": 0.85, "max_lr": 0.95,
          "up_steps": 5, "cycle_momentum": True}}, "schedules.s.momentum.cycle_momentum: a momentum table's"),
        ({"type": "plateau", "lr": 0.1, "threshold": -0.5}, "schedules.s.threshold: must be in [0, 1) with"),
        ({"type": "plateau", "lr": 0.1, "threshold": 5}, "schedules.s.threshold: must be in [0, 1) with"),
        ({"type": "plateau", "lr": 0.1, "threshold": -1, "threshold_mode": "abs"}, "schedules.s.threshold: must be at"),
        ({"type": "cosine", "lr": 0.1, "warmup_curve": "cos"}, "schedules.s.warmup_curve: used only with a warm-up"),
        ({"type": "inverse_time", "lr": 0.1, "decay_rate": -1, "every_steps": 5}, "schedules.s.decay_rate: must be"),
        ({"type": "step", "lr": 0.1, "every_frac": 0}, "schedules.s.every_frac: must be longer than zero steps, got 0"),
    ],
)  # fmt: skip
def test_refused(spec, needle):
    with pytest.raises(ConfigError) as e:
        compile_schedule(spec, PLAN, name="s")
    assert needle in str(e.value) and "schedules.s" in str(e.value)


def test_auto_resolution():
    spec = {"type": "cyclic", "base_lr": "auto", "max_lr": "auto", "up_epochs": 1}
    assert uses_auto(spec) and not uses_auto({"type": "constant", "lr": 0.1})
    assert resolve_auto(spec, 0.5) == {"type": "cyclic", "base_lr": 0.05, "max_lr": 0.5, "up_epochs": 1}


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "onecycle", "max_lr": 0.1, "cycle_momentum": True},
        {"type": "sgdr", "lr": 0.1, "period_steps": 7, "t_mult": 2},
        {
            "type": "cyclic",
            "base_lr": 0.01,
            "max_lr": 0.1,
            "up_steps": 3,
            "down_steps": 9,
            "mode": "triangular2",
        },
    ],
)
def test_resume_continues_the_same_trace(spec):
    """A schedule's state is its spec and the step: compiled anew (as on resume), it continues."""
    first = compile_schedule(spec, PLAN)
    again = compile_schedule(dict(spec), PLAN)
    assert [again.lr(s) for s in range(40, 100)] == [first.lr(s) for s in range(40, 100)]
    if first.momentum:
        assert [again.momentum(s) for s in range(40, 100)] == [first.momentum(s) for s in range(40, 100)]


def test_onecycle_too_short_says_how_many_steps_it_needs():
    spec = {"type": "onecycle", "max_lr": 0.1, "peak_frac": 0.25}
    with pytest.raises(ConfigError, match=r"peak_frac: 0.25 of 4 steps .* needs at least 5 steps"):
        compile_schedule(spec, Plan(4, 1), "s")
    compile_schedule(spec, Plan(5, 1), "s")  # and 5 is enough
    warm = {**spec, "peak_frac": 0.1, "warmup_steps": 5}  # the count includes the warm-up's steps
    with pytest.raises(ConfigError, match=r"0.1 of 10 steps after the 5-step warm-up .* at least 16 steps in all"):
        compile_schedule(warm, Plan(15, 1), "s")
    compile_schedule(warm, Plan(16, 1), "s")
    # a tiny peak_frac: the count comes out directly, not by stepping through ten million plans
    with pytest.raises(ConfigError, match="needs at least 10000001 steps"):
        compile_schedule({**spec, "peak_frac": 1e-7}, Plan(100, 1), "s")
    # a peak_frac no run can fit: answered at once (1/peak_frac overflowed, or counting up to it hung)
    for tiny in (5e-324, 1e-25):
        with pytest.raises(ConfigError, match=r"needs more than 2\*\*53 \(9\.01e\+15\) steps"):
            compile_schedule({**spec, "peak_frac": tiny}, Plan(100, 1), "s")
    # three phases: rise and fall each take peak_frac, so above 0.5 can never fit; at 0.5 torch's phase ends
    # leave the tail a step (its OneCycleLR takes it), fastai's none
    with pytest.raises(ConfigError, match=r"three_phase .* at most 0\.5, got 0\.6"):
        compile_schedule({**spec, "peak_frac": 0.6, "three_phase": True}, Plan(1000, 10), "s")
    half = {**spec, "peak_frac": 0.5, "three_phase": True}
    assert lrs(half, Plan(100, 10))[-1] == pytest.approx(0.1 / 25 / 1e4)
    with pytest.raises(ConfigError, match=r"three_phase .* below 0\.5 \(with convention fastai\), got 0\.5"):
        compile_schedule({**half, "convention": "fastai"}, Plan(1000, 10), "s")
