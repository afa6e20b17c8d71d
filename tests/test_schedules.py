"""Schedules: values at chosen steps, golden traces against PyTorch's schedulers, refused specs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from lrlab.errors import ConfigError
from lrlab.schedules import FAMILIES, Plan, compile_schedule, parse_spec

PLAN = Plan(total_steps=100, steps_per_epoch=10)


def lrs(spec: dict, plan: Plan = PLAN) -> list[float]:
    s = compile_schedule(spec, plan)
    return [s.lr(i) for i in range(plan.total_steps)]


def torch_lrs(make, steps: int, lr: float) -> list[float]:
    """The LR torch's scheduler applies at each optimizer step (read before the step)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def assert_close(ours: list[float], theirs: list[float], rel: float = 1e-9) -> None:
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == pytest.approx(b, rel=rel, abs=1e-15), f"step {i}: {a} != {b}"


# --- the six study settings at chosen steps -------------------------------------------------


def test_constant():
    assert lrs({"type": "constant", "lr": 0.05}) == [0.05] * 100


def test_even_cyclic_chosen_steps():
    v = lrs({"type": "cyclic", "base_lr": 0.01, "max_lr": 0.11, "up_epochs": 1, "down_epochs": 1})
    assert v[0] == pytest.approx(0.01)
    assert v[5] == pytest.approx(0.06)  # half-way up
    assert v[10] == pytest.approx(0.11)  # peak after one epoch
    assert v[15] == pytest.approx(0.06)
    assert v[20] == pytest.approx(0.01)  # back at the base: next cycle
    assert v[30] == pytest.approx(0.11)


def test_uneven_cyclic_chosen_steps():
    v = lrs({"type": "cyclic", "base_lr": 0.0, "max_lr": 1.0, "up_steps": 2, "down_steps": 8})
    assert v[:11] == pytest.approx([0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0])


def test_warmup_then_hold():
    v = lrs({"type": "warmup", "lr": 0.4, "warmup_epochs": 2})
    assert v[0] == 0.0
    assert v[10] == pytest.approx(0.2)
    assert v[20:] == [0.4] * 80
    assert all(b >= a for a, b in itertools.pairwise(v))


def test_cosine_anneal_chosen_steps():
    v = lrs({"type": "anneal", "lr": 0.1, "min_lr": 0.0})
    assert v[0] == pytest.approx(0.1)
    assert v[50] == pytest.approx(0.05)
    assert v[99] == pytest.approx(0.1 * (1 + math.cos(math.pi * 99 / 100)) / 2)


def test_step_anneal_chosen_steps():
    v = lrs({"type": "anneal", "curve": "step", "lr": 1.0, "gamma": 0.5, "every_epochs": 3})
    assert (v[29], v[30], v[59], v[60], v[90], v[99]) == pytest.approx((1, 0.5, 0.5, 0.25, 0.125, 0.125))


def test_onecycle_chosen_steps():
    v = lrs({"type": "onecycle", "max_lr": 1.0})
    assert v[0] == pytest.approx(1 / 25)
    assert max(v) == pytest.approx(1.0)
    assert v.index(max(v)) == 29  # torch's peak step: pct_start * total - 1
    assert v[-1] == pytest.approx(1 / 25 / 1e4)


# --- golden traces against PyTorch -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize(("up", "down"), [(5, 5), (3, 11), (17, 4)])
def test_cyclic_matches_torch(mode, up, down):
    spec = {
        "type": "cyclic",
        "base_lr": 0.01,
        "max_lr": 0.3,
        "up_steps": up,
        "down_steps": down,
        "mode": mode,
        "gamma": 0.99,
    }
    theirs = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CyclicLR(
            o, 0.01, 0.3, step_size_up=up, step_size_down=down, mode=mode, gamma=0.99, cycle_momentum=False
        ),
        100,
        0.01,
    )
    assert_close(lrs(spec), theirs)


