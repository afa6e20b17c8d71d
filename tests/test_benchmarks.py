"""The benchmark scripts run (on the CPU, tiny sizes): a GPU session gets one try at them."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch

from tests.test_configs import cifar_like_archive

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def exit_code(script: str, *args: str, into: contextlib.AbstractContextManager) -> int | str | None:
    """`python benchmarks/SCRIPT ARGS` run in this process (a process of its own spends about 10 s importing torch,
    torchvision and TorchDynamo on a 2-core CPU), its output redirected by `into`: its exit status, None where it
    ends without sys.exit. As a script: its folder first on the path, where time_to_accuracy.py finds
    throughput.py."""
    argv = mock.patch.object(sys, "argv", [script, *args])
    with argv, mock.patch.object(sys, "path", [str(BENCH), *sys.path]), into:
        try:
            runpy.run_path(str(BENCH / script), run_name="__main__")
        except SystemExit as stop:
            return stop.code
    return None


def run(script: str, *args: str) -> str:
    """A script's standard output; it must succeed (the torch.compile and kernel patches of the test that calls it
    hold while it runs). On the CPU unless args say --device: the tests' expectations are the CPU's, and on a
    GPU a script run in this process would leave its nvidia-smi sampler and kernel settings behind."""
    out = io.StringIO()
    args = args if "--device" in args else (*args, "--device", "cpu")
    code = exit_code(script, *args, into=contextlib.redirect_stdout(out))
    assert not code, f"{script} exited with {code}: {out.getvalue()[-3000:]}"
    return out.getvalue()


def run_apart(script: str, *args: str, prelude: str = "") -> str:
    """A script's standard output, run in a process of its own under Triton's interpreter (TRITON_INTERPRET is read
    when the kernels are defined), after `prelude` (Python: patches); it must succeed."""
    code = f"import runpy, sys\n{prelude}\nsys.argv = {[script, *args]!r}\n" \
           f"runpy.run_path({str(BENCH / script)!r}, run_name='__main__')\n"  # fmt: skip
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def refused(script: str, *args: str) -> str:
    """A script's refusal of its arguments (exit 2), run in this process: its stderr."""
    err = io.StringIO()
    code = exit_code(script, *args, into=contextlib.redirect_stderr(err))
    assert code == 2, f"{script} {args}: exit {code}: {err.getvalue()}"
    return err.getvalue()


def no_compiler(net, mode="default"):
    """torch.compile's stand-in: the compiled rows' bookkeeping without a compiler."""
    return net


def test_throughput_prints_every_row_and_ratio(tmp_path):
    out = run("throughput.py", "--seconds", "0.2", "--images", "256", "--image-size", "8", "--width", "0.125",
              "--workers", "0", "--batch", "64", "--large-batch", "128",
              "--profile", str(tmp_path / "prof.txt"))  # fmt: skip
    for row in ("bare loop", "lrlab loop", "common recipe", "1×1 convs unfused", "fast path (crop+flip on device)",
                "fast path (crop+flip on device, batch 128)"):  # fmt: skip
        assert row in out
    for ratio in ("lrlab loop / bare loop", "fused / unfused", "fast path / common recipe",
                  "fast path at batch 128 / common recipe"):  # fmt: skip
        line = next(x for x in out.splitlines() if ratio in x)
        assert float(line.rsplit(":", 1)[1]) > 0
    assert "convolution" in (tmp_path / "prof.txt").read_text()
    said = next(x for x in out.splitlines() if x.startswith("profile of one epoch (eager fast path): wall "))
    assert float(said.split("wall ")[1].split()[0]) > 0  # ms a step (on CUDA also the device's busy time)


