"""Time to accuracy: full-width GoogLeNet (CIFAR stem), one-cycle, on the JPEG copy of CIFAR-10's
training images (about 45,000 train / 5,000 validation, stratified; a few held out, unused); prints
the wall time until the validation accuracy first reaches --target, and the final validation
accuracy. Uses lrlab's fast path (data on the GPU, bf16, channels_last); --compile adds
torch.compile, whose compile time is reported separately and not counted; --tta times the target
a second time, with flip test-time augmentation (its extra validation passes counted);
--fastest-of aten:default,triton:reduce-overhead calibrates each compiled variant (max-pool kernel,
compile mode; not counted) and trains the fastest. The validation passes run after each epoch, or
after each of the last N only (--eval-last N), and their time counts.

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
from lrlab.data import Split
from lrlab.errors import ConfigError
from lrlab.schedules import Plan, compile_schedule
from lrlab.study import prepare
from lrlab.training import Trainer, evaluate, on_device
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
    ap.add_argument("--budget", type=float, default=85.0,
                    help="seconds for --epochs auto to fill with training and the validation passes, --tta's "
                         "included (default 85)")  # fmt: skip
    ap.add_argument("--eval-last", type=int, default=0, metavar="N",
                    help="validate after each of the last N epochs only (default 0: after every epoch); the "
                         "time to the target is then that of the first of those validations to reach it")  # fmt: skip
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
    if args.eval_last < 0:
        ap.error(f"--eval-last must not be negative, got {args.eval_last}")
    if not 0 < args.budget < 1e6:
        ap.error(f"--budget must be a positive number of seconds, got {args.budget}")
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
    # the trainer's own validation pass, after each epoch, runs on 2 images: this script runs the real ones, when
    # --eval-last says, and counts their time
    val = p.inputs.val
    inputs = dataclasses.replace(p.inputs, val=Split(val.images[:2], val.labels[:2]))
    schedule, train_cfg = p.schedules["onecycle"], cfg.train
    if not args.epochs:  # --epochs auto: sized by the calibration of this setting, or of the fastest variant
        if args.fastest_of:
            train_cfg, per_epoch, per_pass = fastest(p, inputs, bar, args.fastest_of, args.tta)
            args.pool_kernel, args.compile = train_cfg.pool_kernel, train_cfg.compile_mode
        else:
            per_epoch, per_pass = calibrate(p, inputs, bar, train_cfg, args.tta)
        args.epochs = fit(per_epoch, per_pass, args.budget, args.eval_last)
        train_cfg = dataclasses.replace(train_cfg, epochs=args.epochs)
        spe = p.plan.steps_per_epoch
        schedule = compile_schedule(p.specs["onecycle"], Plan(args.epochs * spe, spe), "onecycle")
    trainer = Trainer(p.build, inputs, schedule, train_cfg, 0, p.device)
    val = on_device(val, trainer.speed, p.device)  # (once, as the trainer holds its splits)
    first_validated = max(1, args.epochs - args.eval_last + 1) if args.eval_last else 1
    reached, elapsed = None, 0.0
    reached_tta, tta_seconds = None, 0.0  # with --tta: the first time reached with it, its passes' time
    final = final_tta = None
    for epoch in range(1, args.epochs + 1):
        sync()
        t0 = time.perf_counter()
        trainer.train_epoch(epoch, bar)
        sync()
        elapsed += time.perf_counter() - t0
        if epoch == 1 and trainer.compile_seconds:
            elapsed -= trainer.compile_seconds  # compilation is reported on its own
        if epoch < first_validated:
            continue
        t0 = time.perf_counter()
        _, final, _ = evaluate(trainer.model, val, trainer.norm, p.device, trainer.speed)
        elapsed += time.perf_counter() - t0  # (counted: it is how the target is seen; .item() waited for the device)
        line = f"epoch {epoch:>2}: val accuracy {final:.4f}, {elapsed:7.1f} s"
        if reached is None and final >= args.target:
            reached = elapsed
        if args.tta:
            t0 = time.perf_counter()
            _, final_tta, _ = evaluate(trainer.model, val, trainer.norm, p.device, trainer.speed, True)
            tta_seconds += time.perf_counter() - t0
            line += f"; with flip TTA {final_tta:.4f}, {elapsed + tta_seconds:7.1f} s"
            if reached_tta is None and final_tta >= args.target:
                reached_tta = elapsed + tta_seconds
        print(line)
    if final_tta is None:  # (not counted: --tta is off)
        _, final_tta, _ = evaluate(trainer.model, val, trainer.norm, p.device, trainer.speed, tta_flip=True)
    name = torch.cuda.get_device_name() if p.device.type == "cuda" else "CPU"
    took = trainer.compile_seconds or 0.0
    compiled = f", compile {took:.0f} s (not counted)" if took >= 0.5 else ""
    compiled = (f", torch.compile {args.compile}" if args.compile else "") + compiled
    pools = trainer.speed.pool_kernel + (" (auto)" if args.pool_kernel == "auto" else "")  # the kernels that ran
    validated = f", validated after the last {args.epochs - first_validated + 1}" if first_validated > 1 else ""
    print(f"\n{name}, torch {torch.__version__}, GoogLeNet width {args.width}, batch {args.batch}, one-cycle to "
          f"{args.max_lr}, {args.epochs} epoch{'s' * (args.epochs != 1)}{validated}, {pools} max pools"
          f"{compiled}{''.join(f', {k} = {v}' for k, v in args.settings)}")  # fmt: skip
    print(f"time to {args.target:.0%} validation accuracy: " + (f"{reached:.1f} s" if reached else "not reached"))
    if args.tta:
        print(
            f"time to {args.target:.0%} validation accuracy with flip TTA (its passes counted): "
            + (f"{reached_tta:.1f} s" if reached_tta else "not reached")
        )
    print(f"final validation accuracy: {final:.4f} after {elapsed:.1f} s of training and validation")
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


def calibrate(p, inputs, bar, train_cfg, tta: bool) -> tuple[float, float]:
    """Seconds of one training epoch of `train_cfg` and of one validation pass (with `tta`, and its flip-TTA pass): a
    scratch trainer runs two epochs, the first compiling and autotuning, the second timed; then the passes, once
    to warm them up (cuDNN picks their kernels), once timed."""
    scratch = Trainer(p.build, inputs, p.schedules["onecycle"], train_cfg, 0, p.device)
    scratch.train_epoch(1, bar)
    sync()
    t0 = time.perf_counter()
    scratch.train_epoch(2, bar)
    sync()
    per_epoch = time.perf_counter() - t0
    val = on_device(p.inputs.val, scratch.speed, p.device)
    for _ in range(2):
        t0 = time.perf_counter()
        for flip in (False, True)[: 1 + tta]:
            evaluate(scratch.model, val, scratch.norm, p.device, scratch.speed, flip)
    return per_epoch, time.perf_counter() - t0


def fastest(p, inputs, bar, candidates: list[tuple[str, str]], tta: bool):
    """The train config of the fastest compiled variant (pool kernel, compile mode) by its training epoch's
    seconds (calibrate), those seconds and its validation pass's; a variant that fails (a compiler error, a kernel
    the card refuses) is said and left out. The winner's compilation stays in torch's caches, so the timed run's
    own compilation is quick."""
    timed = []
    for pool, mode in candidates:
        train_cfg = dataclasses.replace(p.cfg.train, compile=True, compile_mode=mode, pool_kernel=pool)
        t0 = time.perf_counter()
        try:
            per_epoch, per_pass = calibrate(p, inputs, bar, train_cfg, tta)
        except Exception as e:  # one variant's failure costs that variant alone
            first = (str(e).splitlines() or [""])[0][:300]  # the exception's module named: gpu.sh reads it
            print(f"variant {pool}:{mode} failed, left out: {type(e).__module__}.{type(e).__qualname__}: {first}")
            continue
        print(f"variant {pool}:{mode}: an epoch takes {per_epoch:.2f} s (calibrated in "
              f"{time.perf_counter() - t0:.0f} s, compilation included)")  # fmt: skip
        timed.append((per_epoch, per_pass, train_cfg))
    if not timed:
        raise SystemExit("time_to_accuracy.py: every --fastest-of variant failed")
    per_epoch, per_pass, best = min(timed, key=lambda t: t[0])
    print(f"fastest: {best.pool_kernel}:{best.compile_mode}")
    return best, per_epoch, per_pass


def fit(per_epoch: float, per_pass: float, budget: float, eval_last: int) -> int:
    """The most epochs of `per_epoch` seconds that, with a validation pass of `per_pass` seconds after each of the
    last `eval_last` (0: after each), fit in `budget` seconds (at least one), said."""

    epochs = int(budget // (per_epoch + per_pass))  # each epoch validated
    if eval_last and epochs >= eval_last:  # as many or more: only the last eval_last are
        epochs = int((budget - eval_last * per_pass) // per_epoch)
    epochs = max(1, epochs)
    fits = f"{epochs} epochs fit" if epochs > 1 else "1 epoch fits"
    print(f"calibration: an epoch of training takes {per_epoch:.2f} s and the validation after an epoch "
          f"{per_pass:.2f} s, so {fits} in {budget:g} s")  # fmt: skip
    return epochs


if __name__ == "__main__":
    main()
