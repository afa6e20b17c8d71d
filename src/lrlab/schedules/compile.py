"""From a spec (a TOML table) to a compiled `Schedule`: parse and type-check the keys, expand a
preset, resolve `"auto"` LRs, check the spec against the real step count, add warm-up and momentum.
Every refusal is a ConfigError naming the field."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from lrlab.errors import ConfigError, choices, did_you_mean
from lrlab.schedules.core import (
    MAX_STEPS,
    UNITS,
    WARMUP_CURVES,
    Duration,
    Fn,
    Plan,
    Spec,
    cos_anneal,
    in_steps,
    pick,
)
from lrlab.schedules.families import FAMILIES
from lrlab.schedules.presets import PRESETS

# Spec keys that differ from the field name (a field named `curve` would shadow the method).
_RENAMED = {"curve_type": "curve"}
# LR keys that may be zero; every other key ending in "lr" must be positive
_ZERO_LR_OK = ("min_lr", "base_lr", "end_lr", "warmup_start_lr")
# the largest LR a key may hold: no network trains at 1e6 (SGD's largest useful LRs are tens: LARS), and the
# curves' arithmetic near float's range overflowed (a warm-up to 1e308 peaked at inf): a typo, said as one
MAX_LR = 1e6
# `"auto"` LR keys: the LR range test's suggestion times this factor. The peak keys take the
# suggestion itself; a cyclic base takes a tenth of it (Smith: base 3-4× below the peak, or lower).
AUTO_FACTORS = {"lr": 1.0, "max_lr": 1.0, "base_lr": 0.1}
AUTO_RULE = "valley"  # which suggestion of the LR range test "auto" uses (see lr_finder.py)
# `momentum = {type = "inverse", ...}`: momentum mirrors the LR within the run's LR range
INVERSE_DEFAULTS = {"low": 0.85, "high": 0.95}
# keys that do something only with another parameter set: (keys, that parameter, how the refusal says it)
_ONLY_WITH = (
    ({"base_momentum", "max_momentum"}, "cycle_momentum", "cycle_momentum = true (momentum is not cycled here)"),
    ({"warmup_start_lr", "warmup_curve"}, "warmup", "a warm-up (warmup_steps|_epochs|_frac above 0); none is set"),
)
# keys that say the same thing two ways: the user's one replaces a preset's other one; both given are refused
_ALTERNATIVES = {"div_final": "final_div_factor", "final_div_factor": "div_final"}


def _keys(cls: type[Spec]) -> dict[str, tuple[str, Any]]:
    """Spec key -> (field name, field type); a Duration field expands to its three unit keys."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[str, Any]] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        key, tp = _RENAMED.get(f.name, f.name), hints[f.name]
        args = typing.get_args(tp)
        if tp is Duration or Duration in args or tp == list[Duration]:
            for unit in UNITS:
                out[f"{key}_{unit}"] = (f.name, list[Duration] if tp == list[Duration] else Duration)
        else:
            out[key] = (f.name, tp)
    return out


def valid_keys(family: str) -> list[str]:
    """Every key a spec of this family (or preset) may have, `type` first."""
    cls = FAMILIES[PRESETS[family]["type"] if family in PRESETS else family]
    return ["type", *_keys(cls)]


REQUIRED = "(required)"


