"""One training run: batches from in-memory (or streamed) splits, the LR set from a compiled
schedule at every optimizer step, per-epoch validation, divergence detection, checkpoints, and
predictions on the test split; data-parallel under torchrun."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from lrlab import kernels, store
from lrlab.augment import Augment, crop_pad, run_augment
from lrlab.config import LOG_EVERY, TrainConfig
from lrlab.data import LazyImages, Split
from lrlab.distributed import SINGLE, Dist, check_setup, rank_seed, wrap
from lrlab.errors import ConfigError, DataError
from lrlab.model import set_pool_kernel
from lrlab.schedules import Schedule

# A run has diverged when its loss is not finite, or when the mean training loss over the last
# few steps exceeds this many times ln(num_classes) (the loss of a uniform guess).
DIVERGE_FACTOR = 10.0
AUX_WEIGHT = 0.3  # auxiliary-head loss weight (GoogLeNet paper)
EVAL_BATCH = 1024  # images per forward pass in evaluation (no gradients, so larger than training), at most
EVAL_PIXELS = 4 * 1024 * 32 * 32  # and at most this many pixels: 83 images at 224×224 (a full-width GoogLeNet's
# activations there take about 7 MB an image: 1,024 of them took 7 GB a process)


def eval_batch(image_size: tuple[int, ...]) -> int:
    """Images per evaluation forward pass for images of `image_size` (height, width)."""
    return max(1, min(EVAL_BATCH, EVAL_PIXELS // math.prod(image_size)))


LINE_EVERY = 30.0  # seconds between a run's progress lines where stderr is a file or pipe (--progress)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but no CUDA device is available; use 'cpu'")
    return torch.device(name)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped, as the common CIFAR recipes do)."""
    if batch_size > n_train:
        raise ConfigError(f"train.batch_size: {batch_size} is larger than the training split ({n_train} images)")
    return n_train // batch_size


@dataclass(frozen=True)
class Normalize:
    """uint8 images -> float, scaled to [0, 1] and standardised per channel with the train stats."""

    mean: torch.Tensor  # [1, C, 1, 1]
    std: torch.Tensor

    @classmethod
    def of(cls, mean: list[float], std: list[float], device: torch.device) -> Normalize:
        m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        s = torch.tensor(std, device=device).view(1, -1, 1, 1).clamp_min(1e-6)
        return cls(m, s)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - self.mean) / self.std


