"""Property tests (hypothesis) over random specs: valid ones give finite LRs within their declared
bounds and warm-ups that rise; anything else is refused with a ConfigError naming a field."""

from __future__ import annotations

import itertools
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrlab.errors import ConfigError
from lrlab.schedules import FAMILIES, PRESETS, Plan, compile_schedule

lr = st.floats(1e-5, 10.0)
frac = st.floats(0.01, 0.4)
factor = st.floats(0.05, 1.0)
plans = st.builds(Plan, total_steps=st.integers(20, 400), steps_per_epoch=st.integers(1, 40))

FAMILY_PARAMS = {
    "constant": {"lr": lr},
    "warmup": {"lr": lr, "warmup_frac": frac},
    "step": {"lr": lr, "every_frac": frac, "gamma": factor},
    "multistep": {"lr": lr, "milestones_frac": st.lists(st.floats(0, 1), max_size=4), "gamma": factor},
    "exponential": {"lr": lr, "gamma": st.floats(0.9, 1.0)},
    "polynomial": {"lr": lr, "power": st.floats(0.1, 4), "decay_frac": st.floats(0.1, 1)},
    "cosine": {"lr": lr},
    "anneal": {"lr": lr, "curve": st.sampled_from(["cosine", "linear", "step"])},
    "sgdr": {"lr": lr, "period_frac": frac, "t_mult": st.floats(1, 3), "peak_decay": factor},
    "cyclic": {
        "base_lr": st.just(1e-6), "max_lr": lr, "up_frac": frac, "down_frac": frac,
        "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]), "gamma": st.floats(0.9, 1),
    },
    "onecycle": {
        "max_lr": lr, "peak_frac": st.floats(0.1, 0.4), "anneal": st.sampled_from(["cos", "linear"]),
        "three_phase": st.booleans(), "convention": st.sampled_from(["torch", "fastai"]),
    },
    "flat_anneal": {"lr": lr, "flat_frac": st.floats(0, 0.9)},
    "plateau": {"lr": lr, "factor": st.floats(0.1, 0.9), "patience": st.integers(0, 5)},
}  # fmt: skip


@st.composite
def valid_specs(draw):
    family = draw(st.sampled_from(sorted(FAMILY_PARAMS)))
    spec = {"type": family, **draw(st.fixed_dictionaries(FAMILY_PARAMS[family]))}
    if draw(st.booleans()) and family != "warmup":
        spec["warmup_frac"] = draw(frac)
        spec["warmup_curve"] = draw(st.sampled_from(["linear", "cos"]))
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
        "watch", "patience", "t_mult", "three_phase", "bogus"]  # fmt: skip
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