def toml_text(value: Any) -> str:
    """A default as it would be written in a spec (`true`, `"cos"`, `0.0001`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:g}" if isinstance(value, float) else str(value)


def family_fields(family: str) -> list[tuple[str, str]]:
    """(key, default as TOML text) of a family's own parameters (no warm-up/momentum), for docs
    and help; the default of a required key is REQUIRED, a length's key ends in `_*`
    (`_steps|_epochs|_frac`) unless its default names the unit."""
    cls = FAMILIES[family]
    base = {f.name for f in dataclasses.fields(Spec)}
    keys = _keys(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in base or f.metadata.get("internal"):
            continue
        key = _RENAMED.get(f.name, f.name)
        key = f"{key}_*" if f"{key}_steps" in keys else key
        if f.default is dataclasses.MISSING:
            out.append((key, REQUIRED))
        elif isinstance(f.default, Duration):
            out.append((key.replace("*", f.default.unit), toml_text(f.default.value)))
        else:  # None: what leaving the key out means, in words
            out.append((key, f.metadata.get("unset", "") if f.default is None else toml_text(f.default)))
    if family == "warmup":  # its warm-up is its one required length
        out.append(("warmup_*", REQUIRED))
    return out


def expand_preset(spec: dict[str, Any]) -> dict[str, Any]:
    """A preset's pinned keys with the user's keys on top (a length the user gives in another
    unit replaces the preset's); other specs are returned as they are."""
    name = spec.get("type")
    if not isinstance(name, str) or name not in PRESETS:
        return dict(spec)
    out = dict(PRESETS[name])
    for key in spec:
        stem, _, unit = key.rpartition("_")
        if unit in UNITS:
            for u in UNITS:
                out.pop(f"{stem}_{u}", None)
        if key in _ALTERNATIVES:
            out.pop(_ALTERNATIVES[key], None)
    out.update({k: v for k, v in spec.items() if k != "type"})
    return out


def uses_auto(spec: Any) -> bool:
    return isinstance(spec, dict) and any(v == "auto" for v in spec.values())


def auto_scales_away(spec: dict[str, Any]) -> bool:
    """Whether an LR axis (scale_to_peak) leaves nothing of the value of the spec's "auto" LRs: every LR it
    scales is "auto" (or 0), so only their fixed ratios (AUTO_FACTORS) count. A fixed LR beside an "auto" one
    (base_lr = "auto", max_lr = 0.5) keeps a ratio that the value sets."""
    return all(
        v == "auto" or not isinstance(v, int | float) or isinstance(v, bool) or v == 0
        for k, v in expand_preset(spec).items()
        if k.endswith("lr")
    )


def resolve_auto(spec: dict[str, Any], suggestion: float) -> dict[str, Any]:
    """Replace every `"auto"` LR by the range test's suggestion times the key's AUTO_FACTORS entry."""
    return {k: suggestion * AUTO_FACTORS[k] if v == "auto" and k in AUTO_FACTORS else v for k, v in spec.items()}


def scale_to_peak(spec: dict[str, Any], peak: float, plan: Plan) -> dict[str, Any]:
    """The same shape with every LR key scaled so that the schedule's peak LR is `peak` (the LR
    axis of a study). A momentum table is left alone."""
    current = compile_schedule(resolve_auto(spec, 1.0), plan).peak_lr
    factor = peak / current
    out = expand_preset(spec) if spec.get("type") in PRESETS else dict(spec)
    if spec.get("type") in PRESETS:
        out["type"] = PRESETS[spec["type"]]["type"]
    for k, v in out.items():
        if k.endswith("lr") and isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = v * factor
    return out


def _number(value: Any, where: str) -> float:
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            if math.isfinite(number := float(value)):
                return number
        except OverflowError:  # a TOML integer beyond a float's range
            pass
    shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
    raise ConfigError(f"{where}: expected a finite number, got {shown}")


def _value(value: Any, tp: Any, key: str, where: str, zero_ok: bool = False) -> Any:
    if tp is Duration or tp == list[Duration]:
        unit = key.rsplit("_", 1)[1]
        items = value if tp != Duration and isinstance(value, list) else [value]
        if tp != Duration and not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list of lengths, got {value!r}")
        out = []
        for v in items:
            n = _number(v, where)
            if n < 0:
                raise ConfigError(f"{where}: a length cannot be negative, got {v!r}")
            if unit == "frac" and n > 1:
                raise ConfigError(f"{where}: a fraction of training must be in [0, 1], got {v!r}")
            out.append(Duration(n, unit))
        return out[0] if tp is Duration else out
    if tp is bool or tp is str:
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {'true or false' if tp is bool else 'a string'}, got {value!r}")
        return value
    if any(typing.get_origin(t) is dict for t in (tp, *typing.get_args(tp))):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    if value == "auto" and zero_ok:  # a momentum table (its values may be 0)
        raise ConfigError(f'{where}: "auto" is an LR from the LR range test; a momentum table\'s values are momenta: '
                          "give a number in [0, 1)")  # fmt: skip
    if value == "auto" and key not in AUTO_FACTORS and key.endswith("lr"):
        raise ConfigError(f'{where}: "auto" is for {", ".join(AUTO_FACTORS)} only (the LR range test sets them); '
                          f"give {key} a number")  # fmt: skip
    if value == "auto" and key in AUTO_FACTORS:
        raise ConfigError(
            f'{where}: "auto" is set from the LR range test, which `lrlab study` and `lrlab schedules` '
            "run on the study's data (with --steps, give its value: --auto-lr LR)"
        )
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if isinstance(value, str) and key in AUTO_FACTORS:  # "Auto", "1e-1" (TOML reads .1 as a string too)
        raise ConfigError(f'{where}: expected a finite number or "auto", got {value!r} (write 0.1, not .1 or "0.1")')
    n = _number(value, where)
    if key.endswith("lr"):
        if n < 0 or (n == 0 and not zero_ok and key not in _ZERO_LR_OK):
            raise ConfigError(f"{where}: a learning rate must be positive, got {value!r}")
        if n > MAX_LR:
            raise ConfigError(f"{where}: a learning rate must be at most {MAX_LR:g} (no network trains above it), "
                              f"got {value!r}")  # fmt: skip
    return n


# torch.optim.lr_scheduler's names, for the hint a refusal gives: its classes' families here, and its parameters'
# keys here (a length key written with a unit: _steps, _epochs or _frac)
TORCH_TYPES = {
    "StepLR": "step", "MultiStepLR": "multistep", "ExponentialLR": "exponential", "CosineAnnealingLR": "cosine",
    "CosineAnnealingWarmRestarts": "sgdr", "CyclicLR": "cyclic", "OneCycleLR": "onecycle",
    "PolynomialLR": "polynomial", "ReduceLROnPlateau": "plateau",
    # where no family is the class, what the hint says after "torch's <class>"
    "ConstantLR": "is not a constant LR but a constant warm-up: on any family, warmup_curve = 'constant', "
                  "warmup_start_lr = factor × lr, warmup_steps = total_iters",
    "LinearLR": "rising is a warm-up ('warmup', or on any family: warmup_start_lr = start_factor × lr, "
                "warmup_steps = total_iters); falling is 'polynomial' with power = 1",
}  # fmt: skip
TORCH_PARAMS = {
    "pct_start": "peak_frac", "eta_min": "min_lr", "T_max": "decay_steps", "total_iters": "decay_steps",
    "step_size": "every_steps", "step_size_up": "up_steps", "step_size_down": "down_steps", "T_0": "period_steps",
    "T_mult": "t_mult", "anneal_strategy": "anneal", "milestones": "milestones_steps", "min_lrs": "min_lr",
}  # fmt: skip


def _torch_hint(key: str, valid: list[str]) -> str:
    """' (torch's pct_start is peak_frac here)' where `key` is a torch scheduler's parameter that this family takes
    under another name."""
    ours = TORCH_PARAMS.get(key)
    stem = ours.rsplit("_", 1)[0] if ours and ours.endswith("_steps") else ours
    if ours is None or not any(k == ours or k.startswith(f"{stem}_") for k in valid):
        return ""
    unit = " (or _epochs, _frac)" if ours.endswith("_steps") else ""
    return f" (torch's {key} is {ours}{unit} here)"


def parse_spec(spec: Any, where: str = "schedule", zero_ok: bool = False) -> Spec:
    """Check a spec's type, keys and value types (not yet its fit to a run); ConfigError names the key."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a table with a `type` key, got {spec!r}")
    if "type" not in spec:
        raise ConfigError(f"{where}.type: missing; valid types: {choices([*FAMILIES, *PRESETS])}")
    family = spec["type"]
    if not isinstance(family, str) or (family not in FAMILIES and family not in PRESETS):
        names = [*FAMILIES, *PRESETS]
        ours = TORCH_TYPES.get(family) if isinstance(family, str) else None
        hint = did_you_mean(str(family), names) if ours is None else f" (torch's {family} {ours})"
        hint = f" (torch's {family} is {ours!r} here)" if ours in FAMILIES else hint
        raise ConfigError(f"{where}.type: unknown schedule type {family!r}{hint}; valid: {choices(names)}")
    written = set(spec)
    if {"div_final", "final_div_factor"} <= written:
        raise ConfigError(
            f"{where}.div_final: give final_div_factor (torch: last LR = first LR / it) or div_final "
            "(fastai: last LR = max_lr / it), not both"
        )
    spec = expand_preset(spec)
    cls = FAMILIES[spec["type"]]
    keys = _keys(cls)
    kwargs: dict[str, Any] = {}
    given_as: dict[str, str] = {}  # a field's key in the spec (a length's unit)
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in keys:
            hint = _torch_hint(key, valid_keys(family)) or did_you_mean(key, keys)
            lr_keys = [k for k in keys if k.endswith("lr") and not k.startswith("warmup")]
            if not hint and key.endswith("lr") and lr_keys:  # `lr` on a family whose peak is `max_lr`, say
                hint = f" (its LRs: {choices(lr_keys)})"
            raise ConfigError(
                f"{where}.{key}: not a parameter of {family!r}{hint}; valid: {choices(valid_keys(family))}"
            )
        name, tp = keys[key]
        if name in kwargs:
            other = given_as[name]  # (a config's length, and another unit of it from --set)
            raise ConfigError(
                f"{where}.{key}: the length {name!r} is given twice, as {other} and as {key}; give one of them "
                f"(--unset {where}.{other} removes the first)"
            )
        kwargs[name], given_as[name] = _value(value, tp, key, f"{where}.{key}", zero_ok), key
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        shown = [f"{_RENAMED.get(m, m)}_steps|_epochs|_frac" if f"{m}_steps" in keys else m for m in missing]
        raise ConfigError(f"{where}: {family!r} needs {', '.join(shown)}")
    if isinstance(kwargs.get("warmup"), Duration) and kwargs["warmup"].value == 0:
        del kwargs["warmup"]  # a warm-up of length 0 is none (its start LR and curve would do nothing)
    for only, needed, why in _ONLY_WITH:  # keys the user gave that the rest of the spec leaves without effect
        if not kwargs.get(needed) and (unused := sorted(written & only)):
            raise ConfigError(f"{where}.{unused[0]}: used only with {why}")
    if spec["type"] == "warmup" and "warmup" not in kwargs:
        raise ConfigError(f"{where}: 'warmup' needs warmup_steps|_epochs|_frac, longer than 0")
    return cls(**kwargs)


@dataclass(frozen=True)
class Schedule:
    """A compiled schedule: pure functions of the optimizer step (0-based). A metric-driven one
    (plateau) also reads the validation metric the run appends with `observe` at each epoch end."""

    name: str
    spec: dict[str, Any]  # as written (a preset unexpanded)
    plan: Plan
    lr: Fn
    momentum: Fn | None  # None: the optimizer's own momentum is left alone
    floor_lr: float  # the lowest LR the spec can give
    peak_lr: float  # the highest
    metric: str | None = None  # plateau: the metric it watches
    history: list[float] = field(default_factory=list)  # plateau: that metric at each epoch end
    notes: tuple[str, ...] = ()  # fits the run but probably not what was meant (a milestone past its end)

    def observe(self, metrics: dict[str, float]) -> None:
        """Record an epoch's validation metrics (only metric-driven schedules keep them)."""
        if self.metric is not None:
            self.history.append(float(metrics[self.metric]))

    def trace(self) -> list[tuple[int, float, float | None]]:
        """(step, lr, momentum) for every step of the run."""
        m = self.momentum
        return [(s, self.lr(s), m(s) if m else None) for s in range(self.plan.total_steps)]


def _momentum(table: dict[str, Any], lr: Fn, lo: float, hi: float, plan: Plan, where: str) -> Fn:
    """A momentum (beta1) schedule: `inverse` mirrors the LR, any family gives values directly."""
    if table.get("type") == "inverse":
        extra = set(table) - {"type", *INVERSE_DEFAULTS}
        if extra:
            raise ConfigError(f"{where}.{sorted(extra)[0]}: 'inverse' takes {choices(INVERSE_DEFAULTS)}")
        low, high = (_number(table.get(k, d), f"{where}.{k}") for k, d in INVERSE_DEFAULTS.items())
        if not 0 <= low <= high < 1:
            raise ConfigError(f"{where}: need 0 ≤ low ≤ high < 1, got low {low:g}, high {high:g}")
        span = hi - lo
        return lambda s: high - (high - low) * ((lr(s) - lo) / span if span > 0 else 0.0)
    if own := sorted({"momentum", "cycle_momentum"} & set(table)):  # it gives momentum values; it has none
        raise ConfigError(f"{where}.{own[0]}: a momentum table's values are the momentum; it has none of its own")
    sched = compile_schedule(table, plan, where=where, zero_ok=True)
    if sched.metric:  # nothing would feed it: momentum is set from the step alone
        raise ConfigError(f"{where}.type: a momentum table follows the steps; {table['type']!r} reads a metric")
    if not 0 <= sched.floor_lr <= sched.peak_lr < 1:
        raise ConfigError(f"{where}: momentum values must lie in [0, 1); this spec reaches {sched.peak_lr:g}")
    return sched.lr


def compile_schedule(
    spec: dict[str, Any], plan: Plan, name: str = "schedule", where: str | None = None, zero_ok: bool = False
) -> Schedule:
    """Check `spec` against `plan` and return its pure LR function; ConfigError names the field. zero_ok: its
    values may be 0 (a momentum table's; a learning rate of 0 trains nothing, so LRs are refused at 0)."""
    where = where or f"schedules.{name}"
    if plan.total_steps < 1 or plan.steps_per_epoch < 1:
        raise ConfigError(f"{where}: the run has no optimizer steps ({plan})")
    parsed = parse_spec(spec, where, zero_ok)

    def fld(f: str) -> str:
        return f"{where}.{f}"

    for f in dataclasses.fields(parsed):  # every length countable in steps before any is used
        lengths = value if isinstance(value := getattr(parsed, f.name), list) else [value]
        for d in lengths:
            if isinstance(d, Duration) and not d.steps(plan) < MAX_STEPS:
                raise ConfigError(
                    f"{fld(f'{_RENAMED.get(f.name, f.name)}_{d.unit}')}: {in_steps(d, plan)}; a length must be "
                    f"below 2**53 ({MAX_STEPS:.3g}) steps, far beyond any run"
                )
    W = parsed.warmup.steps(plan) if parsed.warmup else 0.0
    W_int = math.ceil(W)  # whole optimizer steps
    if plan.total_steps <= W_int:
        whole = f", {W_int} whole" if W_int != W else ""
        raise ConfigError(
            f"{fld('warmup_' + parsed.warmup.unit)}: the warm-up ({W:g} steps{whole}) must be shorter than "
            f"the run ({plan.total_steps} steps)"
        )
    # constant: hold warmup_start_lr, then jump (torch's ConstantLR in a SequentialLR; the "constant
    # warm-up" of He et al. 2016 and Goyal et al. 2017)
    ramp = pick(dict(zip(WARMUP_CURVES, WARMUP_CURVES, strict=True)), "warmup_curve", parsed.warmup_curve, fld)
    # After a warm-up the family runs over the remaining steps as if training began there: its
    # lengths, milestones and fractions count from the warm-up's end (torch's SequentialLR, timm's
    # warmup_prefix); the offset lets a metric-driven family find the run's epochs.
    inner = Plan(plan.total_steps - W_int, plan.steps_per_epoch, plan.offset + W_int)
    body = parsed.curve(inner, fld)
    lo, hi = parsed.bounds()  # after curve(): its checks come first (a div_factor of 0 would divide by zero)
    if W_int:
        start, first = parsed.warmup_start_lr, body(0)
        if start > first:
            raise ConfigError(
                f"{fld('warmup_start_lr')}: a warm-up rises; {start:g} is above the schedule's first LR {first:g}"
            )
        if ramp == "constant" and start == 0:
            raise ConfigError(
                f"{fld('warmup_start_lr')}: a constant warm-up holds warmup_start_lr, which is 0 [the default]: it "
                "would train nothing; give the LR to hold (e.g. a tenth of the schedule's first LR)"
            )
        if first == 0:  # (SGDR's cycle_warmup starts each cycle, the first too, at its min_lr)
            raise ConfigError(
                f"{fld('warmup_' + parsed.warmup.unit)}: the warm-up rises to the schedule's first LR, which is 0 "
                "here: it would train nothing; leave it out"
            )

        def lr(s: int) -> float:
            if s >= W_int:
                return body(s - W_int)
            if ramp == "constant":
                return start
            if ramp == "cos":
                return cos_anneal(start, first, s / W_int)
            return start + (first - start) * s / W_int

        lo = min(lo, start)
    else:
        lr = body
    built_in = parsed.momentum_curve(inner)
    if parsed.momentum is not None and built_in is not None:
        preset = f"the preset {spec['type']!r} sets cycle_momentum = true; " if "cycle_momentum" not in spec else ""
        raise ConfigError(
            f"{fld('momentum')}: {preset}give a momentum table or cycle_momentum = true, not both "
            "(cycle_momentum = false keeps the table)"
        )
    if parsed.momentum is not None:
        span = lo, hi  # (the schedule's own bounds stay the family's: an LR axis scales by its peak_lr)
        if parsed.watched_metric() is None:  # "inverse" spans the LRs this run takes, not the family's range
            taken = [lr(s) for s in range(plan.total_steps)]  # (a step schedule may never reach its floor)
            span = min(taken), max(taken)
        momentum = _momentum(parsed.momentum, lr, *span, plan, fld("momentum"))
    elif built_in is not None:
        momentum = lambda s: built_in(max(s - W_int, 0))  # noqa: E731  (held during the warm-up)
    else:
        momentum = None
    return Schedule(
        name, dict(spec), plan, lr, momentum, lo, hi, parsed.watched_metric(), getattr(parsed, "history", []),
        tuple(parsed.notes(inner)),
    )  # fmt: skip
