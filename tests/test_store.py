"""Result files land where the user pointed: through links, into pipes, never over a folder."""

from __future__ import annotations

import os
import stat
import subprocess
import threading

import pytest

from lrlab import store
from lrlab.cli import main
from lrlab.errors import LrlabError


def test_a_link_keeps_pointing_at_the_rewritten_file(tmp_path):
    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to("real.csv")
    store.write_text(tmp_path / "link.csv", "new")
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text() == "new"


def test_a_pipe_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    store.write_csv(fifo, [{"a": 1.5}], ["a"])
    reader.join(10)
    assert got == ["a\n1.5\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_or_a_file_as_parent_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(LrlabError, match="it is a folder"):
        store.write_text(tmp_path, "x")
    with pytest.raises(LrlabError, match="Not a directory"):
        store.write_text(tmp_path / "f" / "x.csv", "x")
    with pytest.raises(LrlabError, match="Not a directory"):
        store.landing(tmp_path / "f" / "a" / "x.csv", make_parents=False)
    assert not (tmp_path / "a").exists()


def test_schedules_checks_its_output_files_before_any_work(tmp_path, capsys):
    assert main(["schedules", "--steps", "20", "--csv", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "it is a folder" in err
    assert main(["schedules", "--steps", "20", "--plot", str(tmp_path / "lr.png" / "..")]) == 2
    capsys.readouterr()
    new = tmp_path / "new"  # a folder not made yet, meant by its trailing slash: no file named "new"
    assert main(["schedules", "--steps", "20", "--csv", f"{new}/"]) == 2
    assert f"--csv {new}/: names a folder; give a file name, e.g. {new}/schedules.csv" in capsys.readouterr().err
    assert not new.exists()


def test_csv_to_dev_stdout_redirected_to_a_file_keeps_the_file(tmp_path):
    """/dev/stdout leads to the file the shell opened: written through lrlab's own descriptor, in order,
    not renamed over (which lost what came before and after)."""
    import subprocess
    import sys

    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    cmd = [sys.executable, "-m", "lrlab", "schedules", "--schedules", "standard", "--steps", "3"]
    cmd += ["--csv", "/dev/stdout"]
    with open(log, "a") as out:
        assert subprocess.run(cmd, stdout=out, timeout=120).returncode == 0
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line" and lines[-1] == "wrote /dev/stdout"
    assert lines.index("step,schedule,lr,momentum") + 4 == len(lines) - 1  # three rows, then the last line


def test_provenance_says_when_the_code_differs_from_its_commit(tmp_path):
    """A commit alone does not say what ran when tracked files were changed after it (a copied working tree
    whose .git is older, say): the checkout's state is recorded beside it."""
    assert store.git_state(tmp_path) == (None, None)  # not a checkout

    def run(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    run("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    run("add", "code.py")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    commit, dirty = store.git_state(tmp_path)
    assert len(commit) == 40 and dirty is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert store.git_state(tmp_path) == (commit, True)
    assert set(store.provenance("cpu")) >= {"git_commit", "git_dirty"}


def test_a_file_that_cannot_be_written_is_one_line_naming_it(tmp_path, monkeypatch):
    """A full disk while writing a result file (result.json, a CSV, the report): an LrlabError naming the file
    and the disk's free space (one line from the command line, as for a checkpoint), no temporary file left."""
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    path = tmp_path / "result.json"
    with pytest.raises(
        LrlabError, match=rf"^cannot write {path}: No space left on device \(\d+ MiB free on its disk\)$"
    ):
        store.write_json(path, {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_provenance_names_torchvisions_build_without_importing_it():
    """The version with its build tag (+cu130, +cpu), as torchvision.__version__ gives it, read without the import
    that takes seconds."""
    import subprocess
    import sys

    code = "import sys; from lrlab import store; print(store.torchvision_version(), 'torchvision' in sys.modules)"
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    import torchvision

    assert said == [torchvision.__version__, "False"]
