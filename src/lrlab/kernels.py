"""Max pooling on NHWC (channels_last) GPU tensors in Triton, forward and backward, as a torch custom op.

Written by hand because the library kernel is measured slow for this model: on an H200 (2026-11-27,
benchmarks/README.md) ATen's channels_last max pool took 41 % of GoogLeNet's eager training step, the
192×32×32 pool 20× the time that moving its tensors through memory once would take. ATen stores an
int64 index per pooled value; these kernels store the winning window position as one int8, read the
input once per window position (neighbouring windows share it in cache) and gather the gradient instead
of scattering it, so no atomics are needed where windows overlap.

Same function as F.max_pool2d (dilation 1), to the bit in the forward: the first maximum in the window's
row-major order wins, a NaN wins (the last NaN, as in ATen), and a window with no finite maximum points at
its first position inside the image. Its gradient goes where ATen's goes, summed in fp32 over the outputs
row by row (the order ATen's CPU kernel adds them in). The shape (channels, height, width) is a compile-time
constant: one compilation per pool shape and block (TUNED_BLOCKS; Triton caches them on disk).
`train.pool_kernel = "triton"` selects them (model.MaxPool2d), and "auto" (the default) on a CUDA device when
the model runs eager or compiled under CUDA graphs and they pass a check there (auto_pool_kernel, fault).
On an H200 (2026-11-28) the eleven pools of a training step took 10.3 ms here against ATen's 25.3 ms, with
outputs and gradients equal to ATen's to the bit; in the profile of the step compiled with CUDA graphs, 6.3 ms
of 30 (benchmarks/README.md). Triton is imported at the first call, so that the module
loads without it; with TRITON_INTERPRET=1 the kernels run on the CPU (how the tests check them).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_WINDOW = 127  # window positions an int8 offset can name
# The default block: positions × channels per program (a power of two; channels at most 64) and warps per program.
# Compiled offline for sm_90 (Triton 3.8, ptxas; 2026-11-28) the 192×32×32 pool spilled at 4096 (forward at 4
# warps: 255 registers a thread and 512 bytes of stack; backward at 8: 255 and 216 bytes) and did not at 2048 with
# 8 warps. On an H200 (Triton of torch 2.11) no kernel spilled at these sizes: 55 to 78 registers a thread
# (maxpool.py prints compiled_stats)
BLOCK_ELEMENTS, WARPS = 2048, 8
# The blocks timed on a CUDA device (triton.autotune) at each pool shape's first call, the fastest kept for the
# process: (elements a program, most channels a program, warps), the default first. In the profile of a compiled
# training step on an H200 (2026-11-28) the pools moved their bytes at about a quarter of the memory bandwidth
# (by a count of those bytes), and their machine code (sm_90, compiled offline) holds about 90 instructions an
# output in the forward, so the issue rate, not memory, bounds them, and the block that keeps the card busiest is
# measured on the card rather than guessed (6.7 ms a step in the default block, 6.3 autotuned, in two
# sessions). Every block computes the same values to the bit (each output's window, and each input's gradient
# sum, is read in one fixed order), so the choice changes speed only. The default runs untimed under Triton's
# interpreter, for small pools (TUNE_MIN_ELEMENTS), and where AUTOTUNE is off.
TUNED_BLOCKS = ((BLOCK_ELEMENTS, 64, WARPS), (1024, 64, 4), (2048, 32, 8), (512, 64, 2), (4096, 64, 16))
AUTOTUNE = True
TUNE_MIN_ELEMENTS = 1 << 20  # positions × channels
DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # compared in fp32, which holds each of them exactly


def available() -> bool:
    """Whether Triton is installed."""
    return importlib.util.find_spec("triton") is not None


def device_ok(device: torch.device) -> bool:
    """Whether the kernels run on `device`: a CUDA one, or any under Triton's interpreter (TRITON_INTERPRET=1)."""
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


# the oldest GPUs "auto" picks these kernels on: bf16 needs compute capability 8.0 (Ampere); timed on 9.0 only
AUTO_MIN_CAPABILITY = (8, 0)


