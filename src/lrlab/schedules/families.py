"""Schedule families: each a frozen spec whose `curve` is a pure function of the optimizer step.

Formulas follow PyTorch where it has the same shape (StepLR, MultiStepLR, ExponentialLR,
PolynomialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR,
ReduceLROnPlateau), so traces agree step for step (tests/test_schedules.py). Written here rather
than wrapping torch.optim.lr_scheduler because those are stateful objects tied to an optimizer
(OneCycleLR raises past its total, CyclicLR cycles momentum by default, SequentialLR mis-steps on
resume): a pure function of the step is what makes preview, validation and resume trivial.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field
from typing import ClassVar

from lrlab.errors import ConfigError
from lrlab.schedules.core import (
    ANNEALS,
    MAX_STEPS,
    Duration,
    Field,
    Fn,
    Plan,
    Spec,
    at_least_a_step,
    cos_anneal,
    pick,
    positive_steps,
)

ONE_STEP = Duration(1, "steps")
A_THIRD = Duration(1 / 3, "frac")


def _check_min(lr: float, min_lr: float, field: Field, name: str = "min_lr") -> None:
    if not 0 <= min_lr <= lr:
        raise ConfigError(f"{field(name)}: must be in [0, {lr:g}] (the peak LR), got {min_lr:g}")


def _check_gamma(gamma: float, field: Field) -> None:
    if not 0 < gamma <= 1:
        raise ConfigError(f"{field('gamma')}: a decay factor must be in (0, 1], got {gamma:g}")


def _last_step(plan: Plan) -> str:
    """The run's last step as a note names it (after a warm-up, a family's steps count from its end)."""
    if plan.offset:
        return f"the last of the {plan.total_steps} steps after the {plan.offset}-step warm-up"
    return f"the last of the run's {plan.total_steps} steps"


def _after_the_run(at: float, plan: Plan) -> bool:
    """Whether step `at` comes after the run's last step (a fractional one takes effect at the first
    whole step at or past it: 99.5 never does in a 100-step run)."""
    return at > plan.total_steps - 1


def _never(what: str, at: float, plan: Plan) -> str:
    return f"{what} is step {at:g}, after {_last_step(plan)}: it never applies"


def _short_decay(spec: Polynomial | Cosine | Tanh, plan: Plan, floor: str) -> list[str]:
    """A note where a decay given longer than the run (decay_epochs = 200 in a 100-epoch run) is cut
    short by the run's end: the LR never comes down to its floor."""
    # longer than the run itself, which is the default (torch's T_max): the default curve is not noted
    if spec.decay is None or (end := spec.decay.steps(plan)) <= plan.total_steps:
        return []
    lowest = getattr(spec, floor)
    if spec.lr <= lowest:  # flat all along
        return []
    last = spec.curve(plan, str)(plan.total_steps - 1)
    return [
        f"decay_{spec.decay.unit} = {spec.decay.value:g}: the decay ends at step {end:g}, after {_last_step(plan)}, "
        f"so the LR never comes down to {floor} {lowest:g}; it ends at {last:.4g}"
    ]


def _check_momenta(spec: Cyclic | OneCycle, field: Field) -> None:
    """torch's cycle_momentum values: each a momentum, in [0, 1), the base (at the LR's peak) not above
    the max (as max_lr below base_lr is refused: the momentum would rise with the LR, not mirror it)."""
    if not spec.cycle_momentum:
        return
    for name in ("base_momentum", "max_momentum"):
        if not 0 <= (value := getattr(spec, name)) < 1:
            raise ConfigError(f"{field(name)}: a momentum must be in [0, 1), got {value:g}")
    if spec.base_momentum > spec.max_momentum:
        raise ConfigError(
            f"{field('base_momentum')}: the momentum at the LR's peak must not be above max_momentum "
            f"({spec.base_momentum:g} > {spec.max_momentum:g})"
        )


@dataclass(frozen=True, kw_only=True)
class Constant(Spec):
    lr: float

    def curve(self, plan: Plan, field: Field) -> Fn:
        return lambda s: self.lr

    def bounds(self) -> tuple[float, float]:
        return self.lr, self.lr


@dataclass(frozen=True, kw_only=True)
class Warmup(Constant):
    """Warm-up to `lr`, then hold: the original study's "warm-up" setting (the warm-up is required)."""