def test_triangular2_fades_over_thousands_of_cycles():
    # torch's 1 / 2**(cycle - 1) overflows after 1024 cycles; the amplitude underflows to 0 instead
    spec = {"type": "cyclic", "base_lr": 0.01, "max_lr": 0.11, "up_steps": 1, "mode": "triangular2"}
    v = lrs(spec, Plan(5000, 10))
    assert v[1] == pytest.approx(0.11) and v[3] == pytest.approx(0.06) and v[4999] == 0.01


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize(
    ("pct", "div", "final", "total"), [(0.3, 25, 1e4, 100), (0.25, 10, 1e5, 237), (0.5, 25, 1e4, 100)]
)  # (three phases at pct 0.5: torch leaves the tail one step)
def test_onecycle_matches_torch(three_phase, anneal, pct, div, final, total):
    spec = {
        "type": "onecycle",
        "max_lr": 0.8,
        "peak_frac": pct,
        "div_factor": div,
        "final_div_factor": final,
        "anneal": anneal,
        "three_phase": three_phase,
    }
    theirs = torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr=0.8,
            total_steps=total,
            pct_start=pct,
            div_factor=div,
            final_div_factor=final,
            anneal_strategy=anneal,
            three_phase=three_phase,
            cycle_momentum=False,
        ),
        total,
        0.8,
    )
    assert_close(lrs(spec, Plan(total, 10)), theirs)


def test_onecycle_momentum_matches_torch():
    spec = {"type": "onecycle", "max_lr": 0.5, "cycle_momentum": True}
    s = compile_schedule(spec, PLAN)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=100)
    for i in range(100):
        assert s.momentum(i) == pytest.approx(opt.param_groups[0]["momentum"], rel=1e-9)
        opt.step()
        sched.step()


@pytest.mark.parametrize(("lr", "eta_min", "total"), [(0.1, 0.0, 100), (0.5, 0.001, 333)])
def test_cosine_matches_torch(lr, eta_min, total):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=eta_min), total, lr)
    # torch computes cosine annealing recursively; its rounding drifts slightly from the closed form
    assert_close(lrs({"type": "anneal", "lr": lr, "min_lr": eta_min}, Plan(total, 10)), theirs, rel=1e-7)


@pytest.mark.parametrize(("every", "gamma"), [(10, 0.1), (33, 0.5)])
def test_step_matches_torch(every, gamma):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=every, gamma=gamma), 100, 0.2)
    assert_close(lrs({"type": "anneal", "curve": "step", "lr": 0.2, "gamma": gamma, "every_steps": every}), theirs)


# --- warm-up on any family, units, momentum ---------------------------------------------------


@pytest.mark.parametrize("family", ["constant", "anneal", "cyclic", "onecycle"])
def test_warmup_joins_without_jump(family):
    base = {
        "constant": {"lr": 0.3},
        "anneal": {"lr": 0.3},
        "cyclic": {"base_lr": 0.3, "max_lr": 0.6, "up_steps": 5},
        "onecycle": {"max_lr": 0.9},
    }[family]
    v = lrs({"type": family, "warmup_steps": 10, "warmup_start_lr": 0.0, **base})
    assert v[0] == 0.0
    assert all(b >= a for a, b in itertools.pairwise(v[:11]))  # the ramp rises
    assert abs(v[10] - v[9]) <= v[10] / 10 + 1e-12  # the last ramp step is one tenth of the target
    body = lrs({"type": family, **base}, Plan(90, 10))
    assert v[10:] == pytest.approx(body)  # after warm-up the family runs over the remaining steps


@pytest.mark.parametrize("curve", ["linear", "constant"])
@pytest.mark.parametrize("then", ["cosine", "multistep"])
def test_warmup_matches_torch_sequential(curve, then):
    # torch: SequentialLR([LinearLR or ConstantLR for W steps, the family over the remaining steps], [W])
    T, W, lr, start = 100, 12, 0.4, 0.04
    body = {"cosine": {"type": "cosine", "lr": lr, "min_lr": 0.002}, "multistep": {"type": "multistep", "lr": lr,
            "milestones_steps": [30, 60], "gamma": 0.5}}[then]  # fmt: skip
    spec = {**body, "warmup_steps": W, "warmup_start_lr": start, "warmup_curve": curve}
    sched = torch.optim.lr_scheduler

    def make(opt):
        warm = (
            sched.LinearLR(opt, start_factor=start / lr, end_factor=1.0, total_iters=W)
            if curve == "linear"
            else sched.ConstantLR(opt, factor=start / lr, total_iters=W)
        )
        rest = (
            sched.CosineAnnealingLR(opt, T_max=T - W, eta_min=0.002)
            if then == "cosine"
            else sched.MultiStepLR(opt, milestones=[30, 60], gamma=0.5)
        )
        return sched.SequentialLR(opt, [warm, rest], milestones=[W])

    v = lrs(spec, Plan(T, 10))
    assert_close(v, torch_lrs(make, T, lr), rel=1e-7)
    if curve == "constant":
        assert v[:W] == [start] * W and v[W] == lr


