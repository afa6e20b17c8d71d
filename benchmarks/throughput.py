"""Training throughput of lrlab's loop against two baselines, on the same model, data and device,
in one process:

  bare     a minimal PyTorch loop: pre-normalised float tensors, forward, loss, backward, step
           (no augmentation); lrlab's loop without augmentation must stay within 10 % of it
  common   the common CIFAR recipe: torchvision transforms (random crop + flip, ToTensor,
           Normalize) in DataLoader workers, fp32, batch 128
  lrlab    lrlab's Trainer: without augmentation for the comparison with `bare`; with its fast
           path (uint8 data on the device, per-sample crop+flip there, and on CUDA bf16 autocast,
           channels_last, batch 512) for the comparison with `common`, once with each Inception
           block's three input 1×1 convs fused into one (the default) and once without; with
           --triton-pools (CUDA) also with lrlab's Triton max-pool kernels (train.pool_kernel)

Prints images/s, the ratios, and achieved TFLOP/s (3 × the counted forward FLOPs per training
image). Examples:
  python benchmarks/throughput.py                        # CPU, width 0.25, synthetic CIFAR-sized data
  python benchmarks/throughput.py --device cuda --width 1 --data cifar10-train.tar.gz --compile
On CUDA it also counts the host-device synchronisations in one epoch of the fast path (torch's
sync debug mode); --profile FILE writes the kernels that took the most time in one epoch of the eager
fast path (before any compilation), and with --compile appends those of one compiled epoch (one file: the
device tool returns at most 8), and prints each profiled epoch's device-busy and wall time a step.
Under each set of timings it prints what the machine did in each loop's time of each round (telemetry.py: the
GPU's SM clock, power, temperature, utilisation and clock-event reasons from nvidia-smi; the CPUs' busy share and
the CPU seconds of this process, its DataLoader workers and TorchInductor's compile workers).
--compile default,reduce-overhead times each mode (reduce-overhead replays CUDA graphs), with ATen's max pools
and, with --triton-pools, lrlab's; --compile aten:default,triton:reduce-overhead times those rows, in that order.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm import tqdm

from lrlab import kernels
from lrlab.config import COMPILE_MODES, DataConfig, ModelConfig, TrainConfig
from lrlab.data import Split, load_data
from lrlab.model import build_model, macs_per_image
from lrlab.schedules import Plan, compile_schedule
from lrlab.training import LOG_EVERY, RunInputs, Trainer

if (_here := os.path.dirname(os.path.abspath(__file__))) not in sys.path:  # run by runpy (the tests), not as a script
    sys.path.insert(0, _here)
from telemetry import Telemetry  # (benchmarks/telemetry.py, beside this script)

COMMON_BATCH = 128  # the common recipe's batch (and the CPU default of the other loops)


def make_data(args: argparse.Namespace) -> tuple[Split, list[float], list[float]]:
    if args.data:
        ds = load_data(DataConfig(name=f"imagefolder:{args.data}", limit=args.images, val_frac=0.05, test_frac=0.05))
        split, (mean, std) = ds.train, ds.channel_stats()
    else:  # synthetic CIFAR-sized images: throughput does not depend on the pixels
        g = torch.Generator().manual_seed(0)
        images = torch.randint(
            0, 256, (args.images, 3, args.image_size, args.image_size), dtype=torch.uint8, generator=g
        )
        split, mean, std = Split(images, torch.randint(0, 10, (args.images,), generator=g)), [0.5] * 3, [0.25] * 3
    return split, mean, std


def time_it(step: Callable[[], int], seconds: float) -> float:
    """Images per second of repeated calls to `step` (each returns the images it trained on), for at
    least `seconds` and at least one call."""
    sync()
    n, t0 = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < seconds:
        if (images := step()) == 0:
            raise RuntimeError("a loop trained on no images: fewer images than its batch")
        n += images
    sync()
    return n / (time.perf_counter() - t0)


def measure(
    loops: dict[str, Callable[[], int]], seconds: float, rounds: int, telemetry: Telemetry, title: str
) -> list[float]:
    """Images/s of each loop: the median over `rounds` rounds, each timing every loop in turn for
    seconds / rounds, so that a drift of the machine's speed (clocks, other load) during the run
    falls on all loops alike instead of on whichever was timed last. Prints, under `title`, what the
    machine did in each loop's time of each round (telemetry.py)."""
    per_round = []
    for r in range(rounds):
        speeds = []
        for name, loop in loops.items():
            with telemetry.window(f"{name} ({r + 1}/{rounds})") as w:
                w.speed = time_it(loop, seconds / rounds)
            speeds.append(w.speed)
        per_round.append(speeds)
    print(telemetry.table(telemetry.windows[-rounds * len(loops) :], f"\nwhile timed ({title}):"))
    return [statistics.median(r[i] for r in per_round) for i in range(len(loops))]