@dataclass(frozen=True, kw_only=True)
class Step(Spec):
    """`lr` times `gamma` every `every` (torch StepLR)."""

    lr: float
    every: Duration  # decay interval
    gamma: float = 0.1

    def curve(self, plan: Plan, field: Field) -> Fn:
        every = at_least_a_step(self.every, plan, "every", field, "a decay interval")
        _check_gamma(self.gamma, field)
        return lambda s: self.lr * self.gamma ** math.floor(s / every)

    def bounds(self) -> tuple[float, float]:
        return 0.0, self.lr

    def notes(self, plan: Plan) -> list[str]:
        every = self.every.steps(plan)
        return (
            [_never(f"every_{self.every.unit} = {self.every.value:g}", every, plan)]
            if _after_the_run(every, plan)
            else []
        )


@dataclass(frozen=True, kw_only=True)
class MultiStep(Spec):
    """`lr` times `gamma` at each milestone (torch MultiStepLR)."""

    lr: float
    milestones: list[Duration]  # e.g. milestones_frac = [0.5, 0.75]
    gamma: float = 0.1

    def curve(self, plan: Plan, field: Field) -> Fn:
        _check_gamma(self.gamma, field)
        at = sorted(m.steps(plan) for m in self.milestones)
        return lambda s: self.lr * self.gamma ** bisect.bisect_right(at, s)

    def bounds(self) -> tuple[float, float]:
        return 0.0, self.lr

    def notes(self, plan: Plan) -> list[str]:
        never = [
            _never(f"milestones_{m.unit} {m.value:g}", m.steps(plan), plan)
            for m in self.milestones
            if _after_the_run(m.steps(plan), plan)
        ]
        # milestones that take effect at one step (the first whole step at or past each) drop the LR
        # there by gamma once for each: [30, 30] is one drop by gamma², perhaps a typo for two drops
        by_step: dict[int, list[Duration]] = {}
        for m in self.milestones:
            if not _after_the_run(m.steps(plan), plan):
                by_step.setdefault(math.ceil(m.steps(plan)), []).append(m)
        after = f" after the {plan.offset}-step warm-up" if plan.offset else ""
        same = [
            f"milestones_{ms[0].unit} {', '.join(f'{m.value:g}' for m in ms)} all take effect at step {at}{after}: "
            f"one drop there by gamma^{len(ms)} = {self.gamma ** len(ms):g}"
            for at, ms in sorted(by_step.items())
            if len(ms) > 1 and self.gamma != 1
        ]
        return never + same


@dataclass(frozen=True, kw_only=True)
class Exponential(Spec):
    """`lr` times `gamma` per `every` (default: per step, torch ExponentialLR stepped every batch;
    `every_epochs = 1` decays by gamma per epoch, smoothly; with `staircase`, at once at each epoch's end, as
    ExponentialLR stepped once an epoch and Keras ExponentialDecay(staircase=True))."""

    lr: float
    gamma: float
    every: Duration = ONE_STEP
    staircase: bool = False

    def curve(self, plan: Plan, field: Field) -> Fn:
        every = at_least_a_step(self.every, plan, "every", field, "a decay interval")
        _check_gamma(self.gamma, field)
        if self.staircase:
            return lambda s: self.lr * self.gamma ** math.floor(s / every)
        return lambda s: self.lr * self.gamma ** (s / every)

    def bounds(self) -> tuple[float, float]:
        return 0.0, self.lr

    def notes(self, plan: Plan) -> list[str]:
        # torch's ExponentialLR is stepped by hand, once an epoch in most recipes: a gamma copied from one decays
        # per step here unless `every` says otherwise, which can bring the LR to nothing within an epoch or two
        if self.every != ONE_STEP or not 0 < self.gamma < 1:
            return []
        # in decades (the last step's LR over the first's, 10^-decades): gamma 0.9 over 8,000 steps is 10^-366,
        # below the smallest float, so the ratio itself would be 0
        decades = -(plan.total_steps - 1) * math.log10(self.gamma)
        if decades < 3:
            return []
        fall = (f"{10**decades:.3g}-fold, to {self.lr * 10**-decades:.3g}" if decades < 300
                else f"10^{decades:.0f}-fold, to 0 in floating point")  # fmt: skip
        return [
            f"gamma = {self.gamma:g} per step (every_steps = 1, the default): over the run's {plan.total_steps} "
            f"steps the LR falls {fall}; for gamma per epoch (torch's ExponentialLR stepped once an epoch) write "
            "every_epochs = 1"
        ]