def test_torch_constantlr_and_linearlr_as_the_refusal_hints_write_them():
    # ConstantLR and a falling LinearLR alone (no SequentialLR): the keys the unknown-type hint names
    sched, T, lr = torch.optim.lr_scheduler, 40, 0.3
    with pytest.raises(ConfigError, match="warmup_curve = 'constant', warmup_start_lr = factor × lr"):
        parse_spec({"type": "ConstantLR"})
    spec = {"type": "constant", "lr": lr, "warmup_curve": "constant", "warmup_start_lr": lr / 3, "warmup_steps": 5}
    assert_close(lrs(spec, Plan(T, 10)), torch_lrs(lambda o: sched.ConstantLR(o, factor=1 / 3, total_iters=5), T, lr))
    with pytest.raises(ConfigError, match="falling is 'polynomial' with power = 1"):
        parse_spec({"type": "LinearLR"})
    make = lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=T)  # noqa: E731
    assert_close(lrs({"type": "polynomial", "lr": lr, "power": 1}, Plan(T, 10)), torch_lrs(make, T, lr))


@pytest.mark.parametrize("spec", [{"type": "onecycle", "max_lr": 0.1}, {"type": "fastai-onecycle", "max_lr": 0.1},
                                  {"type": "flat_anneal", "lr": 0.1}, {"type": "cosine", "lr": 0.1}])  # fmt: skip
def test_a_one_shot_schedule_holds_its_last_value_past_the_end(spec):
    # the LR is a pure function of the step; past the run's last step a one-shot decay does not rise again
    s = compile_schedule(spec, PLAN)
    T = PLAN.total_steps
    assert [s.lr(T + k) for k in range(30)] == [s.lr(T)] * 30
    assert s.lr(T) <= s.lr(T - 1)


def test_fractions_land_on_the_intended_step():
    # 0.28 × 25 is 7.000000000000001 in floats: the drop still comes at step 7
    for spec in (
        {"type": "multistep", "lr": 1.0, "milestones_frac": [0.28]},
        {"type": "step", "lr": 1.0, "every_frac": 0.28},
    ):
        v = lrs(spec, Plan(25, 5))
        assert v[6] == 1.0 and v[7] == pytest.approx(0.1)


def test_after_a_warmup_lengths_count_from_its_end():
    # the documented rule (torch's SequentialLR, timm's warmup_prefix): the family runs over the
    # remaining steps as if training began there, so milestones and fractions count from there
    v = lrs({"type": "multistep", "lr": 1.0, "milestones_epochs": [5], "warmup_epochs": 2})
    assert v[69] == 1.0 and v[70] == pytest.approx(0.1)
    v = lrs({"type": "multistep", "lr": 1.0, "milestones_frac": [0.5], "warmup_frac": 0.2})
    assert v[59] == 1.0 and v[60] == pytest.approx(0.1)  # half of the 80 steps after the warm-up


def test_lengths_past_the_end_are_noted_not_refused():
    s = compile_schedule({"type": "multistep", "lr": 0.1, "milestones_epochs": [5, 30]}, PLAN)
    assert s.notes == ("milestones_epochs 30 is step 300, after the last of the run's 100 steps: it never applies",)
    s = compile_schedule({"type": "step", "lr": 0.1, "every_epochs": 10, "warmup_epochs": 1}, PLAN)
    assert len(s.notes) == 1 and "every_epochs = 10 is step 100" in s.notes[0] and "10-step warm-up" in s.notes[0]
    assert compile_schedule({"type": "step", "lr": 0.1, "every_epochs": 3}, PLAN).notes == ()
    # between the last step and the run's end: a drop at step 99.5 of 100 would come at step 100
    s = compile_schedule({"type": "multistep", "lr": 0.1, "milestones_frac": [0.5, 0.995]}, PLAN)
    assert s.notes == ("milestones_frac 0.995 is step 99.5, after the last of the run's 100 steps: it never applies",)
    assert len(compile_schedule({"type": "step", "lr": 0.1, "every_steps": 99.5}, PLAN).notes) == 1
    assert compile_schedule({"type": "step", "lr": 0.1, "every_steps": 99}, PLAN).notes == ()
    # anneal's step curve is noted as step is
    s = compile_schedule({"type": "anneal", "curve": "step", "lr": 0.1, "every_epochs": 12}, PLAN)
    assert s.notes == ("every_epochs = 12 is step 120, after the last of the run's 100 steps: it never applies",)


