"""Learning-rate schedules as data: a spec (a TOML table) compiles to a pure function of the step.

A spec is `{"type": <family>, <parameters>}`. Lengths carry their unit in the key:
`up_steps`, `up_epochs` or `up_frac` (a fraction of all training steps); give one of them.
`compile_schedule(spec, plan)` checks the spec against the real number of optimizer steps and
returns a `Schedule` whose `lr(step)` is a pure function: no optimizer, no hidden state, so a
resumed run continues the same trace from its step counter alone.

Every family also takes a warm-up (`warmup_steps|_epochs|_frac`, `warmup_start_lr`): a linear
ramp from `warmup_start_lr` to the family's first value, after which the family runs over the
remaining steps, so the two join without a jump.

Formulas follow PyTorch's schedulers where one exists (CyclicLR, OneCycleLR,
CosineAnnealingLR, StepLR), so their LR traces agree step for step (tests/test_schedules.py).
Written here rather than wrapping torch.optim.lr_scheduler because those are stateful objects
tied to an optimizer (OneCycleLR raises past its total, CyclicLR cycles momentum by default):
a pure function is what makes preview, validation and resume trivial.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrlab.errors import ConfigError, choices, did_you_mean, unknown

UNITS = ("steps", "epochs", "frac")


@dataclass(frozen=True)
class Plan:
    """The step geometry of one training run; a schedule is compiled against it."""

    total_steps: int  # optimizer steps in the whole run
    steps_per_epoch: int


@dataclass(frozen=True)
class Duration:
    """A length with its unit, as written in the spec (`up_epochs = 2` is Duration(2, "epochs"))."""

    value: float
    unit: str  # steps | epochs | frac

    def steps(self, plan: Plan) -> float:
        """The length in optimizer steps (a float: torch's formulas keep fractional lengths)."""
        per = {"steps": 1, "epochs": plan.steps_per_epoch, "frac": plan.total_steps}[self.unit]
        return self.value * per


Fn = Callable[[int], float]


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Fields every family takes. Subclasses add theirs and implement `curve`."""

    warmup: Duration | None = None  # linear warm-up before the family's own curve
    warmup_start_lr: float = 0.0  # LR at step 0 of the warm-up

    def curve(self, plan: Plan, field: Callable[[str], str]) -> Fn:
        """The family's LR as a function of its own step (0 .. plan.total_steps - 1)."""
        raise NotImplementedError

    def momentum_curve(self, plan: Plan) -> Fn | None:
        """Momentum (SGD) or beta1 (Adam) by step, where the family schedules it; else None."""
        return None

    def peak(self) -> float:
        """The largest LR the family can reach (its declared upper bound)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Constant(Spec):
    lr: float

    def curve(self, plan: Plan, field: Callable[[str], str]) -> Fn:
        return lambda s: self.lr

    def peak(self) -> float:
        return self.lr


@dataclass(frozen=True, kw_only=True)
class Warmup(Constant):
    """Linear warm-up to `lr`, then hold: the study's "warm-up" setting. The warm-up is required."""


@dataclass(frozen=True, kw_only=True)
class Cyclic(Spec):
    """Smith's cyclical LR (torch CyclicLR): up for `up`, down for `down`; unequal lengths allowed."""

    base_lr: float
    max_lr: float
    up: Duration  # rising half-cycle
    down: Duration | None = None  # falling half-cycle; default: the same as `up` (triangular)
    mode: str = "triangular"  # triangular | triangular2 (amplitude halves each cycle) | exp_range
    gamma: float = 1.0  # exp_range: amplitude scaled by gamma**step
    cycle_momentum: bool = False  # off unless asked for (torch turns it on by default)
    base_momentum: float = 0.8  # momentum at the LR peak (torch's default)
    max_momentum: float = 0.9  # momentum at the LR trough

    MODES = ("triangular", "triangular2", "exp_range")

    def _shape(self, plan: Plan, field: Callable[[str], str]) -> Callable[[int], tuple[float, float]]:
        up = self.up.steps(plan)
        down = (self.down or self.up).steps(plan)
        if up <= 0:
            raise ConfigError(f"{field('up')}: the rising half-cycle must be longer than zero steps")
        if down <= 0:
            raise ConfigError(f"{field('down')}: the falling half-cycle must be longer than zero steps")
        if self.mode not in self.MODES:
            raise ConfigError(f"{field('mode')}: must be one of {choices(self.MODES)}, got {self.mode!r}")
        total, ratio = up + down, up / (up + down)

        def shape(s: int) -> tuple[float, float]:
            # torch CyclicLR: position x in [0, 1) within cycle number `cycle` (1-based)
            cycle = math.floor(1 + s / total)
            x = 1.0 + s / total - cycle
            height = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
            scale = {"triangular": 1.0, "triangular2": 1 / (2.0 ** (cycle - 1)), "exp_range": self.gamma**s}
            return height, scale[self.mode]

        return shape

    def curve(self, plan: Plan, field: Callable[[str], str]) -> Fn:
        if self.max_lr < self.base_lr:
            raise ConfigError(f"{field('max_lr')}: must be at least base_lr ({self.max_lr} < {self.base_lr})")
        shape = self._shape(plan, field)

        def lr(s: int) -> float:
            h, k = shape(s)
            return self.base_lr + (self.max_lr - self.base_lr) * h * k

        return lr

    def momentum_curve(self, plan: Plan) -> Fn | None:
        if not self.cycle_momentum:
            return None
        shape = self._shape(plan, lambda f: f)

        def mom(s: int) -> float:
            h, k = shape(s)
            return self.max_momentum - (self.max_momentum - self.base_momentum) * h * k

        return mom

    def peak(self) -> float:
        return self.max_lr


@dataclass(frozen=True, kw_only=True)
class Anneal(Spec):
    """Decay from `lr` over the run: cosine to `min_lr` (torch CosineAnnealingLR with T_max = run
    length), linear to `min_lr`, or step decay by `gamma` every `every` (torch StepLR)."""

    lr: float
    curve_type: str = "cosine"  # written `curve` in specs: cosine | linear | step
    min_lr: float = 0.0  # cosine/linear: LR at the last step
    gamma: float = 0.1  # step: factor applied at each decay
    every: Duration = Duration(1 / 3, "frac")  # step: decay interval (default: two drops)

    CURVES = ("cosine", "linear", "step")

    def curve(self, plan: Plan, field: Callable[[str], str]) -> Fn:
        if self.curve_type not in self.CURVES:
            raise ConfigError(
                f"{field('curve')}: must be one of {choices(self.CURVES)}, got {self.curve_type!r}"
            )
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"{field('min_lr')}: must be in [0, lr], got {self.min_lr}")
        T, lo, hi = plan.total_steps, self.min_lr, self.lr
        if self.curve_type == "cosine":
            return lambda s: lo + (hi - lo) * (1 + math.cos(math.pi * s / T)) / 2
        if self.curve_type == "linear":
            return lambda s: hi + (lo - hi) * s / max(T - 1, 1)
        every = self.every.steps(plan)
        if every <= 0:
            raise ConfigError(f"{field('every')}: the decay interval must be longer than zero steps")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"{field('gamma')}: must be in (0, 1], got {self.gamma}")
        return lambda s: hi * self.gamma ** math.floor(s / every)

    def peak(self) -> float:
        return self.lr