def test_device_busy_sums_the_devices_own_events_once():
    """The profile line's device-busy time: the device's events (kernels, copies), not the CPU ops' device time,
    which counts the same kernels again."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    busy = runpy.run_path(str(BENCH / "throughput.py"))["device_busy"]
    events = [SimpleNamespace(device_type=DeviceType.CPU, self_device_time_total=3_000_000),  # aten::conv, say
              SimpleNamespace(device_type=DeviceType.CUDA, self_device_time_total=2_000_000),  # its kernel
              SimpleNamespace(device_type=DeviceType.CUDA, self_device_time_total=500_000)]  # fmt: skip
    assert busy(events) == 2.5


def test_throughput_orders_its_compiled_rows():
    """--compile's modes (ATen's row of the first mode, then Triton's rows, then ATen's of the other modes), or
    POOL:MODE rows in their given order: the order decides which rows a time limit on a GPU costs."""
    script = runpy.run_path(str(BENCH / "throughput.py"))
    spec, rows = script["compile_spec"], script["compiled_rows"]
    both = ["aten", "triton"]
    d, ro = "default", "reduce-overhead"
    assert rows(spec(f"{d},{ro}"), both) == [(d, "aten"), (d, "triton"), (ro, "triton"), (ro, "aten")]
    assert rows(spec("default,reduce-overhead"), ["aten"]) == [("default", "aten"), ("reduce-overhead", "aten")]
    given = spec("aten:default, triton:reduce-overhead,triton:default,aten:default")  # (a repeat counts once)
    assert rows(given, both) == [("default", "aten"), ("reduce-overhead", "triton"), ("default", "triton")]
    assert rows(given, ["aten"]) == [("default", "aten")]  # Triton's rows go where its pools failed eager
    for text, said in (("default,fast", "not a torch.compile mode or POOL:MODE row: 'fast'"),
                       ("cudnn:default", "not a torch.compile mode or POOL:MODE row: 'cudnn:default'"),
                       ("aten:default,reduce-overhead", "expected modes, or POOL:MODE rows, not both")):  # fmt: skip
        assert said in refused("throughput.py", "--compile", text)
    # a Triton row without --triton-pools: refused, not left out unsaid (a GPU session lost a call to it)
    said = refused("throughput.py", "--compile", "triton:reduce-overhead", "--device", "cpu")
    assert "--compile triton:MODE times lrlab's Triton max pools: add --triton-pools" in said


def test_time_to_accuracy_runs_on_a_small_archive(tmp_path):
    archive = cifar_like_archive(tmp_path / "c.tar.gz")
    out = run("time_to_accuracy.py", "--data", str(archive), "--epochs", "2", "--width", "0.0625", "--batch", "16",
              "--max-lr", "0.05", "--device", "cpu", "--tta", "--set", "model.init=fan_in",
              "--set", "train.decay_norm_bias=false", "--pool-kernel", "auto", "--eval-last", "1")  # fmt: skip
    assert "epoch  2: val accuracy" in out and "final validation accuracy" in out
    # the kernels that ran (auto, resolved: ATen's on the CPU), and the --sets
    assert ", 2 epochs, validated after the last 1, aten (auto) max pools, model.init = fan_in, " \
           "train.decay_norm_bias = False\n" in out  # fmt: skip
    # --eval-last 1: validated after the last epoch only; --tta: a flip-TTA figure too, counted on its own clock,
    # which adds its passes to the plain one's (at 0.1 s resolution: the tiny split's passes may round away)
    epochs = [x for x in out.splitlines() if x.startswith("epoch ")]
    assert [x[:8] for x in epochs] == ["epoch  2"] and all("; with flip TTA " in x for x in epochs)
    plain, tta = (float(x.split(",")[-1].split()[0]) for x in epochs[-1].split(";"))
    assert tta >= plain
    assert "validation accuracy with flip TTA (its passes counted): " in out


def test_time_to_accuracy_trains_the_fastest_variant_that_works(tmp_path, capsys):
    """--fastest-of: each variant is calibrated, one that fails is said and left out, the fastest is trained
    (here on the CPU, in this process, without a compiler: lrlab's Triton pools need a CUDA device, so that
    variant fails)."""
    archive = cifar_like_archive(tmp_path / "c.tar.gz")
    with mock.patch.object(torch, "compile", no_compiler):
        out = run("time_to_accuracy.py", "--data", str(archive), "--epochs", "auto", "--budget", "0.001", "--width",
                  "0.0625", "--batch", "16", "--max-lr", "0.05", "--device", "cpu",
                  "--fastest-of", "triton:default,aten:reduce-overhead")  # fmt: skip
    assert "failed, left out: lrlab.errors.ConfigError: train.pool_kernel: 'triton' needs" in out
    assert "variant aten:reduce-overhead: an epoch takes " in out and "fastest: aten:reduce-overhead" in out
    assert out.index("fastest:") < out.index("calibration: an epoch") < out.index("epoch  1: val accuracy")
    assert ", 1 epoch, aten max pools, torch.compile reduce-overhead\n" in out
    for args, said in (
        (["--fastest-of", "aten:fast"], "expected POOL:MODE with POOL aten or triton and MODE one of default"),
        (["--fastest-of", "aten:default"], "--fastest-of needs --epochs auto"),
        (["--fastest-of", "aten:default", "--epochs", "auto", "--compile"], "takes the place of --compile"),
        (["--fastest-of", "aten:default", "--epochs", "auto", "--pool-kernel", "aten"], "and --pool-kernel"),
    ):
        assert said in refused("time_to_accuracy.py", "--data", "x", *args)


def test_fastest_trains_the_variant_of_the_shortest_epoch(capsys):
    """--fastest-of's choice among variants that work, and what it says of one that fails (its exception's
    module too: gpu.sh reads a compiler's failure from it)."""
    from types import SimpleNamespace

    from lrlab.config import TrainConfig

    with mock.patch.object(sys, "path", [str(BENCH), *sys.path]):
        fastest = runpy.run_path(str(BENCH / "time_to_accuracy.py"))["fastest"]
    seconds = {("aten", "default"): 3.0, ("triton", "reduce-overhead"): 2.0, ("triton", "default"): 2.5}

    def calibrate(p, inputs, bar, cfg, tta):
        if cfg.compile_mode == "max-autotune":
            raise RuntimeError("no autotuning here")
        return seconds[cfg.pool_kernel, cfg.compile_mode], 0.25 + tta * (cfg.pool_kernel == "triton")

    fastest.__globals__["calibrate"] = calibrate
    p = SimpleNamespace(cfg=SimpleNamespace(train=TrainConfig(epochs=3)))
    variants = [("aten", "default"), ("aten", "max-autotune"), ("triton", "reduce-overhead"), ("triton", "default")]
    best, per_epoch, per_pass = fastest(p, None, None, variants, True)
    assert (best.pool_kernel, best.compile_mode, best.compile, best.epochs, per_epoch, per_pass) == (
        "triton", "reduce-overhead", True, 3, 2.0, 1.25)  # fmt: skip
    out = capsys.readouterr().out
    assert "variant aten:max-autotune failed, left out: builtins.RuntimeError: no autotuning here" in out
    assert "variant triton:default: an epoch takes 2.50 s" in out and "fastest: triton:reduce-overhead" in out
    with pytest.raises(SystemExit, match="every --fastest-of variant failed"):
        fastest(p, None, None, [("aten", "max-autotune")], False)


