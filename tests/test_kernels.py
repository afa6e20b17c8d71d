"""lrlab's Triton max-pool kernels (kernels.py) against F.max_pool2d, on the CPU under Triton's interpreter.

The interpreter is chosen when a kernel is first defined, so each check runs in a fresh process with
TRITON_INTERPRET=1 (the rest of the suite never sets it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lrlab import kernels
from lrlab.config import StudyConfig, TrainConfig, load, setting, to_dict
from lrlab.errors import ConfigError
from lrlab.training import Speed

pytest.importorskip("triton")
SRC = Path(__file__).resolve().parent.parent / "src"


def interpreted(code: str) -> str:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_forward_and_gradient_equal_aten_s():
    # ties (zeros, as after a ReLU), NaNs, windows with nothing above -inf, padding, stride 2, ceil_mode,
    # a channel count that is not a multiple of the block, fp32 and bf16; integer gradients, so that a sum
    # in any order is exact and a gradient sent to another tied position shows
    out = interpreted("""
        import torch, torch.nn.functional as F
        from lrlab import kernels
        torch.manual_seed(0)
        cases = [((2, 5, 7, 9), (3, 3), (1, 1), (1, 1), True), ((2, 70, 8, 8), (3, 3), (2, 2), (1, 1), False),
                 ((1, 3, 5, 5), (3, 3), (2, 2), (0, 0), True), ((2, 4, 3, 3), (2, 2), (2, 2), (0, 0), True),
                 ((1, 2, 6, 4), (3, 2), (1, 2), (1, 0), False)]
        for dtype in (torch.float32, torch.bfloat16):
            for shape, k, s, p, ceil in cases:
                x = torch.randn(shape).to(dtype)
                r = torch.rand(shape)
                x = torch.where(r < 0.4, 0.0, x).to(dtype)
                x = torch.where(r > 0.97, float("nan"), x).to(dtype)
                x[0, 0] = float("-inf")  # a channel of -inf only
                x = x.contiguous(memory_format=torch.channels_last)
                a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
                ref, got = F.max_pool2d(a, k, s, p, ceil_mode=ceil), kernels.max_pool2d(b, k, s, p, ceil)
                g = torch.randint(-3, 4, ref.shape).to(dtype)
                ref.backward(g)
                got.backward(g)
                assert got.shape == ref.shape, (shape, got.shape, ref.shape)
                assert torch.equal(got.nan_to_num(), ref.nan_to_num()) and torch.equal(got.isnan(), ref.isnan())
                assert torch.equal(a.grad, b.grad), (dtype, shape)
                assert got.is_contiguous(memory_format=torch.channels_last)
                with torch.no_grad():  # the forward without offsets
                    assert torch.equal(kernels.max_pool2d(x, k, s, p, ceil).nan_to_num(), ref.nan_to_num())
                print("ok", dtype, shape)
    """)
    assert out.count("ok") == 10


def test_googlenet_with_triton_pools_trains_as_with_aten_s():
    # both stems (the ImageNet stem's ceil-mode pools pad small maps with -inf): same outputs, same gradient
    # of every parameter, to the bit; and the custom op under torch.compile gives the same input gradient
    out = interpreted("""
        import torch, torch.nn.functional as F
        from lrlab.config import ModelConfig
        from lrlab import kernels
        from lrlab.model import MaxPool2d, build_model, set_pool_kernel
        kernels.BLOCK_ELEMENTS = 1 << 15  # few programs for the interpreter (the block's own test: above)
        torch.manual_seed(0)
        for stem, size in (("cifar", 16), ("imagenet", 40)):
            m = build_model(ModelConfig(width=0.125, stem=stem, dropout=0.0), 10, 3, (size, size))
            m = m.to(memory_format=torch.channels_last)
            x = torch.randn(2, 3, size, size).contiguous(memory_format=torch.channels_last)
            runs = []
            for impl in ("aten", "triton"):
                set_pool_kernel(m, impl)
                m.zero_grad()
                out = m(x)
                out = out[0] if isinstance(out, tuple) else out
                out.square().sum().backward()
                runs.append((out.detach(), [p.grad.clone() for p in m.parameters()]))
            (o1, g1), (o2, g2) = runs
            assert torch.equal(o1, o2) and all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True)), stem
            print("ok", stem)
        x = torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last)
        w = torch.randn(2, 8, 6, 6)
        pool = MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
        pool.impl = "triton"
        pooled = torch.compile(lambda t: (pool(t) * w).sum(), fullgraph=True)  # no graph break
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        pooled(a).backward()
        (F.max_pool2d(b, 3, 1, 1, ceil_mode=True) * w).sum().backward()
        assert torch.equal(a.grad, b.grad)
        # evaluation, compiled: the graph holds the op that stores no offsets, and gives ATen's values
        graphs = []
        def keep(gm, example_inputs):
            graphs.append(str(gm.graph))
            return gm.forward
        with torch.no_grad():
            got = torch.compile(pool, backend=keep, fullgraph=True)(a)
        assert torch.equal(got, F.max_pool2d(b, 3, 1, 1, ceil_mode=True))
        assert "max_pool2d_nhwc_inference" in graphs[0] and "max_pool2d_nhwc." not in graphs[0], graphs
        print("ok compiled")
    """)
    assert out.split() == ["ok", "cifar", "ok", "imagenet", "ok", "compiled"]


def test_a_run_with_triton_pools_is_the_run_with_aten_s(tmp_path):
    # train.pool_kernel through the Trainer: one epoch on digits (channels_last on, as on a GPU), the same
    # losses and test metrics with either kernel
    out = interpreted(f"""
        import json
        from pathlib import Path
        from lrlab import kernels
        from lrlab.cli import main
        kernels.BLOCK_ELEMENTS = 1 << 15  # few programs for the interpreter to run one by one (minutes at 2048)
        root = Path({str(tmp_path)!r})
        for kernel in ("aten", "triton"):
            assert main(["train", "--schedule", "standard", "--seed", "0", "--set", "data.limit=60", "--epochs", "1",
                         "--batch-size", "16", "--width", "0.125", "--threads", "1", "--no-progress",
                         "--set", "train.channels_last=on", "--set", f"train.pool_kernel={{kernel}}",
                         "--out", str(root / kernel)]) == 0
        runs = [root / k / "runs" / "standard" / "seed-0" for k in ("aten", "triton")]
        config = json.loads((runs[1] / "config.json").read_text())["config"]
        assert config["train"]["pool_kernel"] == "triton", config["train"]
        # what ran, resolved: the kernels under Triton's interpreter; ATen's where the config said so
        speeds = [json.loads((r / "config.json").read_text())["speed"] for r in runs]
        assert [s["pool_kernel"] for s in speeds] == ["aten", "triton"], speeds
        assert speeds[1]["channels_last"] is True and speeds[1]["bf16"] is False, speeds
        a, b = ((r / "epochs.csv").read_text() for r in runs)
        assert a.splitlines()[1].split(",")[:3] == b.splitlines()[1].split(",")[:3], (a, b)
        ta, tb = (json.loads((r / "result.json").read_text())["test"] for r in runs)
        assert ta == tb, (ta, tb)
        print("ok")
    """)
    assert out.split()[-1] == "ok"


def test_inputs_the_kernels_do_not_take_go_to_aten():
    nchw = torch.zeros(2, 4, 6, 6)
    window = ((3, 3), (1, 1), (1, 1), True)
    assert not kernels.supported(nchw, *window)  # channels first in memory
    last = nchw.contiguous(memory_format=torch.channels_last)
    assert kernels.supported(last, *window) and kernels.supported(last.half(), *window)
    assert not kernels.supported(last, (12, 12), (1, 1), (1, 1), True)  # more window positions than an int8 names
    assert not kernels.supported(last.long(), *window) and not kernels.supported(last.double(), *window)
    assert not kernels.supported(last, (3, 3), (0, 1), (1, 1), True)
    assert not kernels.supported(last[:, :, :1, :1], (3, 3), (1, 1), (0, 0), False)  # no output
    assert not kernels.runs_on(last)  # a CPU tensor, no interpreter
    assert kernels.pooled_size(32, 3, 2, 1, False) == 16 and kernels.pooled_size(6, 3, 2, 0, True) == 3


def test_pool_kernel_setting():
    with pytest.raises(ConfigError, match=r"train.pool_kernel: must be one of 'auto', 'aten', 'triton', got 'fast'"):
        load(None, {"train.pool_kernel": "fast"})
    with pytest.raises(ConfigError, match=r"train.pool_kernel: 'triton' needs a CUDA device \(this run is on cpu\)"):
        Speed.resolve(TrainConfig(pool_kernel="triton"), torch.device("cpu"))
    assert Speed.resolve(TrainConfig(), torch.device("cpu")).pool_kernel == "aten"
    # the same function: runs with either kernel are one setting (a study may resume with the other)
    a, b, c = (setting(to_dict(StudyConfig(train=TrainConfig(pool_kernel=k)))) for k in ("aten", "triton", "auto"))
    assert a == b == c


def test_auto_pool_kernel_is_triton_on_a_cuda_device_when_eager(monkeypatch):
    """The "auto" pool kernel (the default) picks lrlab's kernels where they were measured faster: eager or
    compiled under CUDA graphs, on a CUDA device of compute capability 8.0 or more with Triton installed; ATen's
    when compiled in another mode, on the CPU, or without Triton."""
    from lrlab import kernels

    cuda = torch.device("cuda")
    capability = [(9, 0)]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability[0])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(kernels, "available", lambda: True)
    faults = {cuda: None}
    monkeypatch.setattr(kernels, "fault", faults.get)
    assert Speed.resolve(TrainConfig(), cuda).pool_kernel == "triton"
    assert Speed.resolve(TrainConfig(compile=True), cuda).pool_kernel == "aten"
    # under CUDA graphs lrlab's pools were the faster (17,400 against 14,199 images/s on an H200)
    assert Speed.resolve(TrainConfig(compile=True, compile_mode="reduce-overhead"), cuda).pool_kernel == "triton"
    assert Speed.resolve(TrainConfig(compile=True, compile_mode="max-autotune"), cuda).pool_kernel == "aten"
    assert Speed.resolve(TrainConfig(pool_kernel="aten"), cuda).pool_kernel == "aten"
    assert Speed.resolve(TrainConfig(), torch.device("cpu")).pool_kernel == "aten"
    capability[0] = (7, 5)
    assert Speed.resolve(TrainConfig(), cuda).pool_kernel == "aten"
    capability[0] = (8, 0)
    assert Speed.resolve(TrainConfig(), cuda).pool_kernel == "triton"
    faults[cuda] = "CompilationError: no PTX for this card"  # kernels that fail their check on the card
    with pytest.warns(UserWarning, match=r"Triton max pools failed their check on cuda \(CompilationError: no PTX"):
        assert Speed.resolve(TrainConfig(), cuda).pool_kernel == "aten"
    faults[cuda] = None
    monkeypatch.setattr(kernels, "available", lambda: False)
    assert Speed.resolve(TrainConfig(), cuda).pool_kernel == "aten"
    # the early check (study.prepare's, before torchrun's rank has its device) refuses without resolving "auto",
    # which would run the kernels' check on the current device
    monkeypatch.setattr(kernels, "auto_pool_kernel", lambda *a: pytest.fail("auto resolved by Speed.check"))
    Speed.check(TrainConfig(), cuda)
    with pytest.raises(ConfigError, match="'triton' needs the triton package"):
        Speed.check(TrainConfig(pool_kernel="triton"), cuda)


def test_the_kernels_check_before_auto_picks_them():
    """kernels.fault, run under Triton's interpreter: None where the kernels agree with ATen's, else why not
    (an exception at the kernels' build or launch, or results that differ)."""
    out = interpreted("""
        import torch, torch.nn.functional as F
        from lrlab import kernels
        cpu = torch.device("cpu")
        assert kernels.fault(cpu) is None
        real = kernels.max_pool2d
        def broken(*args):
            raise RuntimeError("PTX .version 8.7 does not support .target sm_120\\nmore")
        def off_by_one(x, k, s, p, ceil):
            return real(x, k, s, p, ceil) + 1
        for impl, said in ((broken, "RuntimeError: PTX .version 8.7 does not support .target sm_120"),
                           (off_by_one, "its torch.float32 results differ from F.max_pool2d's on a test pool")):
            kernels.max_pool2d = impl
            kernels.fault.cache_clear()
            assert kernels.fault(cpu) == said, kernels.fault(cpu)
        kernels.max_pool2d = real
        kernels.fault.cache_clear()
        for mode in (torch.no_grad, torch.inference_mode):  # the check takes its gradient whatever the mode
            kernels.fault.cache_clear()
            with mode():
                assert kernels.fault(cpu) is None, mode
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_compiled_stats_reads_registers_and_spills_from_tritons_cache(monkeypatch):
    """What maxpool.py prints on a card to check the block sizes: Triton 3.2+ keeps (kernels, ..., binder) per
    device; a kernel knows its registers and spills once launched."""
    from types import SimpleNamespace

    from lrlab import kernels

    if not kernels.available():
        pytest.skip("triton is not installed")
    launched = SimpleNamespace(n_regs=86, n_spills=0, metadata=SimpleNamespace(num_warps=8))
    fwd = SimpleNamespace(device_caches={0: ({"key": launched}, {}, "target", "backend", "binder")})
    bwd = SimpleNamespace(device_caches={})  # not launched yet
    monkeypatch.setattr(kernels, "_triton_kernels", lambda: (None, fwd, bwd))
    assert kernels.compiled_stats() == ["forward: 86 registers, 0 bytes spilled, 8 warps"]
    monkeypatch.setattr(kernels, "_triton_kernels", lambda: (None, object(), object()))  # the interpreter's
    assert kernels.compiled_stats() == []


def test_large_pools_on_a_cuda_device_run_in_the_block_measured_fastest(monkeypatch):
    """kernels._launch: triton.autotune's kernels (TUNED_BLOCKS, timed on the card) for a large pool on a CUDA
    device; the default block, untimed, for a small pool, off CUDA (Triton's interpreter) or with AUTOTUNE off.
    Faked kernels record the launches (the timing itself needs a GPU: maxpool.py runs it there)."""
    import contextlib
    from types import SimpleNamespace

    from lrlab import kernels

    launched = []

    class Kernel:
        def __init__(self, name: str) -> None:
            self.name = name

        def __getitem__(self, grid):
            return lambda *args, **kw: launched.append((self.name, grid, args, kw))

    names = ("fwd", "bwd", "fwd tuned", "bwd tuned")
    fake = (SimpleNamespace(cdiv=lambda a, b: -(-a // b)), *(Kernel(n) for n in names))
    monkeypatch.setattr(kernels, "_triton_kernels", lambda: fake)
    monkeypatch.setattr(kernels, "_on", lambda x: contextlib.nullcontext())
    gpu, cpu = SimpleNamespace(is_cuda=True), SimpleNamespace(is_cuda=False)
    big = kernels.TUNE_MIN_ELEMENTS // 192 + 1  # positions: × 192 channels, just over the threshold
    kernels._launch(1, gpu, big, 192, "args")
    name, grid, args, kw = launched.pop()
    # channel blocks × position blocks, in one dimension, for whichever block the tuner tries
    assert (name, args, kw) == ("fwd tuned", ("args",), {})
    assert grid({"BLOCK_P": 16, "BLOCK_C": 64}) == (3 * -(-big // 16),)
    assert grid({"BLOCK_P": 64, "BLOCK_C": 32}) == (6 * -(-big // 64),)
    for which, like, positions, tune in ((2, gpu, big - 1, True), (1, cpu, big, True), (2, gpu, big, False)):
        monkeypatch.setattr(kernels, "AUTOTUNE", tune)
        kernels._launch(which, like, positions, 192, "args")
        assert launched.pop() == (("fwd", "bwd")[which - 1], (3 * -(-positions // 32),), ("args", 32, 64),
                                  {"num_warps": 8})  # fmt: skip
    # the candidates for a pool's channels: the blocks of TUNED_BLOCKS, channels at most the next power of two,
    # each once (at 3 channels, 2048 × 32 and 2048 × 64 are both 512 positions × 4 channels)
    blocks = [(c.kwargs["BLOCK_P"], c.kwargs["BLOCK_C"], c.num_warps) for c in kernels._tuned_configs([], {"C": 3})]
    assert blocks == [(512, 4, 8), (256, 4, 4), (128, 4, 2), (1024, 4, 16)]
    assert len(kernels._tuned_configs([], {"C": 192})) == len(kernels.TUNED_BLOCKS)


def test_the_autotuned_kernels_agree_with_aten_s_in_the_block_they_run():
    """The autotuned path's plumbing (its candidates made for the pool's channels, its grid from the block it runs)
    under Triton's interpreter, where no timing can run: two candidates that come to one block (not the default
    one), so that triton.autotune runs that one untimed, in 13 position blocks × 2 channel blocks."""
    out = interpreted("""
        import torch, torch.nn.functional as F
        from lrlab import kernels
        kernels.TUNED_BLOCKS = ((256, 64, 4), (256, 64, 4))  # 4 positions × 64 channels, twice
        kernels._tunes = lambda like, total, channels: True
        torch.manual_seed(0)
        x = torch.randn(2, 70, 9, 9).contiguous(memory_format=torch.channels_last)
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ref, got = F.max_pool2d(a, 3, 2, 1, ceil_mode=True), kernels.max_pool2d(b, (3, 3), (2, 2), (1, 1), True)
        g = torch.randint(-3, 4, ref.shape).float()
        ref.backward(g)
        got.backward(g)
        assert torch.equal(got, ref) and torch.equal(a.grad, b.grad)
        print("\\n".join(kernels.tuned_blocks()))
    """)
    assert "forward (70, 9, 9, 5, 5, 3, 3, 2, 2, 1, 1, True" in out and "backward (70, 9, 9, 5, 5" in out
    assert out.count(": 4 positions × 64 channels, 4 warps") == 2, out
