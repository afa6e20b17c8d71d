"""Tests for lrlab.model: parameter counts against the references, shapes, init, errors, gradients."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import torchvision
from torch import nn

from lrlab.config import ModelConfig
from lrlab.errors import ConfigError
from lrlab.model import (
    GoogLeNet,
    build_model,
    count_params,
    macs_per_image,
    resolve_branch5,
    resolve_stem,
    stem_notes,
)


def test_imagenet_stem_matches_torchvision_param_count() -> None:
    model = build_model(ModelConfig(stem="imagenet"), 1000, 3, (224, 224))
    assert model.branch5 == "3x3"
    ref = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    assert count_params(model) == 6_624_904 == count_params(ref)


def test_imagenet_stem_computes_what_torchvision_computes() -> None:
    # Same structure and parameter order: copy torchvision's weights over, compare eval outputs.
    torch.manual_seed(0)
    ref = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    model = build_model(ModelConfig(stem="imagenet", fuse_1x1=False), 1000, 3, (64, 64)).eval()
    ours, theirs = model.state_dict(), ref.state_dict()
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]
    model.load_state_dict(dict(zip(ours, theirs.values(), strict=True)))
    with torch.no_grad():
        for size in [(64, 64), (47, 35)]:
            x = torch.randn(2, 3, *size)
            torch.testing.assert_close(model(x), ref(x))


def test_cifar_stem_param_count() -> None:
    # The common CIFAR GoogLeNet has 6,166,250 parameters with conv biases; BasicConv2d has none (the
    # BatchNorm shift replaces them), which removes one per conv output channel: 7,904.
    model = build_model(ModelConfig(), 10, 3, (32, 32))
    assert (model.stem_kind, model.branch5) == ("cifar", "3x3-3x3")
    assert count_params(model) == 6_158_346
    conv_out = sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert count_params(model) + conv_out == 6_166_250


def test_cifar_macs() -> None:
    model = build_model(ModelConfig(), 10, 3, (32, 32))
    model.train()
    assert macs_per_image(model, 3, (32, 32)) == pytest.approx(1.52e9, rel=0.02)
    assert model.training  # the mode is restored


def test_branch5_variants() -> None:
    counts = {b: count_params(build_model(ModelConfig(branch5=b), 10, 3, (32, 32))) for b in ["3x3", "5x5"]}
    # a 5×5 has 25/9 of a 3×3's weights; the two-3×3 variant (6,158,346) has the most
    assert counts["3x3"] < counts["5x5"] < 6_158_346


@pytest.mark.parametrize(
    ("stem", "in_channels", "size", "width"),
    [
        ("cifar", 1, (8, 8), 0.25),
        ("imagenet", 1, (8, 8), 0.25),
        ("cifar", 3, (32, 32), 1.0),
        ("imagenet", 3, (224, 224), 0.25),
        ("cifar", 3, (17, 23), 0.5),
        ("imagenet", 3, (17, 23), 0.5),
        ("auto", 3, (96, 80), 0.1),
    ],
)
def test_output_shapes(stem: str, in_channels: int, size: tuple[int, int], width: float) -> None:
    model = build_model(ModelConfig(stem=stem, width=width, aux_heads=True), 7, in_channels, size)
    x = torch.randn(2, in_channels, *size)
    for train in (True, False):
        model.train(train)
        out = model(x)
        assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
        logits, aux = model.forward_with_aux(x)
        assert logits.shape == (2, 7) and [a.shape for a in aux] == [(2, 7), (2, 7)]


def test_forward_with_aux_without_heads() -> None:
    model = build_model(ModelConfig(width=0.25), 10, 1, (8, 8))
    logits, aux = model.forward_with_aux(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 10) and aux == []


def test_auto_resolution() -> None:
    cfg = ModelConfig()
    assert resolve_stem(cfg, (8, 8)) == "cifar" and resolve_stem(cfg, (64, 48)) == "cifar"
    assert resolve_stem(cfg, (65, 32)) == "imagenet"
    assert resolve_branch5(cfg, "cifar") == "3x3-3x3" and resolve_branch5(cfg, "imagenet") == "3x3"
    assert resolve_branch5(ModelConfig(branch5="5x5"), "cifar") == "5x5"


@pytest.mark.parametrize(("size", "stem", "says"), [
    ((8, 8), "imagenet", "which sees 1×1 maps, the last 1×1"),  # digits: the stride-32 stem leaves a pixel
    ((64, 48), "imagenet", "which sees 8×6 maps, the last 2×2"),
    ((96, 80), "cifar", "sees 96×80 maps, about 8× the compute"),
    ((65, 65), "imagenet", None), ((64, 64), "cifar", None),  # what "auto" picks: nothing to note
])  # fmt: skip
def test_a_stem_chosen_against_the_image_size_is_noted(size, stem, says) -> None:
    model = build_model(ModelConfig(stem=stem, width=0.125), 10, 3, size)
    model.train()
    notes = stem_notes(model, 3, size)
    assert notes == [] if says is None else says in notes[0] and f"model.stem = '{stem}'" in notes[0]
    assert model.training and not model.inception3a._forward_pre_hooks  # left as it was


def test_seeded_init_is_reproducible() -> None:
    def weights(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        model = build_model(ModelConfig(width=0.25, aux_heads=True), 10, 3, (32, 32))
        return list(model.state_dict().values())

    a, b, c = weights(1), weights(1), weights(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize(("init", "batchnorm", "mode"),
                         [("auto", True, "fan_out"), ("auto", False, "fan_in"), ("fan_in", True, "fan_in"),
                          ("fan_out", False, "fan_out")])  # fmt: skip
def test_init_draws_each_conv_with_the_fan_it_names(init: str, batchnorm: bool, mode: str) -> None:
    # every conv (a fused 1×1 slice by slice, with BatchNorm) drawn N(0, 2/fan): e.g. 4a's 480→16 reduce
    # 1×1 has std 0.354 by fan_out and 0.065 by fan_in
    torch.manual_seed(0)
    cfg = ModelConfig(init=init, batchnorm=batchnorm, fuse_1x1=False)
    model = build_model(cfg, 10, 3, (32, 32))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    ratios = []
    for c in convs:
        k = c.kernel_size[0] * c.kernel_size[1]
        fan = (c.in_channels if mode == "fan_in" else c.out_channels) * k
        ratios.append(float(c.weight.detach().std()) / (2 / fan) ** 0.5)
    big = [r for c, r in zip(convs, ratios, strict=True) if c.weight.numel() >= 4096]  # enough draws to judge
    assert len(big) > 40 and all(0.9 < r < 1.1 for r in big), (min(big), max(big))


def test_width_shrinks_the_model() -> None:
    full = count_params(build_model(ModelConfig(), 10, 3, (32, 32)))
    quarter = count_params(build_model(ModelConfig(width=0.25), 10, 3, (32, 32)))
    assert quarter < full / 10


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"stem": "resnet"}, "model.stem"),
        ({"branch5": "7x7"}, "model.branch5"),
        ({"width": 0.0}, "model.width"),
        ({"width": -1.0}, "model.width"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"init": "xavier"}, "model.init"),
    ],
)
def test_bad_config_values(change: dict[str, object], key: str) -> None:
    cfg = dataclasses.replace(ModelConfig(), **change)
    with pytest.raises(ConfigError, match=re.escape(key)):
        build_model(cfg, 10, 3, (32, 32))


@pytest.mark.parametrize(
    ("args", "key"),
    [((0, 3, (32, 32)), "num_classes"), ((10, 0, (32, 32)), "in_channels"), ((10, 3, (0, 32)), "image_size")],
)
def test_bad_build_arguments(args: tuple, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        build_model(ModelConfig(), *args)


def test_direct_construction_checks_stem() -> None:
    with pytest.raises(ConfigError, match=re.escape("model.stem")):
        GoogLeNet(10, stem="auto")


def test_backward_gives_finite_gradients_everywhere() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(width=0.25, aux_heads=True), 10, 3, (32, 32)).train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    logits, aux = model.forward_with_aux(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss = loss + 0.3 * sum(torch.nn.functional.cross_entropy(a, y) for a in aux)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_without_batchnorm_is_the_papers_inception_v1():
    from lrlab.config import ModelConfig
    from lrlab.model import build_model, count_params

    m = build_model(ModelConfig(batchnorm=False), 10, 3, (32, 32))
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    assert count_params(m) == 6_158_346 - 2 * 7_904 + 7_904  # BN's weight and bias out, conv biases in


def fused_state(unfused: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An unfused model's state in the fused layout: each block's three input 1×1 convs (and their
    BatchNorms) stacked on the output channels, the later convs of branches 2 and 3 renumbered."""
    out: dict[str, torch.Tensor] = {}
    for key, v in unfused.items():
        m = re.match(r"(.*inception\w+)\.(branch1|branch2\.0|branch3\.0)\.(.*)", key)
        if m is None:
            key = re.sub(r"(branch[23])\.(\d+)\.", lambda k: f"{k[1]}.{int(k[2]) - 1}.", key)
            out[key] = v
        elif m[2] == "branch1":  # the first of three: stack all three here
            block, rest = m[1], m[3]
            parts = [unfused[f"{block}.{b}.{rest}"] for b in ("branch1", "branch2.0", "branch3.0")]
            out[f"{block}.reduce.{rest}"] = parts[0] if rest.endswith("num_batches_tracked") else torch.cat(parts)
    return out