def test_fit_counts_the_validation_passes_in_the_budget(capsys):
    """--epochs auto: the most epochs whose training and validation passes (after each of the last N, or each)
    fit the budget."""
    with mock.patch.object(sys, "path", [str(BENCH), *sys.path]):
        fit = runpy.run_path(str(BENCH / "time_to_accuracy.py"))["fit"]
    assert fit(3.0, 0.5, 85.0, 0) == 24  # 24 × 3.5 = 84; 25 × 3.5 = 87.5
    assert fit(3.0, 0.5, 85.0, 4) == 27  # 27 × 3 + 4 × 0.5 = 83; 28 × 3 + 2 = 86
    assert fit(3.0, 0.5, 85.0, 40) == 24  # more passes than epochs: one after each
    assert fit(3.0, 0.5, 14.0, 4) == 4  # 4 × 3.5 = 14: the budget met exactly
    assert fit(3.0, 0.5, 1.0, 4) == 1
    assert fit(0.5, 0.0, 1e5, 4) == 200_000  # (at once, however many)
    assert "an epoch of training takes 3.00 s and the validation after an epoch 0.50 s, so 1 epoch fits in 1 s" in (
        capsys.readouterr().out)  # fmt: skip


def test_throughput_keeps_its_figures_when_compilation_fails():
    """A GPU session gets one try: a compiler that fails at the first step costs only the compiled row."""

    class Broken(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, *args):
            raise RuntimeError("no compiler here")

    with mock.patch.object(torch, "compile", lambda net, mode="default": Broken(net)):
        out = run("throughput.py", "--seconds", "0.1", "--rounds", "1", "--images", "128", "--image-size", "8",
                  "--width", "0.125", "--workers", "0", "--batch", "64", "--compile")  # fmt: skip
    said = "torch.compile default failed (aten max pools), its row left out: RuntimeError: no compiler here"
    assert said in out
    assert "ratio fused / unfused" in out and "compiled / common" not in out
    # the eager figures are printed before compilation starts (a time limit during it keeps them)
    assert out.index("fast path / common recipe") < out.index("torch.compile default failed")


