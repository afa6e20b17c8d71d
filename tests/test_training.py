"""The training loop: augmentation, a real run whose loss falls, pairing by seed, divergence."""

from __future__ import annotations

import pytest
import torch

from lrlab.augment import AUGMENTS, apply_cutout, run_augment
from lrlab.config import DataConfig, ModelConfig, TrainConfig
from lrlab.data import load_data
from lrlab.errors import ConfigError
from lrlab.model import build_model
from lrlab.schedules import Plan, compile_schedule
from lrlab.training import LineBar, RunInputs, steps_per_epoch, train_run

crop_flip, resized_crop_flip = AUGMENTS["crop-flip"], AUGMENTS["resized-crop-flip"]

TRAIN = TrainConfig(epochs=5, batch_size=32)


@pytest.fixture(scope="module")
def digits():
    ds = load_data(DataConfig(name="digits", limit=480))
    mean, std = ds.channel_stats()
    inputs = RunInputs(ds.train, ds.val, ds.test, ds.num_classes, mean, std, augment="none")

    def build():
        return build_model(ModelConfig(width=0.125), ds.num_classes, ds.in_channels, ds.image_size)

    return inputs, build


def plan_for(inputs, cfg=TRAIN):
    spe = steps_per_epoch(len(inputs.train), cfg.batch_size)
    return Plan(cfg.epochs * spe, spe)