@dataclass(frozen=True, kw_only=True)
class InverseTime(Spec):
    """`lr / (1 + decay_rate · s / every)`, or with `staircase` the whole number of `every` intervals
    in place of s / every (Keras InverseTimeDecay(decay_steps, decay_rate, staircase))."""

    lr: float
    decay_rate: float
    every: Duration
    staircase: bool = False

    def curve(self, plan: Plan, field: Field) -> Fn:
        every = at_least_a_step(self.every, plan, "every", field, "a decay interval")
        if not (math.isfinite(self.decay_rate) and self.decay_rate >= 0):
            raise ConfigError(f"{field('decay_rate')}: must be a number ≥ 0, got {self.decay_rate:g}")
        if self.staircase:
            return lambda s: self.lr / (1 + self.decay_rate * math.floor(s / every))
        return lambda s: self.lr / (1 + self.decay_rate * s / every)

    def bounds(self) -> tuple[float, float]:
        return 0.0, self.lr


@dataclass(frozen=True, kw_only=True)
class Polynomial(Spec):
    """From `lr` to `end_lr` as (1 - t/T)**power over `decay` (default: the whole run), then hold
    (torch PolynomialLR with end_lr 0; power 1 is linear decay)."""

    lr: float
    power: float = 1.0
    end_lr: float = 0.0
    decay: Duration | None = field(default=None, metadata={"unset": "(the run)"})

    def curve(self, plan: Plan, field: Field) -> Fn:
        T = positive_steps(self.decay, plan, "decay", field) if self.decay else plan.total_steps
        _check_min(self.lr, self.end_lr, field, "end_lr")
        if self.power <= 0:
            raise ConfigError(f"{field('power')}: must be positive, got {self.power:g}")
        return lambda s: self.end_lr + (self.lr - self.end_lr) * (1 - min(s, T) / T) ** self.power

    def bounds(self) -> tuple[float, float]:
        return self.end_lr, self.lr

    def notes(self, plan: Plan) -> list[str]:
        return _short_decay(self, plan, "end_lr")


@dataclass(frozen=True, kw_only=True)
class Cosine(Spec):
    """Half a cosine from `lr` to `min_lr` over `decay` (default: the run; torch CosineAnnealingLR with
    T_max = run), then hold (Keras CosineDecay's decay_steps, timm's t_initial without restarts)."""

    lr: float
    min_lr: float = 0.0
    decay: Duration | None = field(default=None, metadata={"unset": "(the run)"})

    def curve(self, plan: Plan, field: Field) -> Fn:
        _check_min(self.lr, self.min_lr, field)
        T = positive_steps(self.decay, plan, "decay", field) if self.decay else plan.total_steps
        return lambda s: cos_anneal(self.lr, self.min_lr, min(s, T) / T)

    def bounds(self) -> tuple[float, float]:
        return self.min_lr, self.lr

    def notes(self, plan: Plan) -> list[str]:
        return _short_decay(self, plan, "min_lr")


@dataclass(frozen=True, kw_only=True)
class Tanh(Spec):
    """timm's TanhLRScheduler (Hsueh et al. 2019) without restarts: from about `lr` down to about
    `min_lr` along 1 - tanh over [lb, ub] across `decay` (default: the run, timm's t_initial), then
    min_lr (timm's cycle_limit 1). lb and ub are timm's defaults since 2021; the curve starts
    (1 - tanh(lb))/2 and ends (1 - tanh(ub))/2 of the way from min_lr to lr."""

    lr: float
    min_lr: float = 0.0
    lb: float = -7.0
    ub: float = 3.0
    decay: Duration | None = field(default=None, metadata={"unset": "(the run)"})

    def curve(self, plan: Plan, field: Field) -> Fn:
        _check_min(self.lr, self.min_lr, field)
        if not self.lb < self.ub:  # (the curve falls as its argument rises from lb to ub)
            raise ConfigError(f"{field('lb')}: must be below ub ({self.ub:g}) for the LR to fall, got {self.lb:g}")
        T = positive_steps(self.decay, plan, "decay", field) if self.decay else plan.total_steps
        lo, hi, lb, ub = self.min_lr, self.lr, self.lb, self.ub

        def value(s: int) -> float:
            if s >= T:
                return lo
            t = s / T
            return lo + 0.5 * (hi - lo) * (1 - math.tanh(lb * (1 - t) + ub * t))

        return value

    def bounds(self) -> tuple[float, float]:
        return self.min_lr, self.lr

    def notes(self, plan: Plan) -> list[str]:
        return _short_decay(self, plan, "min_lr")


