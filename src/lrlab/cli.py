"""Command line: `lrlab study` and `lrlab schedules`. Flags only override the config; the defaults
live in config.py. `main(argv) -> int` is the console script and the tests' entry point."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import re
import signal
import sys
import textwrap
import threading
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrlab import __version__
from lrlab import config as config_mod
from lrlab.errors import ConfigError, LrlabError, choices

# the most steps `lrlab schedules --steps` previews: each is computed (about 1 µs a schedule on a CPU core), and
# ten million is already more than a 90-epoch ImageNet run (450,000 steps at batch 256) by far
MAX_PREVIEW_STEPS = 10_000_000

EXAMPLES = """\
examples:
  lrlab study                                  the six settings of the original study on digits
  lrlab study --seeds 3 --epochs 20            three paired seeds, twenty epochs each
  lrlab study --schedules standard,onecycle    a subset of the config's schedules
  lrlab study --data cifar10 --download --width 0.5 --out runs/cifar10
  lrlab study --data imagefolder:data/c10.tar.gz --out runs/c10    train/<class>/<image> as a folder or .tar.gz
  lrlab study --peak-lrs 0.01,0.1,1 --seeds 3  every schedule at three peak LRs
  lrlab study cifar10-cpu                      CIFAR-10 cut to CPU size (data/cifar10-train.tar.gz)
  lrlab study configs/cifar10-study.toml --device cuda
  lrlab schedules --plot lr.png                preview the schedules without training
  lrlab report runs/a runs/b --out runs/all    merge two studies' run folders into one report
"""


class _NotSeed(argparse.Action):
    """`--seed` where a command takes `--seeds`: refused with the spelling it needs, since a count
    and a seed are easy to mix up (`--seeds 42` runs 42 seeds)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, *_: Any) -> None:
        parser.error(f"--seed: this command takes --seeds, a count (--seeds 3 = seeds 0,1,2) or a list; for seed "
                     f"{values} alone: --seeds {values}, (with the comma)")  # fmt: skip


def _unrecognized(extra: list[str], command: argparse.ArgumentParser, config: str | None = None) -> str:
    """argparse's "unrecognized arguments" with the command's closest option for each mistyped one (Python
    3.11's argparse suggests nothing; study --seeds / train --seed and friends are easy to mix up)."""
    options = [  # argparse keeps no public list of them; hidden ones (--seed on study) are not offered
        o for o, a in command._option_string_actions.items() if o.startswith("--") and a.help != argparse.SUPPRESS
    ]
    # compared without the dashes, which every option shares (with them "--bogus" was "close" to "--out")
    names = {o.lstrip("-"): o for o in options}
    close = {x: difflib.get_close_matches(x.lstrip("-"), names, 1) for x in extra if x.startswith("-")}
    hints = [(x, names[c[0]]) for x, c in close.items() if c]
    said = f"unrecognized arguments: {' '.join(extra)}"
    if len(hints) == 1 and len(extra) == 1:
        said += f"; did you mean {hints[0][1]}?"
    elif hints:
        said += f"; did you mean {', '.join(f'{c} for {x}' for x, c in hints)}?"
    # `--set a=1 b=2 c.toml`: b=2 was taken for the config, c.toml is left over
    if settings := [x for x in [config or "", *extra] if "=" in x and not x.startswith("-")]:
        said += f"; --set takes one KEY=VALUE: give it once for each ({' '.join(f'--set {x}' for x in settings)})"
    return said


AXIS_HELP = "LR axis: every schedule at each of these peak LRs (its shape kept)"


def _peak_lrs_arg(p: argparse.ArgumentParser, help: str = AXIS_HELP) -> None:
    p.add_argument("--peak-lrs", type=_floats, metavar="A,B", help=help)