def gpu_id(device: torch.device) -> str:
    """The device as nvidia-smi names it, for telemetry.py: by UUID, since nvidia-smi neither orders GPUs as CUDA
    does nor reads CUDA_VISIBLE_DEVICES; then its index, tried where nvidia-smi takes no such UUID."""
    uuid = str(getattr(torch.cuda.get_device_properties(device), "uuid", "") or "")
    index = str(device.index or 0)
    return f"{uuid if uuid.startswith('GPU-') else f'GPU-{uuid}'},{index}" if uuid else index


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bare_loop(
    model: torch.nn.Module, split: Split, mean: list[float], std: list[float], batch: int, device
) -> Callable:
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    x_all = ((split.images.float() / 255 - m) / s).to(device)
    y_all = split.labels.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()

    def epoch() -> int:
        perm = torch.randperm(len(y_all), device=device)
        for i in range(len(perm) // batch):
            idx = perm[i * batch : (i + 1) * batch]
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (len(perm) // batch) * batch

    return epoch


class Images(Dataset):
    """The common recipe's dataset: PIL images through torchvision transforms, one at a time."""

    def __init__(self, split: Split, transform: Callable) -> None:
        self.images = split.images.permute(0, 2, 3, 1).numpy()
        self.labels, self.transform = split.labels.numpy(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def common_loop(model, split, mean, std, device, workers: int) -> Callable:
    tf = transforms.Compose([
        transforms.RandomCrop(split.images.shape[-1], padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(mean, std),
    ])  # fmt: skip
    loader = DataLoader(Images(split, tf), batch_size=COMMON_BATCH, shuffle=True, num_workers=workers, drop_last=True,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()

    def epoch() -> int:
        n = 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += len(y)
        return n

    return epoch


def lrlab_loop(
    build, split, mean, std, device, batch: int, augment: bool, fast: bool, compile_: str | None = None,
    pool: str = "aten",
) -> Callable:  # fmt: skip
    """lrlab's Trainer as a timed step (one epoch); compile_ is a torch.compile mode, or None; pool is
    train.pool_kernel. Not fast: fp32, no channels_last, the data where the bare loop keeps it (on the device)."""
    tiny = Split(split.images[:2], split.labels[:2])  # each epoch ends with validation: 2 images, as it is not timed
    inputs = RunInputs(split, tiny, tiny, 10, mean, std, "crop-flip" if augment else "none")
    auto = "auto" if fast else "off"
    cfg = TrainConfig(epochs=1000, batch_size=batch, precision="auto" if fast else "fp32", channels_last=auto,
                      data_on_device="auto" if fast or device.type == "cuda" else "off",
                      compile=bool(compile_), compile_mode=compile_ or "default", pool_kernel=pool)  # fmt: skip
    spe = len(split) // batch
    trainer = Trainer(build, inputs, compile_schedule({"type": "constant", "lr": 0.01}, Plan(1000 * spe, spe)), cfg,
                      0, device)  # fmt: skip
    bar = tqdm(disable=True)
    epoch = [0]

    def run() -> int:
        epoch[0] += 1
        trainer.train_epoch(epoch[0], bar)
        return spe * batch

    run.trainer = trainer  # type: ignore[attr-defined]
    return run


OPTIONAL_LOOPS = ("bare", "plain", "unfused")


def compile_spec(text: str) -> list[tuple[str | None, str]]:
    """--compile's value: torch.compile modes, or POOL:MODE rows (POOL aten or triton), comma-separated, as
    (pool or None, mode)."""
    items = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        pool, _, mode = item.rpartition(":")
        if mode not in COMPILE_MODES or pool not in ("", "aten", "triton"):
            raise argparse.ArgumentTypeError(f"not a torch.compile mode or POOL:MODE row: {item!r}; modes: "
                                             f"{', '.join(COMPILE_MODES)}; POOL: aten or triton")  # fmt: skip
        items.append((pool or None, mode))
    if not items or len({pool is None for pool, _ in items}) > 1:
        raise argparse.ArgumentTypeError(f"expected modes, or POOL:MODE rows, not both: {text!r}")
    return list(dict.fromkeys(items))


def compiled_rows(spec: list[tuple[str | None, str]], pools: list[str]) -> list[tuple[str, str]]:
    """The compiled loops' (mode, pool kernel) in the order they are timed (a time limit costs the last). POOL:MODE
    rows: those, in their order (Triton's where its pools ran eager). Modes: first the first mode with ATen's
    pools (the best row so far, whose compilation the time-to-accuracy run has cached), then Triton's pools in
    each mode (less device time a step), then ATen's in the other modes."""
    if spec[0][0] is not None:
        return [(mode, pool) for pool, mode in spec if pool in pools]
    modes = [mode for _, mode in spec]
    rows = [(modes[0], "aten")] + [(m, "triton") for m in modes if "triton" in pools]
    return rows + [(m, "aten") for m in modes[1:]]


def loop_names(text: str) -> set[str]:
    names = {n.strip() for n in text.split(",") if n.strip()}
    if bad := sorted(names - set(OPTIONAL_LOOPS)):
        raise argparse.ArgumentTypeError(f"unknown loop {bad[0]!r}; choose from {', '.join(OPTIONAL_LOOPS)}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--width", type=float, default=None, help="GoogLeNet width (default: 1 on CUDA, 0.25 on CPU)")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--images", type=int, default=None, help="training images (default: 20,000 CUDA, 1,280 CPU)")
    ap.add_argument("--data", help="a CIFAR-10 ImageFolder .tar.gz instead of synthetic images")
    ap.add_argument("--batch", type=int, default=None, help="bare/lrlab batch (default: 128 CPU, 512 CUDA fast path)")
    ap.add_argument("--seconds", type=float, default=None, help="time per loop, all rounds (default 20 CPU, 15 CUDA)")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="common recipe's workers")
    ap.add_argument(
        "--compile",
        nargs="?",
        const=[(None, "default")],
        type=compile_spec,
        default=None,
        metavar="MODES",
        help="also time lrlab's fast path under torch.compile; modes may follow, comma-separated, of "
        f"{', '.join(COMPILE_MODES)} (default 'default'), or rows POOL:MODE (POOL aten or triton) to time "
        "in that order",
    )
    ap.add_argument("--large-batch", type=int, metavar="N", help="also time the eager fast path at batch N (e.g. 1024)")
    ap.add_argument("--skip", type=loop_names, default=set(), metavar="LOOPS",
                    help=f"loops to leave out, comma-separated, of {', '.join(OPTIONAL_LOOPS)} (common recipe and "
                         "fast path always run: the target's ratio is theirs)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; each loop's median is shown")
    ap.add_argument("--profile", metavar="FILE", help="write a torch.profiler table of one fast-path epoch here")
    ap.add_argument(
        "--triton-pools",
        action="store_true",
        help="also time the fast path with lrlab's Triton max-pool kernels (CUDA; eager, and compiled)",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.triton_pools and not kernels.device_ok(device):
        ap.error("--triton-pools needs a CUDA device (or Triton's interpreter: TRITON_INTERPRET=1)")
    if any(pool == "triton" for pool, _ in args.compile or []) and not args.triton_pools:
        # (a compiled Triton row is timed only where its pools ran eager: without the flag it would go unsaid)
        ap.error("--compile triton:MODE times lrlab's Triton max pools: add --triton-pools")
    cuda = device.type == "cuda"
    args.width = args.width or (1.0 if cuda else 0.25)
    args.images = args.images or (20_000 if cuda else 1_280)
    secs = args.seconds_per_loop = args.seconds or (15.0 if cuda else 20.0)
    split, mean, std = make_data(args)
    size = tuple(split.images.shape[-2:])

    def build(fuse: bool = True) -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(ModelConfig(width=args.width, fuse_1x1=fuse), 10, 3, size).to(device)

    flops = 3 * 2 * macs_per_image(build(), 3, size)  # training ≈ forward + 2× for backward
    small_batch = args.batch or COMMON_BATCH
    fast_batch = args.batch or (512 if cuda else COMMON_BATCH)
    biggest = max(small_batch, fast_batch, COMMON_BATCH, args.large_batch or 0)
    if args.images < biggest:
        ap.error(f"--images {args.images} is below a loop's batch ({biggest})")
    fast_label = "lrlab fast path (crop+flip on device" + (", bf16, channels_last" if cuda else "")

    def augmented(batch: int, fuse: bool = True, pool: str = "aten") -> Callable[[], Callable]:
        return lambda: lrlab_loop(lambda: build(fuse), split, mean, std, device, batch, augment=True, fast=True,
                                  pool=pool)  # fmt: skip

    makers = {
        "bare": ("bare loop, fp32", lambda: bare_loop(build(), split, mean, std, small_batch, device), small_batch),
        "plain": ("lrlab loop, fp32, no augmentation",
                  lambda: lrlab_loop(build, split, mean, std, device, small_batch, augment=False, fast=False),
                  small_batch),
        "common": ("common recipe (torchvision transforms, DataLoader)",
                   lambda: common_loop(build(), split, mean, std, device, args.workers), COMMON_BATCH),
        "unfused": (fast_label + ", 1×1 convs unfused)", augmented(fast_batch, fuse=False), fast_batch),
        "fast": (fast_label + ")", augmented(fast_batch), fast_batch),
    }  # fmt: skip
    if args.large_batch:
        makers["large"] = (fast_label + f", batch {args.large_batch})", augmented(args.large_batch), args.large_batch)
    if args.triton_pools:
        makers["triton"] = (fast_label + ", Triton max pools)", augmented(fast_batch, pool="triton"), fast_batch)
    rows = {}
    for key, (label, make, b) in makers.items():
        if key in args.skip:
            continue
        try:
            rows[key] = (label, make(), b)
            rows[key][1]()  # first epoch untimed: allocations, cuDNN autotuning
        except Exception as e:  # lrlab's Triton kernels, new on a card: their failure costs their row alone
            if key != "triton":
                raise
            rows.pop(key, None)
            print(f"Triton max pools failed, row left out: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
    common, fast = rows["common"][1], rows["fast"][1]
    # eager loops first (above), measured and printed before any compilation: a slow or failing compile (or a
    # time limit during it) must not cost the figures the speed targets are judged on
    sync()
    telemetry = Telemetry(gpu_id(device) if cuda else None)
    print(f"telemetry: {telemetry.gpu_note}")
    speeds = dict(
        zip(rows, measure({k: loop for k, (_, loop, _) in rows.items()}, secs, args.rounds, telemetry, "eager"),
            strict=True)
    )  # fmt: skip
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"\nGoogLeNet width {args.width}, {size[0]}×{size[1]}, {len(split)} images, {name}, torch {torch.__version__}"
    )
    print(f"{'loop':<80} {'batch':>5} {'images/s':>10} {'TFLOP/s':>8}")
    for key, (label, _, b) in rows.items():
        print(f"{label:<80} {b:>5} {speeds[key]:>10.1f} {speeds[key] * flops / 1e12:>8.3f}")
    ratios = [
        ("plain", "bare", "ratio lrlab loop / bare loop (same batch, no augmentation)", 3),
        ("fast", "unfused", "ratio fused / unfused 1×1 convs (lrlab fast path)", 3),
        ("fast", "common", "ratio lrlab fast path / common recipe", 2),
        ("large", "common", f"ratio lrlab fast path at batch {args.large_batch} / common recipe", 2),
        ("triton", "fast", "ratio Triton / ATen max pools (lrlab fast path, eager)", 3),
        ("triton", "common", "ratio lrlab fast path with Triton max pools / common recipe", 2),
    ]
    for a, b, text, digits in ratios:
        if a in speeds and b in speeds:
            print(f"{text}: {speeds[a] / speeds[b]:.{digits}f}")
    sys.stdout.flush()
    if cuda:
        syncs, steps = count_syncs(fast)
        print(f"host syncs in one epoch of the fast path: {syncs} in {steps} steps "
              f"(expected: one per {LOG_EVERY} steps, plus a few per epoch)")  # fmt: skip
    if args.profile:  # of the eager fast path, before compiling: a slow compile or a time limit must not cost it
        profile(fast, args.profile, "eager fast path")
    if args.compile:  # with ATen's max pools (TorchInductor lowers them itself), and with lrlab's Triton ones
        pools = ["aten"] + (["triton"] if "triton" in rows else [])  # (not where they failed eager)
        compiled = compiled_rows(args.compile, pools)
        fastest_common = speeds["common"]  # the common recipe's fastest figure so far (each compiled row times it)
        for mode, pool in compiled:
            timed = compiled_row(args, build, split, mean, std, device, fast_batch, mode, pool, common, fast, flops,
                                 first_mode=compiled[0][0], fastest_common=fastest_common,
                                 telemetry=telemetry)  # fmt: skip
            fastest_common = max(fastest_common, timed or 0.0)


def compiled_row(
    args, build, split, mean, std, device, batch: int, mode: str, pool: str, common, fast, flops: float,
    first_mode: str, fastest_common: float, telemetry: Telemetry,
) -> float | None:  # fmt: skip
    """Compile lrlab's fast path (torch.compile `mode`; pool: train.pool_kernel), profile it (--profile), then
    time it beside the common recipe and the eager fast path and print its row and ratios: to the common recipe
    in the same rounds, and to the common recipe's fastest figure in the run so far (`fastest_common`, or this
    row's), which is the lower ratio where the common recipe ran slower in these rounds than before. Returns the
    common recipe's images/s in these rounds; None where the compiler failed (which it prints)."""
    comp = lrlab_loop(build, split, mean, std, device, batch, augment=True, fast=True, compile_=mode, pool=pool)
    t0 = time.perf_counter()
    pools = "" if pool == "aten" else ", Triton max pools"
    tag = ("" if mode == first_mode else f" {mode}") + pools  # the first mode's ratios keep their words
    try:
        comp()  # first epoch: compilation
        sync()
    except Exception as e:  # a compiler failure on some card or version: the eager figures stand
        print(f"torch.compile {mode} failed ({pool} max pools), its row left out: {type(e).__name__}: "
              f"{str(e)[:500]}")  # fmt: skip
        return None
    warm = time.perf_counter() - t0
    if args.profile:  # before the timing: where the compiled step's time goes is what tells the next change
        profile(comp, args.profile, f"compiled {mode}, {pool} max pools", append=True)
    # timed again beside the common recipe and the eager fast path, so its ratios are of one moment
    loops = {"common": common, "fast": fast, f"compiled {mode} {pool}": comp}
    c_common, c_fast, c_comp = measure(loops, args.seconds_per_loop, args.rounds, telemetry, f"{mode}, {pool} pools")
    label = f"lrlab fast path + torch.compile {mode}{pools} (1st epoch + compile {warm:.0f} s, untimed)"
    print(f"{label:<80} {batch:>5} {c_comp:>10.1f} {c_comp * flops / 1e12:>8.3f}")
    print(f"ratio lrlab compiled{tag} / common recipe (timed together after compilation): {c_comp / c_common:.2f}")
    fastest_common = max(fastest_common, c_common)
    print(f"ratio lrlab compiled{tag} / the common recipe's fastest figure in this run so far "
          f"({fastest_common:.1f} images/s): {c_comp / fastest_common:.2f}")  # fmt: skip
    print(f"ratio lrlab compiled{tag} / lrlab fast path eager (same rounds): {c_comp / c_fast:.2f}")
    print(f"torch.compile so far: {dynamo_counts()}")
    sys.stdout.flush()
    return c_common


def dynamo_counts() -> str:
    """The graphs TorchDynamo has compiled and the graph breaks it took in this process (its counters: a private
    API, so a version without them says so): a compiled step that breaks its graph pays for it on the host."""
    try:
        from torch._dynamo.utils import counters

        return (f"{counters['stats']['unique_graphs']} graphs, "
                f"{sum(counters['graph_break'].values())} graph breaks")  # fmt: skip
    except Exception as e:  # (a torch without these counters)
        return f"counters not read ({type(e).__name__})"


def steps_of(run: Callable) -> int:
    """Training steps in one epoch of an lrlab loop."""
    trainer = run.trainer  # type: ignore[attr-defined]
    return len(trainer.data.train) // trainer.cfg.batch_size


def count_syncs(run: Callable) -> tuple[int, int]:
    """(host-device synchronisations, steps) in one epoch of a trainer, as torch's sync debug mode sees them
    (validation included: its batch is tiny here)."""
    steps = steps_of(run)
    sync()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught), steps


def device_busy(events) -> float:
    """Seconds the device was busy in a profile's events (torch.profiler's key_averages): the self time of its
    own events (kernels, copies), as the table's "Self CUDA time total" sums them; the CPU ops' device time,
    which counts their kernels again, is left out."""
    from torch.autograd import DeviceType

    return sum(e.self_device_time_total for e in events if e.device_type != DeviceType.CPU) / 1e6


def profile(run: Callable, path: str, title: str, append: bool = False) -> None:
    """One epoch under torch.profiler; the kernels that took the most device time, as a table under `title` in
    `path` (`append`: after the tables there, as the compiled loops' follow the eager one's). Prints the epoch's
    wall time a step and, on CUDA, the device's busy time a step: their gap is where the device waited (on the
    host, or on a sync), which the table alone does not show."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch_profile(activities=activities) as prof:
        t0 = time.perf_counter()
        run()
        sync()
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    key = "cuda_time_total" if cuda else "cpu_time_total"
    with open(path, "a" if append else "w") as f:
        f.write(f"== {title}: one epoch ==\n{events.table(sort_by=key, row_limit=40)}\n\n")
    steps = steps_of(run)
    said = f"wall {wall / steps * 1e3:.1f} ms a step under the profiler"
    if cuda:
        try:
            busy = device_busy(events)
            said = f"device busy {busy / steps * 1e3:.1f} ms, {said} ({max(0.0, 1 - busy / wall):.0%} idle)"
        except Exception as e:  # a profiler of another version: the table was written all the same
            said += f" (device time not read: {type(e).__name__}: {e})"
    print(f"profile of one epoch ({title}): {said}; {path}")


if __name__ == "__main__":
    main()
