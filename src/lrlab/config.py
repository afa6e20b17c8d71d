"""The study configuration: every default lives here, once; TOML files and CLI flags only override.

A config document is a TOML file whose top level holds the study's own keys and the tables
`[data]`, `[model]`, `[train]` and `[schedules.<name>]`. Unknown keys and wrong types are
refused with a `ConfigError` that names the key (and suggests the closest valid one).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lrlab.errors import ConfigError, choices, did_you_mean, unknown

# The study that `lrlab study` runs with no config argument (a file in src/lrlab/configs/).
DEFAULT_CONFIG = "six-settings"
SWEEP_SEP = "@"  # a run of the LR axis is named <schedule>@<peak LR> (run_name; schedule_of reads it back)

# The LR range test's sweep (`lrlab find-lr` and "auto" LRs): from 1e-5 (below any LR that trains a
# network from scratch; starting lower spends the steps on a flat curve) to 10, in 200 steps.
# Measured on CIFAR-10 (quarter-width GoogLeNet, batch 64, 2026-11-26): 100 steps from 1e-7 saw the
# loss fall by only 1 % before the sweep ended, too little to tell the valley from the plateau's noise
# (the valley rule suggested 0.0013); 200 steps from 1e-5 gave a 5.4 % fall and a valley at 0.036.
RANGE_START_LR, RANGE_END_LR, RANGE_STEPS = 1e-5, 10.0, 200
MAX_RANGE_STEPS = 100_000  # more than a range test needs by far (hundreds): a typo, refused before hours of it
# steps between a run's loss logs (steps.csv, the progress bar) and divergence checks: each reads the device, the
# training loop's only host sync; an epoch's last steps are logged at its end too
LOG_EVERY = 10
# the most seeds a count may ask for: ten times what seeds-to-plan searches (stats.MAX_SEEDS); a count of 10**9,
# a typo or a test's random input, would otherwise build a list of 10**9 seeds and exhaust the memory
MAX_SEED_COUNT = 10_000
MAX_THREADS = 1024  # train.threads: more than any machine's cores (torch.set_num_threads overflows past int64)


@dataclass
class DataConfig:
    name: str = "digits"  # digits | cifar10 | cifar100 | imagefolder:PATH (a folder or a .tar.gz)
    data_dir: str = "data"  # where cifar10/cifar100 are read from (and downloaded to)
    download: bool = False  # fetch CIFAR into data_dir if it is not there
    val_frac: float = 0.15  # fraction of the training pool held out for validation
    test_frac: float = 0.15  # fraction held out for test, only where the source has no test split
    split_seed: int = 0  # the split is the same for every run of a study
    limit: int | None = None  # train on this many images, at least one per class (val/test shrink with it)
    image_size: int | None = None  # resize images to this square size; None keeps the native size
    crop_to_aspect_ratio: bool = False  # with image_size: shorter side to it, centre cropped (else stretched)
    augment: str = "auto"  # auto | none | crop-flip | resized-crop-flip  (auto: see study.resolve_augment)
    cutout: int = 0  # side (px) of a square set to the mean pixel at a random place of each training image; 0: off
    stream: bool = False  # image folders: read images from disk each epoch instead of holding them in memory
    loader_workers: int = 4  # with stream: DataLoader worker processes decoding the images


@dataclass
class ModelConfig:
    stem: str = "auto"  # auto | cifar | imagenet  (auto: cifar for inputs up to 64 px)
    width: float = 1.0  # channel multiplier; 1.0 is the paper's table
    aux_heads: bool = False  # the paper's two auxiliary classifiers (loss weight 0.3 each)
    branch5: str = "auto"  # auto | 3x3 | 3x3-3x3 | 5x5  ("5x5" branch; auto: by stem, see model.py)
    dropout: float = 0.2  # before the final classifier; 0.2 as torchvision (the paper used 0.4)
    batchnorm: bool = True  # false: the paper's Inception v1 without BatchNorm (conv biases instead)
    fuse_1x1: bool = True  # run each block's three 1×1 convs on its input as one (same function; faster)
    # auto | fan_in | fan_out: the fan of He's init of the convs (auto: fan_out with BatchNorm, fan_in without)
    init: str = "auto"


# train.weight_decay left unset: SGD's usual 5e-4 (the CIFAR ResNet and GoogLeNet recipes); AdamW's decay is
# decoupled, multiplied by the LR alone, so 5e-4 there is a hundredth of torch.optim.AdamW's default of 0.01,
# which it takes instead
WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.01}


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adamw
    momentum: float = 0.9  # SGD momentum, or AdamW beta1
    nesterov: bool = False
    weight_decay: float | None = None  # None: WEIGHT_DECAY's value for the optimizer
    label_smoothing: float = 0.0
    # weight decay also on BatchNorm's scales and shifts and on biases; false: on conv and linear weights only
    decay_norm_bias: bool = True
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU threads for torch; None leaves torch's default (at most MAX_THREADS)
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    precision: str = "auto"  # auto | fp32 | bf16  (auto: bf16 autocast on GPUs that support it)
    channels_last: str = "auto"  # auto | on | off  (auto: on for CUDA)
    data_on_device: str = "auto"  # auto | on | off: hold the split on the device as uint8 (auto: CUDA)
    compile: bool = False  # torch.compile the model (its compile time is reported separately)
    compile_mode: str = "default"  # torch.compile's mode; "reduce-overhead" replays CUDA graphs
    # auto | aten | triton: max pooling by PyTorch's kernels or lrlab's (CUDA; kernels.py); auto: lrlab's where
    # they were measured faster (kernels.auto_pool_kernel)
    pool_kernel: str = "auto"
    ema: float | None = None  # weight EMA decay per step (e.g. 0.999) for the final evaluation
    tta_flip: bool = False  # final evaluation averages the logits of each image and its mirror

    def __post_init__(self) -> None:
        if self.weight_decay is None:  # (an unknown optimizer keeps None, and is refused by name in _check)
            self.weight_decay = WEIGHT_DECAY.get(self.optimizer)


@dataclass
class StudyConfig:
    name: str = "study"  # a config file that sets no name is named by its file (config.read_document)
    seeds: list[int] = field(default_factory=lambda: [0])  # in TOML also a count: seeds = 3
    out: str | None = None  # default: runs/<name>
    baseline: str | None = None  # schedule the others are compared with; default the first
    # LR axis: run every schedule once per peak LR here, its LR keys scaled so its peak matches
    # (the shape is kept); None runs each schedule as written
    peak_lrs: list[float] | None = None
    target_accuracy: float | None = None  # for "epochs to target"; default 0.9 × best val accuracy seen
    # the LR that "auto" stands for; None: an LR range test decides, once per study folder
    auto_lr: float | None = None
    tensorboard: bool = False  # also write TensorBoard event files into each run folder
    save_model: bool = False  # also save each run's final weights (model.pt)
    workers: int = 1  # runs trained at once in separate processes (CPU threads are shared out among them)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # name -> schedule spec (a TOML table with `type` and its parameters; see schedules.py)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.name


OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTS = ("auto", "none", "crop-flip", "resized-crop-flip")
STEMS = ("auto", "cifar", "imagenet")
BRANCH5 = ("auto", "3x3", "3x3-3x3", "5x5")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
PRECISIONS = ("auto", "fp32", "bf16")
SWITCHES = ("auto", "on", "off")
POOL_KERNELS = ("auto", "aten", "triton")
INITS = ("auto", "fan_in", "fan_out")


def resolved_init(init: str, batchnorm: bool) -> str:
    """The fan of He's init that model.init names: auto is fan_out with BatchNorm, fan_in without (the reasons
    are in model.GoogLeNet._init_weights)."""
    return init if init != "auto" else "fan_out" if batchnorm else "fan_in"


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def shown(value: Any) -> str:
    """A config value as a message shows it: in TOML's words where Python's differ (true, not True; unset, not
    None), else as Python writes it."""
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the field type `tp`; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            count = " or a count (seeds = 3: seeds 0, 1, 2)" * (key == "seeds")
            raise ConfigError(f"{key}: expected a list{count}, got {shown(value)}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {shown(value)}")
        return value
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp)
    if ok is None:  # a nested config table
        return _build(tp, value, key)
    if not ok:
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {shown(value)}")
    if tp is float:
        try:
            number = float(value)
        except OverflowError:  # a TOML integer beyond a float's range
            number = math.inf
        if not math.isfinite(number):  # no setting here means anything at inf or nan
            raise ConfigError(f"{key}: expected a finite number, got {value!r:.40}")
        return number
    return value


def _in_a_section(cls: type, key: str) -> str:
    """' (did you mean 'train.epochs'?)' where `key` names a field of one of cls's sections (`--set epochs=3`)."""
    hints = typing.get_type_hints(cls)
    found = [f"{f.name}.{key}" for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])
             and key in {g.name for g in dataclasses.fields(hints[f.name])}]  # fmt: skip
    return f" (did you mean {' or '.join(map(repr, found))}?)" if found else ""