@dataclass(frozen=True, kw_only=True)
class Anneal(Spec):
    """The original study's "annealing": `curve` cosine (as `cosine`), linear (as `polynomial` with
    power 1) or step (as `step`, default: two drops by `gamma`)."""

    lr: float
    curve_type: str = "cosine"  # written `curve` in specs: cosine | linear | step
    min_lr: float = 0.0  # cosine/linear: the LR the curve reaches one step after the run (torch's T_max = the run)
    gamma: float = 0.1  # step: decay factor
    every: Duration = A_THIRD  # step: decay interval (two drops)

    def _inner(self, field: Field) -> Spec:
        kinds = {
            "cosine": lambda: Cosine(lr=self.lr, min_lr=self.min_lr),
            "linear": lambda: Polynomial(lr=self.lr, end_lr=self.min_lr),
            "step": lambda: Step(lr=self.lr, gamma=self.gamma, every=self.every),
        }
        return pick(kinds, "curve", self.curve_type, field)()

    def curve(self, plan: Plan, field: Field) -> Fn:
        rename = {"end_lr": "min_lr"}
        return self._inner(field).curve(plan, lambda f: field(rename.get(f, f)))

    def bounds(self) -> tuple[float, float]:
        return (0.0 if self.curve_type == "step" else self.min_lr), self.lr

    def notes(self, plan: Plan) -> list[str]:
        # keys the chosen curve does not read, given other values than their defaults
        step, unused = self.curve_type == "step", []
        if not step and (self.gamma != 0.1 or self.every != A_THIRD):
            given = {"gamma": self.gamma != 0.1, f"every_{self.every.unit}": self.every != A_THIRD}
            keys = [k for k, v in given.items() if v]
            unused.append(f"{' and '.join(keys)}: used by curve 'step' only (this one is {self.curve_type!r})")
        if step and self.min_lr != 0:
            unused.append("min_lr: used by curves 'cosine' and 'linear' only (this one is 'step')")
        return unused + self._inner(str).notes(plan)  # step: a decay interval past the run's end


@dataclass(frozen=True, kw_only=True)
class SGDR(Spec):
    """Cosine annealing with warm restarts (Loshchilov & Hutter; torch
    CosineAnnealingWarmRestarts): cycles of `period`, each `t_mult` times longer than the last,
    peaks scaled by `peak_decay` per cycle (timm's cycle_decay), and an optional warm-up at the start of
    every cycle (lrlab's own: timm warms up once, at the start of training)."""

    lr: float
    period: Duration  # the first cycle (torch T_0)
    min_lr: float = 0.0
    t_mult: float = 1.0  # cycle-length growth (torch T_mult)
    peak_decay: float = 1.0  # each cycle's peak = previous peak × peak_decay
    # a linear ramp from min_lr at the start of every cycle
    cycle_warmup: Duration | None = field(default=None, metadata={"unset": "(none)"})

    def curve(self, plan: Plan, field: Field) -> Fn:
        T0 = at_least_a_step(self.period, plan, "period", field, "a cycle")
        _check_min(self.lr, self.min_lr, field)
        if self.t_mult < 1:
            raise ConfigError(f"{field('t_mult')}: must be at least 1, got {self.t_mult:g}")
        if not 0 < self.peak_decay <= 1:
            raise ConfigError(f"{field('peak_decay')}: must be in (0, 1], got {self.peak_decay:g}")
        ramp = self.cycle_warmup
        W = ramp.steps(plan) if ramp else 0.0
        if ramp and W >= T0:
            where = field(f"cycle_warmup_{ramp.unit}")
            raise ConfigError(f"{where}: must be shorter than the first cycle ({T0:g} steps)")

        m = self.t_mult
        g = math.log1p(m - 1)

        def start(n: int) -> float:
            """First step of cycle n: T0 (m**n - 1) / (m - 1), torch's T_i = T0 m**i summed;
            log1p/expm1 keep it exact for an m just above 1 (found by the property tests). Divided before
            T0 multiplies: T0 · (m - 1) passes the float range for a huge m (1e308) without raising, and put
            the first restart at step inf, the first cycle a constant at the peak."""
            try:
                return T0 * n if m == 1 else T0 * (math.expm1(n * g) / (m - 1))
            except OverflowError:  # a cycle that starts beyond any run
                return math.inf

        def lr(s: int) -> float:
            # the closed form's guess, then corrected to the cycle whose start is at or before s
            # (float rounding at a boundary misplaced restarts for t_mult 6, 10, 100, ...); the
            # guess is capped so that a huge t_mult cannot overflow it
            x = s / T0 if m == 1 else math.log1p(min(s / T0 * (m - 1), 1e300)) / g
            n = max(math.floor(x), 0)
            tol = 1e-9 * max(1.0, s)
            while n > 0 and start(n) > s + tol:
                n -= 1
            while start(n + 1) <= s + tol:
                n += 1
            t = max(s - start(n), 0.0)
            Ti = start(n + 1) - start(n)
            # a cycle's peak never below min_lr, so the LR stays within [min_lr, lr]
            peak = max(self.lr * self.peak_decay**n, self.min_lr)
            if t < W:
                return self.min_lr + (peak - self.min_lr) * t / W
            return cos_anneal(peak, self.min_lr, (t - W) / (Ti - W))

        return lr

    def bounds(self) -> tuple[float, float]:
        return self.min_lr, self.lr

    def notes(self, plan: Plan) -> list[str]:
        T0 = self.period.steps(plan)
        if not _after_the_run(T0, plan):
            return self._flat_cycles(plan, T0)
        last = self.curve(plan, str)(plan.total_steps - 1)
        return [
            f"period_{self.period.unit} = {self.period.value:g}: the first restart would come at step {T0:g}, "
            f"after {_last_step(plan)}, so none happens within the run; the LR ends at {last:.4g} "
            f"(min_lr {self.min_lr:g})"
        ]

    def _flat_cycles(self, plan: Plan, T0: float) -> list[str]:
        """A note where peak_decay takes a cycle's peak below min_lr within the run: that cycle and the later
        ones are held flat at min_lr (timm's cosine instead runs from such a peak up to lr_min; Keras decays
        only the height above its floor, so its peaks never reach it)."""
        if self.peak_decay == 1 or self.min_lr <= 0:
            return []
        # the first cycle whose peak lr·peak_decay**n is at or below min_lr
        n = math.ceil(math.log(self.min_lr / self.lr) / math.log(self.peak_decay) - 1e-9)
        m = self.t_mult
        try:
            at = T0 * n if m == 1 else T0 * (m**n - 1) / (m - 1)
        except OverflowError:  # a cycle that starts beyond any run
            return []
        if _after_the_run(at, plan):
            return []
        return [
            f"peak_decay = {self.peak_decay:g}: from cycle {n + 1} on (step {at:g}) a peak would fall to min_lr "
            f"{self.min_lr:g}, so the LR stays flat at min_lr from there"
        ]


