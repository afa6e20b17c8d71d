"""Per-sample training augmentation on whole uint8 batches, on the batch's device. Each augmentation is
split in two: `draw` makes a batch's random parameters on the host from a seeded generator, `apply` uses
them on the device. A training epoch draws all its steps' parameters at its start and copies them to the
device once, so the step itself never waits for a host-to-device copy (a copy from pageable memory
synchronises the host with the device, which would leave the GPU idle while the next step is launched).

Hand-written because torchvision's transforms draw one set of parameters per call: applied to a batch
tensor they crop every image the same way, and per-image calls are slow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lrlab.distributed import SINGLE, Dist


def crop_pad(side: int) -> int:
    """Zero padding of the random crop for images `side` px wide: 4 px at 32 px, as the common CIFAR recipe."""
    return max(1, side // 8)


def draw_crop_flip(gen: torch.Generator, total: int, pad: int) -> torch.Tensor:
    """[total, 3] int64: row offset, column offset (each in [0, 2·pad]), mirrored (0/1)."""
    dy = torch.randint(0, 2 * pad + 1, (total,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (total,), generator=gen)
    flip = torch.rand(total, generator=gen) < 0.5
    return torch.stack([dy, dx, flip.long()], 1)


def apply_crop_flip(x: torch.Tensor, params: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop every image at its own offset after zero padding by `pad` px, mirror those marked."""
    n, _, h, w = x.shape
    params = params.long()  # float when stored beside cutout's draws (exact: small integers)
    dy, dx, flip = params[:, 0], params[:, 1], params[:, 2].bool()
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = dx[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols).view(n, 1, 1, w)
    idx_n = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    idx_c = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[idx_n, idx_c, rows, cols]


# torchvision RandomResizedCrop's defaults: area fraction and aspect-ratio range of the crop, and its draws of
# a crop that fits the image before it falls back to a centre crop
RESIZED_SCALE, RESIZED_RATIO, RESIZED_ATTEMPTS = (0.08, 1.0), (3 / 4, 4 / 3), 10


def draw_resized_crop_flip(gen: torch.Generator, total: int, pad: int = 0) -> torch.Tensor:
    """[total, 2·RESIZED_ATTEMPTS + 3] float: for each image RESIZED_ATTEMPTS crops, each's area and aspect ratio
    drawn as torchvision's RandomResizedCrop draws them and given as its sides for a square image
    (sqrt(area·ratio), sqrt(area/ratio)); then its centre's place (two uniforms) and a random mirror (-1 or 1).
    The image's shape enters when the crops are applied: the first attempt that fits it is used (torchvision
    draws until one fits), so a crop is never clipped (clipping made crops larger: a mean area of 0.535 of a
    224×224 image against torchvision's 0.481). `pad` is unused."""
    area = torch.empty(total, RESIZED_ATTEMPTS).uniform_(*RESIZED_SCALE, generator=gen)
    log_ratio = torch.empty(total, RESIZED_ATTEMPTS).uniform_(*(math.log(r) for r in RESIZED_RATIO), generator=gen)
    ratio = torch.exp(log_ratio)
    sides = torch.stack([torch.sqrt(area * ratio), torch.sqrt(area / ratio)], 2).flatten(1)  # w0, h0, w1, h1, ...
    ux, uy = torch.rand(total, generator=gen), torch.rand(total, generator=gen)
    sign = torch.where(torch.rand(total, generator=gen) < 0.5, -1.0, 1.0)
    return torch.cat([sides, torch.stack([ux, uy, sign], 1)], 1)