def test_throughput_times_the_compiled_loop_beside_the_common_recipe():
    with mock.patch.object(torch, "compile", no_compiler):
        out = run("throughput.py", "--seconds", "0.1", "--rounds", "1", "--images", "128", "--image-size", "8",
                  "--width", "0.125", "--workers", "0", "--batch", "64", "--compile")  # fmt: skip
    lines = out.splitlines()
    row = next(x for x in lines if x.startswith("lrlab fast path + torch.compile default (1st epoch + compile"))
    assert float(row.split()[-2]) > 0
    for ratio in ("compiled / common recipe (timed together", "compiled / lrlab fast path eager"):
        assert float(next(x for x in lines if ratio in x).rsplit(":", 1)[1]) > 0
    # and against the common recipe's fastest figure in the run: its eager row's or the compiled rounds', the
    # higher, so never a higher ratio than the one timed together
    together = float(next(x for x in lines if "(timed together" in x).rsplit(":", 1)[1])
    line = next(x for x in lines if "compiled / the common recipe's fastest figure in this run so far (" in x)
    fastest, ratio = float(line.split("(")[1].split()[0]), float(line.rsplit(":", 1)[1])
    common = float(next(x for x in lines if x.startswith("common recipe")).split()[-2])
    assert fastest >= common and 0 < ratio <= together + 0.005


def test_throughput_times_triton_pools_eager_and_compiled():
    # the rows' bookkeeping under Triton's interpreter, without a compiler (on the CPU the fast path keeps
    # NCHW, which the kernels leave to ATen: test_kernels.py checks the kernels themselves in a run)
    out = run_apart("throughput.py", "--seconds", "0.1", "--rounds", "1", "--images", "128", "--image-size", "8",
                    "--width", "0.125", "--workers", "0", "--batch", "64", "--skip", "bare,plain,unfused",
                    "--compile", "default,reduce-overhead", "--triton-pools",
                    prelude="import torch\ntorch.compile = lambda net, mode='default': net")  # fmt: skip
    lines = out.splitlines()
    assert any(x.startswith("lrlab fast path (crop+flip on device, Triton max pools)") for x in lines)
    compiled = ["compiled / common recipe", "compiled, Triton max pools / common recipe",
                "compiled reduce-overhead, Triton max pools / common", "compiled reduce-overhead / common"]  # fmt: skip
    for ratio in ["Triton / ATen max pools (lrlab fast path, eager)", "fast path with Triton max pools / common",
                  *compiled]:  # fmt: skip
        assert float(next(x for x in lines if ratio in x).rsplit(":", 1)[1]) > 0, ratio
    # the order: the first mode's ATen row (cached by time to accuracy), then Triton's rows, then ATen's in the
    # other modes; a time limit during a later compilation keeps the earlier rows
    at = [out.index(f"ratio lrlab {ratio}") for ratio in compiled]
    assert at == sorted(at), at
    assert any(x.startswith("lrlab fast path + torch.compile reduce-overhead, Triton max pools (1st") for x in lines)
    assert sum(x.startswith("torch.compile so far: ") for x in lines) == 4
    assert "TRITON_INTERPRET" not in os.environ  # (this process's)
    assert "--triton-pools needs a CUDA device" in refused("throughput.py", "--triton-pools", "--device", "cpu")