def auto_pool_kernel(device: torch.device, compiled: bool, mode: str = "default") -> str:
    """What train.pool_kernel = "auto" runs: "triton" on a CUDA device that Triton serves (AUTO_MIN_CAPABILITY)
    when the model runs eager or compiled under CUDA graphs (torch.compile `mode` "reduce-overhead") and the
    kernels pass their check there (`fault`), "aten" otherwise (a failed check is warned of: a default must not
    break a run). On an H200 (benchmarks/README.md, 2026-11-28) these kernels made the eager training step 1.39×
    as fast as ATen's pools; compiled in the default mode the step was faster with TorchInductor's own pools
    (13,227 against 11,944 images/s: the host, not the device, held it back); under CUDA graphs these kernels
    made the fastest step measured, 17,400 images/s against 14,199 with ATen's pools in the same call (2.52
    against 3.13 s an epoch in time to accuracy's calibration). The other modes are not timed with them."""
    if device.type != "cuda" or (compiled and mode != "reduce-overhead") or not available():
        return "aten"
    if torch.cuda.get_device_capability(device) < AUTO_MIN_CAPABILITY:
        return "aten"
    if (why := fault(device)) is not None:
        warnings.warn(f"train.pool_kernel = 'auto': lrlab's Triton max pools failed their check on {device} "
                      f"({why}); PyTorch's run instead", stacklevel=2)  # fmt: skip
        return "aten"
    return "triton"


@functools.cache
def fault(device: torch.device) -> str | None:
    """None if the kernels run on `device` and agree with F.max_pool2d there, forward and gradient, on a small
    pool in fp32 and bf16 (once a process: four kernel builds, which Triton caches on disk); else what went
    wrong. What "auto" checks before it picks them: Triton or a driver that cannot build them for a card, or a
    card they miscompute on, leaves a run on ATen's pools instead of failing it."""
    try:
        g = torch.Generator().manual_seed(0)
        # (whatever the caller's mode, inference mode too: the check takes a gradient)
        with torch.inference_mode(False), torch.enable_grad():
            return _check(device, g)
    except Exception as e:  # whatever a card or a toolchain raises: the run goes on with ATen's pools
        return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"


def _check(device: torch.device, g: torch.Generator) -> str | None:
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 3, 5, 6, generator=g).to(device, dtype).contiguous(memory_format=torch.channels_last)
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ref, got = F.max_pool2d(a, 3, 2, 1, ceil_mode=True), max_pool2d(b, (3, 3), (2, 2), (1, 1), True)
        grad = torch.randint(-3, 4, ref.shape, generator=g).to(device, dtype)  # integers: sums in any order agree
        ref.backward(grad)
        got.backward(grad)
        if not (torch.equal(got, ref) and torch.equal(b.grad, a.grad)):
            return f"its {dtype} results differ from F.max_pool2d's on a test pool"
    return None


def runs_on(x: Tensor) -> bool:
    """Whether the kernels can take `x` where it is (see device_ok)."""
    return device_ok(x.device)


def pooled_size(n: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """Output length of a max pool along one axis: PyTorch's rule (pooling_output_shape, dilation 1)."""
    o = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    return o - 1 if ceil_mode and (o - 1) * s >= n + p else o


def nhwc(t: Tensor) -> Tensor:
    """`t` (N, C, H, W) with its memory in NHWC order, copied only if it is not already."""
    return t if t.permute(0, 2, 3, 1).is_contiguous() else t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)


def supported(x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], ceil_mode: bool) -> bool:
    """Whether `x` and the window suit these kernels (else the caller uses F.max_pool2d, which also
    words the errors of a window that does not fit)."""
    return (
        x.dim() == 4
        and x.dtype in DTYPES
        and kernel[0] * kernel[1] <= MAX_WINDOW
        and min(stride) >= 1
        and all(2 * p <= k for p, k in zip(padding, kernel, strict=True))  # F.max_pool2d's own limit
        and all(
            pooled_size(n, k, s, p, ceil_mode) > 0
            for n, k, s, p in zip(x.shape[2:], kernel, stride, padding, strict=True)
        )
        and x.permute(0, 2, 3, 1).is_contiguous()
    )


