"""The pieces every schedule family is built from: the run's step plan, lengths with units, the
`Spec` base class, and the two annealing curves (cosine and linear) that torch and fastai share."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrlab.errors import ConfigError, choices, did_you_mean

UNITS = ("steps", "epochs", "frac")
# The longest length in steps: beyond 2**53 a float no longer tells one step from the next (and
# 1e308 epochs is infinitely many steps), far beyond any run
MAX_STEPS = 2**53
Fn = Callable[[int], float]  # optimizer step (0-based) -> value
Field = Callable[[str], str]  # parameter name -> its full key for messages ("schedules.x.max_lr")


@dataclass(frozen=True)
class Plan:
    """The step geometry of one training run; a schedule is compiled against it."""

    total_steps: int  # optimizer steps the curve covers (the whole run, less a warm-up before it)
    steps_per_epoch: int
    offset: int = 0  # steps of the run before the curve's step 0 (a warm-up's whole steps)


@dataclass(frozen=True)
class Duration:
    """A length with its unit, as written in the spec (`up_epochs = 2` is Duration(2, "epochs"))."""

    value: float
    unit: str  # steps | epochs | frac (of the plan's steps: the run, or what follows a warm-up)

    def steps(self, plan: Plan) -> float:
        """The length in optimizer steps (a float: torch's formulas keep fractional lengths),
        rid of float noise (0.28 × 25 is 7.000000000000001, which would move a milestone a step)."""
        per = {"steps": 1, "epochs": plan.steps_per_epoch, "frac": plan.total_steps}[self.unit]
        return round(self.value * per, 9)


def cos_anneal(start: float, end: float, pct: float) -> float:
    """Half a cosine from start (pct 0) to end (pct 1): torch's `_annealing_cos`, fastai's SchedCos. A pct past 1
    (a step after a one-shot schedule's end) holds `end`, as a pct below 0 holds `start`."""
    pct = min(max(pct, 0.0), 1.0)
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def lin_anneal(start: float, end: float, pct: float) -> float:
    pct = min(max(pct, 0.0), 1.0)  # as cos_anneal
    return start + (end - start) * pct


ANNEALS: dict[str, Callable[[float, float, float], float]] = {
    "cos": cos_anneal,
    "linear": lin_anneal,
}
WARMUP_CURVES = ("linear", "cos", "constant")  # how a warm-up reaches the schedule's first LR


def pick(table: dict[str, Any], name: str, value: str, field: Field) -> Any:
    """table[value], or a ConfigError naming the field and the valid values."""
    if value not in table:
        close = did_you_mean(value, table) if isinstance(value, str) else ""  # ('cosine' where a family says 'cos')
        raise ConfigError(f"{field(name)}: must be one of {choices(table)}, got {value!r}{close}")
    return table[value]


def in_steps(d: Duration, plan: Plan) -> str:
    """A length as written, in steps and beside the run's steps, for messages."""
    n, T = d.steps(plan), plan.total_steps
    after = f" after the {plan.offset}-step warm-up" if plan.offset else ""
    if d.unit == "frac":
        return f"{d.value:g} of the run's {T} steps{after} is {n:.3g} steps"
    if d.unit == "epochs":
        per = f"{plan.steps_per_epoch} step{'s' * (plan.steps_per_epoch != 1)}"
        return f"{d.value:g} epochs of {per} is {n:.3g} steps, in a run of {T} steps{after}"
    return f"{d.value:g} steps, in a run of {T} steps{after}"


def positive_steps(d: Duration, plan: Plan, name: str, field: Field) -> float:
    n = d.steps(plan)
    if n <= 0:
        raise ConfigError(f"{field(f'{name}_{d.unit}')}: must be longer than zero steps, got {d.value:g}")
    return n


def at_least_a_step(d: Duration, plan: Plan, name: str, field: Field, what: str) -> float:
    """The length in steps of `what` (a cycle, a phase, a decay interval), refused below one
    optimizer step: the LR is read once a step, so a shorter one is stepped over (cycles of 0.18
    steps are read at a different point each step, noise rather than cycles; decay intervals of
    0.001 steps take the LR to 0 at step 1)."""
    n = positive_steps(d, plan, name, field)
    if n < 1:
        raise ConfigError(f"{field(f'{name}_{d.unit}')}: {in_steps(d, plan)}; {what} must last at least one step")
    return n


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Parameters every family takes. A family adds its own fields and implements `curve` and
    `bounds`; the field types drive parsing (a `Duration` field `up` is written `up_steps`,
    `up_epochs` or `up_frac`)."""

    warmup: Duration | None = None  # a warm-up before the family's own curve
    warmup_start_lr: float = 0.0  # LR at the first step of the warm-up
    warmup_curve: str = "linear"  # one of WARMUP_CURVES
    momentum: dict[str, Any] | None = None  # a momentum/beta1 schedule (see compile.py)

    def watched_metric(self) -> str | None:
        """The validation metric a metric-driven family reads at each epoch end (else None)."""
        return None

    def curve(self, plan: Plan, field: Field) -> Fn:
        """The family's LR as a function of its own step (0 .. plan.total_steps - 1)."""
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        """The lowest and highest LR the family can give (after its warm-up). Called only after
        `curve` has accepted the parameters, so it may divide by them."""
        raise NotImplementedError

    def momentum_curve(self, plan: Plan) -> Fn | None:
        """Momentum built into the family (torch's cycle_momentum); None where there is none."""
        return None

    def notes(self, plan: Plan) -> list[str]:
        """What fits the run but is probably not what was meant (shown before training, not refused:
        a quick look with fewer epochs should still run)."""
        return []