def test_settings_that_do_nothing_in_this_run_are_noted():
    """Checked before training: a setting the schedule never reads, or one the run is too short for, gives a note
    (shown by `lrlab schedules` and the study), not silence. Each case would otherwise train a curve unlike the
    one written down."""

    def notes(spec, plan=PLAN):
        return compile_schedule(spec, plan).notes

    # a decay longer than the run: the LR never comes down to its floor
    (note,) = notes({"type": "cosine", "lr": 0.1, "min_lr": 0.001, "decay_epochs": 20})
    v = lrs({"type": "cosine", "lr": 0.1, "min_lr": 0.001, "decay_epochs": 20})
    assert v[-1] > 0.05
    assert note == (
        "decay_epochs = 20: the decay ends at step 200, after the last of the run's 100 steps, so the LR never "
        f"comes down to min_lr 0.001; it ends at {v[-1]:.4g}"
    )
    assert "never comes down to end_lr 0" in notes({"type": "polynomial", "lr": 0.1, "decay_steps": 150})[0]
    assert notes({"type": "cosine", "lr": 0.1, "decay_epochs": 9.9}) == ()  # reaches min_lr at step 99
    assert notes({"type": "cosine", "lr": 0.1, "decay_frac": 1}) == ()  # the run's length: the default curve
    assert notes({"type": "polynomial", "lr": 0.1, "decay_epochs": 10}) == ()
    assert notes({"type": "cosine", "lr": 0.1}) == ()
    # anneal: keys of another curve
    assert notes({"type": "anneal", "lr": 0.1, "gamma": 0.5}) == (
        "gamma: used by curve 'step' only (this one is 'cosine')",
    )
    assert notes({"type": "anneal", "curve": "linear", "lr": 0.1, "gamma": 0.5, "every_epochs": 2}) == (
        "gamma and every_epochs: used by curve 'step' only (this one is 'linear')",
    )
    assert notes({"type": "anneal", "curve": "step", "lr": 0.1, "min_lr": 0.01}) == (
        "min_lr: used by curves 'cosine' and 'linear' only (this one is 'step')",
    )
    assert notes({"type": "anneal", "curve": "step", "lr": 0.1, "gamma": 0.5}) == ()
    # a cyclic schedule that cannot cycle
    assert notes({"type": "cyclic", "base_lr": 0.1, "max_lr": 0.1, "up_epochs": 2}) == (
        "base_lr equals max_lr (0.1): the LR does not cycle; it is constant",
    )
    flat = {"type": "cyclic", "base_lr": 0.1, "max_lr": 0.1, "up_epochs": 2, "cycle_momentum": True}
    assert notes(flat) == (
        "base_lr equals max_lr (0.1): the LR does not cycle; it is constant; the momentum still cycles",
    )
    assert notes({**flat, "base_momentum": 0.9, "max_momentum": 0.9})[0].endswith("it is constant")
    # milestones that fall on one step: one drop by gamma², not two drops
    assert notes({"type": "multistep", "lr": 0.1, "milestones_epochs": [3, 6, 3]}) == (
        "milestones_epochs 3, 3 all take effect at step 30: one drop there by gamma^2 = 0.01",
    )
    assert notes({"type": "multistep", "lr": 0.1, "milestones_steps": [29.5, 30], "warmup_steps": 10}) == (
        "milestones_steps 29.5, 30 all take effect at step 30 after the 10-step warm-up: one drop there by "
        "gamma^2 = 0.01",
    )
    assert notes({"type": "multistep", "lr": 0.1, "milestones_epochs": [6, 3]}) == ()  # order does not matter
    assert notes({"type": "multistep", "lr": 0.1, "milestones_epochs": [3, 3], "gamma": 1}) == ()  # no drop at all


SHORT = Plan(18, 9)


