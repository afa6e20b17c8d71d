"""Reliability: a study killed with SIGKILL and rerun finishes every run once, and the resumed run
ends with exactly the metrics of an uninterrupted one; two studies cannot share a folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrlab import store
from lrlab.cli import main

LRLAB = Path(sys.executable).parent / "lrlab"
CONFIG = """
name = "resume"
seeds = [0]
[data]
name = "digits"
limit = 600
[model]
width = 0.125
[train]
epochs = 6
batch_size = 32
threads = 1
[schedules.standard]
type = "constant"
lr = 0.05
[schedules.onecycle]
type = "onecycle"
max_lr = 0.1
"""


def study(cfg: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(LRLAB), "study", str(cfg), "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def test_sigkill_then_rerun_resumes_exactly(tmp_path):
    cfg = tmp_path / "study.toml"
    cfg.write_text(CONFIG)
    reference = study(cfg, tmp_path / "ref")
    victim = study(cfg, tmp_path / "victim")
    second = tmp_path / "victim" / "runs" / "onecycle" / "seed-0"
    deadline = time.monotonic() + 240
    while not (second / "checkpoint.pt").exists():  # killed once the second run has a checkpoint
        assert victim.poll() is None, "the study finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (second / "result.json").exists()
    first = tmp_path / "victim" / "runs" / "standard" / "seed-0" / "result.json"
    first_bytes = first.read_bytes()

    rerun = study(cfg, tmp_path / "victim")
    log = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, log
    assert "standard seed 0: kept" in log  # not repeated
    assert "resumed from epoch" in log
    assert first.read_bytes() == first_bytes
    assert reference.wait(timeout=300) == 0
    for run in ("standard", "onecycle"):
        ref = json.loads((tmp_path / "ref" / "runs" / run / "seed-0" / "result.json").read_text())
        got = json.loads((tmp_path / "victim" / "runs" / run / "seed-0" / "result.json").read_text())
        assert got["test"] == ref["test"], run  # every metric, per-class report and confusion matrix
        assert got["best_val_accuracy"] == ref["best_val_accuracy"]
        ref_epochs = store.read_csv(tmp_path / "ref" / "runs" / run / "seed-0" / "epochs.csv")
        got_epochs = store.read_csv(tmp_path / "victim" / "runs" / run / "seed-0" / "epochs.csv")
        assert [e["val_loss"] for e in got_epochs] == [e["val_loss"] for e in ref_epochs]
    assert not (second / "checkpoint.pt").exists()
    assert len(store.read_csv(tmp_path / "victim" / "summary.csv")) == 2


def _workers(pid: int) -> list[int]:
    """The multiprocessing workers whose parent is `pid`, read from /proc (Linux)."""
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_text()
        except (OSError, IndexError):  # gone meanwhile
            continue
        if parent == pid and "spawn_main" in command:
            out.append(int(proc.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
@pytest.mark.parametrize("how", ["SIGTERM to lrlab", "Ctrl-C to its process group", "SIGTERM to its process group"])
def test_stopping_a_parallel_study_stops_its_workers_at_once(tmp_path, how):
    cfg = tmp_path / "study.toml"
    # three runs on two workers: one waits in the queue, and no worker may start it
    text = CONFIG.replace('name = "resume"', 'name = "resume"\nworkers = 2').replace("epochs = 6", "epochs = 40")
    cfg.write_text(text + '[schedules.third]\ntype = "constant"\nlr = 0.02\n')
    out = tmp_path / "out"
    cmd = [str(LRLAB), "study", str(cfg), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("runs/*/seed-0/checkpoint.pt"))) < 2:  # both workers are training
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    t0 = time.monotonic()
    if how == "SIGTERM to lrlab":
        proc.send_signal(signal.SIGTERM)
    else:  # (timeout, SLURM and docker stop signal the group: the workers get it too)
        os.killpg(proc.pid, signal.SIGINT if how.startswith("Ctrl-C") else signal.SIGTERM)
    log = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130 and "interrupted; finished runs are saved" in log, log
    assert time.monotonic() - t0 < 15  # each run has minutes to go: the workers did not finish theirs
    time.sleep(1)
    assert not [w for w in workers if _alive(w)]
    assert "leaked" not in log and "Traceback" not in log, log
    assert not list(out.glob("runs/*/seed-0/result.json"))
    with store.FolderLock(out):  # released
        pass


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
def test_ctrl_c_while_the_workers_start_leaves_no_tracebacks(tmp_path):
    cfg = tmp_path / "study.toml"
    cfg.write_text(CONFIG.replace('name = "resume"', 'name = "resume"\nworkers = 2'))
    cmd = [str(LRLAB), "study", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    head = [proc.stdout.readline() for _ in range(2)]
    assert "worker processes" in head[-1], head
    deadline = time.monotonic() + 60
    while len(_workers(proc.pid)) < 2:  # spawned, and importing lrlab and torch (seconds)
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    log = "".join(head) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 130 and "Traceback" not in log and "KeyboardInterrupt" not in log, log


def test_a_locked_folder_is_refused_with_the_holder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with store.FolderLock(out):
        code = main(["study", "--limit", "100", "--epochs", "2", "--batch-size", "16", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"pid {os.getpid()}" in err and "in use" in err
    assert not (out / "runs").exists()


@pytest.mark.parametrize("change", [["--epochs", "2"], ["--width", "0.25"]])
def test_changed_config_on_resume_is_refused_unless_fresh(tmp_path, capsys, change):
    base = {"--epochs": "1", "--width": "0.125"}
    args = ["study", "--limit", "150", "--batch-size", "32", "--schedules", "standard", "--no-progress",
            "--out", str(tmp_path)]  # fmt: skip
    assert main([*args, *[x for kv in base.items() for x in kv]]) == 0
    changed = [x for kv in {**base, change[0]: change[1]}.items() for x in kv]
    assert main([*args, *changed]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert main([*args, *changed, "--fresh"]) == 0


def test_resume_may_change_how_a_run_is_executed(tmp_path, capsys):
    """Device, threads and compilation are not part of a run's identity: a study begun one way resumes
    another (e.g. eager after a compiler failure), keeping its finished runs."""
    args = ["study", "--limit", "150", "--epochs", "1", "--batch-size", "32", "--width", "0.125",
            "--schedules", "standard,cyclic", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main([*args, "--threads", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--threads", "2", "--compile", "--set", "train.compile_mode=reduce-overhead"]) == 0
    out = capsys.readouterr().out
    assert out.count("kept (finished earlier)") == 2
