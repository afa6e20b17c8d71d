"""The Triton kernels behind kernels.py's max pool (NHWC), in a module of their own: kernels.py imports it at
its first call, so that lrlab loads without Triton and TRITON_INTERPRET=1, read when the kernels are defined,
can pick Triton's interpreter in a fresh process (the tests). See kernels.py for what they compute and why."""

import triton
import triton.language as tl


@triton.jit
def tile(total, C: tl.constexpr, H: tl.constexpr, W: tl.constexpr, BLOCK_P: tl.constexpr,
         BLOCK_C: tl.constexpr):  # fmt: skip
    # this program's positions p (flat over N × H × W, as n, h, w) and channels c, and which of them exist. A
    # one-dimensional grid, channel blocks fastest: the programs that run together read whole pixels (each a
    # contiguous run of C values), so a cache line that straddles two channel blocks is fetched once, not twice
    pid = tl.program_id(0)
    blocks_c = (C + BLOCK_C - 1) // BLOCK_C  # (constexpr: of two constexprs)
    p = (pid // blocks_c).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = (pid % blocks_c) * BLOCK_C + tl.arange(0, BLOCK_C)
    return p, c, p < total, c < C, p // (W * H), (p // W) % H, p % W


@triton.jit
def forward(x_ptr, out_ptr, off_ptr, total, C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
            OH: tl.constexpr, OW: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
            SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, STORE_OFF: tl.constexpr,
            BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    # one program: BLOCK_P output positions (n, oh, ow) × BLOCK_C channels, channels contiguous in memory
    p, c, p_ok, c_ok, n, oh, ow = tile(total, C, OH, OW, BLOCK_P, BLOCK_C)
    h0, w0 = oh * SH - PH, ow * SW - PW
    best = tl.full((BLOCK_P, BLOCK_C), float("-inf"), tl.float32)
    first = tl.maximum(-h0, 0) * KW + tl.maximum(-w0, 0)  # the window's first position inside the image
    arg = tl.zeros((BLOCK_P, BLOCK_C), tl.int32) + first.to(tl.int32)[:, None]
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            h, w = h0 + i, w0 + j
            ok = p_ok & (h >= 0) & (h < H) & (w >= 0) & (w < W)
            src = ((n * H + h) * W + w) * C
            v = tl.load(x_ptr + src[:, None] + c[None, :], mask=ok[:, None] & c_ok[None, :], other=float("-inf"))
            v = v.to(tl.float32)
            take = (v > best) | (v != v)  # ATen's rule: a larger value or a NaN
            best = tl.where(take, v, best)
            arg = tl.where(take, i * KW + j, arg)
    dst = (p * C)[:, None] + c[None, :]
    keep = p_ok[:, None] & c_ok[None, :]
    tl.store(out_ptr + dst, best.to(out_ptr.dtype.element_ty), mask=keep)
    if STORE_OFF:
        tl.store(off_ptr + dst, arg.to(tl.int8), mask=keep)


@triton.jit
def backward(g_ptr, off_ptr, dx_ptr, total, C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
             OH: tl.constexpr, OW: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
             SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
             BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    # one program: BLOCK_P input positions × BLOCK_C channels; each sums the gradients of the outputs
    # whose window chose it (gathered, not scattered: no two programs write one element)
    p, c, p_ok, c_ok, n, h, w = tile(total, C, H, W, BLOCK_P, BLOCK_C)
    acc = tl.zeros((BLOCK_P, BLOCK_C), tl.float32)
    for ii in tl.static_range(KH):
        for jj in tl.static_range(KW):
            i, j = KH - 1 - ii, KW - 1 - jj  # outputs in ATen's order: row by row, left to right
            th, tw = h + PH - i, w + PW - j  # this input's position in the window of output (th/SH, tw/SW)
            oh, ow = th // SH, tw // SW
            ok = p_ok & (th >= 0) & (tw >= 0) & (th % SH == 0) & (tw % SW == 0) & (oh < OH) & (ow < OW)
            src = (((n * OH + oh) * OW + ow) * C)[:, None] + c[None, :]
            m = ok[:, None] & c_ok[None, :]
            chosen = tl.load(off_ptr + src, mask=m, other=-1).to(tl.int32) == i * KW + j
            acc += tl.where(chosen, tl.load(g_ptr + src, mask=m, other=0.0).to(tl.float32), 0.0)
    dst = (p * C)[:, None] + c[None, :]
    tl.store(dx_ptr + dst, acc.to(dx_ptr.dtype.element_ty), mask=p_ok[:, None] & c_ok[None, :])