def test_an_exponential_gamma_per_step_that_empties_the_lr_is_noted():
    # gamma 0.9 is torch's ExponentialLR once an epoch in most recipes; per step over 100 steps the LR falls 34,000-fold
    (note,) = compile_schedule({"type": "exponential", "lr": 0.1, "gamma": 0.9}, PLAN).notes
    v = lrs({"type": "exponential", "lr": 0.1, "gamma": 0.9})
    assert note.startswith("gamma = 0.9 per step (every_steps = 1, the default): over the run's 100 steps the LR falls")
    assert f"to {v[-1]:.3g}; for gamma per epoch" in note and v[-1] / v[0] < 1e-3
    # a long run: the fall is past a float's range (10^-366), said all the same (a ZeroDivisionError was raised)
    (long,) = compile_schedule({"type": "exponential", "lr": 0.1, "gamma": 0.9}, Plan(8000, 391)).notes
    assert "over the run's 8000 steps the LR falls 10^366-fold, to 0 in floating point;" in long
    staircase = {"gamma": 0.9, "every_epochs": 1, "staircase": True}
    for other in ({"gamma": 0.9, "every_epochs": 1}, {"gamma": 0.95}, staircase):
        assert compile_schedule({"type": "exponential", "lr": 0.1, **other}, PLAN).notes == ()


def test_a_cyclic_rise_past_the_run_is_noted_with_the_peak_it_reaches():
    # torch's CyclicLR default rise of 2000 steps on an 18-step run: never near max_lr
    s = compile_schedule({"type": "torch-cyclic", "base_lr": 0.01, "max_lr": 0.1}, SHORT)
    assert s.notes == (
        "up_steps = 2000: the rise ends at step 2000, after the last of the run's 18 steps, so the LR never "
        "reaches max_lr 0.1; it peaks at 0.01077 (step 17)",
    )
    assert max(s.lr(i) for i in range(18)) == pytest.approx(0.01077, rel=1e-3)
    cyclic = {"type": "cyclic", "base_lr": 0.01, "max_lr": 0.1}
    assert compile_schedule({**cyclic, "up_steps": 17}, SHORT).notes == ()  # max_lr at the last step
    assert len(compile_schedule({**cyclic, "up_steps": 17.5}, SHORT).notes) == 1
    # at max_lr all along: no rise to fall short of (only the flat note)
    assert compile_schedule({**cyclic, "up_steps": 20, "max_lr": 0.01}, SHORT).notes == (
        "base_lr equals max_lr (0.01): the LR does not cycle; it is constant",
    )
    # exp_range: gamma**step turns the rise down before the run ends; the note gives that peak
    s = compile_schedule({**cyclic, "up_steps": 100, "mode": "exp_range", "gamma": 0.8}, Plan(50, 10))
    v = [s.lr(i) for i in range(50)]
    assert s.notes[0].endswith(f"it peaks at {max(v):.4g} (step {v.index(max(v))})") and v.index(max(v)) == 4
    assert compile_schedule({**cyclic, "up_steps": 5, "gamma": 0.9}, SHORT).notes == (
        "gamma = 0.9 is used by mode 'exp_range' only",
    )
    assert compile_schedule({**cyclic, "up_steps": 5, "mode": "exp_range"}, SHORT).notes == (
        "mode 'exp_range' with gamma 1 (its default) is 'triangular': give a gamma below 1",
    )


def test_a_note_where_sgdr_peaks_decay_to_its_floor():
    sgdr = {"type": "sgdr", "lr": 0.1, "period_steps": 10, "peak_decay": 0.05, "min_lr": 0.01}
    assert compile_schedule(sgdr, PLAN).notes == (
        "peak_decay = 0.05: from cycle 2 on (step 10) a peak would fall to min_lr 0.01, so the LR stays flat at "
        "min_lr from there",
    )
    v = lrs(sgdr)
    assert v[9] > 0.01 and v[10:] == [0.01] * 90  # as the note says
    assert compile_schedule({**sgdr, "peak_decay": 0.5}, PLAN).notes[0].startswith("peak_decay = 0.5: from cycle 5 on")
    # t_mult 2: cycles start at 0, 10, 30, 70; the fourth (0.1 · 0.5**3 = 0.0125) stays above 0.01
    assert compile_schedule({**sgdr, "peak_decay": 0.5, "t_mult": 2}, PLAN).notes == ()


