"""GoogLeNet (Inception v1) with the paper's channel table (Szegedy et al. 2015, Table 1): two stems, a
width multiplier, a choice of "5×5" branch, optional auxiliary heads, outputs whose type ignores the mode.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from lrlab import kernels
from lrlab.config import BRANCH5, INITS, STEMS, ModelConfig, resolved_init
from lrlab.errors import ConfigError, choices

# stem = "auto": inputs whose larger side is at most this many pixels get the CIFAR stem; the ImageNet
# stem divides the side by 8 before the first Inception block, which leaves 4×4 of a 32×32 image.
AUTO_STEM_MAX_SIDE = 64  # px

# branch5 = "auto", by stem: the common CIFAR GoogLeNet (e.g. kuangliu/pytorch-cifar) stacks two 3×3 convs;
# the ImageNet stem keeps torchvision's single 3×3 so that its parameter count equals torchvision's.
AUTO_BRANCH5 = {"cifar": "3x3-3x3", "imagenet": "3x3"}

# Kernel sizes after the 1×1 reduce in the "5×5" branch. The paper has a real 5×5; torchvision has a 3×3
# there, a known bug kept for its pretrained weights (https://github.com/pytorch/vision/issues/906).
BRANCH5_KERNELS = {"3x3": (3,), "3x3-3x3": (3, 3), "5x5": (5,)}

# Paper Table 1, per block: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj). The table's input
# width is the concat width of the block before (192 from the stem), so it is computed, not listed.
TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def scaled(channels: int, width: float) -> int:
    """A channel count under the width multiplier; never below one channel."""
    return max(1, round(channels * width))


class BasicConv2d(nn.Module):
    """Conv + BatchNorm (eps 0.001, as torchvision) + ReLU; the conv has no bias, the BatchNorm shift
    replaces it. batchnorm=False is the paper's original Inception v1 (BN came with v2): conv with bias
    + ReLU; its gradients need no batch statistics, so data-parallel training equals one process."""

    def __init__(self, in_channels: int, out_channels: int, batchnorm: bool = True, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=not batchnorm, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if batchnorm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


class MaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d that runs lrlab's Triton kernels (kernels.py: the same function; why they exist is said
    there) where `impl` is "triton" (set by `set_pool_kernel` from train.pool_kernel) and the input suits
    them; ATen's otherwise. Under torch.compile the kernels are one custom op each way."""

    impl = "aten"

    def forward(self, x: Tensor) -> Tensor:
        if self.impl != "triton":  # the default: nothing added to ATen's call
            return super().forward(x)
        k, s, p = _pair(self.kernel_size), _pair(self.stride), _pair(self.padding)
        if (
            not self.return_indices
            and _pair(self.dilation) == (1, 1)
            and kernels.runs_on(x)
            and kernels.supported(x, k, s, p, self.ceil_mode)
        ):
            return kernels.max_pool2d(x, k, s, p, self.ceil_mode)
        return super().forward(x)


def set_pool_kernel(model: nn.Module, impl: str) -> None:
    """Every lrlab max pool in `model` runs `impl`'s kernels ("aten" or "triton")."""
    for m in model.modules():
        if isinstance(m, MaxPool2d):
            m.impl = impl


class CeilMaxPool2d(MaxPool2d):
    """torchvision's unpadded ceil_mode max pool, extended to inputs smaller than the window: those are first
    padded with -inf (right and bottom) up to the window, so they pool to 1×1 instead of raising."""

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel_size if isinstance(self.kernel_size, int) else self.kernel_size[0]
        short_h, short_w = max(0, k - x.shape[-2]), max(0, k - x.shape[-1])
        if short_h or short_w:
            x = F.pad(x, (0, short_w, 0, short_h), value=float("-inf"))
        return super().forward(x)