@dataclass(frozen=True, kw_only=True)
class Cyclic(Spec):
    """Smith's cyclical LR (torch CyclicLR): up for `up`, down for `down` (unequal lengths allowed)."""

    base_lr: float
    max_lr: float
    up: Duration  # rising half-cycle
    down: Duration | None = field(default=None, metadata={"unset": "(as up)"})  # the falling half-cycle
    mode: str = "triangular"  # triangular | triangular2 (amplitude halves each cycle) | exp_range
    gamma: float = 1.0  # exp_range: amplitude × gamma**step
    cycle_momentum: bool = False  # torch's momentum cycling; off unless asked for (torch: on)
    base_momentum: float = 0.8  # momentum at the LR peak (torch's default)
    max_momentum: float = 0.9  # momentum at the LR trough

    MODES: ClassVar[tuple[str, ...]] = ("triangular", "triangular2", "exp_range")

    def _shape(self, plan: Plan, field: Field) -> Fn:
        up = at_least_a_step(self.up, plan, "up", field, "a phase")
        down = at_least_a_step(self.down or self.up, plan, "down" if self.down else "up", field, "a phase")
        scale = pick(
            {
                "triangular": lambda cycle, s: 1.0,
                # torch's 1 / 2**(cycle - 1), which overflows after 1024 cycles; this underflows to 0
                "triangular2": lambda cycle, s: 0.5 ** (cycle - 1),
                "exp_range": lambda cycle, s: self.gamma**s,
            },
            "mode",
            self.mode,
            field,
        )
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"{field('gamma')}: must be in (0, 1], got {self.gamma:g}")
        total, ratio = up + down, up / (up + down)

        def height(s: int) -> float:
            cycle = math.floor(1 + s / total)  # as torch: 1-based cycle, x in [0, 1) within it
            x = 1.0 + s / total - cycle
            h = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
            return h * scale(cycle, s)

        return height

    def curve(self, plan: Plan, field: Field) -> Fn:
        if self.max_lr < self.base_lr:
            raise ConfigError(f"{field('max_lr')}: must be at least base_lr ({self.max_lr:g} < {self.base_lr:g})")
        _check_momenta(self, field)
        h = self._shape(plan, field)
        return lambda s: self.base_lr + (self.max_lr - self.base_lr) * h(s)

    def momentum_curve(self, plan: Plan) -> Fn | None:
        if not self.cycle_momentum:
            return None
        h = self._shape(plan, str)
        return lambda s: self.max_momentum - (self.max_momentum - self.base_momentum) * h(s)

    def bounds(self) -> tuple[float, float]:
        return self.base_lr, self.max_lr

    def notes(self, plan: Plan) -> list[str]:
        unused = self.gamma != 1 and self.mode != "exp_range"
        flat = self.base_lr == self.max_lr
        # the LR stands still, but torch's cycle_momentum still moves the momentum, so "constant" would mislead
        moves = self.cycle_momentum and self.base_momentum != self.max_momentum
        still = "; the momentum still cycles" if moves else ""
        return (
            [f"gamma = {self.gamma:g} is used by mode 'exp_range' only"] * unused
            + ["mode 'exp_range' with gamma 1 (its default) is 'triangular': give a gamma below 1"]
            * (self.mode == "exp_range" and self.gamma == 1)
            + [f"base_lr equals max_lr ({self.max_lr:g}): the LR does not cycle; it is constant{still}"] * flat
            + self._short_rise(plan)
        )

    def _short_rise(self, plan: Plan) -> list[str]:
        up, last = self.up.steps(plan), plan.total_steps - 1
        if not _after_the_run(up, plan):
            return []
        # the run ends within the first rise: the LR climbs until its last step, unless exp_range's
        # gamma**step turns it down first (at step -1/ln gamma)
        steps = {last}
        if self.mode == "exp_range" and self.gamma < 1:
            top = -1 / math.log(self.gamma)
            steps |= {min(math.floor(top), last), min(math.ceil(top), last)}
        lr = self.curve(plan, str)
        at = max(sorted(steps), key=lr)  # the earliest of equal peaks
        peak = lr(at)
        if peak >= self.max_lr:  # base_lr = max_lr: it is there all along
            return []
        return [
            f"up_{self.up.unit} = {self.up.value:g}: the rise ends at step {up:g}, after {_last_step(plan)}, so the "
            f"LR never reaches max_lr {self.max_lr:g}; it peaks at {peak:.4g} (step {at})"
        ]