@dataclass(frozen=True, kw_only=True)
class OneCycle(Spec):
    """Smith's one-cycle as torch OneCycleLR: up from max_lr/div_factor to max_lr over `peak_frac`
    of the run, then down to max_lr/div_factor/final_div_factor (three_phase: Smith's form)."""

    max_lr: float
    peak_frac: float = 0.3  # fraction of the run at the peak (torch pct_start)
    div_factor: float = 25.0  # start LR = max_lr / div_factor
    final_div_factor: float = 1e4  # end LR = start LR / final_div_factor
    anneal: str = "cos"  # cos | linear
    three_phase: bool = False
    cycle_momentum: bool = False  # off unless asked for (torch turns it on by default)
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    ANNEALS = ("cos", "linear")

    def _phases(self, plan: Plan, field: Callable[[str], str], lo: float, hi: float, end: float) -> Fn:
        if not 0 < self.peak_frac < 1:
            raise ConfigError(f"{field('peak_frac')}: must be in (0, 1), got {self.peak_frac}")
        if self.anneal not in self.ANNEALS:
            raise ConfigError(
                f"{field('anneal')}: must be one of {choices(self.ANNEALS)}, got {self.anneal!r}"
            )
        T = plan.total_steps
        up_end = float(self.peak_frac * T) - 1  # as torch: phase ends are step indices
        if self.three_phase:  # (end step, start value, end value)
            phases = [(up_end, lo, hi), (2 * up_end, hi, lo), (T - 1, lo, end)]
        else:
            phases = [(up_end, lo, hi), (T - 1, hi, end)]
        stops = [0.0] + [p[0] for p in phases]
        if any(b <= a for a, b in itertools.pairwise(stops)):
            raise ConfigError(f"{field('peak_frac')}: {self.peak_frac} leaves an empty phase in {T} steps")

        def anneal(a: float, b: float, pct: float) -> float:
            if self.anneal == "cos":
                return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (b - a) * pct + a

        def value(s: int) -> float:
            start = 0.0
            for i, (stop, a, b) in enumerate(phases):
                if s <= stop or i == len(phases) - 1:
                    return anneal(a, b, (s - start) / (stop - start))
                start = stop
            raise AssertionError("unreachable")

        return value

    def curve(self, plan: Plan, field: Callable[[str], str]) -> Fn:
        if self.div_factor < 1:
            raise ConfigError(f"{field('div_factor')}: must be at least 1, got {self.div_factor}")
        if self.final_div_factor < 1:
            raise ConfigError(f"{field('final_div_factor')}: must be at least 1, got {self.final_div_factor}")
        start = self.max_lr / self.div_factor
        return self._phases(plan, field, start, self.max_lr, start / self.final_div_factor)

    def momentum_curve(self, plan: Plan) -> Fn | None:
        if not self.cycle_momentum:
            return None
        return self._phases(plan, lambda f: f, self.max_momentum, self.base_momentum, self.max_momentum)

    def peak(self) -> float:
        return self.max_lr