def test_crop_flip_is_per_sample_and_keeps_pixels():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4).repeat(64, 1, 1, 1)
    out = crop_flip(x, torch.Generator().manual_seed(0), pad=0)  # no padding: only flips
    assert out.shape == x.shape and out.dtype == torch.uint8
    flipped = (out == x.flip(3)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert bool((flipped | same).all()) and 0 < int(flipped.sum()) < len(x)  # some flipped, not all
    padded = crop_flip(x, torch.Generator().manual_seed(1), pad=2)
    assert len({tuple(p.flatten().tolist()) for p in padded[::2]}) > 5  # different crops per image


def test_cutout_sets_one_clipped_square_per_image_to_the_fill():
    x = torch.full((3, 2, 8, 8), 200, dtype=torch.uint8)
    centres = torch.tensor([[0.5, 0.5], [0.0, 0.0], [0.99, 0.3]])  # centre, corner, bottom edge
    out = apply_cutout(x, centres, 4, torch.tensor([7, 9], dtype=torch.uint8))
    want = x.clone()
    for i, (top, left) in enumerate([(2, 2), (-2, -2), (5, 0)]):  # centre px (4,4), (0,0), (7,2), minus 2
        want[i, 0, max(top, 0) : top + 4, max(left, 0) : left + 4] = 7
        want[i, 1, max(top, 0) : top + 4, max(left, 0) : left + 4] = 9
    assert torch.equal(out, want)
    assert int((out[1, 0] == 7).sum()) == 4  # the corner square keeps only its 2×2 inside the image


@pytest.mark.parametrize("name", ["none", "crop-flip", "resized-crop-flip"])
def test_cutout_follows_the_base_augmentation_with_the_mean_pixel(name):
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    aug = run_augment(name, 6, [0.2, 0.4, 0.6])
    params = aug.draw(torch.Generator().manual_seed(3), 64, 2)
    out = aug.apply(x, params, 2)
    base = AUGMENTS.get(name)
    before = base.apply(x, params[:, :-2], 2) if base else x  # the base's part of the draws, unchanged
    fill = torch.tensor([51, 102, 153], dtype=torch.uint8).view(1, 3, 1, 1)
    changed = (out != before).any(1)  # pixels cutout touched
    assert bool((out == fill).all(1)[changed].all())  # every touched pixel is the mean pixel
    per_image = (out == fill).all(1).flatten(1).sum(1)
    assert int(per_image.max()) == 36 and int(per_image.min()) >= 9  # 6×6 inside, at least 3×3 at a corner
    assert run_augment(name, 0, [0.5] * 3) is base  # cutout 0: the base augmentation as it was


def test_a_short_run_learns(digits):
    inputs, build = digits
    sched = compile_schedule({"type": "onecycle", "max_lr": 0.1}, plan_for(inputs))
    res = train_run(build, inputs, sched, TRAIN, seed=0, device=torch.device("cpu"), progress=False)
    assert res.status == "ok"
    losses = [e["train_loss"] for e in res.epochs]
    assert len(losses) == 5 and losses[-1] < 0.7 * losses[0]
    assert res.epochs[-1]["val_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert res.test_pred is not None and res.test_pred.shape == inputs.test.labels.shape


def test_same_seed_same_start_for_every_schedule(digits):
    inputs, build = digits
    cfg = TrainConfig(epochs=1, batch_size=32)
    plan = plan_for(inputs, cfg)

    def run(spec: dict, seed: int):
        return train_run(build, inputs, compile_schedule(spec, plan), cfg, seed, torch.device("cpu"), progress=False)

    constant, onecycle = {"type": "constant", "lr": 0.05}, {"type": "onecycle", "max_lr": 0.1}
    a, b, c, a2 = run(constant, 3), run(onecycle, 3), run(constant, 4), run(constant, 3)
    assert a.init_hash == b.init_hash != c.init_hash
    assert a.epochs[0]["train_loss"] == a2.epochs[0]["train_loss"]  # deterministic on CPU


def test_logged_losses_are_means_even_when_epochs_split_the_log_window(digits):
    # 7 steps per epoch, a log every 10: a window that an epoch start or end cut short is still a mean, and
    # each step is in one window (an epoch's steps after its last log are logged at its end)
    inputs, build = digits
    cfg = TrainConfig(epochs=4, batch_size=64)
    assert steps_per_epoch(len(inputs.train), 64) == 7
    sched = compile_schedule({"type": "constant", "lr": 1e-9}, plan_for(inputs, cfg))  # the loss stays put
    res = train_run(build, inputs, sched, cfg, seed=0, device=torch.device("cpu"), progress=False)
    epoch_loss = sum(e["train_loss"] for e in res.epochs) / len(res.epochs)
    # the index of each window's last step, as in lr.csv: epoch ends (6, 13, 20, 27) and every 10th step (9, 19)
    assert [s for s, _ in res.step_losses] == [6, 9, 13, 19, 20, 27]
    # each epoch's row names its last step by index and that step's LR (the same numbering as lr.csv)
    assert [e["step"] for e in res.epochs] == [6, 13, 20, 27]
    assert all(abs(v - epoch_loss) < 0.2 * epoch_loss for _, v in res.step_losses), (res.step_losses, epoch_loss)


def test_a_huge_lr_diverges_cleanly(digits):
    inputs, build = digits
    cfg = TrainConfig(epochs=2, batch_size=32)
    sched = compile_schedule({"type": "constant", "lr": 1e4}, plan_for(inputs, cfg))
    res = train_run(build, inputs, sched, cfg, seed=0, device=torch.device("cpu"), progress=False)
    assert res.status == "diverged"
    assert res.diverged["lr"] == 1e4 and res.diverged["step"] > 0 and res.diverged["loss_of"] == "training"
    assert res.test_pred is None


def test_a_divergence_only_the_validation_pass_sees_says_its_loss_is_the_validation_loss(digits, monkeypatch):
    from lrlab import training

    inputs, build = digits
    cfg = TrainConfig(epochs=2, batch_size=64)
    sched = compile_schedule({"type": "constant", "lr": 1e-9}, plan_for(inputs, cfg))
    monkeypatch.setattr(training, "evaluate", lambda *a, **k: (float("nan"), 0.0, None))  # weights gone at the end
    res = train_run(build, inputs, sched, cfg, seed=0, device=torch.device("cpu"), progress=False)
    assert res.status == "diverged" and res.diverged["loss_of"] == "validation" and res.diverged["epoch"] == 1


def test_divergence_within_epochs_shorter_than_the_log_window_is_caught(digits):
    # 3 steps per epoch, 6 in all: the 10-step check never runs, the epoch-end one must
    inputs, build = digits
    cfg = TrainConfig(epochs=2, batch_size=160)
    assert steps_per_epoch(len(inputs.train), 160) == 3
    sched = compile_schedule({"type": "constant", "lr": 100.0}, plan_for(inputs, cfg))
    res = train_run(build, inputs, sched, cfg, seed=0, device=torch.device("cpu"), progress=False)
    assert res.status == "diverged" and res.diverged["step"] in (2, 5), res.epochs  # indices of epochs' last steps


def test_batch_larger_than_data_is_refused():
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        steps_per_epoch(100, 128)


def test_aux_heads_are_trained(digits):
    inputs, _ = digits

    def build():
        return build_model(ModelConfig(width=0.125, aux_heads=True), 10, 1, (8, 8))

    cfg = TrainConfig(epochs=1, batch_size=32)
    torch.manual_seed(0)
    before = build().aux1.fc2.weight.detach().clone()
    from lrlab.training import Trainer

    trainer = Trainer(build, inputs, compile_schedule({"type": "constant", "lr": 0.05}, plan_for(inputs, cfg)), cfg, 0,
                      torch.device("cpu"))  # fmt: skip
    from tqdm import tqdm

    trainer.train_epoch(1, tqdm(disable=True))
    assert not torch.equal(trainer.model.aux1.fc2.weight, before)  # the auxiliary loss reached its head


def test_speed_switches_on_the_cpu(digits):
    """bf16 autocast, channels_last, data held 'on the device', weight EMA and flip TTA all run
    and learn on the CPU (the GPU defaults turn the first three on)."""
    inputs, build = digits
    cfg = TrainConfig(epochs=5, batch_size=32, precision="bf16", channels_last="on", data_on_device="on", ema=0.9,
                      tta_flip=True)  # fmt: skip
    sched = compile_schedule({"type": "onecycle", "max_lr": 0.1}, plan_for(inputs, cfg))
    res = train_run(build, inputs, sched, cfg, seed=0, device=torch.device("cpu"), progress=False)
    assert res.status == "ok" and res.epochs[-1]["val_accuracy"] > 0.4
    assert res.epochs[-1]["train_loss"] < 0.8 * res.epochs[0]["train_loss"]


def test_with_ema_the_run_returns_the_weights_its_test_predictions_are_of(digits):
    from lrlab.training import Normalize, evaluate

    inputs, build = digits
    cfg = TrainConfig(epochs=2, batch_size=32, ema=0.9)
    sched = compile_schedule({"type": "constant", "lr": 0.1}, plan_for(inputs, cfg))
    res = train_run(build, inputs, sched, cfg, seed=0, device=torch.device("cpu"), progress=False)
    norm = Normalize.of(inputs.mean, inputs.std, torch.device("cpu"))
    _, _, pred = evaluate(res.model, inputs.test, norm, torch.device("cpu"))
    assert torch.equal(pred, res.test_pred)  # model.pt's weights: the average's, not the last step's


def test_evaluation_passes_are_sized_by_pixels_and_give_the_same_answer(digits, monkeypatch):
    # 1,024 images of 224×224 at a time took about 7 GB of activations a process at full width
    from lrlab import training
    from lrlab.training import Normalize, eval_batch, evaluate

    assert eval_batch((32, 32)) == eval_batch((8, 8)) == 1024 and eval_batch((224, 224)) == 83
    assert eval_batch((4096, 4096)) == 1
    inputs, build = digits
    torch.manual_seed(0)
    model, norm, cpu = build(), Normalize.of(inputs.mean, inputs.std, torch.device("cpu")), torch.device("cpu")
    whole = evaluate(model, inputs.test, norm, cpu)
    monkeypatch.setattr(training, "EVAL_PIXELS", 7 * 8 * 8)  # 7 images a pass: the last pass a short one
    loss, acc, pred = evaluate(model, inputs.test, norm, cpu)
    assert torch.equal(pred, whole[2]) and acc == whole[1] and loss == pytest.approx(whole[0], rel=1e-5)


def test_resized_crops_of_a_wide_image_have_the_drawn_pixel_aspect():
    from lrlab.augment import RESIZED_RATIO, RESIZED_SCALE, draw_resized_crop_flip, resized_crop_maps

    theta = resized_crop_maps(draw_resized_crop_flip(torch.Generator().manual_seed(0), 20_000), 64, 128)
    cw, ch = theta[:, 0, 0].abs(), theta[:, 1, 1]
    whole = (cw < 1) & (ch < 1)  # not clipped at a border
    aspect = cw[whole] * 128 / (ch[whole] * 64)  # width / height in pixels
    assert RESIZED_RATIO[0] - 1e-5 <= aspect.min() and aspect.max() <= RESIZED_RATIO[1] + 1e-5
    assert RESIZED_SCALE[0] - 1e-5 <= (cw * ch)[whole].min() and (cw * ch).max() <= 1 + 1e-6
    assert aspect.min() < 0.8 and aspect.max() > 1.25  # the whole range is drawn (was 1.5 to 2.7 here)


@pytest.mark.parametrize(("h", "w"), [(224, 224), (120, 160), (64, 200)])
def test_resized_crops_are_drawn_as_torchvision_draws_them(h, w):
    """The crops' area and aspect ratio, in pixels of an h×w image, against torchvision's RandomResizedCrop: a
    crop that did not fit was clipped to the image (mean area 0.535 of a 224×224 image against 0.481), where
    torchvision draws again and, after ten misses, takes a centred crop of the whole image."""
    from torchvision.transforms import RandomResizedCrop

    from lrlab.augment import draw_resized_crop_flip, resized_crop_maps

    n = 20_000
    theta = resized_crop_maps(draw_resized_crop_flip(torch.Generator().manual_seed(0), n), h, w)
    ours = torch.stack([theta[:, 0, 0].abs() * theta[:, 1, 1], theta[:, 0, 0].abs() * w / (theta[:, 1, 1] * h)], 1)
    torch.manual_seed(0)
    image = torch.empty(1, h, w)
    boxes = torch.tensor([RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)])
    theirs = torch.stack([boxes[:, 2] * boxes[:, 3] / (h * w), boxes[:, 3] / boxes[:, 2]], 1).float()
    # means and quartiles of the area and the aspect agree within sampling error and torchvision's whole pixels
    for k in range(2):
        for q in (0.25, 0.5, 0.75):
            assert ours[:, k].quantile(q).item() == pytest.approx(theirs[:, k].quantile(q).item(), rel=0.03), (k, q)
        assert ours[:, k].mean().item() == pytest.approx(theirs[:, k].mean().item(), rel=0.02), k
    assert (theta[:, 0, 0].abs() <= 1).all() and (theta[:, 1, 1] <= 1).all()  # inside the image
    # an image no drawn crop fits (20 times as wide as high): torchvision's centred crop at the widest ratio, 4/3
    wide = resized_crop_maps(draw_resized_crop_flip(torch.Generator().manual_seed(1), 100), 10, 200)
    assert torch.allclose(wide[:, 0, 0].abs(), torch.tensor(4 / 3 / 20)) and (wide[:, 1, 1] == 1).all()
    assert (wide[:, :, 2] == 0).all()  # centred


def test_a_resized_crop_is_torchvisions_crop_then_resize():
    """Corner crops of a quarter (a whole number of pixels), mirrored or not: the crop resized as torchvision's
    resized_crop does it (crop, then bilinear resize). The crop's edge pixels must not blend in the pixels beyond
    it (they did, by up to 54 grey levels)."""
    from torchvision.transforms.v2 import functional as TF

    from lrlab.augment import RESIZED_ATTEMPTS, apply_resized_crop_flip

    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    # (width, height as fractions; centre's place; mirror): top left, bottom right mirrored, left half, all
    rows = torch.tensor([[0.5, 0.5, 0, 0, 1], [0.5, 0.5, 1, 1, -1], [0.5, 1, 0, 0, 1], [1, 1, 0, 0, -1]])
    # as drawn: each crop's sides in every attempt (the first fits a square image), then centre and mirror
    params = torch.cat([rows[:, :2].repeat(1, RESIZED_ATTEMPTS), rows[:, 2:]], 1)
    out = apply_resized_crop_flip(x, params)
    boxes = [(0, 0, 16, 16), (16, 16, 16, 16), (0, 0, 32, 16), (0, 0, 32, 32)]  # top, left, height, width
    for i, (box, mirror) in enumerate(zip(boxes, rows[:, 4] < 0, strict=True)):
        theirs = TF.resized_crop(x[i], *box, size=[32, 32], antialias=False)
        theirs = theirs.flip(-1) if mirror else theirs
        assert (out[i].int() - theirs.int()).abs().max() <= 1, i


def test_resized_crop_flip_on_the_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 24, 24), dtype=torch.uint8, generator=g)
    out = resized_crop_flip(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert not torch.equal(out, x) and len({tuple(o.flatten()[:20].tolist()) for o in out}) == 16  # per sample
    # a constant image stays constant whatever the crop (the resampling only moves pixels)
    flat = torch.full((4, 1, 24, 24), 77, dtype=torch.uint8)
    assert torch.equal(resized_crop_flip(flat, torch.Generator().manual_seed(2)), flat)
    # the same draws with two "ranks" give each its share of one process's result
    from lrlab.distributed import Dist

    whole = resized_crop_flip(x, torch.Generator().manual_seed(3))
    share = resized_crop_flip(x[1::2], torch.Generator().manual_seed(3), 0, Dist(rank=1, world=2))
    assert torch.equal(share, whole[1::2])


@pytest.mark.parametrize("name", ["crop-flip", "resized-crop-flip", "crop-flip+cutout"])
@pytest.mark.parametrize("world", [1, 2])
def test_an_epochs_draws_made_up_front_equal_per_batch_draws(name, world):
    """The trainer draws an epoch's augmentation parameters at its start (one copy to the device);
    each batch must get exactly what drawing at that batch would have given it, on every rank."""
    from lrlab.distributed import Dist

    aug = run_augment("crop-flip", 5, [0.5] * 3) if name.endswith("+cutout") else AUGMENTS[name]
    x = torch.randint(0, 256, (3, 8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for rank in range(world):
        d = Dist(rank=rank, world=world)
        draws = aug.epoch_draws(torch.Generator().manual_seed(5), 3, 8 * world, 2, torch.device("cpu"), d)
        assert draws.shape[:2] == (3, 8)
        per_batch = torch.Generator().manual_seed(5)
        for step in range(3):
            assert torch.equal(aug.apply(x[step], draws[step], 2), aug(x[step], per_batch, 2, d))


def test_auto_augmentation_by_image_size():
    from types import SimpleNamespace

    from lrlab.study import resolve_augment

    assert resolve_augment("auto", SimpleNamespace(name="digits", image_size=(8, 8))) == "none"
    assert resolve_augment("auto", SimpleNamespace(name="cifar10", image_size=(32, 32))) == "crop-flip"
    assert resolve_augment("auto", SimpleNamespace(name="imagefolder:x", image_size=(224, 224))) == "resized-crop-flip"
    assert resolve_augment("crop-flip", SimpleNamespace(name="digits", image_size=(8, 8))) == "crop-flip"


def test_ema_follows_torchs_ema_rule():
    """lrlab's EMA (no host reads per update) gives what torch's AveragedModel with its EMA function gives."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from lrlab.training import EMA

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    model(torch.randn(2, 3, 6, 6))
    ours, ref = EMA(model, 0.8), AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.8), use_buffers=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(4):
        model(torch.randn(8, 3, 6, 6)).square().mean().backward()
        opt.step()
        ours.update_parameters(model)
        ref.update_parameters(model)
    for (k, a), b in zip(ours.module.state_dict().items(), ref.module.state_dict().values(), strict=True):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, msg=k)
    assert not torch.equal(ours.module[0].weight, model[0].weight)  # an average, not a copy
    again = EMA(model, 0.8)
    again.load_state_dict(ours.state_dict())
    assert again.updates == 4


def test_compilation_time_is_kept_out_of_the_run_seconds(digits, monkeypatch):
    """A compiled run's first step carries the compilation; it is reported apart (compile_seconds)
    and taken off the epoch and run seconds, so a study's first run is not charged for it.
    torch.compile is replaced by a wrapper whose first call moves the clock on by 100 s, standing in for
    compilation (a real sleep's second was lost among the first step's own start-up on a loaded machine)."""
    import time

    real, offset = time.perf_counter, [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: real() + offset[0])

    class SlowFirstCall(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.calls = net, 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 1:
                offset[0] += 100.0
            return self.net(x)

    monkeypatch.setattr(torch, "compile", lambda net, mode="default": SlowFirstCall(net))
    inputs, build = digits
    cfg = TrainConfig(epochs=2, batch_size=64, compile=True)
    sched = compile_schedule({"type": "constant", "lr": 0.05}, plan_for(inputs, cfg))
    res = train_run(build, inputs, sched, cfg, seed=0, device=torch.device("cpu"), progress=False)
    assert 99 < res.compile_seconds < 110  # less the other steps' mean, plus the first step's own start-up
    first, second = (e["seconds"] for e in res.epochs)
    assert first < second + 10  # the 100 s are not in the first epoch's time
    assert res.seconds < first + second + 10


def test_line_bar_writes_a_line_when_due_and_only_with_news(capsys):
    bar = LineBar(total=20, initial=5, desc="onecycle s1", every=3600.0)
    bar.update(1)
    bar.set_postfix(loss="0.500", lr="0.1", refresh=False)
    assert capsys.readouterr().err == ""  # not due yet
    bar.close()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("onecycle s1: step 6/20 (30%), ") and line.endswith(", loss 0.500, lr 0.1"), line
    bar.refresh()
    assert capsys.readouterr().err == ""  # nothing new since the last line
    due = LineBar(total=4, desc="x", every=0.0)
    for _ in range(4):
        due.update(1)
    assert [x.split(",")[0] for x in capsys.readouterr().err.splitlines()] == [
        f"x: step {k}/4 ({k * 25}%)" for k in (1, 2, 3, 4)
    ]


def test_a_checkpoint_that_counted_steps_resumes_into_step_indices(digits):
    """Checkpoints of lrlab before 2026-11-27 counted steps in its epoch records and loss windows; loaded,
    their records are turned into step indices, so that one run's epochs.csv has one numbering."""
    from tqdm import tqdm

    from lrlab.training import Trainer

    inputs, build = digits
    cfg = TrainConfig(epochs=3, batch_size=64)
    sched = compile_schedule({"type": "constant", "lr": 0.05}, plan_for(inputs, cfg))
    trainer = Trainer(build, inputs, sched, cfg, 0, torch.device("cpu"))
    for epoch in (1, 2):
        trainer.train_epoch(epoch, tqdm(disable=True))
    state = trainer.state_dict()
    assert state["step_index"] and [e["step"] for e in state["epochs"]] == [6, 13]  # 7 steps an epoch
    old = {**state, "epochs": [{**e, "step": e["step"] + 1} for e in state["epochs"]],
           "step_losses": [(s + 1, v) for s, v in state["step_losses"]]}  # fmt: skip
    del old["step_index"]
    for doc in (state, old):
        again = Trainer(build, inputs, sched, cfg, 0, torch.device("cpu"))
        again.load_state_dict(doc)
        assert [e["step"] for e in again.epochs] == [6, 13] and again.step_losses == trainer.step_losses


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_decay_norm_bias_off_spares_batchnorm_and_biases(optimizer):
    # one step with zero gradients: only weight decay moves a parameter
    from lrlab.training import make_optimizer

    torch.manual_seed(0)
    model = build_model(ModelConfig(width=0.125), 10, 3, (32, 32))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for keep in (True, False):
        cfg = TrainConfig(optimizer=optimizer, weight_decay=0.1, decay_norm_bias=keep, momentum=0.0)
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(before[n] + 0.5)  # biases and BN shifts start at 0: move them off it
        opt = make_optimizer(model, cfg, lr=0.5)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        moved = {n: not torch.equal(p, before[n] + 0.5) for n, p in model.named_parameters()}
        one_d = [n for n, p in model.named_parameters() if p.ndim == 1]
        assert any(".bn." in n for n in one_d) and "fc.bias" in one_d
        assert all(moved[n] for n, p in model.named_parameters() if p.ndim > 1)
        assert all(moved[n] == keep for n in one_d)