def _block(channels: int, elements: int = 0, most_channels: int = 64) -> tuple[int, int]:
    """(positions, channels) of a program's block of `elements` (default BLOCK_ELEMENTS) for a pool of `channels`."""
    block_c = min(most_channels, 1 << max(0, channels - 1).bit_length())
    return max(1, (elements or BLOCK_ELEMENTS) // block_c), block_c


def _tuned_configs(_configs, named_args, **_kwargs):
    """triton.autotune's candidates for a pool of named_args["C"] channels: TUNED_BLOCKS, each once."""
    import triton

    made = {}
    for elements, most, warps in TUNED_BLOCKS:
        bp, bc = _block(named_args["C"], elements, most)
        made.setdefault((bp, bc, warps), triton.Config({"BLOCK_P": bp, "BLOCK_C": bc}, num_warps=warps))
    return list(made.values())


@functools.cache
def _triton_kernels():
    """(triton, forward, backward, forward autotuned, backward autotuned)."""
    import triton
    import triton.testing

    from lrlab import pool_triton

    shape = ["C", "H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW"]  # a pool's shape (not its batch)
    tune = functools.partial(
        triton.autotune,
        # placeholders (autotune times more than one only): _tuned_configs makes them for the pool's channels
        configs=[triton.Config({"BLOCK_P": e // m, "BLOCK_C": m}, num_warps=w) for e, m, w in TUNED_BLOCKS],
        prune_configs_by={"early_config_prune": _tuned_configs},
        do_bench=functools.partial(triton.testing.do_bench, warmup=5, rep=20),  # ms: a pool's kernel takes well under 1
    )
    forward, backward = pool_triton.forward, pool_triton.backward
    return triton, forward, backward, tune(key=[*shape, "STORE_OFF"])(forward), tune(key=shape)(backward)


def _launch(which: int, like: Tensor, total: int, channels: int, *args) -> None:
    """Run kernel `which` (1: forward, 2: backward) over `total` positions × `channels`, on like's device."""
    kernels = _triton_kernels()
    triton = kernels[0]

    def programs(bp: int, bc: int) -> int:
        return triton.cdiv(total, bp) * triton.cdiv(channels, bc)  # one-dimensional: see pool_triton.tile

    with _on(like):
        if _tunes(like, total, channels):
            kernels[which + 2][lambda meta: (programs(meta["BLOCK_P"], meta["BLOCK_C"]),)](*args)
        else:
            bp, bc = _block(channels)
            kernels[which][(programs(bp, bc),)](*args, bp, bc, num_warps=WARPS)


def _tunes(like: Tensor, total: int, channels: int) -> bool:
    """Whether a launch over `total` positions × `channels` on like's device runs the autotuned kernels (a CUDA
    graph captures the block that its warm-up, which PyTorch requires before a capture, chose)."""
    return AUTOTUNE and like.is_cuda and total * channels >= TUNE_MIN_ELEMENTS


def tuned_blocks() -> list[str]:
    """A line per pool shape the autotuned kernels have chosen a block for in this process (maxpool.py prints
    them): the shape's key and the block."""
    if not available():
        return []
    lines = []
    for name, fn in (("forward", _triton_kernels()[3]), ("backward", _triton_kernels()[4])):
        for key, config in dict(getattr(fn, "cache", {})).items():
            kw = getattr(config, "kwargs", {})
            lines.append(f"{name} {key}: {kw.get('BLOCK_P')} positions × {kw.get('BLOCK_C')} channels, "
                         f"{getattr(config, 'num_warps', '?')} warps")  # fmt: skip
    return lines


def compiled_stats() -> list[str]:
    """A line per kernel compiled so far in this process: registers a thread, bytes spilled and warps, as
    Triton's cache holds them (to check the block sizes on a card, where spills slow the kernels). Empty under
    the interpreter, before any launch, or where a Triton version keeps them elsewhere."""
    if not available():
        return []
    _, fwd, bwd, *_ = _triton_kernels()
    lines = []
    for name, fn in (("forward", fwd), ("backward", bwd)):
        for entry in dict(getattr(fn, "device_caches", {})).values():  # (kernels, ..., binder) per device
            for kernel in (entry[0] if isinstance(entry, tuple) and entry else {}).values():
                warps = getattr(getattr(kernel, "metadata", None), "num_warps", "?")
                lines.append(f"{name}: {getattr(kernel, 'n_regs', '?')} registers, "
                             f"{getattr(kernel, 'n_spills', '?')} bytes spilled, {warps} warps")  # fmt: skip
    return lines


def _empty_nhwc(n: int, c: int, h: int, w: int, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    return torch.empty((n, h, w, c), device=like.device, dtype=dtype or like.dtype).permute(0, 3, 1, 2)


def _out_shape(x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], ceil_mode: bool):
    n, c, h, w = x.shape
    return n, c, *(pooled_size(s, k, st, p, ceil_mode) for s, k, st, p in zip((h, w), kernel, stride, padding,
                                                                            strict=True))  # fmt: skip


def _launch_forward(x: Tensor, kernel, stride, padding, ceil_mode: bool, store_offsets: bool) -> tuple[Tensor, Tensor]:
    n, c, oh, ow = _out_shape(x, kernel, stride, padding, ceil_mode)
    out = _empty_nhwc(n, c, oh, ow, x)
    off = _empty_nhwc(n, c, oh, ow, x, torch.int8) if store_offsets else out  # (unused when not stored)
    total = n * oh * ow
    if total and c:
        _launch(1, x, total, c, x, out, off, total, c, x.shape[2], x.shape[3], oh, ow, *kernel, *stride, *padding,
                store_offsets)  # fmt: skip
    return out, off


def _on(x: Tensor):
    """Triton launches on the current CUDA device: make it x's."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


@torch.library.custom_op("lrlab::max_pool2d_nhwc", mutates_args=())
def max_pool2d_with_offsets(
    x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], ceil_mode: bool
) -> tuple[Tensor, Tensor]:
    """The max pool of NHWC `x` and, per pooled value, the position (int8, row-major) its window chose."""
    return _launch_forward(x, kernel, stride, padding, ceil_mode, True)


@max_pool2d_with_offsets.register_fake
def _fake_forward(x, kernel, stride, padding, ceil_mode):
    n, c, oh, ow = _out_shape(x, kernel, stride, padding, ceil_mode)
    return _empty_nhwc(n, c, oh, ow, x), _empty_nhwc(n, c, oh, ow, x, torch.int8)


@torch.library.custom_op("lrlab::max_pool2d_nhwc_inference", mutates_args=())
def max_pool2d_inference(
    x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], ceil_mode: bool
) -> Tensor:
    """The max pool of NHWC `x` alone, no offsets stored (no gradient will be asked for)."""
    return _launch_forward(x, kernel, stride, padding, ceil_mode, False)[0]


@max_pool2d_inference.register_fake
def _fake_inference(x, kernel, stride, padding, ceil_mode):
    return _empty_nhwc(*_out_shape(x, kernel, stride, padding, ceil_mode), x)


@torch.library.custom_op("lrlab::max_pool2d_nhwc_backward", mutates_args=())
def max_pool2d_backward(
    grad: Tensor, offsets: Tensor, input_hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
    padding: Sequence[int],
) -> Tensor:  # fmt: skip
    """The gradient of max_pool2d_with_offsets' input, (N, C, *input_hw) in NHWC memory."""
    grad, offsets = nhwc(grad), nhwc(offsets)
    n, c, oh, ow = grad.shape
    dx = _empty_nhwc(n, c, *input_hw, grad)
    total = n * input_hw[0] * input_hw[1]
    if total and c:
        _launch(2, grad, total, c, grad, offsets, dx, total, c, *input_hw, oh, ow, *kernel, *stride, *padding)
    return dx


@max_pool2d_backward.register_fake
def _fake_backward(grad, offsets, input_hw, kernel, stride, padding):
    return _empty_nhwc(grad.shape[0], grad.shape[1], *input_hw, grad)


def _setup(ctx, inputs, output) -> None:
    x, kernel, stride, padding, _ = inputs
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])
    ctx.geometry = (list(x.shape[2:]), kernel, stride, padding)


def _backward(ctx, grad: Tensor, _grad_offsets: Tensor | None):
    (offsets,) = ctx.saved_tensors
    return max_pool2d_backward(grad, offsets, *ctx.geometry), None, None, None, None


max_pool2d_with_offsets.register_autograd(_backward, setup_context=_setup)


def max_pool2d(
    x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], ceil_mode: bool = False
) -> Tensor:
    """F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode) by these kernels; `x` must be NHWC in
    memory (see `supported`). Where no gradient can be asked for (evaluation, compiled or not), the forward
    stores no offsets."""
    args = (list(kernel), list(stride), list(padding), bool(ceil_mode))
    if torch.is_grad_enabled() and x.requires_grad:
        return max_pool2d_with_offsets(x, *args)[0]
    return max_pool2d_inference(x, *args)
