"""Max pooling in GoogLeNet's training step: forward + backward time of each max pool the model runs,
at the shapes it runs them (found by hooks on one forward pass), in a few implementations.

A kernel profile of the eager fast path on an H200 (2026-11-27, benchmarks/README.md) put 41 % of the
step's GPU time in ATen's max pool (channels_last, bf16): its forward writes an int64 index per output
and its backward reads them. This measures the alternatives before the model changes:

  aten            F.max_pool2d on the channels_last input (what the model does now)
  aten-nchw       the same on a contiguous (NCHW) copy, converted back (the copies counted)
  separable       a k×k max as a max over k shifted views along the width, then along the height
                  (torch.maximum, no indices; its backward splits a tie's gradient, ATen's gives it to
                  the first maximum, so training would differ where a window holds equal maxima)
  triton          lrlab's Triton kernels (kernels.py, train.pool_kernel = "triton"; CUDA only), in the block
                  triton.autotune measured fastest for each pool (kernels.TUNED_BLOCKS)
  triton fixed    the same kernels in their default block (kernels.BLOCK_ELEMENTS, kernels.WARPS; CUDA)
  + compiled      each of those under torch.compile (--compile)

  python benchmarks/maxpool.py --device cuda --compile         # full width, batch 512, bf16
  python benchmarks/maxpool.py                                 # CPU smoke: width 0.25, batch 8, fp32
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lrlab import kernels
from lrlab.config import ModelConfig
from lrlab.model import build_model

Shape = tuple[int, int, int, int, int, int, int]  # channels, height, width, kernel, stride, padding, ceil_mode


def pool_shapes(width: float, size: int) -> Counter[Shape]:
    """Each distinct max pool the model runs in one forward pass, with how many times it runs."""
    model = build_model(ModelConfig(width=width), 10, 3, (size, size))
    seen: Counter[Shape] = Counter()

    def hook(m: nn.MaxPool2d, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
        seen[(*inputs[0].shape[1:], k, s, p, int(m.ceil_mode))] += 1

    for m in model.modules():
        if isinstance(m, nn.MaxPool2d):
            m.register_forward_hook(hook)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return seen


def aten(x: torch.Tensor, k: int, s: int, p: int, ceil: bool) -> torch.Tensor:
    return F.max_pool2d(x, k, s, p, ceil_mode=bool(ceil))


def aten_nchw(x: torch.Tensor, k: int, s: int, p: int, ceil: bool) -> torch.Tensor:
    return F.max_pool2d(x.contiguous(), k, s, p, ceil_mode=bool(ceil)).contiguous(memory_format=torch.channels_last)


def separable(x: torch.Tensor, k: int, s: int, p: int, ceil: bool) -> torch.Tensor:
    h, w = (kernels.pooled_size(n, k, s, p, bool(ceil)) for n in x.shape[-2:])
    extra_h, extra_w = ((o - 1) * s + k - n - 2 * p for o, n in ((h, x.shape[-2]), (w, x.shape[-1])))
    x = F.pad(x, (p, p + max(0, extra_w), p, p + max(0, extra_h)), value=float("-inf"))
    cols = x[..., :, 0 : (w - 1) * s + 1 : s]
    for j in range(1, k):
        cols = torch.maximum(cols, x[..., :, j : j + (w - 1) * s + 1 : s])
    out = cols[..., 0 : (h - 1) * s + 1 : s, :]
    for i in range(1, k):
        out = torch.maximum(out, cols[..., i : i + (h - 1) * s + 1 : s, :])
    return out


def triton(x: torch.Tensor, k: int, s: int, p: int, ceil: bool) -> torch.Tensor:
    return kernels.max_pool2d(x, (k, k), (s, s), (p, p), bool(ceil))


VARIANTS: dict[str, Callable[..., torch.Tensor]] = {"aten": aten, "aten-nchw": aten_nchw, "separable": separable}


def time_pool(fn: Callable, x: torch.Tensor, g: torch.Tensor, args: tuple, repeats: int) -> float:
    """Milliseconds of one forward + backward, the median of `repeats` timed calls after two warm-ups."""

    def once() -> None:
        x.grad = None
        fn(x, *args).backward(g)

    for _ in range(2):
        once()
    times = []
    for _ in range(repeats):
        sync(x.device)
        t0 = time.perf_counter()
        once()
        sync(x.device)
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--width", type=float, help="GoogLeNet width (default: 1 on CUDA, 0.25 on CPU)")
    ap.add_argument("--batch", type=int, help="default: 512 on CUDA, 8 on CPU")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also each variant under torch.compile")
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    width, batch = args.width or (1.0 if cuda else 0.25), args.batch or (512 if cuda else 8)
    dtype = torch.bfloat16 if cuda else torch.float32
    variants = dict(VARIANTS)
    if kernels.available() and kernels.device_ok(device):
        variants["triton"] = triton
        if cuda:  # (elsewhere, under Triton's interpreter, the kernels run their default block untimed anyway)
            variants["triton fixed"] = triton  # kernels.AUTOTUNE off: set per variant, below
    if args.compile:
        variants |= {f"{n} compiled": torch.compile(f, dynamic=False) for n, f in list(variants.items())}
    shapes = pool_shapes(width, args.image_size)
    totals, wrong = Counter[str](), []
    print(f"GoogLeNet width {width}, batch {batch}, {dtype}, {torch.cuda.get_device_name() if cuda else 'CPU'}")
    print(f"{'C×H×W k/s/p ceil':<24} {'×':>2} " + " ".join(f"{n:>18}" for n in variants))
    for shape, count in shapes.items():
        c, h, w, k, s, p, ceil = shape
        gen = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(batch, c, h, w, device=device, dtype=dtype, generator=gen)
        x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
        ref = aten(x, k, s, p, ceil)
        g = torch.randn(ref.shape, device=device, dtype=dtype, generator=gen).contiguous(
            memory_format=torch.channels_last)  # fmt: skip
        cells, ref_grad = [], None
        for name, fn in variants.items():
            kernels.AUTOTUNE = not name.startswith("triton fixed")
            out = fn(x, k, s, p, ceil)
            if out.shape != ref.shape or not torch.equal(out, ref):
                wrong.append(f"{name}: output differs from F.max_pool2d's at {shape}")
            ms = time_pool(fn, x, g, (k, s, p, ceil), args.repeats)  # leaves x.grad of this variant
            ref_grad = x.grad if ref_grad is None else ref_grad  # aten comes first
            if name.startswith("triton") and not torch.equal(x.grad, ref_grad):  # the others may split ties
                wrong.append(f"{name}: gradient differs from F.max_pool2d's at {shape}")
            totals[name] += ms * count
            cells.append(f"{ms:>15.3f} ms")
        print(f"{f'{c}×{h}×{w} {k}/{s}/{p} {ceil}':<24} {count:>2} " + " ".join(cells))
    print(f"{'all, per training step':<27} " + " ".join(f"{totals[n]:>15.3f} ms" for n in variants))
    for name in variants:
        print(f"ratio aten / {name}: {totals['aten'] / totals[name]:.2f}")
    if "triton fixed" in variants:
        print(f"ratio triton fixed / triton (the blocks autotuning chose): "
              f"{totals['triton fixed'] / totals['triton']:.2f}")  # fmt: skip
        for line in kernels.tuned_blocks():
            print(f"block, Triton {line}")
    if "triton" in variants:
        for line in dict.fromkeys(kernels.compiled_stats()):  # (one per pool shape; most shapes compile alike)
            print(f"registers, Triton {line}")
    triton_note = "; Triton gradients equal to its too" if "triton" in variants else ""
    print("\n".join(wrong) or f"outputs equal to F.max_pool2d's everywhere{triton_note}")
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