@dataclass(frozen=True, kw_only=True)
class OneCycle(Spec):
    """Smith's one-cycle: up from max_lr/div_factor to max_lr over `peak_frac` of the run, then down
    to max_lr/div_factor/final_div_factor; three_phase: Smith's form (down to the start, then the
    tail). `convention` picks where phases end: "torch" (OneCycleLR: the peak at step
    peak_frac·T − 1, the last step at the final LR) or "fastai" (fit_one_cycle: phases split
    progress s/T at peak_frac)."""

    max_lr: float
    peak_frac: float = 0.3  # torch pct_start
    div_factor: float = 25.0  # start LR = max_lr / div_factor
    final_div_factor: float = 1e4  # final LR = start LR / final_div_factor
    # fastai's div_final: final LR = max_lr / div_final; given, it replaces final_div_factor
    div_final: float | None = field(default=None, metadata={"unset": "(by final_div_factor)"})
    anneal: str = "cos"  # cos | linear
    three_phase: bool = False
    convention: str = "torch"  # torch | fastai
    cycle_momentum: bool = False  # momentum from max to base and back; off unless asked (torch: on)
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    CONVENTIONS: ClassVar[tuple[str, ...]] = ("torch", "fastai")

    def _phases(self, plan: Plan, field: Field, lo: float, hi: float, end: float) -> Fn:
        if not 0 < self.peak_frac < 1:
            raise ConfigError(f"{field('peak_frac')}: must be in (0, 1), got {self.peak_frac:g}")
        anneal = pick(ANNEALS, "anneal", self.anneal, field)
        pick(dict.fromkeys(self.CONVENTIONS), "convention", self.convention, field)
        T, p = plan.total_steps, self.peak_frac

        def phase_ends(total: int) -> list[float]:  # in steps
            if self.convention == "torch":
                return [p * total - 1, 2 * p * total - 2, total - 1] if self.three_phase else [p * total - 1, total - 1]
            return [p * total, 2 * p * total, total] if self.three_phase else [p * total, total]

        def empty(ends: list[float]) -> bool:
            return any(b <= a for a, b in itertools.pairwise([0.0, *ends]))

        ends = phase_ends(T)
        values = [(lo, hi), (hi, lo), (lo, end)] if self.three_phase else [(lo, hi), (hi, end)]
        # with three_phase the rise and the fall each take peak_frac of the run; torch ends them a step
        # early (its OneCycleLR takes 0.5 and leaves the tail a step), fastai at s/T = 2p (0.5: no tail)
        if self.three_phase and (p > 0.5 or (p == 0.5 and self.convention == "fastai")):
            most = "at most 0.5" if self.convention == "torch" else "below 0.5 (with convention fastai)"
            raise ConfigError(
                f"{field('peak_frac')}: with three_phase the rise and the fall each take peak_frac of the run, "
                f"so it must be {most}, got {p:g}"
            )
        if empty(ends):  # too few steps: say how many this peak_frac needs (the rise must hold p·T > 1)
            # from 1/p a few steps on; past MAX_STEPS a step no longer changes a float (a tiny p hung)
            t = max(T + 1, math.floor(1 / p) if 1 / p < MAX_STEPS else MAX_STEPS)
            while t < MAX_STEPS and empty(phase_ends(t)):
                t += 1
            W = plan.offset  # a warm-up's whole steps come first: the run needs them too
            need = f"at least {t + W}" if t < MAX_STEPS else f"more than 2**53 ({MAX_STEPS:.3g})"
            after, total = (f" after the {W}-step warm-up", " in all") if W else ("", "")
            raise ConfigError(
                f"{field('peak_frac')}: {p:g} of {T} steps{after} leaves a phase of the cycle empty; one-cycle with "
                f"this peak_frac needs {need} steps{total} (more epochs or a smaller batch)"
                + (", or a peak_frac nearer 0.5" if p != 0.5 else "")
            )

        def value(s: int) -> float:
            start = 0.0
            for i, (stop, (a, b)) in enumerate(zip(ends, values, strict=True)):
                # torch: a step on a phase end belongs to that phase; fastai: to the next
                inside = s <= stop if self.convention == "torch" else s < stop
                if inside or i == len(ends) - 1:
                    return anneal(a, b, (s - start) / (stop - start))
                start = stop
            raise AssertionError("unreachable")

        return value

    def curve(self, plan: Plan, field: Field) -> Fn:
        if self.div_factor < 1:
            raise ConfigError(f"{field('div_factor')}: must be at least 1, got {self.div_factor:g}")
        if self.final_div_factor < 1:
            raise ConfigError(f"{field('final_div_factor')}: must be at least 1, got {self.final_div_factor:g}")
        if self.div_final is not None and self.div_final < self.div_factor:
            raise ConfigError(
                f"{field('div_final')}: the last LR, max_lr/div_final, must not be above the first, max_lr/div_factor "
                f"(div_final {self.div_final:g} < div_factor {self.div_factor:g})"
            )
        _check_momenta(self, field)
        start = self.max_lr / self.div_factor
        return self._phases(plan, field, start, self.max_lr, self._final())

    def _final(self) -> float:
        if self.div_final is not None:
            return self.max_lr / self.div_final
        return self.max_lr / self.div_factor / self.final_div_factor

    def momentum_curve(self, plan: Plan) -> Fn | None:
        if not self.cycle_momentum:
            return None
        return self._phases(plan, str, self.max_momentum, self.base_momentum, self.max_momentum)

    def bounds(self) -> tuple[float, float]:
        return self._final(), self.max_lr


