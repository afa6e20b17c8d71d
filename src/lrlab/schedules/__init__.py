"""Learning-rate schedules as data: a spec (a TOML table) compiles to a pure function of the step.

A spec is `{"type": <family or preset>, <parameters>}`. Lengths carry their unit in the key:
`up_steps`, `up_epochs` or `up_frac` (a fraction of all training steps). `compile_schedule(spec,
plan)` checks the spec against the run's real number of optimizer steps and returns a `Schedule`
whose `lr(step)` has no hidden state, so a resumed run continues the same trace from its step.

Every family takes a warm-up (`warmup_steps|_epochs|_frac`, `warmup_start_lr`, `warmup_curve`)
that ramps to the family's first value (or holds `warmup_start_lr` and then steps up to it:
`warmup_curve = "constant"`), after which the family runs over the remaining steps (no jump
where a ramp meets it), and an optional momentum schedule (`momentum = {type = "inverse", ...}`
or any family's table giving momentum values).
"""

from lrlab.schedules.compile import (
    AUTO_FACTORS,
    AUTO_RULE,
    Schedule,
    auto_scales_away,
    compile_schedule,
    family_fields,
    parse_spec,
    resolve_auto,
    scale_to_peak,
    uses_auto,
    valid_keys,
)
from lrlab.schedules.core import WARMUP_CURVES, Duration, Plan, Spec
from lrlab.schedules.families import FAMILIES
from lrlab.schedules.presets import PRESETS

__all__ = [
    "AUTO_FACTORS",
    "AUTO_RULE",
    "FAMILIES",
    "PRESETS",
    "WARMUP_CURVES",
    "Duration",
    "Plan",
    "Schedule",
    "Spec",
    "auto_scales_away",
    "compile_schedule",
    "family_fields",
    "parse_spec",
    "resolve_auto",
    "scale_to_peak",
    "uses_auto",
    "valid_keys",
]