def test_an_sgdr_period_past_the_run_is_noted():
    # SGDR's paper preset (10 epochs, then 20): no restart within 2 epochs
    s = compile_schedule({"type": "sgdr-paper", "lr": 0.1}, SHORT)
    assert s.notes == (
        "period_epochs = 10: the first restart would come at step 90, after the last of the run's 18 steps, so none "
        "happens within the run; the LR ends at 0.09145 (min_lr 0)",
    )
    assert compile_schedule({"type": "sgdr", "lr": 0.1, "period_steps": 17}, SHORT).notes == ()
    assert compile_schedule({"type": "sgdr", "lr": 0.1, "period_steps": 15, "warmup_steps": 2}, SHORT).notes == ()
    s = compile_schedule({"type": "sgdr", "lr": 0.1, "period_steps": 16, "warmup_steps": 2}, SHORT)
    assert "step 16, after the last of the 16 steps after the 2-step warm-up" in s.notes[0]


def test_a_plateau_that_can_never_reduce_is_noted():
    # the first epoch sets the best value, then patience + 1 without improvement
    s = compile_schedule({"type": "plateau", "lr": 0.1}, SHORT)
    assert s.notes == (
        "patience = 10: a reduction needs 12 watched epochs (the first, then 11 without improvement), but only 1 "
        "ends before the run's last step, so the LR can never be reduced",
    )
    assert len(compile_schedule({"type": "plateau", "lr": 0.1, "patience": 0}, Plan(20, 10)).notes) == 1
    s = compile_schedule({"type": "plateau", "lr": 0.1, "patience": 0}, Plan(21, 10))
    assert s.notes == ()
    s.observe({"val_loss": 1.0})
    s.observe({"val_loss": 1.0})
    assert s.lr(20) == pytest.approx(0.01)  # the one reduction the run allows, at its last step
    s = compile_schedule({"type": "plateau", "lr": 0.1, "patience": 3, "warmup_epochs": 5}, PLAN)
    assert "only 4 end after the 50-step warm-up and before the run's last step" in s.notes[0]
    assert compile_schedule({"type": "plateau", "lr": 0.1, "min_lr": 0.1}, PLAN).notes == (
        "min_lr = 0.1 equals lr: the LR can never be reduced",
    )


def test_units_agree():
    a = lrs({"type": "cyclic", "base_lr": 0.1, "max_lr": 1, "up_epochs": 2})
    b = lrs({"type": "cyclic", "base_lr": 0.1, "max_lr": 1, "up_steps": 20})
    c = lrs({"type": "cyclic", "base_lr": 0.1, "max_lr": 1, "up_frac": 0.2})
    assert a == b == c


def test_momentum_off_unless_asked():
    assert compile_schedule({"type": "onecycle", "max_lr": 1.0}, PLAN).momentum is None
    s = compile_schedule({"type": "cyclic", "base_lr": 0.1, "max_lr": 1, "up_steps": 5, "cycle_momentum": True}, PLAN)
    assert s.momentum(0) == pytest.approx(0.9) and s.momentum(5) == pytest.approx(0.8)


def test_momentum_tables_take_zero_and_refuse_a_metric_or_a_preset_that_cycles():
    s = compile_schedule({"type": "constant", "lr": 0.1, "momentum": {"type": "constant", "lr": 0.0}}, PLAN, "s")
    assert s.momentum(0) == s.momentum(99) == 0.0  # plain SGD: a valid momentum (an LR of 0 is refused)
    with pytest.raises(ConfigError, match=r"schedules\.s\.momentum\.type: a momentum table follows the steps"):
        compile_schedule({"type": "constant", "lr": 0.1, "momentum": {"type": "plateau", "lr": 0.9}}, PLAN, "s")
    onecycle = {"type": "torch-onecycle", "max_lr": 0.1, "momentum": {"type": "inverse"}}
    with pytest.raises(ConfigError, match="the preset 'torch-onecycle' sets cycle_momentum = true"):
        compile_schedule(onecycle, PLAN, "s")
    table = compile_schedule({**onecycle, "cycle_momentum": False}, PLAN, "s")  # accepted: the table replaces it
    assert min(table.momentum(i) for i in range(100)) == pytest.approx(0.85, abs=1e-3)