# type name -> spec class; `list(FAMILIES)` is the help text and the error message
FAMILIES: dict[str, type[Spec]] = {
    "constant": Constant,
    "warmup": Warmup,
    "cyclic": Cyclic,
    "anneal": Anneal,
    "onecycle": OneCycle,
}

# Spec keys that differ from the field name (a field named `curve` would shadow the method).
_RENAMED = {"curve": "curve_type"}
# LR keys that may be zero (all others must be positive)
_ZERO_LR_OK = ("min_lr", "base_lr", "warmup_start_lr")


@dataclass(frozen=True)
class Schedule:
    """A compiled schedule: pure functions of the optimizer step (0-based)."""

    name: str
    spec: dict[str, Any]  # the spec as written
    plan: Plan
    lr: Fn
    momentum: Fn | None  # None: the optimizer's own momentum is left alone
    peak_lr: float

    def trace(self) -> list[tuple[int, float, float | None]]:
        """(step, lr, momentum) for every step of the run."""
        m = self.momentum
        return [(s, self.lr(s), m(s) if m else None) for s in range(self.plan.total_steps)]


def _keys(cls: type[Spec]) -> dict[str, tuple[str, Any]]:
    """Spec key -> (field name, field type); Duration fields expand to their three unit keys."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[str, Any]] = {}
    for f in dataclasses.fields(cls):
        key = {v: k for k, v in _RENAMED.items()}.get(f.name, f.name)
        if Duration in typing.get_args(hints[f.name]) or hints[f.name] is Duration:
            for unit in UNITS:
                out[f"{key}_{unit}"] = (f.name, Duration)
        else:
            out[key] = (f.name, hints[f.name])
    out.pop("type", None)
    return out


def valid_keys(family: str) -> list[str]:
    return ["type", *_keys(FAMILIES[family])]


def parse_spec(spec: Any, where: str = "schedule") -> Spec:
    """Check a spec's type, keys and value types (not yet its fit to a run); ConfigError names the key."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a table with a `type` key, got {spec!r}")
    if "type" not in spec:
        raise ConfigError(f"{where}.type: missing; valid types: {choices(FAMILIES)}")
    family = spec["type"]
    if family not in FAMILIES:
        raise ConfigError(f"{where}.type: {unknown('schedule type', str(family), FAMILIES)}")
    cls = FAMILIES[family]
    keys = _keys(cls)
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in keys:
            raise ConfigError(
                f"{where}.{key}: not a parameter of {family!r}{did_you_mean(key, keys)}; "
                f"valid: {choices(valid_keys(family))}"
            )
        name, tp = keys[key]
        if name in kwargs:
            raise ConfigError(f"{where}.{key}: the length {name!r} is given twice; give one of its units")
        kwargs[name] = _value(value, tp, key, f"{where}.{key}")
    missing = [
        f.name for f in dataclasses.fields(cls) if f.name not in kwargs and f.default is dataclasses.MISSING
    ]
    if missing:
        shown = [f"{m}_steps|_epochs|_frac" if keys.get(f"{m}_steps") else m for m in missing]
        raise ConfigError(f"{where}: {family!r} needs {', '.join(shown)}")
    if cls is Warmup and "warmup" not in kwargs:
        raise ConfigError(f"{where}: 'warmup' needs warmup_steps|_epochs|_frac")
    return cls(**kwargs)