def test_throughput_keeps_its_figures_when_the_triton_pools_fail(tmp_path, monkeypatch):
    """Triton kernels new on a card: their failure costs their row alone (it ended the run before any figure
    was printed), and their compiled row is not tried."""
    import lrlab.kernels as k

    def broken(*args):
        raise RuntimeError("no such PTX on this card")

    monkeypatch.setenv("TRITON_INTERPRET", "1")  # (--triton-pools asks for it on a CPU; the kernels here fail)
    with (mock.patch.multiple(k, runs_on=lambda x: True, supported=lambda *a: True, max_pool2d=broken),
          mock.patch.object(torch, "compile", no_compiler)):  # fmt: skip
        out = run("throughput.py", "--seconds", "0.1", "--rounds", "1", "--images", "128", "--image-size", "8",
                  "--width", "0.125", "--workers", "0", "--batch", "64", "--skip", "bare,plain,unfused", "--compile",
                  "--triton-pools", "--profile", str(tmp_path / "prof.txt"))  # fmt: skip
    said = "Triton max pools failed, row left out: RuntimeError: no such PTX on this card"
    assert said in out and "Triton max pools)" not in out and "compiled, Triton" not in out
    assert "ratio lrlab fast path / common recipe" in out and "ratio lrlab compiled / common recipe" in out
    profiles = (tmp_path / "prof.txt").read_text()  # the eager and the compiled profile, in one file
    eager, compiled = "== eager fast path: one epoch ==", "== compiled default, aten max pools: one epoch =="
    assert profiles.index(eager) < profiles.index(compiled)


def test_maxpool_times_each_pool_of_the_model_and_checks_the_triton_kernels():
    out = run("maxpool.py", "--repeats", "1", "--batch", "2", "--width", "0.125", "--image-size", "16")
    assert "all, per training step" in out and "ratio aten / separable" in out and "triton" not in out
    assert "outputs equal to F.max_pool2d's everywhere" in out
    out = run_apart("maxpool.py", "--repeats", "1", "--batch", "2", "--width", "0.125", "--image-size", "16")
    assert "ratio aten / triton" in out and "Triton gradients equal to its too" in out


def test_throughput_leaves_out_the_loops_it_is_told_to():
    out = run("throughput.py", "--seconds", "0.1", "--rounds", "1", "--images", "128", "--image-size", "8",
              "--width", "0.125", "--workers", "0", "--skip", "bare,unfused")  # fmt: skip
    assert "common recipe" in out and "lrlab loop, fp32" in out and "bare loop" not in out and "unfused" not in out
    assert "ratio lrlab fast path / common recipe" in out and "/ bare loop" not in out
    assert "unknown loop 'common'; choose from bare, plain, unfused" in refused("throughput.py", "--skip", "common")


def test_throughput_refuses_fewer_images_than_a_batch():
    said = refused("throughput.py", "--images", "100", "--seconds", "1")
    assert "--images 100 is below a loop's batch (128)" in said


def test_time_to_accuracy_sizes_its_schedule_to_a_time_budget(tmp_path):
    archive = cifar_like_archive(tmp_path / "c.tar.gz")
    out = run("time_to_accuracy.py", "--data", str(archive), "--epochs", "auto", "--budget", "0.001", "--width",
              "0.0625", "--batch", "16", "--max-lr", "0.05", "--device", "cpu")  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("calibration:"))
    assert "so 1 epoch fits in 0.001 s" in line  # a budget below one epoch: one epoch
    assert "epoch  1: val accuracy" in out and "epoch  2:" not in out and ", 1 epoch, aten max pools\n" in out
    for args, said in (
        (["--epochs", "0"], "expected a positive whole number or 'auto', got '0'"),
        (["--set", "train.epochs=3"], "--set train.epochs: this script's own flags set it"),
        (["--set", "model.int=fan_in"], "unknown config key 'model.int'"),
        (["--eval-last", "-1"], "--eval-last must not be negative, got -1"),
        (["--budget", "inf"], "--budget must be a positive number of seconds, got inf"),
    ):
        assert said in refused("time_to_accuracy.py", "--data", "x", *args)