class Inception(nn.Module):
    """Four branches concatenated on channels: 1×1 | 1×1→3×3 | 1×1→"5×5" (see BRANCH5_KERNELS) | pool→1×1.

    fuse_1x1: the three 1×1 convs that read the block's input (branch 1 and the two reduces) run as one
    conv with their output channels stacked, then split; BatchNorm is per channel, so this is the same
    function with the same parameters, in one kernel instead of three (and a wider, faster matrix product
    than the 16- to 48-channel reduces alone). Initialised slice by slice, as the separate convs would be.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch5: str = "3x3",
        batchnorm: bool = True,
        fuse_1x1: bool = True,
    ) -> None:
        super().__init__()
        conv = partial(BasicConv2d, batchnorm=batchnorm)
        if branch5 not in BRANCH5_KERNELS:
            raise ConfigError(f"model.branch5: must be one of {choices(BRANCH5_KERNELS)}, got {branch5!r}")
        self.splits = [ch1x1, ch3x3red, ch5x5red]  # output channels of the 1×1 convs on the input
        b2 = [conv(ch3x3red, ch3x3, kernel_size=3, padding=1)]
        b3 = []
        for k in BRANCH5_KERNELS[branch5]:  # "3x3-3x3": both 3×3 convs give ch5x5 channels
            b3.append(conv(b3[-1].conv.out_channels if b3 else ch5x5red, ch5x5, kernel_size=k, padding=k // 2))
        if fuse_1x1:
            self.reduce: BasicConv2d | None = conv(in_channels, sum(self.splits), kernel_size=1)
            self.branch2, self.branch3 = nn.Sequential(*b2), nn.Sequential(*b3)
        else:  # torchvision's layout: each 1×1 at the head of its branch
            self.reduce = None
            self.branch1 = conv(in_channels, ch1x1, kernel_size=1)
            self.branch2 = nn.Sequential(conv(in_channels, ch3x3red, kernel_size=1), *b2)
            self.branch3 = nn.Sequential(conv(in_channels, ch5x5red, kernel_size=1), *b3)
        self.branch4 = nn.Sequential(
            MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def conv_weights(self) -> list[Tensor]:
        """Every conv weight of the block, the fused 1×1's as its three slices, in the order of the
        unfused layout's modules (so that seeded initialisation draws the same weights in both)."""
        if self.reduce is None:
            return [m.weight for m in self.modules() if isinstance(m, nn.Conv2d)]
        w1, w2, w3 = torch.split(self.reduce.conv.weight, self.splits)
        rest = [m.conv.weight for m in (*self.branch2, *self.branch3)]
        return [w1, w2, rest[0], w3, *rest[1:], self.branch4[1].conv.weight]

    def forward(self, x: Tensor) -> Tensor:
        if self.reduce is None:
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)
        b1, b2, b3 = torch.split(self.reduce(x), self.splits, 1)
        # A channel slice is not dense in memory, and a convolution's kernels need a dense input: PyTorch copies
        # it inside the conv, forward and again in the backward, 36 copies a training step for the 18 slices (the
        # compiled step's profile on an H200, 2026-11-28, held 37 ATen copy kernels a step, 1.35 ms of 30).
        # Copied here once, where TorchInductor can write the copy in the kernel that makes the slice (its speed on
        # a GPU not yet measured); the same values, in the slice's own layout (NHWC or NCHW)
        b2, b3 = (b.clone(memory_format=torch.preserve_format) for b in (b2, b3))
        return torch.cat([b1, self.branch2(b2), self.branch3(b3), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (paper §5, torchvision): pool to 4×4, 1×1 conv to 128, FC 1024, dropout 0.7."""

    def __init__(self, in_channels: int, num_classes: int, width: float = 1.0, batchnorm: bool = True) -> None:
        super().__init__()
        conv_channels, hidden = scaled(128, width), scaled(1024, width)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv2d(in_channels, conv_channels, batchnorm, kernel_size=1)
        self.fc1 = nn.Linear(conv_channels * 4 * 4, hidden)
        self.dropout = nn.Dropout(p=0.7)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        # N x 512 (4a) or 528 (4d) x H x W
        x = self.conv(self.pool(x))
        # N x 128 x 4 x 4
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        # N x 1024
        return self.fc2(self.dropout(x))  # N x num_classes


class GoogLeNet(nn.Module):
    """Inception v1. Shape comments: width 1, cifar stem on 32×32 | imagenet stem on 224×224."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        stem: str = "cifar",
        branch5: str = "3x3-3x3",
        width: float = 1.0,
        aux_heads: bool = False,
        dropout: float = 0.2,
        batchnorm: bool = True,
        fuse_1x1: bool = True,
        init: str = "auto",
    ) -> None:
        super().__init__()
        conv = partial(BasicConv2d, batchnorm=batchnorm)
        if init not in INITS:
            raise ConfigError(f"model.init: must be one of {choices(INITS)}, got {init!r}")
        if stem not in ("cifar", "imagenet"):
            raise ConfigError(f"model.stem: must be 'cifar' or 'imagenet' here, got {stem!r}")
        if not width > 0:
            raise ConfigError(f"model.width: must be positive, got {width}")
        if not 0 <= dropout < 1:
            raise ConfigError(f"model.dropout: must be in [0, 1), got {dropout}")
        if num_classes < 1:
            raise ConfigError(f"num_classes: must be positive, got {num_classes}")
        if in_channels < 1:
            raise ConfigError(f"in_channels: must be positive, got {in_channels}")
        self.stem_kind, self.branch5, self.width, self.batchnorm = stem, branch5, width, batchnorm
        c = partial(scaled, width=width)
        if stem == "cifar":  # no early downsampling: the blocks see 32×32, then 16×16 and 8×8
            self.stem = conv(in_channels, c(192), kernel_size=3, padding=1)
            self.maxpool3 = MaxPool2d(3, stride=2, padding=1)
            self.maxpool4 = MaxPool2d(3, stride=2, padding=1)
        else:  # torchvision's stem: side / 8 before 3a
            self.stem = nn.Sequential(
                conv(in_channels, c(64), kernel_size=7, stride=2, padding=3),  # N x 64 x 112 x 112
                CeilMaxPool2d(3, stride=2, ceil_mode=True),  # N x 64 x 56 x 56
                conv(c(64), c(64), kernel_size=1),  # N x 64 x 56 x 56
                conv(c(64), c(192), kernel_size=3, padding=1),  # N x 192 x 56 x 56
                CeilMaxPool2d(3, stride=2, ceil_mode=True),  # N x 192 x 28 x 28
            )
            self.maxpool3 = CeilMaxPool2d(3, stride=2, ceil_mode=True)
            self.maxpool4 = CeilMaxPool2d(2, stride=2, ceil_mode=True)
        blocks: dict[str, Inception] = {}
        channels = c(192)  # the stem's output
        for name, row in TABLE.items():
            blocks[name] = Inception(channels, *(c(n) for n in row), branch5, batchnorm, fuse_1x1)
            channels = blocks[name].out_channels
        self.inception3a, self.inception3b = blocks["3a"], blocks["3b"]
        self.inception4a, self.inception4b, self.inception4c = blocks["4a"], blocks["4b"], blocks["4c"]
        self.inception4d, self.inception4e = blocks["4d"], blocks["4e"]
        self.inception5a, self.inception5b = blocks["5a"], blocks["5b"]
        self.aux1 = InceptionAux(blocks["4a"].out_channels, num_classes, width, batchnorm) if aux_heads else None
        self.aux2 = InceptionAux(blocks["4d"].out_channels, num_classes, width, batchnorm) if aux_heads else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights(init)

    def _init_weights(self, init: str) -> None:
        # Trained from scratch, so He init (He et al. 2015; fan_out, ReLU gain) for convs keeps activations'
        # scale through the ReLUs; torchvision's trunc_normal(0.01) only mirrors the TF port of its weights.
        # BN starts as the identity; linears N(0, 0.01), bias 0, so the first logits are near zero (softmax
        # ~uniform). Only torch's global RNG is drawn from: a seed fixes the weights. Without BatchNorm nothing
        # rescales the activations, so fan_in mode keeps their forward scale (fan_out lets each 1×1 reduce
        # grow it by in/out channels, and the loss overflows within a few steps).
        # A fused 1×1 (Inception.conv_weights) is drawn slice by slice, each with its own fan. `init` picks the
        # fan: with BatchNorm fan_in draws the narrow 1×1 reduce convs (480→16) far smaller than fan_out does,
        # and behind BatchNorm a smaller weight turns faster at the same LR (config.ModelConfig.init).
        mode = resolved_init(init, self.batchnorm)
        drawn: set[int] = set()  # convs inside an Inception block, drawn with their block
        for m in self.modules():  # pre-order: a block comes before its convs
            if isinstance(m, Inception):
                for w in m.conv_weights():
                    nn.init.kaiming_normal_(w, mode=mode, nonlinearity="relu")
                drawn.update(id(c) for c in m.modules() if isinstance(c, nn.Conv2d))
            if isinstance(m, nn.Conv2d):
                if id(m) not in drawn:
                    nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def _run(self, x: Tensor, with_aux: bool) -> tuple[Tensor, list[Tensor]]:
        aux: list[Tensor] = []
        # N x in_channels x 32 x 32 | 224 x 224
        x = self.stem(x)
        # N x 192 x 32 x 32 | 28 x 28
        x = self.inception3a(x)
        # N x 256 x 32 x 32 | 28 x 28
        x = self.inception3b(x)
        # N x 480 x 32 x 32 | 28 x 28
        x = self.maxpool3(x)
        # N x 480 x 16 x 16 | 14 x 14
        x = self.inception4a(x)
        # N x 512 x 16 x 16 | 14 x 14
        if with_aux and self.aux1 is not None:
            aux.append(self.aux1(x))
        x = self.inception4b(x)
        # N x 512 x 16 x 16 | 14 x 14
        x = self.inception4c(x)
        # N x 512 x 16 x 16 | 14 x 14
        x = self.inception4d(x)
        # N x 528 x 16 x 16 | 14 x 14
        if with_aux and self.aux2 is not None:
            aux.append(self.aux2(x))
        x = self.inception4e(x)
        # N x 832 x 16 x 16 | 14 x 14
        x = self.maxpool4(x)
        # N x 832 x 8 x 8 | 7 x 7
        x = self.inception5a(x)
        # N x 832 x 8 x 8 | 7 x 7
        x = self.inception5b(x)
        # N x 1024 x 8 x 8 | 7 x 7
        x = torch.flatten(self.avgpool(x), 1)
        # N x 1024
        x = self.fc(self.dropout(x))
        # N x num_classes
        return x, aux

    def forward(self, x: Tensor) -> Tensor:
        """Main logits, in train and eval mode alike (the auxiliary heads are not run)."""
        return self._run(x, with_aux=False)[0]

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Main logits and the auxiliary logits [after 4a, after 4d]; an empty list without aux heads."""
        return self._run(x, with_aux=True)


def resolve_stem(cfg: ModelConfig, image_size: tuple[int, int]) -> str:
    """The stem to build: `cfg.stem`, or for "auto" cifar up to AUTO_STEM_MAX_SIDE px, imagenet above."""
    if cfg.stem not in STEMS:
        raise ConfigError(f"model.stem: must be one of {choices(STEMS)}, got {cfg.stem!r}")
    if cfg.stem != "auto":
        return cfg.stem
    return "cifar" if max(image_size) <= AUTO_STEM_MAX_SIDE else "imagenet"


def stem_notes(model: GoogLeNet, in_channels: int, image_size: tuple[int, int]) -> list[str]:
    """A note where a stem chosen by hand does not suit the images (`auto` picks by AUTO_STEM_MAX_SIDE): the
    ImageNet stem leaves small images a map of a pixel or two, the CIFAR stem keeps large ones at full size."""
    (h, w), side = image_size, max(image_size)
    if model.stem_kind == "imagenet" and side <= AUTO_STEM_MAX_SIDE:
        sides: list[tuple[int, ...]] = []  # the map sizes that the first and the last Inception blocks see
        hooks = [b.register_forward_pre_hook(lambda _, a: sides.append(tuple(a[0].shape[-2:])))
                 for b in (model.inception3a, model.inception5b)]  # fmt: skip
        p, was_training = next(model.parameters()), model.training
        try:
            model.eval()
            with torch.no_grad():
                model(torch.zeros(1, in_channels, h, w, device=p.device, dtype=p.dtype))
        finally:
            model.train(was_training)
            for hook in hooks:
                hook.remove()
        (a, b), (c, d) = sides
        return [f"model.stem = 'imagenet' on {h}×{w} images: it downsamples by 8 before the first Inception block, "
                f"which sees {a}×{b} maps, the last {c}×{d}; 'auto' (the default) picks 'cifar' for images up to "
                f"{AUTO_STEM_MAX_SIDE} px a side"]  # fmt: skip
    if model.stem_kind == "cifar" and side > AUTO_STEM_MAX_SIDE:
        return [f"model.stem = 'cifar' on {h}×{w} images: it does not downsample, so the first Inception block sees "
                f"{h}×{w} maps, about {h * w / 1024:.0f}× the compute and activation memory of a 32×32 image; 'auto' "
                f"(the default) picks 'imagenet' above {AUTO_STEM_MAX_SIDE} px a side"]  # fmt: skip
    return []


def resolve_branch5(cfg: ModelConfig, stem: str) -> str:
    """The "5×5" branch to build: `cfg.branch5`, or for "auto" the stem's default (AUTO_BRANCH5)."""
    if cfg.branch5 not in BRANCH5:
        raise ConfigError(f"model.branch5: must be one of {choices(BRANCH5)}, got {cfg.branch5!r}")
    return AUTO_BRANCH5[stem] if cfg.branch5 == "auto" else cfg.branch5


def build_model(cfg: ModelConfig, num_classes: int, in_channels: int, image_size: tuple[int, int]) -> GoogLeNet:
    """The GoogLeNet that `cfg` describes for images of `in_channels` x `image_size` (height, width)."""
    if len(image_size) != 2 or min(image_size) < 1:
        raise ConfigError(f"image_size: expected (height, width) in pixels, got {image_size!r}")
    stem = resolve_stem(cfg, image_size)
    args = (num_classes, in_channels, stem, resolve_branch5(cfg, stem), cfg.width, cfg.aux_heads, cfg.dropout,
            cfg.batchnorm, cfg.fuse_1x1, cfg.init)  # fmt: skip
    try:
        return GoogLeNet(*args)
    except (MemoryError, RuntimeError) as e:  # torch's allocator: "DefaultCPUAllocator: can't allocate memory"
        if not isinstance(e, MemoryError) and "allocate" not in str(e):
            raise
        raise ConfigError(
            f"model.width: {cfg.width:g} makes a model too large for this machine's memory (1 is the paper's width)"
        ) from None


def count_params(model: nn.Module) -> int:
    """Number of parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def macs_per_image(model: nn.Module, in_channels: int, image_size: tuple[int, int]) -> int:
    """Multiply-adds of one eval-mode forward of one image: FlopCounterMode's FLOPs (convs, matmuls) / 2."""
    p = next(model.parameters())
    x = torch.zeros(1, in_channels, *image_size, device=p.device, dtype=p.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
