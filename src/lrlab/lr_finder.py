"""Smith's LR range test: train briefly while the LR grows exponentially, record the loss, stop
when it diverges, put the weights back, and suggest an LR by several rules.

Written here because the libraries that have one (fastai, torch-lr-finder) bring their own
training loops and data pipelines; this one reuses lrlab's batches, augmentation, optimizer and
training step, so the curve is measured under the run's own precision, layout and loss.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from lrlab.config import MAX_RANGE_STEPS, RANGE_END_LR, RANGE_START_LR, RANGE_STEPS, TrainConfig
from lrlab.errors import ConfigError
from lrlab.model import set_pool_kernel
from lrlab.schedules.compile import MAX_LR
from lrlab.training import (
    Normalize,
    Outputs,
    RunInputs,
    Speed,
    batches,
    make_optimizer,
    on_device,
    set_lr,
    train_step,
)

# exponential moving average of the loss (bias-corrected), as in Smith's, fastai's and Lightning's. It trails a
# falling loss (by up to β/(1 − β) ≈ 49 steps), and the rules are meant to be read off such a curve: read off a
# centred smoothing instead, the valley came out 2 to 5 times lower, and that LR trained worse on CIFAR-10 (README,
# "Choosing the LR")
SMOOTHING = 0.98
DIVERGE = 4.0  # stop once the smoothed loss exceeds this many times its minimum so far
MIN_FALL = 0.03  # a smaller fall of the smoothed loss (fraction of its start) is hard to tell from noise


@dataclass
class RangeTest:
    lrs: list[float]
    losses: list[float]  # raw loss at each step
    smoothed: list[float]  # bias-corrected moving average
    stopped_early: bool  # True when the loss diverged before end_lr
    suggestions: dict[str, float] = field(default_factory=dict)
    fall: float = 0.0  # how far the smoothed loss fell below its start before its minimum (fraction)
    bottom: str = "inside"  # where the rules' curve has its minimum: "start", "inside", or "end" (still falling)

    def caution(self, study: bool = False) -> str | None:
        """A warning when the curve cannot place a valley (its minimum at either end of the sweep, or too small a
        fall to tell from noise), else None; the way out is find-lr's flags, or in a `study` an LR by hand."""
        if self.bottom == "start":
            what = "the loss rose from the sweep's first steps: its valley lies below start_lr"
            flags = "--start-lr lower"
        elif self.bottom == "end" and not self.stopped_early:
            what = f"the loss was still falling at the sweep's end ({self.lrs[-1]:.3g}): its valley may lie above"
            flags = "--end-lr higher"
        elif self.fall < MIN_FALL:
            what = f"the loss fell by only {self.fall:.1%} before its minimum, too little to tell the valley from noise"
            flags = "--steps more, or a wider --start-lr/--end-lr"
        else:
            return None
        fix = "give the LR with --auto-lr LR, or set the LRs by hand" if study else f"find-lr {flags}"
        return f"{what}; the suggestions are unreliable: {fix}"


def suggest_steepest(lrs: np.ndarray, loss: np.ndarray) -> float:
    """The LR where the smoothed loss falls fastest against log(LR) on its way to its lowest point, the bottom
    itself left out (a noisy stretch past the bottom, where the LR is already too high, can fall steeply too).
    Central differences over the whole curve: the bottom's one-sided difference, the step into it, was often the
    steepest (the smoothed curve lags the raw loss), so that a short sweep suggested the LR at the bottom."""
    bottom = int(np.argmin(loss))
    if bottom < 1:
        return float(lrs[0])
    grad = np.gradient(loss, np.log(lrs))
    return float(lrs[int(np.argmin(grad[:bottom]))])


def suggest_minimum(lrs: np.ndarray, loss: np.ndarray) -> float:
    """A tenth of the LR at the lowest smoothed loss (one order of magnitude below the edge)."""
    return float(lrs[int(np.argmin(loss))] / 10)