def test_trace_covers_every_step():
    tr = compile_schedule({"type": "constant", "lr": 0.1}, PLAN).trace()
    assert [t[0] for t in tr] == list(range(100)) and tr[0][2] is None


# --- refused specs name the field -----------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"type": "nope", "lr": 1}, "'constant'"),  # unknown type lists the valid ones
        ({"lr": 1}, "schedules.s.type"),
        ({"type": "constant"}, "needs lr"),
        ({"type": "constant", "lr": -0.1}, "schedules.s.lr"),
        ({"type": "constant", "lr": 0}, "schedules.s.lr"),
        ({"type": "constant", "lr": "big"}, "schedules.s.lr"),
        ({"type": "constant", "lrr": 0.1}, "did you mean 'lr'"),
        ({"type": "constant", "lr": 0.1, "warmup_steps": 100}, "schedules.s.warmup_steps"),
        ({"type": "cosine", "lr": 0.1, "warmup_steps": 99.5}, "schedules.s.warmup_steps: the warm-up (99.5 steps, 100"),
        ({"type": "polynomial", "lr": 0.1, "warmup_frac": 0.995}, "schedules.s.warmup_frac"),
        ({"type": "constant", "lr": 10**400}, "schedules.s.lr: expected a finite number"),
        ({"type": "step", "lr": 0.1, "every_steps": -(10**400)}, "schedules.s.every_steps"),
        ({"type": "constant", "lr": 0.1, "warmup_frac": 1.5}, "schedules.s.warmup_frac"),
        ({"type": "constant", "lr": 0.1, "warmup_steps": 5, "warmup_epochs": 1}, "given twice"),
        ({"type": "warmup", "lr": 0.1}, "warmup_steps"),
        (
            {"type": "cosine", "lr": 0.1, "warmup_steps": 5, "warmup_curve": "constant"},
            "schedules.s.warmup_start_lr: a constant warm-up holds warmup_start_lr, which is 0",
        ),
        ({"type": "cosine", "lr": 0.1, "warmup_steps": 5, "warmup_curve": "step"}, "schedules.s.warmup_curve"),
        ({"type": "cyclic", "base_lr": 0.5, "max_lr": 0.1, "up_steps": 5}, "schedules.s.max_lr"),
        ({"type": "cyclic", "base_lr": 0.1, "max_lr": 0.5, "up_steps": 0}, "schedules.s.up_steps"),
        (
            {"type": "cyclic", "base_lr": 0.1, "max_lr": 0.5, "up_steps": 5, "down_steps": 0},
            "schedules.s.down_steps",
        ),
        (
            {"type": "cyclic", "base_lr": 0.1, "max_lr": 0.5, "up_steps": 5, "mode": "zigzag"},
            "schedules.s.mode",
        ),
        ({"type": "anneal", "lr": 0.1, "curve": "exp"}, "schedules.s.curve"),
        ({"type": "anneal", "lr": 0.1, "min_lr": 0.2}, "schedules.s.min_lr"),
        ({"type": "onecycle", "max_lr": 0.1, "peak_frac": 1.0}, "schedules.s.peak_frac"),
        ({"type": "onecycle", "max_lr": 0.1, "anneal": "cosine"}, "schedules.s.anneal"),
        ({"type": "onecycle", "max_lr": 0.1, "three_phase": "yes"}, "schedules.s.three_phase"),
        # lengths beyond 2**53 steps (1e308 epochs is infinitely many): NaN LRs, a ZeroDivisionError or an
        # OverflowError before
        (
            {"type": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "up_steps": 1, "down_epochs": 1e308},
            "schedules.s.down_epochs: 1e+308 epochs of 10 steps is inf steps, in a run of 100 steps; a length must be",
        ),
        ({"type": "sgdr", "lr": 0.1, "period_epochs": 1e308}, "schedules.s.period_epochs: 1e+308 epochs"),
        (
            {"type": "sgdr", "lr": 0.1, "period_steps": 2.0**53},
            "period_steps: 9.0072e+15 steps, in a run of 100 steps;",
        ),
        ({"type": "constant", "lr": 0.1, "warmup_epochs": 1e308}, "schedules.s.warmup_epochs: 1e+308 epochs"),
    ],
)
def test_refused_specs_name_the_field(spec, needle):
    with pytest.raises(ConfigError) as e:
        compile_schedule(spec, PLAN, name="s")
    assert needle in str(e.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "up_epochs": 0.01},
            "schedules.s.up_epochs: 0.01 epochs of 9 steps is 0.09 steps, in a run of 18 steps; "
            "a phase must last at least one step",
        ),
        (
            {"type": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "up_steps": 2, "down_frac": 0.05},
            "schedules.s.down_frac: 0.05 of the run's 18 steps is 0.9 steps; a phase must last at least one step",
        ),
        (
            {"type": "sgdr", "lr": 0.1, "period_frac": 0.0001},
            "schedules.s.period_frac: 0.0001 of the run's 18 steps is 0.0018 steps; "
            "a cycle must last at least one step",
        ),
        (
            {"type": "anneal", "lr": 0.1, "curve": "step", "every_steps": 0.001},
            "schedules.s.every_steps: 0.001 steps, in a run of 18 steps; a decay interval must last at least one step",
        ),
        (
            {"type": "exponential", "lr": 0.1, "gamma": 0.5, "every_steps": 1e-6},  # LR 0.0 from step 1
            "schedules.s.every_steps: 1e-06 steps, in a run of 18 steps; a decay interval must last at least one step",
        ),
        (
            {"type": "inverse_time", "lr": 0.1, "decay_rate": 1, "every_steps": 0.001, "staircase": True},
            "schedules.s.every_steps: 0.001 steps, in a run of 18 steps; a decay interval must last at least one step",
        ),
        (
            {"type": "step", "lr": 0.1, "every_frac": 0.05, "warmup_steps": 2},
            "schedules.s.every_frac: 0.05 of the run's 16 steps after the 2-step warm-up is 0.8 steps; "
            "a decay interval must last at least one step",
        ),
    ],
)
def test_cycles_phases_and_intervals_shorter_than_a_step_are_refused(spec, message):
    # the LR is read once a step: a shorter cycle or phase was sampled as noise, a 0.001-step decay
    # interval took the LR to 0 at step 1
    with pytest.raises(ConfigError) as e:
        compile_schedule(spec, Plan(18, 9), name="s")
    assert str(e.value) == message


