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
from lrlab.errors import LrlabError

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
epochs = 3
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
    # what ran from the resume on is recorded beside what ran at the start (the report compares them)
    (resumed,) = json.loads((second / "config.json").read_text())["resumes"]
    assert resumed["from_epoch"] >= 1 and resumed["provenance"]["device"] == "cpu"


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


def _start(cmd: list[str]) -> subprocess.Popen:
    """lrlab in a session of its own (its process group is signalled as a terminal or a scheduler would), with
    Ctrl-C's default action: a shell starting the test suite in the background (`cmd &`) leaves SIGINT ignored,
    and an ignored signal stays ignored in every child."""
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
@pytest.mark.parametrize(
    "how", ["SIGTERM to lrlab", "Ctrl-C to its process group", "SIGTERM to its process group", "SIGKILL to a worker"]
)
def test_stopping_a_parallel_study_stops_its_workers_at_once(tmp_path, how):
    cfg = tmp_path / "study.toml"
    # three runs on two workers: one waits in the queue, and no worker may start it
    text = CONFIG.replace('name = "resume"', 'name = "resume"\nworkers = 2').replace("epochs = 3", "epochs = 40")
    cfg.write_text(text + '[schedules.third]\ntype = "constant"\nlr = 0.02\n')
    out = tmp_path / "out"
    cmd = [str(LRLAB), "study", str(cfg), "--out", str(out), "--no-progress"]
    proc = _start(cmd)
    deadline = time.monotonic() + 120
    while len(list(out.glob("runs/*/seed-0/checkpoint.pt"))) < 2:  # both workers are training
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    t0 = time.monotonic()
    if how == "SIGTERM to lrlab":
        proc.send_signal(signal.SIGTERM)
    elif how == "SIGKILL to a worker":  # as the kernel's out-of-memory killer does
        os.kill(workers[0], signal.SIGKILL)
    else:  # (timeout, SLURM and docker stop signal the group: the workers get it too)
        os.killpg(proc.pid, signal.SIGINT if how.startswith("Ctrl-C") else signal.SIGTERM)
    log = proc.communicate(timeout=60)[0]
    if how == "SIGKILL to a worker":  # (was: BrokenProcessPool's traceback)
        assert proc.returncode == 2 and "lrlab: error: a worker process ended abruptly (killed, or out of" in log, log
    else:
        code = 130 if how.startswith("Ctrl-C") else 143  # 128 + the signal, as the shell reports a process it stopped
        assert proc.returncode == code and "interrupted; finished runs are saved, rerun the same command" in log, log
        assert "leaked" not in log, log  # (a worker killed outright cannot release its semaphores)
    assert time.monotonic() - t0 < 15  # each run has minutes to go: the workers did not finish theirs
    time.sleep(1)
    assert not [w for w in workers if _alive(w)]
    assert "Traceback" not in log, log
    assert not list(out.glob("runs/*/seed-0/result.json"))
    with store.FolderLock(out):  # released
        pass


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
def test_ctrl_c_while_the_workers_start_leaves_no_tracebacks(tmp_path):
    cfg = tmp_path / "study.toml"
    cfg.write_text(CONFIG.replace('name = "resume"', 'name = "resume"\nworkers = 2'))
    cmd = [str(LRLAB), "study", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]
    proc = _start(cmd)
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
        assert main(["report", str(out)]) == 2  # a study's report would be written over while it runs
        assert f"pid {os.getpid()}" in capsys.readouterr().err
    assert not (out / "runs").exists()
    (out / ".lock").unlink()
    assert main(["report", str(out)]) == 2  # a folder without runs: refused, and left without a lock file
    assert "no finished runs" in capsys.readouterr().err and list(out.iterdir()) == []
    # a lock that cannot be taken (a read-only folder; here .lock is a folder, which root cannot open either): one
    # line, not a traceback
    (out / "runs").mkdir()
    assert main(["report", str(out)]) == 2  # runs/ but no finished run: the lock file it made is gone again
    assert "no finished runs" in capsys.readouterr().err and not (out / ".lock").exists()
    (out / ".lock").mkdir()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lrlab: error: cannot lock {out} (") and err.count("\n") == 1, err
    assert f"lrlab report {out} --out OTHER" in err


def test_a_lock_file_removed_between_open_and_lock_is_not_held(tmp_path, monkeypatch):
    """A lock whose file its holder removed (its work raised) after another process opened it: that process's
    lock of the removed file held nothing, while a third process locked the new file at the path. It now
    checks the file it locked is the one at the path, and opens that one again."""
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    flock, other = fcntl.flock, []

    def raced(f, how):  # at the first lock: the file opened is replaced at the path, and another holds the new one
        if how & fcntl.LOCK_EX and not other:
            (out / ".lock").unlink()
            other.append(store.FolderLock(out))
            other[0].__enter__()
        return flock(f, how)

    monkeypatch.setattr(fcntl, "flock", raced)
    with pytest.raises(LrlabError, match=rf"{out} is in use by lrlab pid {os.getpid()}"), store.FolderLock(out):
        pass
    other[0].__exit__(None)


@pytest.mark.parametrize(
    ("change", "said"), [(["--epochs", "2"], "train.epochs is 1 in"), (["--width", "0.25"], "model.width is 0.125 in")]
)
def test_changed_config_on_resume_is_refused_unless_fresh(tmp_path, capsys, change, said):
    base = {"--epochs": "1", "--width": "0.125"}
    key = said.split(" is ")[0]
    args = ["study", "--limit", "150", "--batch-size", "32", "--schedules", "standard", "--no-progress",
            "--out", str(tmp_path)]  # fmt: skip
    assert main([*args, *[x for kv in base.items() for x in kv]]) == 0
    changed = [x for kv in {**base, change[0]: change[1]}.items() for x in kv]
    assert main([*args, *changed]) == 2
    err = capsys.readouterr().err  # what differs is named, and --fresh offered: the run is one this start trains
    assert f"holds runs of another setting ({said}" in err and "or --fresh to replace them" in err
    assert main([*args, *changed, "--fresh"]) == 0
    # a changed schedule is no other setting (the report compares schedules): the run is of another configuration
    assert main([*args, *changed, "--set", "schedules.standard.lr=0.2"]) == 2
    said = "holds a run of a different configuration (schedules.standard.lr is 0.05 there, 0.2 here); rerun with"
    assert said in capsys.readouterr().err
    # the same, but the run stopped before its first checkpoint (an unreadable image met while streaming): it
    # holds nothing to keep, and is replaced
    run = tmp_path / "runs" / "standard" / "seed-0"
    (run / "result.json").unlink()
    assert main([*args, *changed, "--set", "schedules.standard.lr=0.2"]) == 0
    assert "held a run of another configuration that stopped before its first epoch ended" in capsys.readouterr().out
    assert (run / "result.json").exists()
    # part-trained (a checkpoint), under another setting than this start's: what differs is named here too
    (run / "result.json").unlink()
    (run / "checkpoint.pt").write_bytes(b"")
    assert main([*args, *[x for kv in base.items() for x in kv], "--set", "schedules.standard.lr=0.2"]) == 2
    assert f"holds a run of a different configuration ({key} is {change[1]} there, " in capsys.readouterr().err


def test_resume_may_change_how_a_run_is_executed(tmp_path, capsys):
    """Device, threads and compilation are not part of a run's identity: a study begun one way resumes
    another (e.g. eager after a compiler failure), keeping its finished runs."""
    args = ["study", "--limit", "150", "--epochs", "1", "--batch-size", "32", "--width", "0.125",
            "--schedules", "standard,cyclic", "--workers", "1", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main([*args, "--threads", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--threads", "2", "--compile", "--set", "train.compile_mode=reduce-overhead"]) == 0
    out = capsys.readouterr().out
    assert out.count("kept (finished earlier)") == 2


def test_runs_are_counted_as_they_are_done_kept_ones_first(tmp_path, capsys):
    """[k/N] counts the runs done; it was each run's place in the plan, which around kept runs (or as parallel
    runs finish) printed [2/2], then [1/2], and read as runs lost or repeated."""
    import re

    args = ["study", "--limit", "150", "--epochs", "1", "--batch-size", "32", "--width", "0.125", "--workers", "1",
            "--schedules", "standard,cyclic", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    (tmp_path / "runs" / "standard" / "seed-0" / "result.json").unlink()  # the plan's first, trained again
    assert main(args) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if re.match(r"\[\d/2\]", x)]
    assert [x[:24] for x in lines] == ["[1/2] cyclic seed 0: kep", "[2/2] standard seed 0: t"]


def test_a_run_stopped_before_its_first_checkpoint_starts_over_as_a_new_one(tmp_path, capsys):
    """Its config.json alone: nothing trained was kept, so it was not resumed on another number of processes
    either (it was recorded so, and the report said runs were resumed on other numbers of processes)."""
    args = ["study", "--limit", "100", "--epochs", "1", "--batch-size", "32", "--width", "0.125", "--workers", "1",
            "--schedules", "standard", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    run = tmp_path / "runs" / "standard" / "seed-0"
    (run / "result.json").unlink()
    doc = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**doc, "processes": 2}))  # begun under torchrun on two
    assert main(args) == 0
    doc = json.loads((run / "config.json").read_text())
    assert doc["processes"] == 1 and "processes_resumed" not in doc
    assert "resumed from" not in capsys.readouterr().out


def test_the_last_run_left_trains_with_the_threads_of_every_run(tmp_path, capsys):
    """With workers = 2 each run trains on half the CPU threads. A run trained again alone (the last one left
    of a resumed study, or `lrlab train`) keeps that count: a CPU run's numbers depend on it, so otherwise a
    resumed study's table differed from the uninterrupted one."""
    args = ["study", "--limit", "150", "--epochs", "2", "--batch-size", "32", "--width", "0.125", "--threads", "2",
            "--workers", "2", "--schedules", "standard,onecycle", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    assert "running 2 runs in 2 worker processes × 1 thread" in capsys.readouterr().out
    run = tmp_path / "runs" / "onecycle" / "seed-0"
    before = (run / "epochs.csv").read_text()
    (run / "result.json").unlink()  # as if it had been stopped before its end: trained again, alone
    (run / "epochs.csv").unlink()
    assert main(args) == 0
    assert "running" not in capsys.readouterr().out  # in the main process
    losses = [ln.split(",")[3] for ln in (run / "epochs.csv").read_text().splitlines()]
    assert losses == [ln.split(",")[3] for ln in before.splitlines()]


def test_a_damaged_checkpoint_is_said_and_its_run_trained_from_the_start(tmp_path, capsys):
    args = ["study", "--limit", "150", "--epochs", "2", "--batch-size", "32", "--width", "0.125", "--threads", "1",
            "--schedules", "standard", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    run = tmp_path / "runs" / "standard" / "seed-0"
    before = json.loads((run / "result.json").read_text())["test"]
    (run / "result.json").unlink()  # unfinished again, with a checkpoint cut short (a full disk, a bad copy)
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a whole zip archive")
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"lrlab: {run / 'checkpoint.pt'} cannot be read (" in err and "training this run from its start" in err
    assert json.loads((run / "result.json").read_text())["test"] == before


def test_a_checkpoint_that_cannot_be_written_is_one_line_naming_it(tmp_path, monkeypatch):
    from lrlab import training

    def full(obj, f):  # what torch's writer raises on a full disk
        Path(f).write_bytes(b"part")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4 vs 8")

    monkeypatch.setattr(training.torch, "save", full)
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(LrlabError, match=rf"cannot write {path}: .* MiB free on its disk\)"):
        training.save_checkpoint(path, {})
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind

    def interrupted(obj, f):  # Ctrl-C or SIGTERM (lrlab raises KeyboardInterrupt for it) halfway through
        Path(f).write_bytes(b"part")
        raise KeyboardInterrupt

    monkeypatch.setattr(training.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.save_checkpoint(path, {})
    assert list(tmp_path.iterdir()) == []  # (it was left as .checkpoint.pt.tmp)


def test_a_run_resumed_on_another_number_of_processes_says_so(tmp_path, capsys, monkeypatch):
    """Begun under torchrun on 2 processes (config.json's processes), finished in one: its BatchNorm saw other
    batches after the resume, so config.json records it and the report says that process counts are mixed."""
    args = ["study", "--limit", "150", "--epochs", "1", "--batch-size", "32", "--width", "0.125",
            "--schedules", "standard", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    unlink = Path.unlink  # the checkpoint of its last epoch kept, as where a run stopped before its result
    monkeypatch.setattr(Path, "unlink", lambda p, missing_ok=False: p.name == "checkpoint.pt" or unlink(p, missing_ok))
    assert main(args) == 0
    monkeypatch.undo()
    run = tmp_path / "runs" / "standard" / "seed-0"
    doc = json.loads((run / "config.json").read_text())
    assert doc["processes"] == 1 and "processes_resumed" not in doc
    (run / "config.json").write_text(json.dumps({**doc, "processes": 2}))
    (run / "result.json").unlink()  # stopped before its end
    capsys.readouterr()
    assert main(args) == 0
    assert json.loads((run / "config.json").read_text())["processes_resumed"] == [1]
    assert (
        "runs trained on 1 and 2 processes are compared here (standard seed 0 resumed on another number than begun"
        in (capsys.readouterr().out)
    )