def _value(value: Any, tp: Any, key: str, where: str) -> Any:
    if tp is Duration:
        unit = key.rsplit("_", 1)[1]
        v = _number(value, where)
        if v < 0:
            raise ConfigError(f"{where}: a length cannot be negative, got {value}")
        if unit == "frac" and v > 1:
            raise ConfigError(f"{where}: a fraction of training must be in [0, 1], got {value}")
        return Duration(v, unit)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    v = _number(value, where)
    if key.endswith("lr") and (v < 0 or (v == 0 and key not in _ZERO_LR_OK)):
        raise ConfigError(f"{where}: a learning rate must be positive, got {value}")
    return v


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def compile_schedule(spec: dict[str, Any], plan: Plan, name: str = "schedule") -> Schedule:
    """Check `spec` against `plan` and return its pure LR function; ConfigError names the field."""
    where = f"schedules.{name}"
    if plan.total_steps < 1 or plan.steps_per_epoch < 1:
        raise ConfigError(f"{where}: the run has no optimizer steps ({plan})")
    parsed = parse_spec(spec, where)

    def field(f: str) -> str:
        return f"{where}.{f}"

    W = parsed.warmup.steps(plan) if parsed.warmup else 0.0
    if plan.total_steps <= W:
        raise ConfigError(
            f"{field('warmup')}: the warm-up ({W:g} steps) must be shorter than the run "
            f"({plan.total_steps} steps)"
        )
    if parsed.warmup_start_lr > parsed.peak():
        raise ConfigError(f"{field('warmup_start_lr')}: must not exceed the schedule's peak LR")
    W_int = math.ceil(W)  # warm-up steps: whole optimizer steps
    inner = Plan(plan.total_steps - W_int, plan.steps_per_epoch)
    body = parsed.curve(inner, field)
    mom = parsed.momentum_curve(inner)
    if W_int:
        start, first = parsed.warmup_start_lr, body(0)

        def lr(s: int) -> float:
            return start + (first - start) * s / W_int if s < W_int else body(s - W_int)

        momentum = None if mom is None else (lambda s: mom(max(s - W_int, 0)))
    else:
        lr, momentum = body, mom
    return Schedule(name=name, spec=dict(spec), plan=plan, lr=lr, momentum=momentum, peak_lr=parsed.peak())