def suggest_valley(lrs: np.ndarray, loss: np.ndarray) -> float:
    """Halfway (in log LR) between where the loss starts its fall to the bottom and the bottom: the
    middle of the valley. The fall starts after the last point before the bottom that is still
    within a tenth of the total fall of the starting loss: searched back from the bottom, so that a
    noisy plateau that dips below that level early does not count as the fall. (A
    longest-decreasing-run rule, fastai's valley, spans the flat, noisy start of the curve and
    lands orders of magnitude too low.)"""
    bottom = int(np.argmin(loss))
    fall = loss[0] - loss[bottom]
    if fall <= 0:
        return float(lrs[bottom])
    high = np.flatnonzero(loss[: bottom + 1] >= loss[0] - 0.1 * fall)  # includes index 0
    begin = int(high[-1])
    return float(lrs[(begin + bottom) // 2])


RULES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "steepest": suggest_steepest,
    "minimum/10": suggest_minimum,
    "valley": suggest_valley,
}


def _end_points(n: int) -> int:
    """How many of a curve's n points at each end the rules leave out (noisy there)."""
    return max(1, n // 20)


def suggestions(lrs: list[float], smoothed: list[float]) -> dict[str, float]:
    """Every rule's LR, from the curve without its first and last few points (which are noisy)."""
    a, b = np.asarray(lrs), np.asarray(smoothed)
    cut = _end_points(len(a))
    if len(a) > 4 * cut:
        a, b = a[cut:-cut], b[cut:-cut]
    return {name: rule(a, b) for name, rule in RULES.items()}


def check_range(start_lr: float, end_lr: float, steps: int) -> None:
    for flag, lr in (("start_lr", start_lr), ("end_lr", end_lr)):
        if not math.isfinite(lr):
            raise ConfigError(f"find-lr: {flag} must be a finite number, got {lr:g}")
        if lr > MAX_LR:  # (as a schedule's: torch's SGD fails on an LR past a float's range)
            raise ConfigError(f"find-lr: {flag} must be at most {MAX_LR:g} (no network trains above it), got {lr:g}")
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"find-lr: need 0 < start_lr < end_lr, got {start_lr:g} and {end_lr:g}")
    if not 10 <= steps <= MAX_RANGE_STEPS:
        raise ConfigError(f"find-lr: steps must be in [10, {MAX_RANGE_STEPS:,}], got {steps}")


def range_test(
    model: nn.Module,
    data: RunInputs,
    cfg: TrainConfig,
    device: torch.device,
    seed: int = 0,
    start_lr: float = RANGE_START_LR,
    end_lr: float = RANGE_END_LR,
    steps: int = RANGE_STEPS,
    bar: Any = None,
) -> RangeTest:
    """Run the test on `model` (its weights are restored afterwards) with the run's optimizer,
    batch size and augmentation; the LR goes from start_lr to end_lr in `steps` geometric steps.
    `bar`: a tqdm-like progress bar, advanced a step at a time (closed by the caller), or None."""
    check_range(start_lr, end_lr, steps)
    saved, was_training = copy.deepcopy(model.state_dict()), model.training
    speed = Speed.resolve(dataclasses.replace(cfg, compile=False), device)  # a few hundred steps: not worth compiling
    model.to(device).train()
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    set_pool_kernel(model, speed.pool_kernel)
    net = Outputs(model)
    opt = make_optimizer(model, cfg, start_lr)
    norm = Normalize.of(data.mean, data.std, device)
    train = on_device(data.train, speed, device)
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    augment, pad = data.augmentation()
    grow = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs, losses, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, False

    def stream():  # batches forever, a new order each pass
        while True:
            order = torch.randperm(len(train), generator=order_gen).to(train.labels.device)
            yield from batches(train, cfg.batch_size, order, device, data.loader_workers)  # (a streamed split's)

    it = stream()
    for i in range(steps):  # the run's own training step: autocast, layout and auxiliary heads alike
        lr = start_lr * grow**i
        set_lr(opt, lr, None)
        x, y = next(it)
        if augment is not None:
            x = augment(x, aug_gen, pad)
        loss, _ = train_step(net, opt, x, y, norm, speed, cfg.label_smoothing)
        value = loss.item()
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        smooth = avg / (1 - SMOOTHING ** (i + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(smooth)
        if not math.isfinite(smooth) or smooth > DIVERGE * best:
            stopped = True
            break
        best = min(best, smooth)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(lr=f"{lr:.3g}", loss=f"{smooth:.3g}", refresh=False)
    it.close()  # a streamed split's DataLoader workers stop now, not when the generator is collected
    model.load_state_dict(saved)
    model.to(memory_format=torch.contiguous_format)
    opt.zero_grad(set_to_none=True)  # the model as it came: no gradients left on it, in its mode
    model.train(was_training)
    finite = [k for k, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 5:
        raise ConfigError("find-lr: the loss diverged within a few steps; lower start_lr")
    # the diverging tail is kept in the curve but not used by the rules
    last = finite[-1] + 1 if not stopped else len(smoothed) - 1
    result = RangeTest(lrs, losses, smoothed, stopped)
    result.suggestions = suggestions(lrs[:last], smoothed[:last])
    used = [v for v in smoothed[:last] if math.isfinite(v)]
    result.fall = (used[0] - min(used)) / abs(used[0]) if used[0] else 0.0
    low, cut = int(np.argmin(used)), _end_points(len(used))
    result.bottom = "start" if low <= cut else "end" if low >= len(used) - 1 - cut else "inside"
    return result


def plot_range_test(test: RangeTest, path) -> None:
    """Loss against LR (log axis), with each rule's suggestion marked."""
    from lrlab.plots import new_figure, save_figure

    fig, ax = new_figure((7, 4))
    ax.plot(test.lrs, test.losses, color="0.75", lw=1, label="loss")
    ax.plot(test.lrs, test.smoothed, color="C0", lw=2, label="smoothed loss")
    # two rules often land within a few percent of each other (minimum/10 and valley on a sharp valley): one dash
    # pattern per rule, each starting where the previous one's dash ends, so lines at one LR take turns instead of
    # the last one drawn hiding the others
    dash, width, turns = 4.0, 1.5, max(len(test.suggestions), 2)
    for k, (name, lr) in enumerate(test.suggestions.items()):
        style = (k * dash, (dash, dash * (turns - 1)))
        ax.axvline(lr, color=f"C{k + 1}", ls=style, lw=width, label=f"{name}: {lr:.3g}")
    ax.set_xscale("log")
    finite = [v for v in test.smoothed if math.isfinite(v)]
    if finite:
        lo = min(finite)
        # the top follows the smoothed curve, held to DIVERGE times its minimum (a diverging tail would flatten the
        # rest) but never below the curve before its minimum (the starting plateau); the bottom also takes the raw
        # loss, which dips well below the smoothed one where the loss falls
        before = finite[: finite.index(lo) + 1]
        top = max(min(max(finite), DIVERGE * lo), max(before)) * 1.05
        bottom = min([lo, *(v for v in test.losses if math.isfinite(v))])
        ax.set_ylim(bottom - 0.05 * (top - bottom), top)
    ax.set(xlabel="learning rate", ylabel="training loss", title="LR range test")
    ax.grid(alpha=0.3)
    # legend samples two whole dash periods (in points, scaled by the line width; handlelength is in font sizes),
    # so that every rule's sample shows its two dashes whatever its offset
    ax.legend(fontsize=8, handlelength=2 * dash * turns * width / 8)
    save_figure(fig, path)
