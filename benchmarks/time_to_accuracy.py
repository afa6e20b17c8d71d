"""Time to accuracy: full-width GoogLeNet (CIFAR stem), one-cycle, on the JPEG copy of CIFAR-10's
training images (about 45,000 train / 5,000 validation, stratified; a few held out, unused); prints
the wall time until the validation accuracy first reaches --target, and the final validation
accuracy. Uses lrlab's fast path (data on the GPU, bf16, channels_last); --compile adds
torch.compile, whose compile time is reported separately and not counted; --tta times the target
a second time, with flip test-time augmentation (its extra validation passes counted);
--fastest-of aten:default,triton:reduce-overhead calibrates each compiled variant (max-pool kernel,
compile mode; not counted) and trains the fastest.

  python benchmarks/time_to_accuracy.py --data data/cifar10-train.tar.gz --epochs auto --compile   # on a GPU
  python benchmarks/time_to_accuracy.py --data ... --limit 2000 --epochs 1 --width 0.25   # CPU smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from tqdm import tqdm

from lrlab import config
from lrlab.cli import parse_setting
from lrlab.config import COMPILE_MODES
from lrlab.errors import ConfigError
from lrlab.schedules import Plan, compile_schedule
from lrlab.study import prepare
from lrlab.training import Trainer, evaluate
from throughput import compile_spec, sync  # the script beside this one (its folder is on sys.path when run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="CIFAR-10 ImageFolder tree or .tar.gz (train/<class>/<image>)")
    ap.add_argument("--target", type=float, default=0.91, help="validation accuracy to reach (default 0.91)")
    ap.add_argument(
        "--epochs",
        type=epochs_arg,
        default=16,
        help="one-cycle length (default 16), or 'auto': as many epochs as --budget seconds hold at the "
        "speed of a calibration run (two epochs of a scratch model, not counted, like compilation)",
    )
    ap.add_argument("--budget", type=float, default=85.0, help="training seconds for --epochs auto (default 85)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument(
        "--max-lr",
        type=float,
        default=0.4,
        help="one-cycle peak (default 0.4: 0.1 per 128 images at the default batch; scale it with --batch)",
    )
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--limit", type=int, help="train on this many images only (smoke tests)")
    ap.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, default=None,
                    help="torch.compile the model (a mode may follow; default 'default')")  # fmt: skip
    ap.add_argument("--device", default="auto")
    ap.add_argument("--pool-kernel", choices=config.POOL_KERNELS,
                    help="train.pool_kernel: max pools by PyTorch's kernels (the default here) or lrlab's Triton "
                         "ones (CUDA), or auto")  # fmt: skip
    ap.add_argument(
        "--fastest-of",
        type=candidates_arg,
        metavar="POOL:MODE,...",
        help="with --epochs auto: calibrate each compiled variant, a max-pool kernel (train.pool_kernel) and a "
        "torch.compile mode, e.g. aten:default,triton:reduce-overhead, and train the fastest (a variant that "
        "fails is said and left out; in place of --compile and --pool-kernel)",
    )
    ap.add_argument(
        "--tta",
        action="store_true",
        help="also time the target with flip test-time augmentation: after each epoch an extra validation pass "
        "averaging each image's logits with its mirror's, its time added to that figure only",
    )
    ap.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[], metavar="KEY=VALUE",
                    help="any config key, as lrlab's --set, e.g. --set model.init=fan_in; repeatable")  # fmt: skip
    args = ap.parse_args()
    if args.fastest_of and (args.epochs or args.compile or args.pool_kernel):
        ap.error("--fastest-of needs --epochs auto, and takes the place of --compile and --pool-kernel")
    args.pool_kernel = args.pool_kernel or "aten"
    doc = {
        "name": "time-to-accuracy",
        # 5,000 validation images; the held-out "test" part is set as small as the split allows and unused
        "data": {"name": f"imagefolder:{args.data}", "val_frac": 0.1, "test_frac": 0.002, "limit": args.limit},
        "model": {"width": args.width},
        "train": {"epochs": args.epochs or 2, "batch_size": args.batch, "nesterov": True, "weight_decay": 5e-4,
                  "label_smoothing": 0.1, "compile": bool(args.compile), "compile_mode": args.compile or "default",
                  "device": args.device, "pool_kernel": args.pool_kernel},
        "schedules": {"onecycle": {"type": "onecycle", "max_lr": args.max_lr, "peak_frac": 0.25}},
    }  # fmt: skip
    # keys this script's flags set (and its loop and summary read from them) are set by those flags
    owned = ("train.epochs", "train.batch_size", "model.width", "train.compile", "train.compile_mode",
             "train.device", "train.pool_kernel", "data.name", "data.limit", "schedules.")  # fmt: skip
    try:
        for key, value in args.settings:
            if key.startswith(owned):
                ap.error(f"--set {key}: this script's own flags set it (see --help)")
            config.set_key(doc, key, value)
        cfg = config.from_dict(doc)
    except ConfigError as e:
        ap.error(str(e))
    t_load = time.perf_counter()
    p = prepare(cfg)
    print(
        f"data: train {len(p.dataset.train)}, val {len(p.dataset.val)} ({time.perf_counter() - t_load:.1f} s to load)"
    )
    bar = tqdm(disable=True)
    schedule, train_cfg = p.schedules["onecycle"], cfg.train
    if not args.epochs:  # --epochs auto: sized by the calibration of this setting, or of the fastest variant
        if args.fastest_of:
            train_cfg, per_epoch = fastest(p, bar, args.fastest_of)
            args.pool_kernel, args.compile = train_cfg.pool_kernel, train_cfg.compile_mode
        else:
            per_epoch = epoch_seconds(p, bar, train_cfg)
        args.epochs = fit(per_epoch, args.budget)
        train_cfg = dataclasses.replace(train_cfg, epochs=args.epochs)
        spe = p.plan.steps_per_epoch
        schedule = compile_schedule(p.specs["onecycle"], Plan(args.epochs * spe, spe), "onecycle")
    trainer = Trainer(p.build, p.inputs, schedule, train_cfg, 0, p.device)
    reached, elapsed = None, 0.0
    reached_tta, tta_seconds = None, 0.0  # with --tta: the first time reached with it, its passes' time
    for epoch in range(1, args.epochs + 1):
        sync()
        t0 = time.perf_counter()
        trainer.train_epoch(epoch, bar)  # ends with the validation pass (counted: it is how the target is seen)
        sync()
        elapsed += time.perf_counter() - t0
        if epoch == 1 and trainer.compile_seconds:
            elapsed -= trainer.compile_seconds  # compilation is reported on its own
        acc = trainer.epochs[-1]["val_accuracy"]
        line = f"epoch {epoch:>2}: val accuracy {acc:.4f}, {elapsed:7.1f} s"
        if reached is None and acc >= args.target:
            reached = elapsed
        if args.tta:
            t0 = time.perf_counter()
            _, acc_tta, _ = evaluate(trainer.model, trainer.val_split, trainer.norm, p.device, trainer.speed, True)
            tta_seconds += time.perf_counter() - t0  # .item() inside evaluate has waited for the device
            line += f"; with flip TTA {acc_tta:.4f}, {elapsed + tta_seconds:7.1f} s"
            if reached_tta is None and acc_tta >= args.target:
                reached_tta = elapsed + tta_seconds
        print(line)
    val = trainer.val_split  # on the device already when the data is
    _, final, _ = evaluate(trainer.model, val, trainer.norm, p.device, trainer.speed)
    _, final_tta, _ = evaluate(trainer.model, val, trainer.norm, p.device, trainer.speed, tta_flip=True)
    name = torch.cuda.get_device_name() if p.device.type == "cuda" else "CPU"
    took = trainer.compile_seconds or 0.0
    compiled = f", compile {took:.0f} s (not counted)" if took >= 0.5 else ""
    compiled = (f", torch.compile {args.compile}" if args.compile else "") + compiled
    pools = trainer.speed.pool_kernel + (" (auto)" if args.pool_kernel == "auto" else "")  # the kernels that ran
    print(f"\n{name}, torch {torch.__version__}, GoogLeNet width {args.width}, batch {args.batch}, one-cycle to "
          f"{args.max_lr}, {args.epochs} epoch{'s' * (args.epochs != 1)}, {pools} max pools"
          f"{compiled}{''.join(f', {k} = {v}' for k, v in args.settings)}")  # fmt: skip
    print(f"time to {args.target:.0%} validation accuracy: " + (f"{reached:.1f} s" if reached else "not reached"))
    if args.tta:
        print(
            f"time to {args.target:.0%} validation accuracy with flip TTA (its passes counted): "
            + (f"{reached_tta:.1f} s" if reached_tta else "not reached")
        )
    print(f"final validation accuracy: {final:.4f} after {elapsed:.1f} s of training")
    used = "" if args.tta else " (not used above)"
    print(f"final validation accuracy with flip test-time augmentation{used}: {final_tta:.4f}")


def epochs_arg(text: str) -> int:
    """A positive epoch count, or 0 for 'auto'."""
    if text == "auto":
        return 0
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number or 'auto', got {text!r}")
    return int(text)


def candidates_arg(text: str) -> list[tuple[str, str]]:
    """--fastest-of's variants: POOL:MODE pairs, comma-separated, read as throughput.py's --compile rows."""
    try:
        rows = compile_spec(text)
    except argparse.ArgumentTypeError:
        rows = [(None, "")]
    if any(pool is None for pool, _ in rows):
        raise argparse.ArgumentTypeError(f"expected POOL:MODE with POOL aten or triton and MODE one of "
                                         f"{', '.join(COMPILE_MODES)}; got {text!r}")  # fmt: skip
    return rows


def epoch_seconds(p, bar, train_cfg) -> float:
    """Seconds of one epoch of `train_cfg` (its validation pass included): a scratch trainer runs two epochs,
    the first compiling and autotuning, the second timed."""
    scratch = Trainer(p.build, p.inputs, p.schedules["onecycle"], train_cfg, 0, p.device)
    scratch.train_epoch(1, bar)
    sync()
    t0 = time.perf_counter()
    scratch.train_epoch(2, bar)
    sync()
    return time.perf_counter() - t0


def fastest(p, bar, candidates: list[tuple[str, str]]):
    """The train config of the fastest compiled variant (pool kernel, compile mode) by epoch_seconds, and its
    epoch's seconds; a variant that fails (a compiler error, a kernel the card refuses) is said and left out.
    The winner's compilation stays in torch's caches, so the timed run's own compilation is quick."""
    timed = []
    for pool, mode in candidates:
        train_cfg = dataclasses.replace(p.cfg.train, compile=True, compile_mode=mode, pool_kernel=pool)
        t0 = time.perf_counter()
        try:
            per_epoch = epoch_seconds(p, bar, train_cfg)
        except Exception as e:  # one variant's failure costs that variant alone
            first = (str(e).splitlines() or [""])[0][:300]  # the exception's module named: gpu.sh reads it
            print(f"variant {pool}:{mode} failed, left out: {type(e).__module__}.{type(e).__qualname__}: {first}")
            continue
        print(f"variant {pool}:{mode}: an epoch takes {per_epoch:.2f} s (calibrated in "
              f"{time.perf_counter() - t0:.0f} s, compilation included)")  # fmt: skip
        timed.append((per_epoch, train_cfg))
    if not timed:
        raise SystemExit("time_to_accuracy.py: every --fastest-of variant failed")
    per_epoch, best = min(timed, key=lambda t: t[0])
    print(f"fastest: {best.pool_kernel}:{best.compile_mode}")
    return best, per_epoch


def fit(per_epoch: float, budget: float) -> int:
    """Epochs of `per_epoch` seconds that fit in `budget` seconds (at least one), said."""
    epochs = max(1, int(budget / per_epoch))
    fits = f"{epochs} epochs fit" if epochs > 1 else "1 epoch fits"
    print(f"calibration: an epoch (its validation pass included) takes {per_epoch:.2f} s, so {fits} in {budget:g} s")
    return epochs


if __name__ == "__main__":
    main()