def resized_crop_maps(p: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[n, 2, 3]: the affine maps (normalised coordinates) from the output image to each drawn crop of an
    h×w image; a crop's width and height, as fractions of the image's, are cw and ch on the diagonal. Each image
    takes its first attempt that fits; where none does, torchvision's fallback: the centred crop of the whole
    image, cut to the nearest aspect ratio in RESIZED_RATIO."""
    k = 2 * RESIZED_ATTEMPTS
    cw = p[:, 0:k:2] * math.sqrt(h / w)  # [n, attempts]: the sides in the image's own fractions
    ch = p[:, 1:k:2] * math.sqrt(w / h)
    fits = (cw <= 1) & (ch <= 1)
    first = fits.float().argmax(1, keepdim=True)  # (0 where none fits: replaced below)
    cw, ch = cw.gather(1, first)[:, 0], ch.gather(1, first)[:, 0]
    ux, uy, sign = p[:, k], p[:, k + 1], p[:, k + 2]
    none = ~fits.any(1)  # (not branched on: on a GPU reading it would wait for the device every step)
    aspect = w / h  # torchvision's in_ratio
    fw, fh = min(1.0, RESIZED_RATIO[1] / aspect), min(1.0, aspect / RESIZED_RATIO[0])
    cw, ch = torch.where(none, fw, cw), torch.where(none, fh, ch)
    ux, uy = torch.where(none, 0.5, ux), torch.where(none, 0.5, uy)
    theta = torch.zeros(len(p), 2, 3, device=p.device)
    theta[:, 0, 0], theta[:, 1, 1] = cw * sign, ch
    theta[:, 0, 2], theta[:, 1, 2] = (ux * 2 - 1) * (1 - cw), (uy * 2 - 1) * (1 - ch)
    return theta


def apply_resized_crop_flip(x: torch.Tensor, params: torch.Tensor, pad: int = 0) -> torch.Tensor:
    """Resample every image's crop back to the input size: one batched bilinear grid_sample. The sides,
    as fractions of the image's width and height, are scaled by sqrt(h/w) and sqrt(w/h) so that a crop
    of an h×w image has the drawn aspect ratio in pixels and the drawn share of its area."""
    n, c, h, w = x.shape
    theta = resized_crop_maps(params.float(), h, w)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    # within the crop: torchvision crops, then resizes, so an output pixel at the crop's edge takes the crop's edge
    # pixel; unclamped, bilinear sampling there blended in up to half of the pixel beyond the crop
    for k, size in ((0, w), (1, h)):
        reach = (theta[:, k, k].abs() - 1 / size).clamp(min=0).view(n, 1, 1)  # centre to the edge pixels' centres
        centre = theta[:, k, 2].view(n, 1, 1)
        grid[..., k] = torch.minimum(torch.maximum(grid[..., k], centre - reach), centre + reach)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class Augment:
    draw: Callable[[torch.Generator, int, int], torch.Tensor]  # (generator, global batch, pad) -> host tensor
    apply: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]  # (images, their parameters, pad)

    def __call__(self, x: torch.Tensor, gen: torch.Generator, pad: int = 0, d: Dist = SINGLE) -> torch.Tensor:
        """One batch. Under torchrun `x` is this rank's share of the global batch: the draws are made
        for the whole global batch and this rank's share of them is used, exactly as one process would."""
        return self.apply(x, d.shard(self.draw(gen, len(x) * d.world, pad)).to(x.device), pad)

    def epoch_draws(
        self, gen: torch.Generator, steps: int, total: int, pad: int, device: torch.device, d: Dist = SINGLE
    ) -> torch.Tensor:
        """[steps, this rank's share of `total`, k]: the parameters of an epoch's batches, drawn in the
        order the per-batch calls would draw them (same values), copied to the device in one transfer."""
        params = torch.stack([d.shard(self.draw(gen, total, pad)) for _ in range(steps)])
        if device.type == "cuda":
            params = params.pin_memory()  # so that the copy below does not block the host
        return params.to(device, non_blocking=True)


AUGMENTS: dict[str, Augment] = {
    "crop-flip": Augment(draw_crop_flip, apply_crop_flip),
    "resized-crop-flip": Augment(draw_resized_crop_flip, apply_resized_crop_flip),
}


def draw_cutout(gen: torch.Generator, total: int) -> torch.Tensor:
    """[total, 2] float: each square's centre, as fractions of the image's height and width."""
    return torch.rand(total, 2, generator=gen)


def apply_cutout(x: torch.Tensor, params: torch.Tensor, size: int, fill: torch.Tensor) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): a `size`-px square around each image's own random centre, clipped
    at the borders, set to `fill` (per channel, uint8). With the training mean as fill the square is 0 after
    normalisation, as in the paper's code, which masks normalised images."""
    c, h, w = x.shape[1:]
    top = (params[:, 0] * h).long() - size // 2
    left = (params[:, 1] * w).long() - size // 2
    rows = torch.arange(h, device=x.device) - top[:, None]  # [n, h]: position inside the square's rows
    cols = torch.arange(w, device=x.device) - left[:, None]
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]
    return torch.where(inside[:, None], fill.view(1, c, 1, 1), x)


def with_cutout(base: Augment | None, size: int, fill: list[int]) -> Augment | None:
    """`base` (or no augmentation) followed by cutout of `size` px (0: base unchanged). A batch's draws are
    base's, then the cutout centres, from the same generator, side by side in one float tensor."""
    if size <= 0:
        return base
    fills: dict[torch.device, torch.Tensor] = {}  # the fill on each device: copied there once, not every step

    def draw(gen: torch.Generator, total: int, pad: int) -> torch.Tensor:
        first = base.draw(gen, total, pad).float() if base is not None else torch.empty(total, 0)
        return torch.cat([first, draw_cutout(gen, total)], 1)

    def apply(x: torch.Tensor, params: torch.Tensor, pad: int) -> torch.Tensor:
        if base is not None:
            x = base.apply(x, params[:, :-2], pad)
        if x.device not in fills:
            fills[x.device] = torch.tensor(fill, dtype=torch.uint8).to(x.device)
        return apply_cutout(x, params[:, -2:], size, fills[x.device])

    return Augment(draw, apply)


def run_augment(name: str, cutout: int, mean: list[float]) -> Augment | None:
    """A run's training augmentation: AUGMENTS[name] ("none": None), then cutout filled with the mean pixel."""
    return with_cutout(AUGMENTS.get(name), cutout, [round(255 * m) for m in mean])
