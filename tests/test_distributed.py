"""Scaling out: torchrun data-parallel training equals one process with the same global batch,
and a study split into shards merges back into the unsharded study."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrlab import store
from lrlab.cli import main

BIN = Path(sys.executable).parent
CONFIG = """
name = "ddp"
[data]
name = "digits"
limit = 256
augment = "crop-flip"  # drawn for the global batch, each rank using its share of the draws
[model]
width = 0.125
batchnorm = false   # per-rank BatchNorm statistics would differ from one process's (SyncBN is CUDA-only)
dropout = 0.0       # so would dropout masks drawn per rank
[train]
epochs = 2
batch_size = 32     # the global batch: 16 per rank with two ranks
threads = 1
[schedules.onecycle]
type = "onecycle"
max_lr = 0.05
"""


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("resident", ["off", "on"])  # "on": the GPU fast path's data held on the device
def test_torchrun_two_processes_match_one(tmp_path, resident):
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(CONFIG.replace("threads = 1", f"threads = 1\ndata_on_device = {resident!r}"))
    assert main(["train", str(cfg), "--out", str(tmp_path / "one"), "--no-progress"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "torchrun"), "--nproc_per_node=2", "-m", "lrlab", "train", str(cfg), "--out",
           str(tmp_path / "two"), "--no-progress"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "on 2 processes" in res.stdout
    assert res.stdout.count("[1/1] onecycle seed 0") == 1  # only rank 0 speaks
    one = torch.load(tmp_path / "one" / "runs" / "onecycle" / "seed-0" / "model.pt")
    two = torch.load(tmp_path / "two" / "runs" / "onecycle" / "seed-0" / "model.pt")
    # gradients averaged over ranks vs over one batch differ only in float rounding
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    assert worst < 1e-5, worst
    assert files(tmp_path / "two") == files(tmp_path / "one")  # one set of files, no per-rank copies
    # evaluation is sharded over the ranks and combined: the same predictions as one process
    results = [json.loads((tmp_path / d / "runs/onecycle/seed-0/result.json").read_text()) for d in ("one", "two")]
    assert results[0]["test"] == results[1]["test"]
    assert results[0]["best_val_accuracy"] == results[1]["best_val_accuracy"]
    configs = [json.loads((tmp_path / d / "runs/onecycle/seed-0/config.json").read_text()) for d in ("one", "two")]
    assert [c["processes"] for c in configs] == [1, 2]  # recorded: BatchNorm sees each process's share
    if resident == "off":  # rank 0's refusal of the folder (another LR here): said once, and every rank stops
        # with it (rank 1, waiting on rank 0, met a closed connection and printed a traceback)
        res = subprocess.run([*cmd, "--set", "schedules.onecycle.max_lr=0.3"], capture_output=True, text=True,
                             env=env, timeout=300)  # fmt: skip
        assert res.returncode != 0 and res.stderr.count("lrlab: error: ") == 1, res.stderr
        assert "holds a run of a different configuration" in res.stderr and "[rank1]" not in res.stderr, res.stderr


# `lrlab train` with its first dropout masks recorded per rank, and optionally stopped (as by Ctrl-C on every
# rank) when an epoch begins, after the previous epoch's checkpoint
RECORDING = """
import os, sys
import torch
import torch.nn.functional as F
from lrlab import training
from lrlab.cli import main

masks, real_dropout, real_epoch = [], F.dropout, training.Trainer.train_epoch
stop = int(os.environ.get("STOP_AT_EPOCH", "0"))

def dropout(x, p=0.5, training=True, inplace=False):
    y = real_dropout(x, p, training, inplace)
    if training and p > 0 and len(masks) < 4:
        masks.append(torch.where(x != 0, y != 0, -1))  # kept or dropped; -1 where x is 0 (either way)
    return y

def train_epoch(self, epoch, bar):
    if epoch == stop:
        raise KeyboardInterrupt
    return real_epoch(self, epoch, bar)