@pytest.mark.parametrize("channels_last", [True, False])
def test_every_convolution_reads_a_dense_input(channels_last: bool) -> None:
    """The fused 1×1's reduce slices are copied dense before their convs, in the model's layout (else PyTorch copies
    them inside each conv, forward and backward: benchmarks/README.md)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    layout = torch.channels_last if channels_last else torch.contiguous_format
    seen = []

    class Inputs(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution.default:
                seen.append((str(func), args[0].is_contiguous(memory_format=layout)))
            elif func is torch.ops.aten.convolution_backward.default:  # (grad_output, input, weight, ...)
                seen.append((str(func), args[1].is_contiguous(memory_format=layout)))
            return func(*args, **(kwargs or {}))

    model = build_model(ModelConfig(width=0.125), 10, 3, (16, 16)).to(memory_format=layout)
    x = torch.randn(2, 3, 16, 16).contiguous(memory_format=layout)
    with Inputs():
        model(x).sum().backward()
    assert len(seen) == 2 * sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert all(dense for _, dense in seen), [f for f, dense in seen if not dense]


@pytest.mark.parametrize(
    "cfg, size",
    [
        (ModelConfig(width=0.25), (32, 32)),
        (ModelConfig(width=0.25, stem="imagenet", branch5="5x5"), (64, 64)),
        (ModelConfig(width=0.125, batchnorm=False, aux_heads=True), (16, 16)),
    ],
)
def test_fused_1x1_is_the_same_function_with_the_same_init(cfg: ModelConfig, size: tuple[int, int]) -> None:
    torch.manual_seed(3)
    fused = build_model(cfg, 10, 3, size).double()
    torch.manual_seed(3)
    plain = build_model(dataclasses.replace(cfg, fuse_1x1=False), 10, 3, size).double()
    mapped = fused_state(plain.state_dict())
    assert list(mapped) == list(fused.state_dict())
    for key, v in fused.state_dict().items():
        assert torch.equal(v, mapped[key]), key  # the same seed draws the same weights in both layouts
    x = torch.randn(8, 3, *size, dtype=torch.float64)
    torch.manual_seed(4)  # the same dropout masks
    out_f, aux_f = fused.forward_with_aux(x)  # training mode: batch statistics
    torch.manual_seed(4)
    out_p, aux_p = plain.forward_with_aux(x)
    torch.testing.assert_close(out_f, out_p)
    (out_f.square().sum() + sum(a.sum() for a in aux_f)).backward()
    (out_p.square().sum() + sum(a.sum() for a in aux_p)).backward()
    grads = fused_state({k: p.grad for k, p in plain.named_parameters()})
    for key, p in fused.named_parameters():
        torch.testing.assert_close(p.grad, grads[key])
    after = fused_state(plain.state_dict())  # BatchNorm running statistics updated alike
    for key, v in fused.state_dict().items():
        torch.testing.assert_close(v, after[key])