def test_a_phase_of_one_step_or_a_fraction_over_one_is_kept():
    # the bundled uneven-cyclic (0.25 epochs up) at 4 steps an epoch, as the smallest end-to-end test runs it
    v = lrs({"type": "cyclic", "base_lr": 0.0, "max_lr": 1.0, "up_epochs": 0.25, "down_epochs": 1.25}, Plan(8, 4))
    assert v[:7] == pytest.approx([0, 1, 0.8, 0.6, 0.4, 0.2, 0])
    v = lrs({"type": "cyclic", "base_lr": 0.0, "max_lr": 1.0, "up_steps": 1.5}, Plan(6, 3))
    assert v == pytest.approx([0, 2 / 3, 2 / 3, 0, 2 / 3, 2 / 3])
    assert lrs({"type": "sgdr", "lr": 1.0, "period_steps": 1}, Plan(3, 1)) == [1.0] * 3


REQUIRED_KEYS = {
    "constant": {"lr": 0.1},
    "warmup": {"lr": 0.1, "warmup_epochs": 1},
    "step": {"lr": 0.1, "every_epochs": 3},
    "multistep": {"lr": 0.1, "milestones_frac": [0.5, 0.75]},
    "exponential": {"lr": 0.1, "gamma": 0.99},
    "inverse_time": {"lr": 0.1, "decay_rate": 0.5, "every_epochs": 1},
    "polynomial": {"lr": 0.1},
    "cosine": {"lr": 0.1},
    "tanh": {"lr": 0.1},
    "anneal": {"lr": 0.1},
    "sgdr": {"lr": 0.1, "period_epochs": 2},
    "cyclic": {"base_lr": 0.01, "max_lr": 0.1, "up_epochs": 1},
    "onecycle": {"max_lr": 0.1},
    "flat_anneal": {"lr": 0.1},
    "plateau": {"lr": 0.1},
}


def test_every_family_parses_with_its_required_keys():
    assert set(REQUIRED_KEYS) == set(FAMILIES)
    for name, keys in REQUIRED_KEYS.items():
        parse_spec({"type": name, **keys})
        v = lrs({"type": name, **keys})
        assert all(math.isfinite(x) and x >= 0 for x in v)
