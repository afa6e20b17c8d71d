"""What the machine did while a benchmark timed a loop: the GPU's SM clock, power, temperature, utilisation
and clock-event reasons (nvidia-smi sampling every 200 ms in the background, where it exists), and on Linux
the machine's CPU busy fraction and the CPU seconds of this process, of the processes under it (DataLoader
workers) and of TorchInductor's compile workers among them (/proc).

Written for one question: on the H200 the common recipe ran slower in the rounds timed after a
torch.compile than in the rounds before it (2026-11-27 and -28), while the eager fast path timed beside it
kept its speed. A clock or power limit after the compiled loop's busy seconds, or compile workers left
running beside the DataLoader's, would each show here. NVML's Python module is not a torch dependency and
nvidia-smi comes with the driver, hence a subprocess rather than bindings.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import select
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# the sample's own time first: a sample is placed by when nvidia-smi took it, not by when this process read it
GPU_FIELDS = "timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu"
REASON_FIELDS = ("clocks_event_reasons.active", "clocks_throttle_reasons.active")  # (the old name, older drivers)
# nvidia-smi's clock-event reason bits (nvidia-smi --help-query-gpu): why the SM clock is below its maximum
REASONS = {
    0x1: "idle",
    0x2: "app clocks",
    0x4: "SW power cap",
    0x8: "HW slowdown",
    0x10: "sync boost",
    0x20: "SW thermal",
    0x40: "HW thermal",
    0x80: "HW power brake",
    0x100: "display clocks",
}


def parse_sample(line: str) -> tuple[float, tuple[float, float, float, float, int | None]] | None:
    """One nvidia-smi CSV line (noheader, nounits) as (when, on this machine's clock (time.time()); SM MHz,
    watts, °C, utilisation %, the reason bitmask where it was asked for); None for a line that is not one (an
    error, "[N/A]")."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) not in (5, 6):
        return None
    try:
        when = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()  # (local time, as time())
        nums = tuple(float(p) for p in parts[1:5])
        reasons = int(parts[5], 16) if len(parts) == 6 else None
    except ValueError:
        return None
    return when, (*nums, reasons)  # type: ignore[return-value]


def reason_names(mask: int | None) -> str:
    if mask is None:
        return "?"
    names = [name for bit, name in REASONS.items() if mask & bit]
    return "+".join(names) if names else "none"


def cpu_busy_jiffies(stat: str) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat's text: busy is all but idle and iowait."""
    fields = [int(x) for x in stat.splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0), sum(fields)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # a process that ended between listing and reading; no /proc (not Linux)
        return None


