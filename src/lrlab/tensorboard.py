"""Optional TensorBoard event files for a run (`tensorboard = true` or `--tensorboard`): the LR at
every step, the training loss, per-epoch metrics, and the schedule's plot. Written from the saved
run data after the run, so the training step carries no logging cost."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError


def check_available() -> None:
    """Refuse before training when TensorBoard is asked for but not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise LrlabError(
            "--tensorboard needs the tensorboard package: pip install tensorboard (or '.[tensorboard]' in lrlab's "
            "checkout)"
        ) from None


def write_run_events(
    folder: Path,
    trace: list[tuple[int, float, float | None]],
    step_losses: list[tuple[int, float]],
    epochs: list[dict[str, Any]],
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    from lrlab.plots import new_figure

    # a run's events are written at its end, all at once: a folder already there holds a write that a kill cut
    # short (the run then finished on a rerun), which TensorBoard would read beside these as more points
    shutil.rmtree(folder, ignore_errors=True)
    with SummaryWriter(log_dir=str(folder)) as w:
        for step, lr, momentum in trace:
            w.add_scalar("schedule/lr", lr, step)
            if momentum is not None:
                w.add_scalar("schedule/momentum", momentum, step)
        for step, loss in step_losses:
            w.add_scalar("train/loss_step", loss, step)
        for e in epochs:
            for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
                w.add_scalar(f"epoch/{key}", e[key], e["epoch"])
        fig, ax = new_figure((6, 3))
        ax.plot([t[0] for t in trace], [t[1] for t in trace])
        ax.set(xlabel="optimizer step", ylabel="learning rate", title="LR schedule")
        w.add_figure("schedule/plot", fig, close=True)