def _build(cls: type, doc: Any, where: str) -> Any:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {doc!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in doc.items():
        full = f"{where}.{key}" if where else key
        if key not in names:
            # (`epochs` under [model]: the section it belongs to)
            hint = did_you_mean(key, names) or _in_a_section(cls if not where else StudyConfig, key)
            if not hint and key.endswith("lr"):  # `train.lr`: an LR belongs to a schedule
                hint = " (an LR is a schedule's: schedules.<name>.lr or max_lr, or --peak-lrs for every schedule)"
            raise ConfigError(f"unknown config key {full!r}{hint}; valid keys here: {choices(names)}")
        if cls is StudyConfig and key == "seeds" and isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= MAX_SEED_COUNT:
                raise ConfigError(f"seeds: a count must be in [1, {MAX_SEED_COUNT}], got {value}")
            value = list(range(value))
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


def _check(cfg: StudyConfig) -> None:
    """Range and choice checks that the types alone do not express."""

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {msg}")

    d, m, t = cfg.data, cfg.model, cfg.train
    need(bool(cfg.name.strip()), "name", "must not be empty")
    need(len(cfg.seeds) > 0, "seeds", "at least one seed is needed")
    need(len(set(cfg.seeds)) == len(cfg.seeds), "seeds", f"repeated seeds in {cfg.seeds}")
    bad = [s for s in cfg.seeds if not 0 <= s < 2**32]
    need(not bad, "seeds", f"a seed must be in [0, 2**32) (numpy's seeds), got {bad[0] if bad else ''}")
    # 0 only where the data brings that split (a val/ or test/ folder, an official test split): data.py checks
    need(0 <= d.val_frac < 1, "data.val_frac", f"must be in [0, 1), got {d.val_frac}")
    need(0 <= d.test_frac < 1, "data.test_frac", f"must be in [0, 1), got {d.test_frac}")
    left = f"(none would be left to train on), got {d.val_frac} + {d.test_frac}"
    need(d.val_frac + d.test_frac < 1, "data.val_frac", f"val_frac + test_frac must be below 1 {left}")
    need(0 <= d.split_seed < 2**32, "data.split_seed", f"must be in [0, 2**32) (numpy's seeds), got {d.split_seed}")
    need(d.limit is None or d.limit > 0, "data.limit", f"must be positive, got {d.limit}")
    need(d.image_size is None or d.image_size > 0, "data.image_size", f"must be positive, got {d.image_size}")
    need(d.loader_workers >= 0, "data.loader_workers", f"must not be negative, got {d.loader_workers}")
    need(d.augment in AUGMENTS, "data.augment", f"must be one of {choices(AUGMENTS)}, got {d.augment!r}")
    need(d.cutout >= 0, "data.cutout", f"must not be negative (0: off), got {d.cutout}")
    need(m.stem in STEMS, "model.stem", f"must be one of {choices(STEMS)}, got {m.stem!r}")
    need(m.branch5 in BRANCH5, "model.branch5", f"must be one of {choices(BRANCH5)}, got {m.branch5!r}")
    need(m.init in INITS, "model.init", f"must be one of {choices(INITS)}, got {m.init!r}")
    need(m.width > 0, "model.width", f"must be positive, got {m.width}")
    need(0 <= m.dropout < 1, "model.dropout", f"must be in [0, 1), got {m.dropout}")
    need(t.epochs > 0, "train.epochs", f"must be positive, got {t.epochs}")
    need(t.batch_size > 0, "train.batch_size", f"must be positive, got {t.batch_size}")
    need(
        t.optimizer in OPTIMIZERS,
        "train.optimizer",
        f"must be one of {choices(OPTIMIZERS)}, got {t.optimizer!r}",
    )
    need(0 <= t.momentum < 1, "train.momentum", f"must be in [0, 1), got {t.momentum}")
    need(t.weight_decay is not None and t.weight_decay >= 0, "train.weight_decay",
         f"must not be negative, got {t.weight_decay}")  # fmt: skip
    need(0 <= t.label_smoothing < 1, "train.label_smoothing", f"must be in [0, 1), got {t.label_smoothing}")
    need(t.device in DEVICES, "train.device", f"must be one of {choices(DEVICES)}, got {t.device!r}")
    need(t.threads is None or 0 < t.threads <= MAX_THREADS, "train.threads",
         f"must be in [1, {MAX_THREADS}], got {t.threads}")  # fmt: skip
    need(t.precision in PRECISIONS, "train.precision", f"must be one of {choices(PRECISIONS)}, got {t.precision!r}")
    for key in ("channels_last", "data_on_device"):
        v = getattr(t, key)
        need(v in SWITCHES, f"train.{key}", f"must be one of {choices(SWITCHES)}, got {v!r}")
    need(
        t.compile_mode in COMPILE_MODES,
        "train.compile_mode",
        f"must be one of {choices(COMPILE_MODES)}, got {t.compile_mode!r}",
    )
    need(
        t.pool_kernel in POOL_KERNELS,
        "train.pool_kernel",
        f"must be one of {choices(POOL_KERNELS)}, got {t.pool_kernel!r}",
    )
    need(t.ema is None or 0 < t.ema < 1, "train.ema", f"a decay must be in (0, 1), got {t.ema}")
    need(len(cfg.schedules) > 0, "schedules", "the study has no schedules")
    peaks = cfg.peak_lrs or []
    need(all(v > 0 for v in peaks), "peak_lrs", f"every peak LR must be positive, got {peaks}")
    shown = [f"{v:g}" for v in peaks]  # a peak names its runs (onecycle@0.1) to 6 significant digits
    need(len(set(shown)) == len(peaks), "peak_lrs", f"repeated values (to 6 significant digits) in {peaks}")
    need(cfg.workers >= 1, "workers", f"must be at least 1, got {cfg.workers}")
    alr = cfg.auto_lr
    need(alr is None or (math.isfinite(alr) and alr > 0), "auto_lr", f"must be a positive number, got {alr}")
    tgt = cfg.target_accuracy
    need(tgt is None or 0 < tgt <= 1, "target_accuracy", f"must be in (0, 1], got {tgt}")
    # the default output folder is runs/<name>: one folder's name ('..' or '../x' would write outside runs/)
    need(
        not cfg.name or ("/" not in cfg.name and "\\" not in cfg.name and not cfg.name.startswith(".")),
        "name",
        f"a study name names a folder under runs/: no '/' or '\\', not starting with '.', got {cfg.name!r}",
    )
    for name in cfg.schedules:
        # a name becomes a folder, a table cell and a plot label: '@' marks a peak LR (onecycle@0.1), and
        # '|', '$', '*', '`', spaces or a leading '_' would break the Markdown, matplotlib or the shell
        need(
            re.fullmatch(r"[^\W_][\w.+-]*", name) is not None,
            f"schedules.{name}",
            "a schedule name is letters, digits and '_', '-', '.', '+', starting with a letter or digit",
        )
    hints = typing.get_type_hints(StudyConfig)
    tops = {f.name for f in dataclasses.fields(StudyConfig) if not dataclasses.is_dataclass(hints[f.name])} - {
        "schedules"
    }
    for name, spec in cfg.schedules.items():
        need(isinstance(spec, dict), f"schedules.{name}", "must be a table with a `type` key")
        for key in sorted(tops & set(spec)):  # (no schedule takes these: a top-level key written after a table)
            raise ConfigError(
                f"schedules.{name}.{key}: {key} is a top-level key, read as the schedule's because it follows "
                f"[schedules.{name}] in the file; in TOML, write top-level keys before the first [table]"
            )
    if cfg.baseline is not None and cfg.baseline not in cfg.schedules:
        raise ConfigError(
            f"baseline: {cfg.baseline!r} is not a schedule of this study; valid: {choices(cfg.schedules)} (give one "
            "with --set baseline=NAME, or --unset baseline for the first)"
        )


def from_dict(doc: dict[str, Any]) -> StudyConfig:
    """Build and check a StudyConfig from a parsed document; raises ConfigError naming the key."""
    cfg = _build(StudyConfig, doc, "")
    _check(cfg)
    return cfg


def to_dict(cfg: StudyConfig) -> dict[str, Any]:
    """The resolved config as plain data (what every run folder saves)."""
    return dataclasses.asdict(cfg)


def to_toml(doc: dict[str, Any]) -> str:
    """A config document (to_dict) as TOML that load() reads back as the same config: scalars first, then a
    [table] per section; a key left unset (None) is a comment. By hand: tomllib reads TOML but does not write it,
    and this is the one place that writes it."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    def table(d: dict[str, Any], path: list[str]) -> list[str]:
        key = ".".join(json.dumps(k) if not re.fullmatch(r"[\w-]+", k) else k for k in path)
        lines = [f"[{key}]"] if path else []
        for k, v in d.items():
            if not isinstance(v, dict):
                lines.append(f"{k} = {value(v)}" if v is not None else f"# {k}: not set")
        for k, v in d.items():
            if isinstance(v, dict):
                lines += ["", *table(v, [*path, k])]
        return lines

    return "\n".join(table(doc, [])).lstrip("\n") + "\n"


# What does not change a run's result: the study's own bookkeeping (which schedules and seeds, where
# results go), where the data lies (its content is hashed apart), and where and how fast it runs
_NOT_SETTING = ("name", "seeds", "out", "baseline", "schedules", "peak_lrs", "target_accuracy", "tensorboard",
                "save_model", "workers")  # fmt: skip
_NOT_SETTING_IN = (("train", "device"), ("train", "threads"), ("train", "compile"), ("train", "compile_mode"),
                   ("train", "pool_kernel"),
                   ("data", "stream"), ("data", "loader_workers"),
                   ("data", "data_dir"), ("data", "download"))  # fmt: skip
# Keys added to the setting after results had been saved without them: left out at their default (which
# is what those runs did), so that such runs keep their fingerprints and still pair with new ones
_ADDED_LATER = {("model", "init"): ModelConfig.init, ("train", "decay_norm_bias"): TrainConfig.decay_norm_bias,
                ("data", "crop_to_aspect_ratio"): DataConfig.crop_to_aspect_ratio}  # fmt: skip


def run_name(schedule: str, peak: float | None) -> str:
    """A run's name: its schedule's, or on an LR axis <schedule>@<peak LR> (as the run folders and reports name it)."""
    return schedule if peak is None else f"{schedule}{SWEEP_SEP}{peak:g}"


def schedule_of(run: str) -> str:
    """The schedule a run's name (run_name) is of: <schedule>@<peak LR> is <schedule>'s."""
    return run.split(SWEEP_SEP)[0]


def train_axis(given: list[float] | None, recorded: Any, folder: Path) -> list[float] | None:
    """The LR axis `lrlab train` trains a run of: the one the study in its output folder recorded (`recorded`, its
    study.json's peak_lrs), where --peak-lrs is left out (its run would otherwise be trained off the axis, beside
    the study's, and the record erased); --peak-lrs must then be the same. Without a record: `given`."""
    if not (isinstance(recorded, list) and recorded and all(isinstance(x, (int, float)) for x in recorded)):
        return given
    if given is None:
        return [float(x) for x in recorded]
    if [float(x) for x in given] != [float(x) for x in recorded]:
        raise ConfigError(
            f"peak_lrs: {', '.join(map(repr, given))} is not the LR axis of the study in {folder} "
            f"({', '.join(map(repr, recorded))}); leave --peak-lrs out to train a run of it, or choose another --out"
        )
    return given


def train_run(cfg: StudyConfig, name: str | None) -> tuple[str, float | None]:
    """The schedule and peak LR (None: no LR axis) of the run `lrlab train --schedule NAME` names: a schedule of
    the config, or on a study with an LR axis (peak_lrs) one of its runs, <schedule>@<peak> (the peak as the
    run's name writes it, or any spelling of the same number); None: the first run. A schedule name alone on an
    LR axis is refused: which peak was meant would be a guess."""
    peaks = cfg.peak_lrs or []
    if name is None:
        name = run_name(next(iter(cfg.schedules)), peaks[0] if peaks else None)
    base, sep, text = name.partition(SWEEP_SEP)
    if base not in cfg.schedules:
        raise unknown("schedule", base, cfg.schedules)
    if not sep and not peaks:
        return base, None
    if not peaks:
        raise ConfigError(
            f"schedule {name!r}: a run of an LR axis, but this config has no peak_lrs; train {base!r}, or give "
            "the study's peak LRs (--peak-lrs)"
        )
    try:
        want = float(text) if sep else math.nan
    except ValueError:
        want = math.nan
    found = [p for p in peaks if p == want or f"{p:g}" == f"{want:g}"]
    if not found:
        what = "is on this study's LR axis" if not sep else "is not a run of this study's LR axis"
        raise ConfigError(
            f"schedule {name!r} {what} (peak LRs {', '.join(f'{p:g}' for p in peaks)}): name one of its runs: "
            f"{', '.join(run_name(base, p) for p in peaks)}"
        )
    return base, found[0]


def setting_value(flat: dict[str, Any], dotted: str) -> Any:
    """A setting's value in a flat (dotted keys) setting, for a message: a key added later is left out of a
    setting at its default (`setting`), so its absence says that default."""
    section, _, key = dotted.partition(".")
    return flat.get(dotted, _ADDED_LATER.get((section, key)))


def setting(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config (to_dict) that every run of a fair comparison shares: all but
    the schedule, the seed and what does not change a result; `data.name` keeps only the kind of
    source, so that a moved or copied folder is the same data."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in doc.items() if k not in _NOT_SETTING}
    for section, key in _NOT_SETTING_IN:
        out.get(section, {}).pop(key, None)
    model = out.get("model", {})
    if "init" in model and model["init"] == resolved_init("auto", model.get("batchnorm", True)):
        model["init"] = "auto"  # what auto picks: the same weights
    for (section, key), default in _ADDED_LATER.items():
        if out.get(section, {}).get(key, default) == default:
            out.get(section, {}).pop(key, None)
    if "data" in out:
        out["data"]["name"] = str(out["data"].get("name", "")).split(":", 1)[0]
    return out


def bundled_configs() -> list[str]:
    """Names of the example studies shipped inside the package (`configs/` in a checkout)."""
    return sorted(
        p.name[:-5] for p in resources.files("lrlab").joinpath("configs").iterdir() if p.name.endswith(".toml")
    )


def read_document(source: str | None) -> dict[str, Any]:
    """Parse a config file, or a bundled config by name; None reads the default study. A file that sets no
    `name` is named by its file name (without .toml)."""
    source = source or DEFAULT_CONFIG
    path = Path(source)
    if path.is_file():
        try:
            # TOML is UTF-8 by definition; a byte-order mark (Windows editors write one) is dropped, as
            # tomllib refuses it with a message that does not say why
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise ConfigError(f"config {source!r} is not UTF-8 text (TOML must be): byte {e.start}") from None
        except OSError as e:  # e.g. no read permission
            raise ConfigError(f"config {source!r} cannot be read: {e.strerror or e}") from None
    elif not source.endswith(".toml") and "/" not in source and source in bundled_configs():
        text = resources.files("lrlab").joinpath("configs").joinpath(source + ".toml").read_text(encoding="utf-8")
    else:
        setting = f" (a setting? --set {source})" if "=" in source else ""  # `--set a=1 b=2`: b=2 is the config
        close = did_you_mean(source, bundled_configs()) if not setting else ""
        raise ConfigError(
            f"config {source!r} is neither a file nor a bundled study{setting}{close}; bundled: "
            f"{choices(bundled_configs())}"
        )
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {source!r} is not valid TOML: {e}") from None
    except RecursionError:  # (tomllib parses nested arrays recursively)
        raise ConfigError(f"config {source!r} is not valid TOML here: values nested too deeply") from None
    if path.is_file() and "name" not in doc and not path.stem.startswith("."):
        # a study named by its file: two configs without a name would otherwise share runs/study
        doc = {"name": path.stem, **doc}
    return doc


UNSET: Any = object()  # the value of `--unset KEY`: the key leaves the document, and its default applies


def _check_known(dotted: str) -> None:
    """A dotted key outside `schedules` must name a config field (a misspelt --unset is refused)."""
    cls: Any = StudyConfig
    for depth, part in enumerate(parts := dotted.split(".")):
        names = [f.name for f in dataclasses.fields(cls)]
        if part not in names:
            where = ".".join(parts[:depth])
            raise ConfigError(
                f"unknown config key {dotted!r}{did_you_mean(part, names)}; valid keys"
                f"{' in ' + where if where else ''}: {choices(names)}"
            )
        cls = typing.get_type_hints(cls)[part]
        if not dataclasses.is_dataclass(cls):
            if depth != len(parts) - 1:
                raise ConfigError(f"{dotted}: {'.'.join(parts[: depth + 1])} is a value, not a table")
            return


def set_key(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Override one key of a parsed document (`train.epochs`), as CLI flags do. Under `schedules.` the
    schedule is the config's one whose name the rest begins with (names may hold dots: `lr0.1.lr`); a
    name the config lacks is refused (a typo), unless its `type` is set, which adds the schedule."""
    *parents, last = dotted.split(".")
    unset = value is UNSET
    if parents[:1] == ["schedules"] and (len(parents) >= 2 or unset) and isinstance(doc.get("schedules"), dict):
        rest, names = dotted.removeprefix("schedules."), list(doc["schedules"])
        known = [n for n in names if rest.startswith(n + ".")]
        if unset and rest in names:  # a whole schedule
            del doc["schedules"][rest]
            return
        if known:
            name = max(known, key=len)
        elif rest.endswith(".type") and not unset:
            name = rest.removesuffix(".type")
        else:
            guess = rest.split(".")[0]
            raise ConfigError(
                f"{dotted}: unknown schedule {guess!r}{did_you_mean(guess, names)}; schedules: {choices(names)} "
                f"(to add one, set its type first: schedules.{guess}.type=...)"
            )
        *inner, last = rest[len(name) + 1 :].split(".")
        parents = ["schedules", name, *inner]
    if unset and parents[:1] != ["schedules"]:
        _check_known(dotted)
    node = doc
    for depth, p in enumerate(parents):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {'.'.join(parents[: depth + 1])} is a value, not a table")
    if unset:
        node.pop(last, None)
    else:
        node[last] = value


def load(source: str | None = None, overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Read a config (file, bundled name or the default), apply dotted-key overrides, check it."""
    doc = read_document(source)
    for key, value in (overrides or {}).items():
        set_key(doc, key, value)
    return from_dict(doc)