def process_cpu(root: int) -> dict[int, tuple[str, float]]:
    """Each process at or under `root`: its kind ("main", "compile worker", "sampler" (nvidia-smi, this module's)
    or "child") and its CPU seconds so
    far (user + system, all its threads), read from /proc; {} where there is none."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parent, secs = {}, {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or (stat := _read(f"/proc/{entry}/stat")) is None:
            continue
        rest = stat.rsplit(")", 1)[1].split()  # (the name, in parentheses, may hold spaces)
        pid = int(entry)
        parent[pid], secs[pid] = int(rest[1]), (int(rest[11]) + int(rest[12])) / tick
    out = {}
    for pid in secs:
        p, depth = pid, 0
        while p not in (root, 0, 1) and p in parent and depth < 64:
            p, depth = parent[p], depth + 1
        if p != root:
            continue
        cmd = (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ")
        kind = ("main" if pid == root else "compile worker" if "compile_worker" in cmd
                else "sampler" if "nvidia-smi" in cmd else "child")  # fmt: skip
        out[pid] = (kind, secs[pid])
    return out


@dataclass
class Window:
    label: str
    start: float  # time.time() at its ends
    end: float = 0.0
    speed: float = 0.0  # images/s, set by the caller
    samples: list[tuple[float, float, float, float, int | None]] = field(default_factory=list)
    cpu_busy: float | None = None  # the machine's busy fraction of all its CPUs
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # by kind of process
    processes: dict[str, int] = field(default_factory=dict)


class Telemetry:
    """Describes each window `with t.window(label) as w:` of the benchmark, from the GPU samples taken in it and
    the CPU counters at its ends. `gpu`: the GPU to sample with nvidia-smi (its UUID or index; comma-separated,
    each tried in turn), or None."""

    def __init__(self, gpu: str | None) -> None:
        self.windows: list[Window] = []
        self._samples: list[tuple[float, tuple]] = []
        self._proc: subprocess.Popen[str] | None = None
        self.gpu_note = "no GPU sampled"
        for one in (gpu or "").split(",") if shutil.which("nvidia-smi") else []:
            if self._start(one.strip()):
                break

    def _start(self, gpu: str) -> bool:
        # a line at a time through the pipe where coreutils' stdbuf can ask for it (C's stdio would hold ~80
        # samples, 16 s of them): a table printed after a window then has that window's last samples
        line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
        for fields in (*(f"{GPU_FIELDS},{r}" for r in REASON_FIELDS), GPU_FIELDS):
            cmd = [*line_buffered, "nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits",
                   "-lms", "200", "-i", gpu]  # fmt: skip
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            # its first line, or its error, within 10 s: a hung nvidia-smi must not hang the benchmark
            first = proc.stdout.readline() if select.select([proc.stdout], [], [], 10)[0] else "(no answer in 10 s)"
            if (sample := parse_sample(first)) is not None:
                self._samples.append(sample)
                self._proc, self.gpu_note = proc, f"nvidia-smi every 200 ms, GPU {gpu}: {fields}"
                atexit.register(self.close)
                threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()
                return True
            proc.kill()
            proc.wait()
            self.gpu_note = f"nvidia-smi did not answer for GPU {gpu}: {first.strip()[:120]}"
        return False

    def _read(self, lines: Iterator[str]) -> None:
        for line in lines:
            if (sample := parse_sample(line)) is not None:
                self._samples.append(sample)

    @contextlib.contextmanager
    def window(self, label: str) -> Iterator[Window]:
        stat0, procs0 = _read("/proc/stat"), process_cpu(os.getpid())
        w = Window(label, time.time())
        try:
            yield w
        finally:
            w.end = time.time()
            stat1, procs1 = _read("/proc/stat"), process_cpu(os.getpid())
            if stat0 and stat1:
                (b0, n0), (b1, n1) = cpu_busy_jiffies(stat0), cpu_busy_jiffies(stat1)
                w.cpu_busy = (b1 - b0) / max(n1 - n0, 1)
            for pid, (kind, secs) in procs1.items():
                w.processes[kind] = w.processes.get(kind, 0) + 1
                w.cpu_seconds[kind] = w.cpu_seconds.get(kind, 0.0) + secs - procs0.get(pid, (kind, 0.0))[1]
            self.windows.append(w)

    def gather(self, windows: list[Window], wait: float = 1.0) -> None:
        """Give each window the GPU samples taken in it, waiting up to `wait` s for those of the last one."""
        deadline = time.time() + wait
        while self._proc is not None and windows and time.time() < deadline:
            if self._samples and self._samples[-1][0] >= windows[-1].end:
                break
            time.sleep(0.05)
        samples = list(self._samples)
        for w in windows:
            w.samples = [s for t, s in samples if w.start <= t <= w.end]

    def table(self, windows: list[Window], title: str) -> str:
        """The windows as an aligned text table under `title`, each with its GPU samples (gather)."""
        self.gather(windows)
        rows = [describe(w) for w in windows]
        if not rows:
            return ""
        cols = list(dict.fromkeys(k for r in rows for k in r))
        width = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in cols}
        lines = [title, "  ".join(c.ljust(width[c]) for c in cols)]
        lines += ["  ".join(r.get(c, "").ljust(width[c]) for c in cols) for r in rows]
        return "\n".join(lines)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def describe(w: Window) -> dict[str, str]:
    """A window's row: medians of the GPU samples in it, the union of their clock-event reasons, the CPU figures."""
    row = {"loop": w.label, "images/s": f"{w.speed:.1f}", "s": f"{w.end - w.start:.1f}"}
    if w.samples:
        for i, name in enumerate(("SM MHz", "W", "°C", "GPU %")):
            row[name] = f"{statistics.median(s[i] for s in w.samples):.0f}"
        masks = [s[4] for s in w.samples if s[4] is not None]
        union = 0
        for m in masks:
            union |= m
        row["clock reasons"] = reason_names(union if masks else None)
    if w.cpu_busy is not None:
        row["CPU busy %"] = f"{100 * w.cpu_busy:.0f}"
    for kind in ("main", "child", "compile worker"):
        if kind in w.processes:
            row[f"{kind} CPU-s"] = f"{w.cpu_seconds.get(kind, 0.0):.1f}" + (
                f" ({w.processes[kind]})" if kind != "main" else ""
            )
    return row