def _seeds(text: str) -> int | list[int]:
    """`3` means three seeds (0, 1, 2); `0,4,7` names them."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count or a comma-separated list of integers, got {text!r}"
        ) from None


def _config_args(p: argparse.ArgumentParser, omit: tuple[str, ...] = ()) -> None:
    """The config and its overrides, but those in `omit`: options that would change nothing in the command
    (find-lr trains no run: compilation and torchrun's SyncBN do not enter its test)."""
    p.add_argument(
        "config",
        nargs="?",
        default=None,
        type=_given,
        help=f"a study TOML file or a bundled study name (default: {config_mod.DEFAULT_CONFIG!r}; "
        f"bundled: {', '.join(config_mod.bundled_configs())})",
    )
    group = p.add_argument_group("overrides (each replaces the config's value)")

    def add(flag: str, *args: Any, **kwargs: Any) -> None:
        if flag not in omit:
            group.add_argument(flag, *args, **kwargs)

    add(
        "--data",
        dest="data.name",
        type=_given,
        metavar="NAME",
        help="digits | cifar10 | cifar100 | imagefolder:PATH (a folder with train/<class>/ or its .tar.gz)",
    )
    add("--data-dir", dest="data.data_dir", type=_given, metavar="DIR", help="where cifar10/cifar100 live")
    add(
        "--download",
        dest="data.download",
        action="store_const",
        const=True,
        help="download CIFAR into --data-dir if it is not there",
    )
    add(
        "--stream",
        dest="data.stream",
        action="store_const",
        const=True,
        help="image folders: read images from disk each epoch (DataLoader workers) instead of into memory",
    )
    add(
        "--limit",
        dest="data.limit",
        type=int,
        metavar="N",
        help="train on N images, drawn by class (at least one of each); validation and test shrink with it",
    )
    add(
        "--auto-lr",
        dest="auto_lr",
        type=float,
        metavar="LR",
        help='the LR that "auto" LRs stand for, instead of an LR range test (e.g. one LR for every shard)',
    )
    add("--epochs", dest="train.epochs", type=int, metavar="N", help="training epochs of every run")
    add("--batch-size", dest="train.batch_size", type=int, metavar="N",
        help="images per optimizer step (under torchrun the global batch, shared out among the processes)")  # fmt: skip
    add("--model", dest="model.stem", type=_given, metavar="STEM", help="GoogLeNet stem: auto | cifar | imagenet")
    add("--width", dest="model.width", type=float, metavar="W", help="channel multiplier (1.0 = paper)")
    add("--device", dest="train.device", type=_given, metavar="DEV", help="auto | cpu | cuda")
    add(
        "--threads",
        dest="train.threads",
        type=int,
        metavar="N",
        help="CPU threads for torch (default: torch's own, usually every core); a study's runs share them out "
        "among its --workers",
    )
    add(
        "--sync-bn",
        dest="train.sync_bn",
        action="store_const",
        const=True,
        help="under torchrun: BatchNorm statistics over the global batch (CUDA)",
    )
    add(
        "--compile",
        dest="train.compile",
        action="store_const",
        const=True,
        help="torch.compile the model (compiled once per process; its time is reported apart)",
    )
    add(
        "--set",
        dest="settings",
        type=parse_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set train.ema=0.999 --set schedules.onecycle.max_lr=0.2 (VALUE is read as "
        "TOML: numbers, true/false, [lists]; anything else is a string); repeatable",
    )
    add(
        "--unset",
        dest="settings",
        type=lambda key: (key.strip(), config_mod.UNSET),
        action="append",
        metavar="KEY",
        help="remove a key the config sets, so that its default applies (TOML has no null), e.g. --unset data.limit "
        "for all the data; repeatable, in order with --set",
    )


def parse_setting(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` of --set: a dotted key, and the value read as TOML (else kept as a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. train.ema=0.999, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:  # (tomllib parses nested arrays recursively)
        raise argparse.ArgumentTypeError(f"{key.strip()}: the value is nested too deeply") from None
    return key.strip(), value


_TOP_LEVEL_FLAGS = ("seeds", "out", "peak_lrs", "baseline", "tensorboard", "workers", "auto_lr")  # (dest = key)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the command line gives: its named flags' (dest = key), then --set's and --unset's in their
    order. A key given by a flag and by --set or --unset with another value is refused, naming both: which of
    them the user meant to win would be a guess (the two spellings are easy to leave in a command by mistake)."""
    named = {k: v for k, v in vars(args).items() if ("." in k or k in _TOP_LEVEL_FLAGS) and v not in (None, "")}
    over = dict(named)
    for key, value in getattr(args, "settings", []):
        if key == "seeds" and args.command == "train":
            raise ConfigError("seeds: `lrlab train` trains one seed, --seed N (default 0); leave seeds out of --set "
                              "and --unset")  # fmt: skip
        if key in named and (value is config_mod.UNSET or value != named[key]):
            flag = _flag_of(args, key)
            given = "--unset " + key if value is config_mod.UNSET else f"--set {key}={value!r}"
            raise ConfigError(f"{key}: given twice, as {flag} {named[key]!r} and as {given}; give it once")
        over[key] = value
    return over


def _flag_of(args: argparse.Namespace, dest: str) -> str:
    """The option that sets `dest` in the command's parser (its first spelling; --set's for --set and --unset's
    shared dest), else `dest` itself (a positional)."""
    return next((a.option_strings[0] for a in args.parser._actions if a.dest == dest and a.option_strings), dest)


def _load(args: argparse.Namespace, select: bool = True) -> config_mod.StudyConfig:
    """The config with the command line's overrides; select: --schedules makes it a study of those only
    (previews; `study` passes them to run_study instead, which keeps the study whole)."""
    cfg = config_mod.load(args.config, _overrides(args))
    if select and (names := _schedule_names(args, cfg)) is not None:
        from lrlab.study import select_schedules

        select_schedules(cfg, names)
    return cfg


def _schedule_names(args: argparse.Namespace, cfg: config_mod.StudyConfig) -> list[str] | None:
    """The names of --schedules, or None without it."""
    if getattr(args, "schedules", None) is None:  # also '' (an empty shell variable): not "all of them"
        return None
    names = [s.strip() for s in args.schedules.split(",") if s.strip()]
    if not names:
        raise ConfigError(f"--schedules: no names in {args.schedules!r}; valid: {choices(cfg.schedules)}")
    if twice := next((n for i, n in enumerate(names) if n in names[:i]), None):
        raise ConfigError(f"--schedules: {twice!r} is named twice")
    return names


def _shard(text: str) -> tuple[int, int]:
    """`K/N`: the K-th of N disjoint parts of a study (1-based)."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N, e.g. 1/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"need 1 <= K <= N, got {text!r}")
    return k, n


def cmd_study(args: argparse.Namespace) -> int:
    cfg = _load(args, select=False)  # checked before torch loads (seconds): a mistake is said at once
    from lrlab.study import run_study

    run_study(cfg, fresh=args.fresh, progress=args.progress, shard=args.shard, only=_schedule_names(args, cfg))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from lrlab.results import read_study_doc

    args.seeds = [args.seed]  # checked with the config, as --seeds is
    cfg = _load(args)  # (before torch loads, as in cmd_study)
    recorded = read_study_doc(cfg.out_dir).get("config", {}).get("peak_lrs")
    if (axis := config_mod.train_axis(cfg.peak_lrs, recorded, cfg.out_dir)) != cfg.peak_lrs:
        if os.environ.get("RANK", "0") == "0":  # (under torchrun: said once)
            print(f"note: peak_lrs = {axis}, the LR axis of the study in {cfg.out_dir}")
        cfg.peak_lrs = axis
    schedule, peak = config_mod.train_run(cfg, args.schedule)
    cfg.save_model = True
    from lrlab.study import run_study

    run_study(cfg, fresh=args.fresh, progress=args.progress, only=[schedule], peak=peak, command="train")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lrlab import store
    from lrlab.report import build_report, written
    from lrlab.results import RUNS_DIR

    dirs = [Path(d) for d in args.dirs]
    out = Path(args.out) if args.out else dirs[0]
    has_runs = (out / RUNS_DIR).is_dir()
    if has_runs and out.resolve() not in {d.resolve() for d in dirs}:
        # its report would describe other runs than its own, which stay beside it
        raise LrlabError(
            f"--out {out} is a study folder with runs of its own, whose report this would replace with one of "
            "other runs: give it among the DIRs to merge it, or choose another --out"
        )
    # a study writing `out` writes its report there too: refused while it runs (a folder with neither runs nor
    # a lock has no study, and is left without a lock file)
    lock = store.FolderLock(out)
    with lock if lock.path.exists() or has_runs else contextlib.nullcontext():
        built = build_report(out, dirs, baseline=args.baseline)
    print(built.console)
    print(f"wrote {out}/{written(out)}")
    if extra := _merged_in(out, dirs):
        print(f"note: the report in {out} covers {extra} run{'s' * (extra > 1)} of the other folders, which "
              f"{out}/{RUNS_DIR} does not hold: `lrlab report {out}` alone rebuilds the report of its own "
              "runs")  # fmt: skip
    return 0


def _merged_in(out: Path, dirs: list[Path]) -> int:
    """How many runs (schedule and seed) of the other DIRs a report merged into one of them (`out`) covers that
    out's own run folders lack."""
    from lrlab.results import RUNS_DIR

    def runs(d: Path) -> set[Path]:  # (a finished run has its result.json)
        return {p.relative_to(d / RUNS_DIR) for p in (d / RUNS_DIR).glob("*/seed-*/result.json")}

    given = {d.resolve() for d in dirs}
    if out.resolve() not in given:
        return 0
    others = given - {out.resolve()}
    return len(set().union(*(runs(d) for d in others)) - runs(out))


def _seed(text: str) -> int:
    """`train --seed`'s value, checked here so that a refusal names --seed (the config's check names `seeds`)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"a seed must be in [0, 2**32) (numpy's seeds), got {seed}")
    return seed


def _given(text: str) -> str:
    """A name or path option's value: '' (an empty shell variable) is refused, not read as "not given", which
    would fall back to the default (a study trained into runs/<name> instead of the folder meant)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty (an unset shell variable?); leave the option out for its default")
    return text


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:  # also '' (an empty shell variable) and ',': not "no axis", which is leaving the option out
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def cmd_schedules(args: argparse.Namespace) -> int:
    from lrlab import store
    from lrlab.schedules import (
        FAMILIES,
        PRESETS,
        WARMUP_CURVES,
        Plan,
        compile_schedule,
        family_fields,
        resolve_auto,
    )
    from lrlab.schedules.compile import REQUIRED, toml_text

    if args.families:
        skip = ("command", "families", "func", "parser")  # (and False: a switch left off; 0 is a value given)
        given = [_flag_of(args, k) for k, v in vars(args).items()
                 if k not in skip and v is not False and v not in (None, [])]  # fmt: skip
        if given:  # ignored, they would pass unseen: a --plot written nowhere, a config never read
            raise ConfigError(f"--families: lists the families only; leave out {', '.join(dict.fromkeys(given))}")
        for name in FAMILIES:
            params = ", ".join(k if d == REQUIRED else f"{k}={d}" for k, d in family_fields(name))
            print(f"{name:<12} {params}")
        print(
            "every type also takes: warmup_* (a warm-up before it), warmup_start_lr=0, "
            'warmup_curve="linear" ('
            + ", ".join(f'"{c}"' for c in WARMUP_CURVES[1:])
            + "; constant holds warmup_start_lr, then steps up), momentum (a table)"
        )
        print("a length key ending in _* is written _steps, _epochs or _frac; keys without a value are required")
        print("plateau's patience and cooldown count epochs (it reads the metric it watches once an epoch)")
        for name, preset in PRESETS.items():
            print(f"preset {name:<16} " + ", ".join(f"{k}={toml_text(v)}" for k, v in preset.items()))
        return 0
    for flag, value in (("--steps", args.steps), ("--steps-per-epoch", args.steps_per_epoch)):
        if value is not None and not 1 <= value <= MAX_PREVIEW_STEPS:
            raise ConfigError(f"{flag}: must be in [1, {MAX_PREVIEW_STEPS:,}] (each step is computed), got {value}")
    if args.steps_per_epoch is not None and args.steps is None:
        raise ConfigError("--steps-per-epoch: goes with --steps (without it the data's real steps per epoch are used)")
    # checked before any work (the range test of "auto" LRs can take minutes)
    for flag, out, ext in (("--plot", args.plot, "png"), ("--csv", args.csv, "csv")):
        if out and out.endswith(("/", os.sep)):  # a folder meant: Path() would drop the slash and write a file
            raise ConfigError(f"{flag} {out}: names a folder; give a file name, e.g. {out}schedules.{ext}")
        if out:
            store.landing(Path(out), make_parents=False)
    cfg = _load(args)
    if args.show_config:
        print(config_mod.to_toml(config_mod.to_dict(cfg)), end="")
        return 0
    # (the modules that load torch or matplotlib, seconds, after the checks above: a mistake is said at once)
    from lrlab import plots
    from lrlab.data import check_name, unread
    from lrlab.results import read_study_doc, recorded_range_test
    from lrlab.schedules import Schedule
    from lrlab.study import auto_lr_needed, check_auto_lr, describe_auto, keep_given, prepare, run_variants, stand_in

    if args.plot:
        plots.image_format(Path(args.plot))
    if args.steps:
        check_name(cfg.data)  # (the data is not read: its name is still checked, as a study would)
        check_auto_lr(cfg)
        spe = args.steps_per_epoch or max(1, args.steps // cfg.train.epochs)
        plan = Plan(args.steps, spe)
        # --auto-lr: "auto" LRs need no range test, so they preview without data too; nor do they on an LR axis
        # that scales all of a spec's LRs to each peak (only the ratios between them are kept): a stand-in

        def runs_of(name: str, spec: dict[str, Any]) -> dict[str, Schedule]:  # on an LR axis, as a study trains
            variants = run_variants({name: spec}, cfg.peak_lrs, plan)[1]
            return {run: compile_schedule(s, plan, run) for run, s in variants.items()}

        schedules = {}
        for n, spec in cfg.schedules.items():
            # (not needed: 1.0 stands in on an LR axis, scaled away; needed without auto_lr: refused as "auto",
            # each spec on its own, so that the refusal names one that needs a value)
            needed = auto_lr_needed(cfg, {n: spec})
            lr = (stand_in(spec, cfg.auto_lr, lambda s, n=n: runs_of(n, s)) if needed and cfg.auto_lr is not None
                  else None if needed else 1.0)  # fmt: skip
            schedules.update(runs_of(n, resolve_auto(spec, lr) if lr else spec))
        if cfg.auto_lr:
            print(describe_auto({"lr": cfg.auto_lr, "rule": "given"}))
        dataset, notes = None, ()
    else:  # the real step count of this config's data and batch size, and a range test where "auto" LRs need one
        # (auto_lr_needed); a study of this config that ran already recorded its test: reused
        earlier = recorded_range_test(read_study_doc(cfg.out_dir), cfg.out_dir)
        if note := keep_given(cfg, earlier):
            print(note)
        if not earlier and cfg.auto_lr is None and auto_lr_needed(cfg, cfg.schedules):
            from lrlab.data import check_source

            check_source(cfg.data)  # (missing data is said before a line that announces the test)
            print(f'"auto" LRs: an LR range test on this config\'s data and model first (up to '
                  f"{config_mod.RANGE_STEPS} steps; "
                  "--auto-lr LR gives the LR instead)", flush=True)  # fmt: skip
        prepared = prepare(cfg, earlier=earlier)
        plan, schedules, dataset, notes = prepared.plan, prepared.schedules, prepared.dataset, prepared.notes
        if prepared.auto_lr:
            print(describe_auto(prepared.auto_lr))
    # as a study says them: a setting expected to act is not ignored unsaid, a stem that does not suit the images
    # (model.stem_notes) is said before any GPU time
    for note in [*unread(cfg.data, dataset), *notes]:
        print(f"note: {note}")
    many = "s" * (len(schedules) != 1)
    print(f"{len(schedules)} schedule{many} valid for {plan.total_steps} steps ({plan.steps_per_epoch} per epoch):")
    wide = max([16, *map(len, schedules)])  # (an LR axis's names, 'uneven-cyclic@0.01', are longer)
    for name, sch in schedules.items():
        lrs = [sch.lr(i) for i in range(plan.total_steps)]
        notes = [
            ", momentum scheduled" if sch.momentum else "",
            f", reads {sch.metric}" if sch.metric else "",
        ]
        print(
            f"  {name:<{wide}} {sch.spec['type']:<15} LR first {lrs[0]:.4g}, peak {max(lrs):.4g}, "
            f"last {lrs[-1]:.4g}, mean {sum(lrs) / len(lrs):.4g}" + "".join(notes)
        )
        for note in sch.notes:
            print(f"    note: {note}")
    if args.plot:
        traces = {n: [(st, lr) for st, lr, _ in s.trace()] for n, s in schedules.items()}
        moms = {n: [(st, m) for st, _, m in s.trace()] for n, s in schedules.items() if s.momentum}
        plots.plot_lr(traces, Path(args.plot), title=f"LR schedules of {cfg.name!r}", momentum=moms)
        print(f"wrote {args.plot}")
    if args.csv:
        rows = [
            {"step": st, "schedule": n, "lr": lr, "momentum": m}
            for n, s in schedules.items()
            for st, lr, m in s.trace()
        ]
        store.write_csv(Path(args.csv), rows, ["step", "schedule", "lr", "momentum"])
        print(f"wrote {args.csv}")
    return 0


def cmd_find_lr(args: argparse.Namespace) -> int:
    from lrlab import store
    from lrlab.data import check_out, unread
    from lrlab.lr_finder import check_range, plot_range_test, range_test
    from lrlab.schedules import AUTO_FACTORS, AUTO_RULE
    from lrlab.study import prepare
    from lrlab.training import progress_bar

    check_range(args.start_lr, args.end_lr, args.steps)  # before any work or any folder
    cfg = _load(args)
    out = Path(args.out) if args.out else cfg.out_dir / "find-lr"
    check_out(cfg.data, out)
    # only=[]: the schedules, which the test does not train, checked for their keys alone, not for their fit to the
    # config's steps (the default study's uneven-cyclic refused --limit 100 as too few steps for its rise)
    p = prepare(cfg, auto_lr=False, only=[])
    if not p.dist.is_main:  # under torchrun: the test is one process's work (a study shares rank 0's result)
        return 0
    store.open_out(out)  # before the test, not after it
    for note in unread(cfg.data, p.dataset):
        print(f"note: {note}")
    if getattr(args, "train.epochs", None) is not None:
        print("note: --epochs not read: the range test trains --steps steps, whatever the runs' epochs")
    import torch

    seed = cfg.seeds[0]
    torch_seed(seed)
    bar = progress_bar(args.steps, 0, "find-lr", args.progress)  # (it stops early where the loss diverges)
    try:
        test = range_test(p.build(), p.inputs, cfg.train, p.device, seed, args.start_lr, args.end_lr, args.steps, bar)
    finally:
        bar.close()
    rows = [
        {"step": i, "lr": lr, "loss": loss, "smoothed": sm}
        for i, (lr, loss, sm) in enumerate(zip(test.lrs, test.losses, test.smoothed, strict=True))
    ]
    store.write_csv(out / "find-lr.csv", rows, ["step", "lr", "loss", "smoothed"])
    store.write_json(
        out / "find-lr.json",
        {
            "suggestions": test.suggestions,
            "auto_rule": AUTO_RULE,
            "stopped_early": test.stopped_early,
            "fall": test.fall,
            "start_lr": args.start_lr,
            "end_lr": args.end_lr,
            "steps": args.steps,
            "seed": seed,
            "threads": torch.get_num_threads(),  # (on a CPU the curve's float sums, and so its valley, vary with it)
            "data": p.dataset.name,
            "model": p.model_info,
            "config": config_mod.to_dict(cfg),
            "provenance": store.provenance(str(p.device)),
        },
    )
    plot_range_test(test, out / "find-lr.png")
    end = (  # the number printed after this is the LR, not the loss: say so, and give the loss there too
        f"stopped when the loss diverged (smoothed loss {test.smoothed[-1]:.3g}) with the LR"
        if test.stopped_early
        else "reached end_lr with the LR"
    )
    print(
        f"LR range test on {p.dataset.name}: {len(test.lrs)} steps from {args.start_lr:g}, {end} "
        f"at {test.lrs[-1]:.3g}; weights restored."
    )
    # a study's "auto" runs its own test over the default sweep: another sweep moves the valley (the smoothing lags
    # a fixed number of steps, more or fewer decades of LR), so the mark says which LR a study would take
    default = (args.start_lr, args.end_lr, args.steps) == (config_mod.RANGE_START_LR, config_mod.RANGE_END_LR,
                                                           config_mod.RANGE_STEPS)  # fmt: skip
    for name, lr in test.suggestions.items():
        mark = ""
        if name == AUTO_RULE:
            sweep = f"{config_mod.RANGE_START_LR:g} to {config_mod.RANGE_END_LR:g} in {config_mod.RANGE_STEPS} steps"
            mark = '   <- used for lr = "auto"'
            if not default:
                mark = f'   <- the rule of lr = "auto", whose own test sweeps {sweep}: its LR can differ'
        print(f"  {name:<11} {lr:.4g}{mark}")
    if test.caution():
        print(f"caution: {test.caution()}")
    factors = ", ".join(f"{k} × {v:g}" for k, v in AUTO_FACTORS.items())
    print(f'"auto" in a schedule sets {factors} of the {AUTO_RULE} suggestion.')
    print(f"wrote {out}/find-lr.csv, find-lr.json, find-lr.png")
    return 0


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrlab",
        description="Study learning-rate schedules on GoogLeNet (Inception v1) image classifiers.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"lrlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "study",
        allow_abbrev=False,  # a prefix is a trap: study --seed 42 would be --seeds 42 (42 seeds)
        help="train every schedule × seed of a study and write its table, plots and report",
        description=textwrap.fill(  # (the raw formatter, which keeps the examples' columns, wraps nothing)
            "Train every schedule × seed of a study (paired: one seed gives every schedule the same initial weights "
            "and batch order), then write summary.csv, comparisons.csv (peaks.csv on an LR axis), report.md, "
            "report.html and plots/. Finished runs in the output folder are kept, so rerunning continues a study.",
            78,
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_args(p)
    p.add_argument("--schedules", metavar="A,B", help="run only these schedules of the config")
    p.add_argument(
        "--seeds", type=_seeds, metavar="N|A,B", help="a count (3 = seeds 0,1,2) or a list of seeds (one seed: 5,)"
    )
    p.add_argument("--seed", action=_NotSeed, help=argparse.SUPPRESS)
    p.add_argument("--out", type=_given, metavar="DIR", help="output folder (default: runs/<study name>)")
    _peak_lrs_arg(p)
    p.add_argument("--baseline", type=_given, metavar="NAME",
                   help="the schedule others are compared with (default: the config's, else its first)")  # fmt: skip
    p.add_argument("--tensorboard", action="store_const", const=True, help="also write TensorBoard event files")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="train N runs at once in separate processes (default: the config's, else 1)",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        metavar="K/N",
        help="run only the K-th of N disjoint parts of the study (e.g. one per SLURM array task)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="discard the earlier runs this command trains (others in --out stay)"
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress bars (default: only on a terminal)",
    )
    p.set_defaults(func=cmd_study)

    p = sub.add_parser(
        "schedules",
        allow_abbrev=False,
        help="check and preview a study's schedules without training",
        description="Compile every schedule of a config against the run's real step count "
        "(or --steps), print a summary, and optionally plot the LR curves or write them as CSV.",
    )
    _config_args(p, omit=("--compile", "--sync-bn"))  # a preview trains nothing
    p.add_argument("--schedules", metavar="A,B", help="only these schedules of the config")
    _peak_lrs_arg(p)
    p.add_argument(
        "--plot",
        type=_given,
        metavar="FILE.png",
        help="write an overlay plot of LR against step (.png, .svg, .pdf, .jpg, ...)",
    )
    p.add_argument("--csv", type=_given, metavar="FILE.csv", help="write step,schedule,lr,momentum for every step")
    p.add_argument("--steps", type=int, metavar="N",
                   help=f"compile for N steps (1 to {MAX_PREVIEW_STEPS:,}) instead of the data's real count; no data "
                        "is read")  # fmt: skip
    p.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="with --steps: steps per epoch (default: N / the config's epochs)")  # fmt: skip
    p.add_argument("--families", action="store_true", help="list the schedule families and their keys")
    p.add_argument("--show-config", action="store_true",
                   help="print the config as TOML, every key with its value after the defaults and flags, and exit "
                        "(a file to start a study of your own from)")  # fmt: skip
    p.set_defaults(func=cmd_schedules)

    p = sub.add_parser(
        "train",
        allow_abbrev=False,
        help="train one schedule and seed (the unit torchrun parallelises)",
        description="Train one schedule of a config with one seed and save its run folder, "
        "metrics and final weights (model.pt; none for a run that diverged). Under torchrun the run is data-parallel "
        "(DistributedDataParallel; --batch-size is the global batch).",
    )
    _config_args(p)
    p.add_argument(
        "--schedule",
        type=_given,
        metavar="NAME",
        help="the config's schedule to train (default: its first); on an LR axis (peak_lrs) one of its runs, "
        "NAME@PEAK, e.g. onecycle@0.1",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed of the initial weights and batch order (default 0)")
    _peak_lrs_arg(p, "the study's LR axis, as given to lrlab study; --schedule then names one of its runs")
    p.add_argument("--out", type=_given, metavar="DIR", help="output folder (default: runs/<study name>)")
    p.add_argument("--fresh", action="store_true", help="discard an earlier run in the output folder")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="the study's workers: on a CPU a run trains on --threads / N threads, so give the study's N to "
        "train a run of it again alike (a finished run without model.pt is trained again, its result replaced, "
        "unless it diverged)",
    )
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="show a progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "report",
        allow_abbrev=False,
        help="rebuild summary, statistics, plots and report from run folders",
        description="Rebuild summary.csv, comparisons.csv, report.md, report.html and plots/ from study folders "
        "alone, without training. Several folders (e.g. shards of one study run on different "
        "machines) merge into one report.",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="study folders holding runs/<schedule>/seed-<k>/")
    p.add_argument(
        "--out",
        type=_given,
        metavar="DIR",
        help="where to write the report (default: the first DIR; a study folder only if among the DIRs)",
    )
    p.add_argument("--baseline", type=_given, metavar="NAME", help="the schedule others are compared with")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "find-lr",
        allow_abbrev=False,
        help="LR range test: suggest an LR for a study's model and data",
        description="Smith's LR range test: train from the first seed's initial weights while the "
        "LR grows exponentially from --start-lr to --end-lr, stop when the loss diverges, restore "
        "the weights, and print suggestions by several rules. Writes the curve (CSV, JSON, PNG).",
    )
    _config_args(p, omit=("--auto-lr", "--compile", "--sync-bn"))  # (--epochs: the schedules are checked)
    p.add_argument("--start-lr", type=float, default=config_mod.RANGE_START_LR, metavar="LR",
                   help="first LR (default %(default)g)")  # fmt: skip
    p.add_argument("--end-lr", type=float, default=config_mod.RANGE_END_LR, metavar="LR",
                   help="last LR (default %(default)g)")  # fmt: skip
    p.add_argument("--steps", type=int, default=config_mod.RANGE_STEPS, metavar="N",
                   help=f"optimizer steps, 10 to {config_mod.MAX_RANGE_STEPS:,} (default %(default)s)")  # fmt: skip
    p.add_argument("--seeds", type=_seeds, metavar="N|A,B",
                   help="the first seed gives the initial weights (3 is a count: seed 0; '3,' is seed 3)")  # fmt: skip
    p.add_argument("--seed", action=_NotSeed, help=argparse.SUPPRESS)
    p.add_argument("--out", type=_given, metavar="DIR", help="output folder (default: runs/<study name>/find-lr)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: only on a terminal)")  # fmt: skip
    p.set_defaults(func=cmd_find_lr)
    for command in sub.choices.values():  # main() refuses a command's unknown options with its own usage
        command.set_defaults(parser=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and return 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(_negatives_joined(sys.argv[1:] if argv is None else list(argv), parser))
    if extra:  # refused by the command's parser: its usage, and the options it does take
        args.parser.error(_unrecognized(extra, args.parser, getattr(args, "config", None)))
    # SIGTERM (a batch scheduler's stop, `kill`) ends lrlab like Ctrl-C: locks released, worker
    # processes stopped, finished runs kept; Python's default would exit without any of that
    in_main = threading.current_thread() is threading.main_thread()  # only there can a handler be set
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        return int(args.func(args))
    except LrlabError as e:
        if _says(e):
            print(f"lrlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        again = (
            "rerun the command without --fresh to continue (with it, the runs trained so far would go again)"
            if getattr(args, "fresh", False)
            else "rerun the same command to continue"
        )
        trains = args.func in (cmd_study, cmd_train)  # (find-lr, schedules and report keep nothing to go on with)
        if os.environ.get("RANK", "0") == "0":  # under torchrun: one line, not one per process
            lead = "\n" if sys.stderr.isatty() else ""  # off the line a progress bar holds on a terminal
            print(f"{lead}lrlab: interrupted" + (f"; finished runs are saved, {again}" if trains else ""),
                  file=sys.stderr)  # fmt: skip
        signum = stop.args[0] if stop.args and isinstance(stop.args[0], int) else signal.SIGINT  # (SIGTERM: ours)
        return 128 + int(signum)  # as the shell reports a process a signal stopped: 130 Ctrl-C, 143 SIGTERM
    finally:
        # a process group exists only if the distributed module ran (importing it here would load torch for
        # commands that need none, e.g. `lrlab report`)
        if (distributed := sys.modules.get("lrlab.distributed")) is not None:
            distributed.shutdown()
        if in_main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _negatives_joined(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--seeds -1,2` as `--seeds=-1,2`: argparse takes a value that starts with a dash for an option unless it
    is a plain number ('-1', '-0.5'), and says only "expected one argument"; joined, the value reaches the option's
    own check, which says what is wrong with it. Only after options that take a value."""
    # (argparse keeps no public list of its options: its actions are read as _unrecognized reads them)
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = {name: c for a in subparsers for name, c in a.choices.items()}
    command = next((commands[a] for a in argv if a in commands), None)  # (no top-level option takes a value)
    valued = {o for a in command._actions if a.nargs != 0 for o in a.option_strings} if command else set()
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":  # what follows is positional, as given
            return out + argv[i:]
        if out and out[-1] in valued and re.match(r"-\.?\d", arg):
            out[-1] += f"={arg}"
        else:
            out.append(arg)
    return out


def _says(e: LrlabError) -> bool:
    """Whether this process prints `e`. Under torchrun every rank meets the same refusal: rank 0's own
    (a study folder it checked for all) is said by rank 0 alone, and a config's (the same command and files
    on every rank of a machine) once a machine, by its local rank 0; any other, a rank's own, by that rank."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:  # (one process: a LOCAL_RANK left by another launcher)
        return True
    if getattr(e, "rank0", False):
        return os.environ.get("RANK", "0") == "0"
    return not isinstance(e, ConfigError) or os.environ.get("LOCAL_RANK", "0") == "0"


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signum)


def entry() -> None:
    # a line at a time also into files and pipes (a batch job's log, `| tee`): each finished run is
    # reported when it finishes, not when the buffer fills or the study ends
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
