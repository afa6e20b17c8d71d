"""Property tests (hypothesis) over random specs: valid ones give finite LRs within their declared
bounds and warm-ups that rise; anything else is refused with a ConfigError naming a field."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrlab.errors import ConfigError
from lrlab.schedules import FAMILIES, PRESETS, WARMUP_CURVES, Plan, compile_schedule, family_fields

from .test_schedules import REQUIRED_KEYS

lr = st.floats(1e-5, 10.0)
frac = st.floats(0.01, 0.4)
factor = st.floats(0.05, 1.0)
divisor = st.sampled_from([0.0, 1.0, 25.0, 1e4]) | st.floats(1.0, 1e5)  # 0 must be refused, not divided by
plans = st.builds(Plan, total_steps=st.integers(20, 400), steps_per_epoch=st.integers(1, 40))

FAMILY_PARAMS = {
    "constant": {"lr": lr},
    "warmup": {"lr": lr, "warmup_frac": frac},
    "step": {"lr": lr, "every_frac": frac, "gamma": factor},
    "multistep": {"lr": lr, "milestones_frac": st.lists(st.floats(0, 1), max_size=4), "gamma": factor},
    "exponential": {"lr": lr, "gamma": st.floats(0.9, 1.0)},
    "polynomial": {"lr": lr, "power": st.floats(0.1, 4), "decay_frac": st.floats(0.1, 1)},
    "inverse_time": {"lr": lr, "decay_rate": st.floats(0, 10), "every_frac": frac, "staircase": st.booleans()},
    "cosine": {"lr": lr, "decay_frac": st.floats(0.1, 1)},
    "tanh": {"lr": lr, "lb": st.floats(-10, 0), "ub": st.floats(0.5, 6), "decay_frac": st.floats(0.1, 1)},
    "anneal": {"lr": lr, "curve": st.sampled_from(["cosine", "linear", "step"])},
    "sgdr": {"lr": lr, "period_frac": frac, "t_mult": st.floats(1, 3), "peak_decay": factor},
    "cyclic": {
        "base_lr": st.just(1e-6), "max_lr": lr, "up_frac": frac, "down_frac": frac,
        "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]), "gamma": st.floats(0.9, 1),
    },
    "onecycle": {
        "max_lr": lr, "peak_frac": st.floats(0.1, 0.4), "anneal": st.sampled_from(["cos", "linear"]),
        "three_phase": st.booleans(), "convention": st.sampled_from(["torch", "fastai"]),
        "div_factor": divisor, "final_div_factor": divisor,
    },
    "flat_anneal": {"lr": lr, "flat_frac": st.floats(0, 0.9), "final_div_factor": divisor},
    "plateau": {"lr": lr, "factor": st.floats(0.1, 0.9), "patience": st.integers(0, 5)},
}  # fmt: skip


@st.composite
def valid_specs(draw):
    family = draw(st.sampled_from(sorted(FAMILY_PARAMS)))
    spec = {"type": family, **draw(st.fixed_dictionaries(FAMILY_PARAMS[family]))}
    if draw(st.booleans()) and family != "warmup":
        spec["warmup_frac"] = draw(frac)
        spec["warmup_curve"] = draw(st.sampled_from(WARMUP_CURVES))
        if spec["warmup_curve"] == "constant":  # (it holds warmup_start_lr: 0 is refused)
            spec["warmup_start_lr"] = draw(st.floats(1e-7, 1e-5))
    return spec


def test_every_family_has_a_strategy():
    assert set(FAMILY_PARAMS) == set(FAMILIES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_specs(), plans, st.lists(st.floats(0, 5), max_size=12))
def test_valid_specs_stay_finite_and_in_bounds(spec, plan, metrics):
    try:
        s = compile_schedule(spec, plan, name="s")
    except ConfigError as e:  # a combination that cannot fit this plan: refused by name
        assert "schedules.s" in str(e)
        return
    for m in metrics:  # a plateau reads these; the others ignore them
        s.observe({"val_loss": m, "val_accuracy": m})
    values = [s.lr(i) for i in range(plan.total_steps)]
    tol = 1e-9 * s.peak_lr
    assert all(math.isfinite(v) for v in values)
    assert all(s.floor_lr - tol <= v <= s.peak_lr + tol for v in values), (min(values), max(values))
    if "warmup_frac" in spec:
        ramp = values[: math.ceil(spec["warmup_frac"] * plan.total_steps) + 1]
        assert all(b >= a - tol for a, b in itertools.pairwise(ramp))


KEYS = ["type", "lr", "max_lr", "base_lr", "min_lr", "up_steps", "up_frac", "down_epochs", "warmup_steps",
        "warmup_frac", "gamma", "mode", "peak_frac", "period_epochs", "milestones_frac", "momentum", "curve",
        "watch", "patience", "t_mult", "three_phase", "div_factor", "final_div_factor", "every_steps", "up_epochs",
        "period_frac", "cooldown", "factor", "power", "bogus"]  # fmt: skip
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from([*FAMILIES, *PRESETS, "auto", "cos", "triangular2"]),
    st.lists(st.floats(-1, 2), max_size=3), st.dictionaries(st.sampled_from(["type", "low", "lr"]), st.floats(-1, 2)),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=7), plans)
def test_any_document_compiles_or_is_refused_by_name(doc, plan):
    try:
        s = compile_schedule(doc, plan, name="s")
    except ConfigError as e:
        assert isinstance(e, ValueError) and "schedules.s" in str(e)
    else:
        assert all(math.isfinite(s.lr(i)) for i in range(plan.total_steps))


def _stem(key: str) -> str:
    """A length key without its unit (`up_steps` -> `up`); other keys as they are."""
    head, _, unit = key.rpartition("_")
    return head if unit in ("steps", "epochs", "frac") else key


@pytest.mark.parametrize("family", [*FAMILIES, *PRESETS])
def test_every_number_at_zero_below_zero_or_below_one_is_refused_by_name_or_works(family):
    """Each numeric key of each family and preset set to 0, -1 or 0.5 on top of a valid spec: a
    ConfigError naming the spec, or finite LRs (never a ZeroDivisionError from a divisor used
    before it was checked, as div_factor = 0 once was)."""
    kind = PRESETS[family]["type"] if family in PRESETS else family
    base = REQUIRED_KEYS[kind]
    keys = [
        k.replace("_*", "_steps")
        for k, d in family_fields(kind)
        if not d.startswith('"') and d not in ("true", "false")
    ]
    assert "lr" in keys or "max_lr" in keys
    for key in keys:
        for value in (0, -1, 0.5):
            spec = {"type": family, **{k: v for k, v in base.items() if _stem(k) != _stem(key)}, key: value}
            try:
                s = compile_schedule(spec, Plan(100, 10), name="s")
            except ConfigError as e:
                assert str(e).startswith("schedules.s"), (spec, str(e))
            else:
                assert all(math.isfinite(s.lr(i)) for i in range(100)), spec
