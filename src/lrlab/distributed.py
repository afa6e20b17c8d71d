"""Data-parallel training with PyTorch's own engine: under `torchrun` every process joins one
process group (NCCL on CUDA, gloo on CPU), trains its shard of each global batch inside
DistributedDataParallel, and only rank 0 writes files. Without torchrun it is a no-op."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from lrlab.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch (every world-th sample, from its rank)."""
        return x[self.rank :: self.world] if self.enabled else x

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of a tensor over all ranks (in place; returns it)."""
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def gather(self, t: torch.Tensor, per: int, n: int) -> torch.Tensor:
        """The ranks' contiguous shares of an n-long result (each at most `per` long), in rank order."""
        if not self.enabled:
            return t
        padded = torch.zeros(per, dtype=t.dtype, device=t.device)
        padded[: len(t)] = t
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat([p[: max(0, min(n, (r + 1) * per) - r * per)] for r, p in enumerate(parts)])

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics differ per rank)."""
        if self.enabled:
            for b in model.buffers():
                dist.broadcast(b, src=0)

    def share(self, obj: Any) -> Any:
        """Rank 0's value of `obj` on every rank (decisions read from files by rank 0 alone)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def collect(self, obj: Any) -> list[Any]:
        """Every rank's value of `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE = Dist()


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of rank `rank`'s own random stream (dropout masks) from a run's seed, and from the step at
    which the stream begins (a resume on more ranks than the checkpoint has streams for). NumPy's
    SeedSequence, made for exactly this (spawning independent streams from one seed), mixes the three."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def from_env(device: torch.device) -> Dist:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local)


def device_for(d: Dist, device: torch.device) -> torch.device:
    """Each process of a CUDA job drives its own GPU (LOCAL_RANK)."""
    return torch.device("cuda", d.local_rank) if device.type == "cuda" and d.enabled else device


def wrap(model: torch.nn.Module, d: Dist, device: torch.device, sync_bn: bool) -> torch.nn.Module:
    """The model inside DistributedDataParallel (BatchNorm optionally synchronised across ranks)."""
    if not d.enabled:
        return model
    if sync_bn:  # (check_setup has refused it off CUDA)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    # the 1×1 convs' weight gradients (N, C, 1, 1) can come out of the convolution's backward with other strides
    # than their weights (equivalent ones: the dims of size 1 may take any): DDP then copies them into its
    # buckets, and warned so at every run, from each process
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def check_setup(d: Dist, batch_size: int, sync_bn: bool, device: torch.device) -> None:
    """What a data-parallel run needs, checked before anything is written."""
    if d.enabled and batch_size % d.world:
        raise ConfigError(
            f"train.batch_size: the global batch ({batch_size}) must divide evenly over {d.world} processes"
        )
    if sync_bn and device.type != "cuda":  # (in one process too: it could never take effect there)
        raise ConfigError(f"train.sync_bn: PyTorch's SyncBatchNorm runs on CUDA only (this run is on {device.type}); "
                          "turn it off")  # fmt: skip


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