F.dropout, training.Trainer.train_epoch = dropout, train_epoch
code = main(sys.argv[1:])
torch.save(masks, os.environ["MASKS"] + "-rank" + os.environ["RANK"] + ".pt")
sys.exit(code)
"""


def test_torchrun_ranks_draw_their_own_dropout_masks_and_resume_with_them(tmp_path):
    """With one random stream on every rank, a rank's sample i got rank 0's sample i's dropout mask: the global
    batch had half as many independent masks as one process's. Each rank's stream is saved at each checkpoint, so
    that a run stopped and resumed under torchrun ends with the weights of one that ran through."""
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(CONFIG.replace("dropout = 0.0 ", "dropout = 0.5 ").replace("epochs = 2", "epochs = 3"))
    (tmp_path / "record.py").write_text(RECORDING)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(out: str, **extra: str) -> subprocess.CompletedProcess:
        cmd = [str(BIN / "torchrun"), "--nproc_per_node=2", str(tmp_path / "record.py"), "train", str(cfg),
               "--out", str(tmp_path / out), "--no-progress"]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              env={**env, "MASKS": str(tmp_path / out), **extra})  # fmt: skip

    res = run("through")
    assert res.returncode == 0, res.stdout + res.stderr
    first = [torch.load(tmp_path / f"through-rank{r}.pt") for r in (0, 1)]
    assert len(first[0]) == len(first[1]) == 4
    for a, b in zip(*first, strict=True):  # the masks where both ranks' inputs are not 0: not the same
        seen = (a >= 0) & (b >= 0)
        assert seen.float().mean() > 0.5 and (a[seen] != b[seen]).float().mean() > 0.2
    stopped = run("resumed", STOP_AT_EPOCH="2")
    assert stopped.returncode != 0 and (tmp_path / "resumed/runs/onecycle/seed-0/checkpoint.pt").exists(), (
        stopped.stdout + stopped.stderr
    )
    res = run("resumed")
    assert res.returncode == 0 and "resumed from epoch 1" in res.stdout, res.stdout + res.stderr
    a, b = (torch.load(tmp_path / d / "runs/onecycle/seed-0/model.pt") for d in ("through", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_nodes_without_a_shared_folder_match_one_process(tmp_path):
    """Two torchrun "nodes" (one process each, on this machine, joined by c10d rendezvous as in the
    README) with an output folder each, as machines without a shared filesystem: global rank 0
    (whichever node the rendezvous makes it) writes the whole result, the other node writes nothing
    and reads nothing of it, and the weights equal one process's."""
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(CONFIG)
    assert main(["train", str(cfg), "--out", str(tmp_path / "one"), "--no-progress"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    endpoint = f"127.0.0.1:{free_port()}"
    launch = [str(BIN / "torchrun"), "--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
              f"--rdzv_endpoint={endpoint}", "--rdzv_id=lrlab-test", "-m", "lrlab", "train", str(cfg)]  # fmt: skip
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "env": env}
    nodes = [subprocess.Popen([*launch, "--out", str(tmp_path / f"node{k}"), "--no-progress"], **pipe) for k in (0, 1)]
    logs = [p.communicate(timeout=300)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], "\n".join(logs)
    written = [k for k in range(2) if (tmp_path / f"node{k}").exists() and files(tmp_path / f"node{k}")]
    assert len(written) == 1, written  # one node holds rank 0
    main_out = tmp_path / f"node{written[0]}"
    assert "on 2 processes" in logs[written[0]] and "[1/1] onecycle seed 0" not in logs[1 - written[0]]
    assert files(main_out) == files(tmp_path / "one")
    one = torch.load(tmp_path / "one" / "runs" / "onecycle" / "seed-0" / "model.pt")
    two = torch.load(main_out / "runs" / "onecycle" / "seed-0" / "model.pt")
    assert max((one[k] - two[k]).abs().max().item() for k in one) < 1e-5


def test_shards_merge_into_the_unsharded_study(tmp_path):
    common = ["study", "--limit", "150", "--epochs", "1", "--batch-size", "32", "--width", "0.125", "--seeds", "2",
              "--schedules", "standard,cyclic,onecycle", "--workers", "1", "--no-progress"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "all")]) == 0
    assert main([*common, "--shard", "1/2", "--out", str(tmp_path / "s1")]) == 0
    assert main([*common, "--shard", "2/2", "--out", str(tmp_path / "s2")]) == 0
    one = {p.parent.parent.name + p.parent.name for p in (tmp_path / "s1").glob("runs/*/*/result.json")}
    two = {p.parent.parent.name + p.parent.name for p in (tmp_path / "s2").glob("runs/*/*/result.json")}
    assert one and two and not one & two and len(one | two) == 6  # disjoint and complete
    assert main(["report", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "merged")]) == 0
    merged, whole = (store.read_csv(tmp_path / d / "summary.csv") for d in ("merged", "all"))
    for row in merged + whole:
        row.pop("seconds")  # wall time: the one column that differs between two runs of the same work
    assert merged == whole


def test_find_lr_under_torchrun_is_rank_0s_work(tmp_path):
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(CONFIG)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "torchrun"), "--nproc_per_node=2", "-m", "lrlab", "find-lr", str(cfg), "--steps", "20",
           "--out", str(tmp_path / "lr")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("LR range test on digits") == 1, res.stdout  # one test, one report
    assert files(tmp_path / "lr") == ["find-lr.csv", "find-lr.json", "find-lr.png"]
    assert len((tmp_path / "lr" / "find-lr.csv").read_text().splitlines()) == 21


def test_a_shard_without_the_baseline_succeeds_and_says_why_it_has_no_comparison(tmp_path, capsys):
    common = ["study", "--limit", "150", "--epochs", "1", "--batch-size", "32", "--width", "0.125",
              "--schedules", "standard,onecycle", "--no-progress"]  # fmt: skip
    assert main([*common, "--shard", "2/2", "--out", str(tmp_path / "s2")]) == 0  # onecycle only
    out = capsys.readouterr().out
    assert "1 of the study's 2 runs" in out and "baseline 'standard'" in out and "lrlab report" in out
    assert (tmp_path / "s2/runs/onecycle/seed-0/result.json").exists()
    assert not (tmp_path / "s2/report.md").exists()  # (summary.csv, the runs so far, is there)
    assert main([*common, "--shard", "3/3", "--out", str(tmp_path / "s3")]) == 0
    assert "shard 3/3 has no runs: the study has 2" in capsys.readouterr().out
