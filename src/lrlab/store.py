"""Result files: atomic writes (temporary file, then rename) of JSON and CSV, and provenance."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import lrlab
from lrlab.errors import LrlabError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes its file private (0600); a result file gets the mode any new file would (0644 with
# the usual umask), so that others on a shared output folder can read it
FILE_MODE = 0o666 & ~_umask()


def open_out(out: Path) -> None:
    """Make an output folder and check that it can be written, before any work goes into it."""
    if out.exists() and not out.is_dir():
        raise LrlabError(f"output folder {str(out)!r} is a file, not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise LrlabError(f"output folder {str(out)!r} cannot be written: {e.strerror or e}") from None


def landing(path: Path, make_parents: bool = True) -> Path | None:
    """Where a write of the file `path` lands: the file to replace atomically (through a symbolic link
    to the file it points at, so the link stays; a dangling link is replaced), or None for a device,
    pipe or stream (/dev/stdout), which is written straight into, since a rename would replace it.
    Makes the parent folders; a folder, or a parent that is a file, is refused. With make_parents
    False it only checks (a user's output path, before any work)."""
    if path.name in ("", ".", ".."):
        raise LrlabError(f"cannot write {str(path)!r}: it names a folder; give a file name")
    if path.absolute().parts[1:2] in (("dev",), ("proc",)):  # /dev/stdout, /dev/fd/3: a stream, maybe a
        return None  # redirected file, which a rename would replace (and losing what was written to it)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:  # e.g. a parent that is a file
        raise LrlabError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise LrlabError(f"cannot write {str(path)!r}: it is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return None
    real = path.resolve() if path.is_symlink() and st is not None else path
    try:
        if make_parents:  # (a parent that is a file made os.stat fail above)
            real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LrlabError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    if not make_parents:  # the check before any work: the nearest folder that exists must take a new file
        folder = real.parent.absolute()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise LrlabError(f"cannot write {str(path)!r}: {folder} is not writable")
    return real


def open_stream(path: Path) -> Any:
    """A device, pipe or stream (`landing` gave None) opened for bytes, after this process's own
    output is flushed. One of this process's descriptors (/dev/stdout, /dev/fd/3) is written through
    a copy of it, which shares its position in a redirected file; anything else is appended to."""
    sys.stdout.flush()
    sys.stderr.flush()
    name = {"/dev/stdout": "/dev/fd/1", "/dev/stderr": "/dev/fd/2"}.get(str(path), str(path.absolute()))
    if own := re.fullmatch(r"/(?:dev/fd|proc/self/fd)/(\d+)", name):
        return os.fdopen(os.dup(int(own.group(1))), "ab")
    return open(path, "ab")


def write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never half of it."""
    real = landing(path)
    if real is None:
        with open_stream(path) as f:
            f.write(text.encode("utf-8"))
        return
    path = real
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise write_failed(path, e) from None
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # a full disk, a quota: one line naming the file, not a traceback
            raise write_failed(path, e) from None
        raise


def write_failed(path: Path, e: Exception) -> LrlabError:
    """The error for a file that could not be written (after its temporary file is removed), with the free
    space of its disk: a full disk is the usual cause."""
    why = getattr(e, "strerror", None) or str(e)
    try:
        free = f" ({shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free on its disk)"
    except OSError:
        free = ""
    return LrlabError(f"cannot write {path}: {why}{free}")


def _strict(obj: Any) -> Any:
    """NaN and ±inf as null: JSON has no such numbers, and strict readers (JavaScript, jq) reject them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(_strict(obj), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cell(v: Any) -> Any:
    """A CSV cell: a float in full (the shortest text that reads back as the same float: a schedule checked
    against another library's from lr.csv, or a statistic recomputed from summary.csv, must not meet rounding
    of ours). A missing value, None or nan (a diverged run's metrics, a test with too few pairs), is an empty
    cell in every lrlab CSV; ±inf is a value (seeds_needed above the search limit, a loss that blew up) and is
    written inf or -inf, which float() and CSV readers parse."""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return "" if v is None else v


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: _cell(row.get(k)) for k in columns})
    write_text(path, buf.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def git_state(folder: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding `folder` (default: the lrlab code that runs), or (None, None)
    outside one; dirty: tracked files differ from that commit, so the commit alone does not say what ran."""
    where = str(folder or Path(lrlab.__file__).resolve().parent)

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", where, *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD") or None
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def torchvision_version() -> str:
    """torchvision.__version__ with its build tag (0.29.1+cu130; the package metadata says 0.29.1), read from its
    version.py, not imported: importing torchvision takes seconds."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torchvision")
        text = (Path(spec.submodule_search_locations[0]) / "version.py").read_text()
        return re.search(r"^__version__ = ['\"]([^'\"]+)['\"]", text, re.M).group(1)
    except (AttributeError, TypeError, IndexError, OSError):  # laid out otherwise: ask the package itself
        import torchvision

        return torchvision.__version__


def provenance(device: str) -> dict[str, Any]:
    """What ran: versions, commit, host and device, saved with every result."""
    import torch

    commit, dirty = git_state()
    info: dict[str, Any] = {
        "lrlab": lrlab.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision_version(),
        "platform": platform.platform(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name()
    return info


def _same_file(f: Any, path: Path) -> bool:
    """Whether the open file `f` is the file at `path` now."""
    try:
        here, there = os.fstat(f.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class FolderLock:
    """An exclusive lock on a folder, so two studies never write the same one. Hand-written on
    fcntl.flock rather than a lock library because the refusal must name the holder (its pid is
    written in the lock file); the OS drops the lock when the holder dies, even by SIGKILL. A lock file this
    lock created is removed again where the work under it raised (a refused command writes nothing), while
    still held; a process that opened it just before checks, once it holds the lock, that the file is still the
    one at the path, and starts again where it is not."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self.file: Any = None
        self.created = False

    def __enter__(self) -> FolderLock:
        import fcntl  # Unix only, like the rest of lrlab's file handling

        while True:  # (again only where a holder removed the file between this open and this lock: rare)
            self.created = not self.path.exists()
            try:
                f = open(self.path, "a+", encoding="utf-8")
            except OSError as e:  # a read-only folder (a report of a study on read-only storage), .lock not a file
                raise LrlabError(
                    f"cannot lock {self.path.parent} ({self.path}: {e.strerror or e}): lrlab writes there; "
                    f"`lrlab report {self.path.parent} --out OTHER` reports on a folder that cannot be written"
                ) from None
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                f.close()
                self.created = False  # (another process's lock file, whoever made it)
                raise LrlabError(
                    f"{self.path.parent} is in use by {holder}; wait for it to finish or choose another --out"
                ) from None
            if _same_file(f, self.path):
                break
            f.close()  # a file removed from the path: locking it locks nothing another process sees
        f.seek(0)
        f.truncate()
        f.write(f"lrlab pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        self.file = f
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        import fcntl

        if exc_type is not None and self.created:
            self.path.unlink(missing_ok=True)
        self.file.truncate(0)
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