def test_telemetry_describes_each_timed_window():
    """throughput.py's account of what the machine did while it timed each loop (why the common recipe ran slower
    after a compile on the H200): nvidia-smi's lines, clock-event reasons, the CPU's busy share, child processes."""
    t = runpy.run_path(str(BENCH / "telemetry.py"))
    parse, names = t["parse_sample"], t["reason_names"]
    when, sample = parse("2026/11/28 09:30:01.250, 1980, 512.30, 61, 100, 0x0000000000000004")
    assert sample == (1980.0, 512.3, 61.0, 100.0, 4) and when % 1 == 0.25  # (local time, as time.time())
    assert parse("2026/11/28 09:30:01.250, 1980, 512.30, 61, 100")[1] == (1980.0, 512.3, 61.0, 100.0, None)
    assert parse('Field "clocks_event_reasons.active" is not a valid field to query.') is None
    assert parse("2026/11/28 09:30:01.250, 1980, [N/A], 61, 100") is None
    assert names(0x4 | 0x20) == "SW power cap+SW thermal" and names(0) == "none" and names(None) == "?"
    assert t["cpu_busy_jiffies"]("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 2 3 4\n") == (15, 100)
    tel = t["Telemetry"](None)  # no nvidia-smi: samples put in by hand, one of them taken before the window
    with tel.window("common (1/1)") as w:
        sum(i * i for i in range(2_000_000))  # some CPU time of this process (/proc counts in 10-ms ticks)
        w.speed = 3900.0
    inside, before = (w.start + w.end) / 2, w.start - 0.1
    tel._samples += [(before, (900.0, 100.0, 40.0, 0.0, 0x1)), (inside, (1500.0, 600.0, 70.0, 99.0, 0x4)),
                     (inside, (1700.0, 650.0, 71.0, 97.0, 0x0)),
                     (inside, (1600.0, 700.0, 72.0, 98.0, 0x20))]  # fmt: skip
    text = tel.table(tel.windows, "while timed:")
    row = t["describe"](w)
    assert row["loop"] == "common (1/1)" and row["images/s"] == "3900.0"
    assert (row["SM MHz"], row["W"], row["°C"], row["GPU %"]) == ("1600", "650", "71", "98")  # medians, in it
    assert row["clock reasons"] == "SW power cap+SW thermal"  # every reason seen in the window (not "idle")
    if os.path.isdir("/proc"):
        assert 0 <= float(row["CPU busy %"]) <= 100 and w.cpu_seconds["main"] > 0 and "main CPU-s" in row
    assert text.splitlines()[0] == "while timed:" and "SW power cap+SW thermal" in text.splitlines()[2]


def test_telemetry_samples_nvidia_smi_and_falls_back_to_the_old_reason_field(tmp_path, monkeypatch):
    """An nvidia-smi that knows only the older name of the clock-event field (older drivers) and GPUs by index:
    the sampler retries with those, and each sample lands in the window it was taken in."""
    smi = tmp_path / "nvidia-smi"  # (Python, not sh: a shell's `sleep` would be a process of its own)
    smi.write_text(
        f"#!{sys.executable}\nimport sys, time, datetime\n"
        "if 'clocks_event_reasons' in sys.argv[1]:\n    print('Field is not a valid field to query.'); sys.exit(2)\n"
        "if sys.argv[-1].startswith('GPU-'):\n    print('No devices were found'); sys.exit(6)\n"
        "while True:\n"
        "    now = datetime.datetime.now().strftime('%Y/%m/%d %H:%M:%S.%f')[:-3]\n"
        "    print(f'{now}, 1755, 401.5, 55, 93, 0x0000000000000024', flush=True); time.sleep(0.05)\n"
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    t = runpy.run_path(str(BENCH / "telemetry.py"))
    tel = t["Telemetry"]("GPU-0b1c,0")  # a UUID this nvidia-smi does not take, then an index
    try:
        assert tel.gpu_note.endswith("GPU 0: timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,"
                                     "clocks_throttle_reasons.active"), tel.gpu_note  # fmt: skip
        with tel.window("fast (1/1)") as w:
            sum(i * i for i in range(3_000_000))
            # a window of 4 samples or more, however slow this machine is at the moment (under load, 0.2 s of
            # arithmetic saw only 2 of the 50-ms samples)
            first, deadline = len(tel._samples), time.monotonic() + 30
            while len(tel._samples) < first + 4 and time.monotonic() < deadline:
                time.sleep(0.05)
        tel.gather([w])
        assert len(w.samples) >= 3 and w.samples[0] == (1755.0, 401.5, 55.0, 93.0, 0x24)
        row = t["describe"](w)
        assert row["clock reasons"] == "SW power cap+SW thermal" and row["SM MHz"] == "1755"
        if os.path.isdir("/proc"):  # the sampler is told apart from the benchmark's own children
            assert w.processes.get("sampler") == 1 and "child" not in w.processes, w.processes
    finally:
        tel.close()