@dataclass(frozen=True, kw_only=True)
class FlatAnneal(Spec):
    """Hold `lr` for `flat_frac` of the run, then anneal to lr/final_div_factor (fastai
    fit_flat_cos: flat for 75 %, cosine to lr/1e5)."""

    lr: float
    flat_frac: float = 0.75
    anneal: str = "cos"  # cos | linear
    final_div_factor: float = 1e5

    def curve(self, plan: Plan, field: Field) -> Fn:
        if not 0 <= self.flat_frac < 1:
            raise ConfigError(f"{field('flat_frac')}: must be in [0, 1), got {self.flat_frac:g}")
        if self.final_div_factor < 1:
            raise ConfigError(f"{field('final_div_factor')}: must be at least 1, got {self.final_div_factor:g}")
        anneal = pick(ANNEALS, "anneal", self.anneal, field)
        T, end = plan.total_steps, self.lr / self.final_div_factor

        def lr(s: int) -> float:
            p = s / T  # progress, as fastai's combine_scheds
            if p < self.flat_frac:
                return self.lr
            return anneal(self.lr, end, (p - self.flat_frac) / (1 - self.flat_frac))

        return lr

    def bounds(self) -> tuple[float, float]:
        return self.lr / self.final_div_factor, self.lr


@dataclass(frozen=True, kw_only=True)
class Plateau(Spec):
    """Reduce `lr` by `factor` when the validation `metric` has not improved for `patience` epochs
    (torch ReduceLROnPlateau, checked at every epoch end). The one metric-driven family: its LR
    is a pure function of the step and the metric history, which a run records every epoch."""

    lr: float
    factor: float = 0.1
    patience: int = 10  # epochs without improvement before a reduction
    threshold: float = 1e-4
    threshold_mode: str = "rel"  # rel | abs
    cooldown: int = 0  # epochs after a reduction before counting again
    min_lr: float = 0.0
    watch: str = "val_loss"  # val_loss (lower is better) | val_accuracy (higher is better)
    # the watched metric at each epoch end so far, appended by the run (not a spec key)
    history: list[float] = field(default_factory=list, repr=False, metadata={"internal": True})

    WATCH: ClassVar[dict[str, str]] = {"val_loss": "min", "val_accuracy": "max"}

    def watched_metric(self) -> str | None:
        return self.watch

    def curve(self, plan: Plan, field: Field) -> Fn:
        mode = pick(self.WATCH, "watch", self.watch, field)
        pick(dict.fromkeys(("rel", "abs")), "threshold_mode", self.threshold_mode, field)
        if self.threshold < 0 or (self.threshold_mode == "rel" and self.threshold >= 1):
            bound = "in [0, 1) with threshold_mode 'rel'" if self.threshold_mode == "rel" else "at least 0"
            raise ConfigError(
                f"{field('threshold')}: must be {bound}, got {self.threshold:g} (below 0 a worse value counts as "
                "better; a relative 1 or more lets nothing count as better)"
            )
        if not 0 < self.factor < 1:
            raise ConfigError(f"{field('factor')}: must be in (0, 1), got {self.factor:g}")
        _check_min(self.lr, self.min_lr, field)
        for name in ("patience", "cooldown"):
            if getattr(self, name) < 0 or getattr(self, name) != int(getattr(self, name)):
                raise ConfigError(f"{field(name)}: must be a whole number of epochs ≥ 0")
        spe = plan.steps_per_epoch
        # history holds every epoch of the run; the curve's step s is the run's step s + offset.
        # Epochs that ended within a warm-up are not watched (as timm's plateau with warmup_t).
        first = plan.offset // spe
        return lambda s: self.replay(mode, self.history[first : (s + plan.offset) // spe])

    def replay(self, mode: str, history: list[float]) -> float:
        """The LR after the epochs in `history`, by torch ReduceLROnPlateau's rules."""
        lr, best, bad, cool = self.lr, math.inf if mode == "min" else -math.inf, 0, 0
        for value in history:
            if self.threshold_mode == "rel":
                edge = best * (1 - self.threshold) if mode == "min" else best * (1 + self.threshold)
            else:
                edge = best - self.threshold if mode == "min" else best + self.threshold
            if value < edge if mode == "min" else value > edge:
                best, bad = value, 0
            else:
                bad += 1
            if cool > 0:
                cool, bad = cool - 1, 0
            if bad > self.patience:
                new = max(lr * self.factor, self.min_lr)
                if lr - new > 1e-8:  # torch's eps
                    lr = new
                cool, bad = self.cooldown, 0
        return lr

    def bounds(self) -> tuple[float, float]:
        return self.min_lr, self.lr

    def notes(self, plan: Plan) -> list[str]:
        if self.min_lr >= self.lr:
            return [f"min_lr = {self.min_lr:g} equals lr: the LR can never be reduced"]
        # the first epoch sets the best value, so a reduction needs patience + 1 more without
        # improvement; the LR at a step reads the watched epochs that ended before it (cooldown
        # counts only after a reduction)
        spe = plan.steps_per_epoch
        watched = (plan.offset + plan.total_steps - 1) // spe - plan.offset // spe
        need = self.patience + 2
        if watched >= need:
            return []
        warm = f" after the {plan.offset}-step warm-up and" if plan.offset else ""
        return [
            f"patience = {self.patience}: a reduction needs {need} watched epochs (the first, then "
            f"{self.patience + 1} without improvement), but {'only ' * (watched > 0)}{watched or 'none'} "
            f"end{'s' * (watched < 2)}{warm} before the run's last step, so the LR can never be reduced"
        ]


# type name -> spec class; `list(FAMILIES)` is the help text and the error message
FAMILIES: dict[str, type[Spec]] = {
    "constant": Constant,
    "warmup": Warmup,
    "step": Step,
    "multistep": MultiStep,
    "exponential": Exponential,
    "inverse_time": InverseTime,
    "polynomial": Polynomial,
    "cosine": Cosine,
    "tanh": Tanh,
    "anneal": Anneal,
    "sgdr": SGDR,
    "cyclic": Cyclic,
    "onecycle": OneCycle,
    "flat_anneal": FlatAnneal,
    "plateau": Plateau,
}
