"""Command line: `lrlab study` and `lrlab schedules`. Flags only override the config; the defaults
live in config.py. `main(argv) -> int` is the console script and the tests' entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrlab import __version__
from lrlab import config as config_mod
from lrlab.errors import LrlabError

EXAMPLES = """\
examples:
  lrlab study                                  the six settings of the original study on digits
  lrlab study --seeds 3 --epochs 8             three paired seeds, eight epochs each
  lrlab study --schedules standard,onecycle    a subset of the config's schedules
  lrlab study --data cifar10 --data-dir data --download --width 0.5
  lrlab study --data imagefolder:cifar10-train.tar.gz --limit 2000
  lrlab study configs/cifar10-study.toml --device cuda
"""


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


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        nargs="?",
        default=None,
        help=f"a study TOML file or a bundled study name (default: {config_mod.DEFAULT_CONFIG!r}; "
        f"bundled: {', '.join(config_mod.bundled_configs())})",
    )
    g = p.add_argument_group("overrides (each replaces the config's value)")
    g.add_argument(
        "--data",
        dest="data.name",
        metavar="NAME",
        help="digits | cifar10 | cifar100 | imagefolder:PATH (a folder with train/<class>/ or its .tar.gz)",
    )
    g.add_argument("--data-dir", dest="data.data_dir", metavar="DIR", help="where cifar10/cifar100 live")
    g.add_argument(
        "--download",
        dest="data.download",
        action="store_const",
        const=True,
        help="download CIFAR into --data-dir if it is not there",
    )
    g.add_argument(
        "--limit",
        dest="data.limit",
        type=int,
        metavar="N",
        help="use only N training images (validation and test shrink in proportion)",
    )
    g.add_argument("--epochs", dest="train.epochs", type=int, metavar="N")
    g.add_argument("--batch-size", dest="train.batch_size", type=int, metavar="N")
    g.add_argument(
        "--model", dest="model.stem", metavar="STEM", help="GoogLeNet stem: auto | cifar | imagenet"
    )
    g.add_argument(
        "--width", dest="model.width", type=float, metavar="W", help="channel multiplier (1.0 = paper)"
    )
    g.add_argument("--device", dest="train.device", metavar="DEV", help="auto | cpu | cuda")
    g.add_argument("--threads", dest="train.threads", type=int, metavar="N", help="CPU threads for torch")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if "." in k and v is not None}


def _load(args: argparse.Namespace) -> config_mod.StudyConfig:
    over = _overrides(args)
    if getattr(args, "seeds", None) is not None:
        over["seeds"] = args.seeds
    if getattr(args, "out", None):
        over["out"] = args.out
    cfg = config_mod.load(args.config, over)
    if getattr(args, "schedules", None):
        from lrlab.study import select_schedules

        select_schedules(cfg, [s.strip() for s in args.schedules.split(",") if s.strip()])
    return cfg


def cmd_study(args: argparse.Namespace) -> int:
    from lrlab.study import run_study

    run_study(_load(args), fresh=args.fresh, progress=args.progress)
    return 0


def cmd_schedules(args: argparse.Namespace) -> int:
    from lrlab import report, store
    from lrlab.schedules import FAMILIES, Plan, compile_schedule, valid_keys
    from lrlab.study import prepare

    if args.families:
        for name in FAMILIES:
            print(f"{name}: {', '.join(valid_keys(name)[1:])}")
        return 0
    cfg = _load(args)
    if args.steps:
        spe = args.steps_per_epoch or max(1, args.steps // cfg.train.epochs)
        plan = Plan(args.steps, spe)
        schedules = {n: compile_schedule(s, plan, n) for n, s in cfg.schedules.items()}
    else:  # the real step count of this config's data and batch size
        prepared = prepare(cfg)
        plan, schedules = prepared.plan, prepared.schedules
    print(
        f"{len(schedules)} schedules valid for {plan.total_steps} steps ({plan.steps_per_epoch} per epoch):"
    )
    for name, s in schedules.items():
        lrs = [s.lr(i) for i in range(plan.total_steps)]
        print(
            f"  {name:<16} {s.spec['type']:<9} lr first {lrs[0]:.4g}, peak {max(lrs):.4g}, "
            f"last {lrs[-1]:.4g}, mean {sum(lrs) / len(lrs):.4g}"
            + (", momentum scheduled" if s.momentum else "")
        )
    if args.plot:
        traces = {n: [(st, lr) for st, lr, _ in s.trace()] for n, s in schedules.items()}
        report.plot_lr(traces, Path(args.plot), title=f"LR schedules of {cfg.name!r}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrlab",
        description="Study learning-rate schedules on GoogLeNet (Inception v1) image classifiers.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lrlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "study",
        help="train every schedule × seed of a study and write its table, plots and report",
        description="Train every schedule × seed of a study (paired: one seed gives every schedule "
        "the same initial weights and batch order), then write summary.csv, report.md and plots/. "
        "Finished runs in the output folder are kept, so rerunning continues a study.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_args(p)
    p.add_argument("--schedules", metavar="A,B", help="run only these schedules of the config")
    p.add_argument(
        "--seeds", type=_seeds, metavar="N|A,B", help="a count (3 = seeds 0,1,2) or a list of seeds"
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/<study name>)")
    p.add_argument("--fresh", action="store_true", help="discard earlier runs in the output folder")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress bars (default: only on a terminal)",
    )
    p.set_defaults(func=cmd_study)

    p = sub.add_parser(
        "schedules",
        help="check and preview a study's schedules without training",
        description="Compile every schedule of a config against the run's real step count "
        "(or --steps), print a summary, and optionally plot the LR curves or write them as CSV.",
    )
    _config_args(p)
    p.add_argument("--schedules", metavar="A,B", help="only these schedules of the config")
    p.add_argument("--plot", metavar="FILE.png", help="write an overlay plot of LR against step")
    p.add_argument("--csv", metavar="FILE.csv", help="write step,schedule,lr,momentum for every step")
    p.add_argument(
        "--steps", type=int, metavar="N", help="compile for N steps instead of the data's real count"
    )
    p.add_argument("--steps-per-epoch", type=int, metavar="N", help="with --steps: steps per epoch")
    p.add_argument("--families", action="store_true", help="list the schedule families and their keys")
    p.set_defaults(func=cmd_schedules)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LrlabError as e:
        print(f"lrlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "lrlab: interrupted; finished runs are saved, rerun the same command to continue", file=sys.stderr
        )
        return 130


def entry() -> None:
    sys.exit(main())