def batches(
    split: Split, batch_size: int, order: torch.Tensor, device: torch.device, workers: int = 0, d: Dist = SINGLE
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Full batches of a split in the given order (a permutation of its indices); under torchrun
    only this rank's share of each global batch is read.

    In memory, indexing the split's tensor rather than a DataLoader: per-sample collation would
    cost more than a training step on small images. Streamed from disk (LazyImages), a torch
    DataLoader whose workers decode each batch, in the same order.
    """
    n = len(order) // batch_size
    if isinstance(split.images, LazyImages):
        yield from _decoded(split, [d.shard(order[i * batch_size : (i + 1) * batch_size]).tolist() for i in range(n)],
                            device, workers)  # fmt: skip
        return
    for i in range(n):
        idx = d.shard(order[i * batch_size : (i + 1) * batch_size])
        yield split.images[idx].to(device, non_blocking=True), split.labels[idx].to(device, non_blocking=True)


def _decoded(
    split: Split, chunks: list[list[int]], device: torch.device, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A streamed split's images at each chunk of indices, decoded by a torch DataLoader's `workers`, with labels."""
    # its own generator: a DataLoader seeds its workers from the global RNG otherwise, which would shift the
    # dropout masks away from those of the in-memory path
    loader = DataLoader(split.images.dataset(), batch_sampler=chunks, num_workers=min(workers, os.cpu_count() or 1),
                        pin_memory=device.type == "cuda", generator=torch.Generator())  # fmt: skip
    try:
        for x, idx in zip(loader, chunks, strict=True):
            yield x.to(device, non_blocking=True), split.labels[idx].to(device, non_blocking=True)
    except DataError as e:  # from a worker it carries the worker's traceback: keep the message alone
        raise DataError(str(e).strip().splitlines()[-1].split("DataError: ", 1)[-1]) from None


def _in_order(
    split: Split, lo: int, hi: int, step: int, device: torch.device, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Images lo..hi-1 of a split and their labels, `step` at a time (the last batch may be short), on `device`: a
    streamed split's decoded by `workers` DataLoader processes, as its training batches are (decoded one file after
    another in this process, a validation pass of a large folder took longer than its epoch's training)."""
    if isinstance(split.images, LazyImages):
        yield from _decoded(split, [list(range(i, min(i + step, hi))) for i in range(lo, hi, step)], device, workers)
        return
    for i in range(lo, hi, step):
        j = min(i + step, hi)
        yield split.images[i:j].to(device, non_blocking=True), split.labels[i:j].to(device, non_blocking=True)


def make_optimizer(model: nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW; one fused kernel per step on CUDA, torch's default on the CPU (a loop
    over the tensors: torch picks foreach for CUDA tensors only). Without
    `decay_norm_bias`, weight decay falls on the conv and linear weights only: BatchNorm's scales and shifts
    and the biases (the 1-D parameters) go in a second group without it."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = {"fused": True} if params and params[0].is_cuda else {}
    groups: list[dict[str, Any]] = [{"params": params}]
    if not cfg.decay_norm_bias:
        decayed, rest = [p for p in params if p.ndim > 1], [p for p in params if p.ndim <= 1]
        groups = [g for g in ({"params": decayed}, {"params": rest, "weight_decay": 0.0}) if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
            **fused,
        )
    return torch.optim.AdamW(groups, lr=lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay, **fused)


@dataclass(frozen=True)
class Speed:
    """How a run uses the hardware; `resolve` turns the config's "auto"s into choices for a device."""

    bf16: bool  # autocast matmuls and convs to bfloat16
    channels_last: bool  # NHWC memory layout (tensor cores prefer it)
    data_on_device: bool  # the whole split held on the device as uint8
    compile: bool  # torch.compile the training step's model
    pool_kernel: str = "aten"  # max pooling by "aten" or lrlab's "triton" kernels ("auto" resolved)

    @staticmethod
    def check(cfg: TrainConfig, device: torch.device) -> None:
        """Raise ConfigError for settings this device cannot run (train.pool_kernel = "triton" without Triton or
        a CUDA device), touching nothing on the device."""
        if cfg.pool_kernel == "triton":
            missing = [] if kernels.available() else ["the triton package (PyTorch's Linux CUDA builds install it)"]
            missing += [] if kernels.device_ok(device) else [f"a CUDA device (this run is on {device.type})"]
            if missing:
                raise ConfigError(f"train.pool_kernel: 'triton' needs {' and '.join(missing)}; use 'aten'")

    @classmethod
    def resolve(cls, cfg: TrainConfig, device: torch.device, streamed: bool = False) -> Speed:
        """The settings for `device` (its index given: "auto" pool kernels are checked on it); raises as `check`.
        `streamed`: the images are read from disk batch by batch, so not held on the device whatever the config."""
        cls.check(cfg, device)
        cuda = device.type == "cuda"
        bf16 = {"auto": cuda and torch.cuda.is_bf16_supported(), "bf16": True, "fp32": False}[cfg.precision]
        on = {"auto": cuda, "on": True, "off": False}
        pool = cfg.pool_kernel
        if pool == "auto":
            pool = kernels.auto_pool_kernel(device, cfg.compile, cfg.compile_mode)
        return cls(bf16, on[cfg.channels_last], on[cfg.data_on_device] and not streamed, cfg.compile, pool)

    def autocast(self, device: torch.device) -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


class EMA(AveragedModel):
    """Exponential moving average of the weights and BatchNorm buffers (torch's AveragedModel with
    its EMA rule: a copy at the first update, then ema += (1 - decay) · (w - ema)), updated without
    reading anything on the host: the base class reads its step counter there twice per update,
    a device sync that would stall every step. Integer buffers are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__(model, use_buffers=True)
        self.decay, self.updates = decay, 0  # updates: n_averaged, kept on the host too

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        ours, theirs = [*self.module.parameters(), *self.module.buffers()], [*model.parameters(), *model.buffers()]
        pairs = list(zip(ours, theirs, strict=True))
        floats = [(a, b) for a, b in pairs if a.is_floating_point()]
        weight = 1.0 if self.updates == 0 else 1 - self.decay
        torch._foreach_lerp_([a for a, _ in floats], [b.detach() for _, b in floats], weight)  # as torch's EMA fn
        for a, b in pairs:
            if not a.is_floating_point():
                a.copy_(b)
        self.n_averaged += 1
        self.updates += 1

    def load_state_dict(self, state: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        out = super().load_state_dict(state, strict, assign)
        self.updates = int(self.n_averaged)
        return out


def set_lr(opt: torch.optim.Optimizer, lr: float, momentum: float | None) -> None:
    for group in opt.param_groups:
        group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            else:
                group["momentum"] = momentum


def state_hash(model: nn.Module) -> str:
    """A short fingerprint of the weights (to show that paired runs start from the same init)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    norm: Normalize,
    device: torch.device,
    speed: Speed | None = None,
    tta_flip: bool = False,
    d: Dist = SINGLE,
    workers: int = 0,
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and predicted labels (CPU tensor) of the model on a split; with
    tta_flip the logits are averaged with those of the mirrored images. Under torchrun each rank
    evaluates a contiguous share with rank 0's BatchNorm statistics, and the results are combined."""
    model.eval()
    d.sync_buffers(model)
    n = len(split)
    per = -(-n // d.world)  # ceil: the share of one rank
    lo, hi = min(n, d.rank * per), min(n, (d.rank + 1) * per)
    loss_sum = torch.zeros((), device=device)
    preds = [torch.empty(0, dtype=torch.long, device=device)]
    amp = speed.autocast(device) if speed else contextlib.nullcontext()
    step = eval_batch(tuple(split.images.shape[2:]))
    for x, y in _in_order(split, lo, hi, step, device, workers):
        x = norm(x)
        x = speed.layout(x) if speed else x
        with amp:
            logits = model(x).float()
            if tta_flip:
                logits = (logits + model(x.flip(3)).float()) / 2
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        preds.append(logits.argmax(1))
    pred = d.gather(torch.cat(preds), per, n).cpu()
    acc = (pred == split.labels.cpu()).float().mean().item()
    return d.sum(loss_sum).item() / n, acc, pred


@dataclass
class RunResult:
    status: str  # ok | diverged
    epochs: list[dict[str, Any]]  # one record per finished epoch
    test_pred: torch.Tensor | None  # predictions on the test split (None if diverged)
    init_hash: str
    seconds: float
    diverged: dict[str, Any] | None = None  # step, epoch, lr and loss where it diverged
    best: dict[str, Any] = field(default_factory=dict)  # epoch and val accuracy of the best epoch
    # (step, mean loss of the steps since the last entry: LOG_EVERY, fewer after an epoch start)
    step_losses: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: int = 0  # the epoch a checkpoint restored (0: trained from the start)
    model: nn.Module | None = None  # the trained model (the study saves it when asked to)
    compile_seconds: float = 0.0  # torch.compile's time in this process, not part of `seconds`


@dataclass
class RunInputs:
    """What one run trains on; built once per study and shared by all its runs."""

    train: Split
    val: Split
    test: Split
    num_classes: int
    mean: list[float]
    std: list[float]
    augment: str  # none | crop-flip | resized-crop-flip (see AUGMENTS)
    loader_workers: int = 0  # DataLoader workers for streamed (LazyImages) splits
    cutout: int = 0  # side of the square cut out of each training image after `augment` (px; 0: none)

    def augmentation(self) -> tuple[Augment | None, int]:
        """The training augmentation (None: none; cutout filled with the mean pixel) and its crop padding."""
        return run_augment(self.augment, self.cutout, self.mean), crop_pad(self.train.images.shape[-1])


class Outputs(nn.Module):
    """The training step's view of the model: (logits, auxiliary logits) from one forward call, so
    that DistributedDataParallel, which hooks `forward`, sees the auxiliary heads too."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.aux = getattr(model, "aux1", None) is not None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.model.forward_with_aux(x) if self.aux else (self.model(x), [])


def on_device(split: Split, speed: Speed, device: torch.device) -> Split:
    """The split held on the device when `speed` says so (a batch is then an index, not a copy)."""
    if speed.data_on_device and isinstance(split.images, torch.Tensor):
        return Split(split.images.to(device), split.labels.to(device))
    return split


def train_step(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    norm: Normalize,
    speed: Speed,
    label_smoothing: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a uint8 batch (augmented already) through `net` (an Outputs); returns the
    main head's loss and logits, detached. Auxiliary heads add AUX_WEIGHT × their loss."""
    with speed.autocast(x.device):
        logits, aux_logits = net(speed.layout(norm(x)))
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        total = loss
        for a in aux_logits:
            total = total + AUX_WEIGHT * F.cross_entropy(a, y, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    return loss.detach(), logits.detach()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename: a kill leaves the old checkpoint or the new."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
    except (OSError, RuntimeError) as e:  # a full disk: torch's writer says only "iostream error"
        tmp.unlink(missing_ok=True)
        raise store.write_failed(path, e) from None
    except BaseException:  # Ctrl-C or SIGTERM mid-write: no partial file left (a SIGKILL still leaves one)
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def load_checkpoint(path: Path, fingerprint: str | None) -> dict[str, Any] | None:
    """The trainer state a checkpoint holds for this run (`fingerprint`), else None. A checkpoint that cannot
    be read (cut short by a full disk, damaged) is said and set aside: the run trains from its start."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch's reader raises RuntimeError, pickle's own errors, EOFError...
        why = (str(e).splitlines() or [type(e).__name__])[0][:100]
        print(f"lrlab: {path} cannot be read ({why}); training this run from its start", file=sys.stderr)
        return None
    ok = isinstance(state, dict) and state.get("fingerprint") == fingerprint and isinstance(state.get("trainer"), dict)
    return state["trainer"] if ok else None


class Trainer:
    """One run's training state: model, optimizer, step counter, RNG streams and history. For a
    given seed every schedule gets the same initial weights (the model is built right after
    seeding) and the same batch order and augmentation (their own generators)."""

    def __init__(
        self,
        build_model: Callable[[], nn.Module],
        data: RunInputs,
        schedule: Schedule,
        cfg: TrainConfig,
        seed: int,
        device: torch.device,
        d: Dist = SINGLE,
    ) -> None:
        torch.manual_seed(seed)
        self.model = build_model().to(device)
        self.init_hash = state_hash(self.model)
        check_setup(d, cfg.batch_size, cfg.sync_bn, device)
        self.speed = speed = Speed.resolve(cfg, device, isinstance(data.train.images, LazyImages))
        if speed.channels_last:
            self.model.to(memory_format=torch.channels_last)
        set_pool_kernel(self.model, speed.pool_kernel)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
        # what the step calls: (logits, aux logits), inside DistributedDataParallel under torchrun
        self.net = wrap(Outputs(self.model), d, device, cfg.sync_bn)
        self.seed = seed
        if d.rank:  # dropout: each rank draws its own masks (rank 0 goes on as one process would); with the
            torch.manual_seed(rank_seed(seed, d.rank))  # same stream, a rank's sample i had rank 0's sample i's mask
        if speed.compile:
            self.net = torch.compile(self.net, mode=cfg.compile_mode)
        # compilation time: the first step's excess over the epoch's other steps (None: not measured yet);
        # kept out of the epoch and run seconds, so that a study's first run is not charged for it
        self.compile_seconds: float | None = None
        # weight EMA for the final evaluation (BN statistics averaged too)
        self.ema = EMA(self.model, cfg.ema) if cfg.ema else None
        self.train_split = on_device(data.train, speed, device)
        self.val_split = on_device(data.val, speed, device)  # read every epoch: copied once, not per pass
        self.data, self.schedule, self.cfg, self.device, self.d = data, schedule, cfg, device, d
        self.order_gen = torch.Generator().manual_seed(seed)  # batch order: shared by all schedules
        self.aug_gen = torch.Generator().manual_seed(seed + 1_000_003)  # crops and flips: likewise
        self.opt = make_optimizer(self.model, cfg, schedule.lr(0))
        self.norm = Normalize.of(data.mean, data.std, device)
        self.augment, self.pad = data.augmentation()  # augment None: no augmentation
        self.bound = DIVERGE_FACTOR * math.log(max(data.num_classes, 2))
        self.epochs: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": 0, "val_accuracy": -1.0}
        self.step_losses: list[tuple[int, float]] = []
        self.step = 0
        self.seconds = 0.0  # training time before this process (a resumed run adds to it)

    # -- checkpoints: everything a resumed run needs to continue bit for bit on the CPU --

    def own_rng(self) -> dict[str, torch.Tensor]:
        """This process's global random state (dropout masks): each rank has its own."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def state_dict(self, ranks: list[dict[str, torch.Tensor]] | None = None) -> dict[str, Any]:
        """`ranks`: every rank's own_rng under torchrun (collected by the caller: a collective call)."""
        rng = {**self.own_rng(), "order": self.order_gen.get_state(), "aug": self.aug_gen.get_state()}
        if ranks is not None and len(ranks) > 1:
            rng["ranks"] = ranks
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "rng": rng,
            "epochs": self.epochs,
            "best": self.best,
            "step_losses": self.step_losses,
            "step_index": True,  # epochs' and step_losses' steps are indices (before 2026-11-27: counts)
            "history": list(self.schedule.history),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "init_hash": self.init_hash,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.epochs, self.best = state["step"], state["epochs"], state["best"]
        self.step_losses, self.init_hash, self.seconds = state["step_losses"], state["init_hash"], state["seconds"]
        if not state.get("step_index"):  # a checkpoint of an older lrlab counted steps: one numbering per run
            self.epochs = [{**e, "step": e["step"] - 1} for e in self.epochs]
            self.step_losses = [(s - 1, v) for s, v in self.step_losses]
        self.schedule.history[:] = state["history"]
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.order_gen.set_state(state["rng"]["order"])
        self.aug_gen.set_state(state["rng"]["aug"])
        ranks = state["rng"].get("ranks") or [state["rng"]]  # one process's checkpoint: rank 0's stream alone
        if self.d.rank < len(ranks):
            own = ranks[self.d.rank]
            torch.set_rng_state(own["torch"])
            if "cuda" in own and self.device.type == "cuda":
                torch.cuda.set_rng_state(own["cuda"], self.device)
        else:  # resumed on more ranks than it was saved from: a new stream for this one, from this step
            torch.manual_seed(rank_seed(self.seed, self.d.rank, self.step))

    # -- training --

    def _settle_compile(self, first_step: float, elapsed: float, steps: int) -> float:
        """Record the compilation time (the first step's excess over the mean of the epoch's other steps)
        and take it off the run's seconds; returns it."""
        others = (elapsed - first_step) / max(1, steps - 1)
        self.compile_seconds = max(0.0, first_step - others)
        self.seconds -= self.compile_seconds
        return self.compile_seconds

    def _diverged(self, epoch: int, lr: float, loss: float, of: str = "training") -> dict[str, Any]:
        """The divergence record: the last step trained (its index, as in lr.csv), its LR, the loss seen and which
        loss that is ("training", or "validation" where only the epoch's validation pass found it not finite)."""
        return {"step": self.step - 1, "epoch": epoch, "lr": lr, "loss": loss, "loss_of": of}

    def train_epoch(self, epoch: int, bar: Any) -> dict[str, Any] | None:
        """One epoch; returns the divergence record if the loss blew up, else None."""
        net, opt, schedule, cfg, device, d = self.net, self.opt, self.schedule, self.cfg, self.device, self.d
        net.train()
        te = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        window = torch.zeros((), device=device)  # losses since the last log (within this epoch)
        in_window = seen = 0
        order = torch.randperm(len(self.data.train), generator=self.order_gen)
        order = order.to(self.train_split.labels.device)
        augment = self.augment
        if augment is not None:  # the epoch's crops, flips and cutouts, on the device before its first step
            steps = len(order) // cfg.batch_size
            draws = augment.epoch_draws(self.aug_gen, steps, cfg.batch_size, self.pad, device, d)
        first_step = None  # seconds of the epoch's first step, when it compiled
        stream = batches(self.train_split, cfg.batch_size, order, device, self.data.loader_workers, d)
        for i, (x, y) in enumerate(stream):
            lr = schedule.lr(self.step)
            set_lr(opt, lr, schedule.momentum(self.step) if schedule.momentum else None)
            if augment is not None:
                x = augment.apply(x, draws[i], self.pad)
            first = self.speed.compile and self.compile_seconds is None and i == 0 and time.perf_counter()
            loss, logits = train_step(net, opt, x, y, self.norm, self.speed, cfg.label_smoothing)
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            if first:
                first_step = time.perf_counter() - first
            self.step += 1
            seen += len(y)
            loss_sum += loss * len(y)
            window += loss
            in_window += 1
            correct += (logits.argmax(1) == y).sum()
            if self.step % LOG_EVERY == 0:  # the only host sync in the loop: one every LOG_EVERY steps
                window_sum, loss_so_far, correct_so_far = torch.stack(
                    [d.sum(window), loss_sum, correct.to(loss_sum.dtype)]
                ).tolist()
                # all ranks decide alike; an epoch's first log covers the steps since the epoch began
                mean_window = window_sum / (in_window * d.world)
                window.zero_()
                in_window = 0
                self.step_losses.append((self.step - 1, mean_window))  # the window's last step (its index)
                if not math.isfinite(mean_window) or mean_window > self.bound:
                    if first_step is not None:
                        self._settle_compile(first_step, time.perf_counter() - te, i + 1)
                    return self._diverged(epoch, lr, mean_window)
                bar.set_postfix(
                    loss=f"{loss_so_far / seen:.3f}", acc=f"{correct_so_far / seen:.3f}", lr=f"{lr:.3g}", refresh=False
                )
            bar.update(1)
        if first_step is not None:
            te += self._settle_compile(first_step, time.perf_counter() - te, i + 1)
        seen_t = torch.tensor(float(seen), device=device)
        totals = d.sum(torch.stack([loss_sum, correct.to(loss_sum.dtype), seen_t, window]))
        train_loss, train_acc, window_sum = torch.cat([totals[:2] / totals[2], totals[3:]]).tolist()  # (one sync)
        if in_window:  # the epoch's last steps since its last log: logged too, so that every step is in steps.csv
            self.step_losses.append((self.step - 1, window_sum / (in_window * d.world)))
        # the same rule as the 10-step check, on the whole epoch: it also covers epochs shorter than
        # LOG_EVERY steps and an epoch's last steps after its last log
        if not math.isfinite(train_loss) or train_loss > self.bound:
            return self._diverged(epoch, schedule.lr(self.step - 1), train_loss)
        val_loss, val_acc, _ = evaluate(self.model, self.val_split, self.norm, device, self.speed, d=d,
                                        workers=self.data.loader_workers)  # fmt: skip
        if not math.isfinite(val_loss):  # weights gone to inf or nan at the epoch's very end
            return self._diverged(epoch, schedule.lr(self.step - 1), val_loss, "validation")
        record = {  # "step": the index of the epoch's last step (as in lr.csv), "lr" that step's LR
            "epoch": epoch,
            "step": self.step - 1,
            "lr": schedule.lr(self.step - 1),
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": time.perf_counter() - te,
        }
        self.epochs.append(record)
        schedule.observe(record)  # a metric-driven schedule (plateau) reads its metric here
        if val_acc > self.best["val_accuracy"]:
            self.best = {"epoch": epoch, "val_accuracy": val_acc}
        bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{val_acc:.3f}", lr=f"{record['lr']:.3g}")
        return None


class LineBar:
    """The calls a Trainer makes on its tqdm bar, written as whole lines, one every LINE_EVERY seconds and one
    at the end: --progress into a file or a pipe (a batch job's log), where tqdm's redrawn bar (carriage
    returns, and cursor moves for several bars) reads badly in `less` or `grep`."""

    def __init__(self, total: int, initial: int = 0, desc: str = "", every: float = LINE_EVERY) -> None:
        self.total, self.n, self.desc, self.every = total, initial, desc, every
        self.postfix: dict[str, Any] = {}
        self.last = time.monotonic()
        self.written = initial  # the step of the last line: a line only when there is news

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.every:
            self.refresh()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **values: Any) -> None:
        self.postfix = {**(ordered_dict or {}), **values}

    def refresh(self) -> None:
        if self.n == self.written:
            return
        now = time.monotonic()
        rate = (self.n - self.written) / max(now - self.last, 1e-9)
        fields = "".join(f", {k} {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: step {self.n}/{self.total} ({self.n / max(self.total, 1):.0%}), {rate:.3g} steps/s"
              f"{fields}", file=sys.stderr, flush=True)  # fmt: skip
        self.last, self.written = now, self.n

    def close(self) -> None:
        self.refresh()


def progress_bar(total: int, initial: int, label: str, show: bool | None, **tqdm_args: Any) -> Any:
    """A run's progress: tqdm's bar on a terminal (show None: only there), lines (LineBar) when forced on
    (--progress) into a file or a pipe, nothing when off."""
    if show and not sys.stderr.isatty():
        return LineBar(total, initial, label)
    return tqdm(total=total, initial=initial, desc=label, unit="step", dynamic_ncols=True,
                disable=None if show is None else not show, **tqdm_args)  # fmt: skip


def train_run(
    build_model: Callable[[], nn.Module],
    data: RunInputs,
    schedule: Schedule,
    cfg: TrainConfig,
    seed: int,
    device: torch.device,
    progress: bool | None = None,
    label: str = "",
    checkpoint: Path | None = None,
    fingerprint: str = "",
    d: Dist = SINGLE,
    make_bar: Callable[[int, int, str], Any] | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> RunResult:
    """Train one model under one schedule and seed. With `checkpoint`, the state is saved there at
    every epoch end, and a checkpoint already there (of the same `fingerprint`) is resumed. Under
    torchrun (`d`), rank 0 reads and writes the checkpoint and shares it with the other ranks.
    `make_bar(total, initial, label)` replaces the tqdm bar (a worker process's bar is drawn by its
    parent); `on_resume(epoch)` is called where a checkpoint is resumed, with the epochs it holds."""
    trainer = Trainer(build_model, data, schedule, cfg, seed, device, d)
    start = 0
    state = None
    if d.is_main and checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, fingerprint)
    state = d.share(state)
    if state is not None:
        trainer.load_state_dict(state)
        start = len(trainer.epochs)
        if on_resume is not None:
            on_resume(start)
    plan = schedule.plan
    t0 = time.perf_counter()
    # progress None: a bar only on a terminal (tqdm's rule); True/False force it on/off
    show = (None if progress is None else progress) if d.is_main else False
    if make_bar is not None:
        bar = make_bar(plan.total_steps, trainer.step, label)
    else:
        bar = progress_bar(plan.total_steps, trainer.step, label, show, leave=True)
    diverged = None
    for epoch in range(start + 1, plan.total_steps // plan.steps_per_epoch + 1):
        diverged = trainer.train_epoch(epoch, bar)
        if diverged is not None:
            break
        if checkpoint is not None:
            ranks = d.collect(trainer.own_rng())  # every rank's dropout stream, so that a resume goes on with each
            if d.is_main:
                trainer.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                save_checkpoint(checkpoint, {"fingerprint": fingerprint, "trainer": trainer.state_dict(ranks)})
    bar.close()
    seconds = trainer.seconds + time.perf_counter() - t0
    t, pred = trainer, None
    final = t.ema.module if t.ema is not None else t.model  # the EMA weights when asked for (also in model.pt)
    if diverged is None:
        _, _, pred = evaluate(final, data.test, t.norm, device, t.speed, cfg.tta_flip, d, data.loader_workers)
    status = "ok" if diverged is None else "diverged"
    return RunResult(status, t.epochs, pred, t.init_hash, seconds, diverged, t.best, t.step_losses, start, final,
                     t.compile_seconds or 0.0)  # fmt: skip
