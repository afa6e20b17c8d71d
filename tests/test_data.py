"""Tests for lrlab.data: every source is built here, in tmp_path, from small generated images."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.utils
from PIL import Image

from lrlab import data
from lrlab.config import DataConfig
from lrlab.data import DATASETS, _hash, check_source, fetch_cifar, load_data
from lrlab.errors import ConfigError, DataError

CLASSES = ["cat", "dog", "frog"]


def write_images(root: Path, classes=CLASSES, n=12, size=(8, 8), mode="RGB", ext="png", seed=0) -> Path:
    """root/<class>/<i>.<ext>: n random images per class."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": (3,), "L": ()}[mode]
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size[1], size[0], *channels), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / c / f"{i:03d}.{ext}")
    return root


def make_tree(root: Path, **kw) -> Path:
    write_images(root / "train", **kw)
    return root


def make_tgz(src: Path, out: Path, top: str | None = None) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(src).as_posix()
            tar.add(p, arcname=f"{top}/{rel}" if top else rel, recursive=False)
    return out


def cfg_for(path: Path, **kw) -> DataConfig:
    return DataConfig(name=f"imagefolder:{path}", **kw)


def splits(ds: data.Dataset) -> list[data.Split]:
    return [ds.train, ds.val, ds.test]


def make_cifar(root: Path, name: str = "cifar10", per_batch: int = 30, n_test: int = 30) -> Path:
    """The official python layout with random images; labels cycle through the classes."""
    rng = np.random.default_rng(1)
    if name == "cifar10":
        folder, n_classes, label_key = root / "cifar-10-batches-py", 10, b"labels"
        train = [f"data_batch_{i}" for i in range(1, 6)]
        test, meta, names_key = "test_batch", "batches.meta", b"label_names"
    else:
        folder, n_classes, label_key = root / "cifar-100-python", 100, b"fine_labels"
        train, test, meta, names_key = ["train"], "test", "meta", b"fine_label_names"
    folder.mkdir(parents=True)

    def dump(file: str, n: int) -> None:
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {b"data": pixels, label_key: list(np.arange(n) % n_classes)}
        (folder / file).write_bytes(pickle.dumps(batch))

    for f in train:
        dump(f, per_batch)
    dump(test, n_test)
    (folder / meta).write_bytes(pickle.dumps({names_key: [f"c{i}".encode() for i in range(n_classes)]}))
    return folder


# ---- image folders ------------------------------------------------------------------------------


def test_folder_shapes_labels_and_stratification(tmp_path):
    ds = load_data(cfg_for(make_tree(tmp_path / "d")))
    assert ds.classes == CLASSES and ds.num_classes == 3
    assert ds.in_channels == 3 and ds.image_size == (8, 8)
    assert ds.test_source == "held out from the training pool"
    assert sum(len(s) for s in splits(ds)) == 36
    for s in splits(ds):
        assert s.images.dtype == torch.uint8 and s.labels.dtype == torch.int64
        assert s.images.shape == (len(s), 3, 8, 8)
        assert sorted(s.labels.unique().tolist()) == [0, 1, 2]  # every class in every split
    mean, std = ds.channel_stats()
    x = ds.train.images.double() / 255
    assert np.allclose(mean, x.mean((0, 2, 3))) and np.allclose(std, x.std((0, 2, 3), unbiased=False))


def test_folder_pixels_and_labels_match_the_files(tmp_path):
    root = make_tree(tmp_path / "d", n=4)
    ds = load_data(cfg_for(root, val_frac=0.25, test_frac=0.25))
    files = {np.asarray(Image.open(p)).tobytes(): CLASSES.index(p.parent.name) for p in root.rglob("*.png")}
    for s in splits(ds):
        for img, label in zip(s.images, s.labels, strict=True):
            assert files[img.permute(1, 2, 0).numpy().tobytes()] == label


def test_split_is_deterministic_and_follows_the_seed(tmp_path):
    root = make_tree(tmp_path / "d")
    a, b = load_data(cfg_for(root)), load_data(cfg_for(root))
    c = load_data(cfg_for(root, split_seed=1))
    for sa, sb in zip(splits(a), splits(b), strict=True):
        assert torch.equal(sa.images, sb.images) and torch.equal(sa.labels, sb.labels)
    assert a.files_hash == b.files_hash == c.files_hash
    assert not torch.equal(a.val.images, c.val.images)


@pytest.mark.parametrize("top", [None, "cifar-small", "."])
def test_archive_gives_the_same_dataset_as_the_folder(tmp_path, top):
    root = make_tree(tmp_path / "d")
    (root / "test").mkdir()
    write_images(root / "test", n=3, seed=5)
    archive = make_tgz(root, tmp_path / "d.tar.gz", top)
    folder, packed = load_data(cfg_for(root)), load_data(cfg_for(archive))
    assert packed.classes == folder.classes and packed.test_source == "official test split"
    for sf, sp in zip(splits(folder), splits(packed), strict=True):
        assert torch.equal(sf.images, sp.images) and torch.equal(sf.labels, sp.labels)
    assert packed.files_hash == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert folder.files_hash != packed.files_hash


def test_tgz_suffix_and_folder_hash_tracks_bytes(tmp_path):
    root = make_tree(tmp_path / "d")
    ds = load_data(cfg_for(make_tgz(root, tmp_path / "d.tgz")))
    assert len(ds.train) + len(ds.val) + len(ds.test) == 36
    before = load_data(cfg_for(root)).files_hash
    with open(root / "train" / "cat" / "000.png", "ab") as f:
        f.write(b"\0")  # PNG readers ignore trailing bytes; the hash must not
    assert load_data(cfg_for(root)).files_hash != before


def test_test_folder_is_the_test_split(tmp_path):
    root = make_tree(tmp_path / "d", n=10)
    write_images(root / "test", classes=["cat", "frog"], n=2, seed=9)
    ds = load_data(cfg_for(root))
    assert ds.test_source == "official test split"
    assert len(ds.test) == 4 and ds.test.labels.tolist() == [0, 0, 2, 2]
    assert len(ds.train) + len(ds.val) == 30 and len(ds.val) == math.ceil(0.15 * 30)


@pytest.mark.parametrize("with_test", [False, True])
def test_a_val_folder_is_the_validation_split(tmp_path, with_test):
    """An ImageFolder tree with val/ (train/val/test, or train/val as ImageNet's): val/ is the validation
    split, none is carved from train/; under a limit it keeps its size relative to train/."""
    root = make_tree(tmp_path / "d", n=20)
    write_images(root / "val", classes=["cat", "dog"], n=5, seed=7)
    if with_test:
        write_images(root / "test", n=3, seed=8)
    ds = load_data(cfg_for(root))
    assert len(ds.val) == 10 and ds.val.labels.tolist() == [0] * 5 + [1] * 5
    with_val = {img.numpy().tobytes() for img in ds.val.images}
    val_files = {np.asarray(Image.open(f)).transpose(2, 0, 1).tobytes() for f in sorted((root / "val").rglob("*.png"))}
    assert with_val == val_files
    if with_test:
        assert (len(ds.train), len(ds.test), ds.test_source) == (60, 9, "official test split")
    else:  # test is still carved from train/, val is not
        assert (len(ds.train), len(ds.test)) == (60 - math.ceil(0.15 * 60), math.ceil(0.15 * 60))
    limited = load_data(cfg_for(root, limit=40))
    train_frac = 1.0 if with_test else 0.85  # the pool's share that train gets: val/ is not drawn from it
    assert len(limited.train) == 40 and len(limited.val) == math.ceil(40 * (10 / 60) / train_frac)
    (root / "val" / "bird").mkdir()
    write_images(root / "val", classes=["bird"], n=1)
    with pytest.raises(DataError, match=r"class folder .*val/bird is not a class of train/"):
        load_data(cfg_for(root))


def test_a_valid_or_validation_folder_is_the_validation_split_too(tmp_path):
    """Kaggle's trees name it valid/: it was left unread, without a word, and validation carved from train/."""
    root = make_tree(tmp_path / "d", n=10)
    write_images(root / "valid", n=4, seed=7)
    ds = load_data(cfg_for(root))
    assert len(ds.val) == 12 and len(ds.train) + len(ds.test) == 30
    (root / "valid").rename(root / "validation")
    assert len(load_data(cfg_for(root)).val) == 12
    write_images(root / "val", n=2, seed=8)
    with pytest.raises(DataError, match=r"d/val, .*d/validation: each is a validation folder; keep one"):
        load_data(cfg_for(root))


def test_limit_sizes_and_every_class_kept(tmp_path):
    root = make_tree(tmp_path / "d", n=40)
    ds = load_data(cfg_for(root, limit=30))
    cap = math.ceil(30 * 0.15 / 0.7)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (30, cap, cap)
    for s in splits(ds):
        assert s.labels.bincount().min() >= 1
    full = load_data(cfg_for(root))
    # the limited splits are subsets of the full ones (limit subsamples after splitting)
    full_val = {img.numpy().tobytes() for img in full.val.images}
    assert all(img.numpy().tobytes() in full_val for img in ds.val.images)
    tiny = load_data(cfg_for(root, limit=1))  # at least one image per class
    assert [len(s) for s in splits(tiny)] == [3, 3, 3]
    assert [len(s) for s in splits(load_data(cfg_for(root, limit=10_000)))] == [84, 18, 18]


@pytest.mark.parametrize("limit, rare", [(None, 3), (None, 6), (3, 6), (10, 6), (20, 6)])
def test_small_classes_keep_an_image_in_every_split(tmp_path, limit, rare):
    # a stratified draw rounds a class's share: 3 of classes of 100, 6 and 6 were 3 of the first, and 32 of
    # classes of 200, 3, 3 and 3 lacked two of the small ones
    root = write_images(tmp_path / "d" / "train", classes=["common"], n=200 if rare == 3 else 100, size=(4, 4))
    write_images(root, classes=["rare1", "rare2", "rare3"][: 3 if rare == 3 else 2], n=rare, size=(4, 4), seed=1)
    ds = load_data(cfg_for(tmp_path / "d", limit=limit))
    classes = list(range(ds.num_classes))
    for s in splits(ds):
        assert sorted(s.labels.unique().tolist()) == classes
    if limit is not None:
        assert len(ds.train) == max(limit, 3)
    seen = [img.numpy().tobytes() for s in splits(ds) for img in s.images]
    assert len(seen) == len(set(seen))  # no image in two splits
    if limit is None:
        assert len(seen) == (209 if rare == 3 else 112)


def test_too_few_images_left_for_a_split_names_the_class_and_the_keys(tmp_path):
    root = make_tree(tmp_path / "d", n=3)  # 3 per class: test_frac 0.5 takes 2 of some class
    with pytest.raises(DataError, match=r"hold out .* as the val split.*class '\w+' has 1 image left.*data\.test_frac"):
        load_data(cfg_for(root, test_frac=0.5))


def test_limit_decodes_only_the_chosen_images(tmp_path, monkeypatch):
    archive = make_tgz(make_tree(tmp_path / "d", n=100, ext="jpg"), tmp_path / "d.tar.gz")
    opened = []
    real_open = data.Image.open
    monkeypatch.setattr(data.Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    ds = load_data(cfg_for(archive, limit=30))
    assert len(opened) == len(ds.train) + len(ds.val) + len(ds.test) == 30 + 2 * math.ceil(30 * 0.15 / 0.7)


def test_grey_images_give_one_channel_and_mixed_give_three(tmp_path):
    grey = make_tree(tmp_path / "g", mode="L")
    ds = load_data(cfg_for(grey))
    assert ds.in_channels == 1 and ds.train.images.shape[1:] == (1, 8, 8)
    write_images(grey / "train", classes=["cat"], n=1, mode="RGB", seed=3)  # overwrites cat/000.png
    assert load_data(cfg_for(grey)).in_channels == 3


@pytest.mark.parametrize("archived", [False, True])
def test_a_grey_pick_of_a_tree_with_colour_images_is_read_in_colour(tmp_path, archived):
    # the channels are the data's: a --limit or split seed that misses the one colour image changes no model
    root = make_tree(tmp_path / "g", mode="L", n=20, classes=["a", "b"])
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8), "RGB").save(root / "train" / "a" / "zz.png")
    src = make_tgz(root, tmp_path / "g.tar") if archived else root
    for seed in range(4):
        cfg = cfg_for(src, limit=2, split_seed=seed, val_frac=0.1, test_frac=0.1)
        ds = load_data(cfg)
        assert ds.in_channels == 3 and ds.train.images.shape[1] == 3
        grey = ds.train.images[:, :1]
        assert torch.equal(ds.train.images, grey.expand(-1, 3, -1, -1))  # grey images stay grey in RGB
        if not archived:
            assert load_data(dataclasses.replace(cfg, stream=True)).in_channels == 3
    assert load_data(cfg_for(make_tree(tmp_path / "all-grey", mode="L"), limit=2)).in_channels == 1


def test_streaming_reads_every_header_like_memory_reads_every_image(tmp_path):
    # 900 grey images and one RGB one, which a sample of every third image (the old check) missed
    grey = make_tree(tmp_path / "g", mode="L", n=300)
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8), "RGB").save(grey / "train" / "dog" / "001.png")
    memory, streamed = load_data(cfg_for(grey)), load_data(cfg_for(grey, stream=True))
    assert memory.in_channels == streamed.in_channels == 3
    assert torch.equal(streamed.train.images[torch.arange(len(streamed.train))], memory.train.images)
    Image.fromarray(np.zeros((10, 10), np.uint8), "L").save(grey / "train" / "cat" / "050.png")
    with pytest.raises(DataError, match=r"10×10 in .*cat/050\.png.*data\.image_size"):
        load_data(cfg_for(grey, stream=True))  # up front, not as a collate error mid-training


def test_channel_statistics_are_the_same_streamed_or_in_memory(tmp_path, monkeypatch):
    """From one even sample of the training images in both: streamed, reading every image for them is out of the
    question, and statistics from all images in memory made a streamed run of more than the sample's images train
    unlike the same run held in memory."""
    monkeypatch.setattr(data, "STATS_SAMPLE", 7)  # fewer than the 30-odd training images
    root = make_tree(tmp_path / "t", n=15)
    memory, streamed = load_data(cfg_for(root)), load_data(cfg_for(root, stream=True))
    assert streamed.streamed and not memory.streamed
    assert len(memory.train) > 7 and memory.channel_stats() == streamed.channel_stats()


def test_a_file_that_fails_mid_stream_is_named_in_one_line(tmp_path):
    from lrlab.training import batches

    root = make_tree(tmp_path / "d", size=(32, 32))
    bad = root / "train" / "dog" / "003.png"
    bad.write_bytes(bad.read_bytes()[:200])  # the header reads; the pixels do not
    ds = load_data(cfg_for(root, stream=True, val_frac=0.1, test_frac=0.1))
    split = next(s for s in splits(ds) if any(f.endswith("003.png") and "dog" in f for f in s.images.files))
    with pytest.raises(DataError) as e:
        list(batches(split, 1, torch.arange(len(split)), torch.device("cpu"), workers=1))
    assert str(e.value).startswith("cannot read image ") and "dog/003.png" in str(e.value)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_sixteen_bit_grey_keeps_its_top_bits(tmp_path):
    root = make_tree(tmp_path / "d", classes=["cat", "dog"], mode="L")
    values = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000  # 0 .. 63,000
    Image.fromarray(values).save(root / "train" / "cat" / "000.png")  # a 16-bit PNG
    assert Image.open(root / "train" / "cat" / "000.png").mode.startswith("I")
    ds = load_data(cfg_for(root, val_frac=0.1, test_frac=0.1))
    images = torch.cat([s.images for s in splits(ds)])
    assert any(torch.equal(im[0], torch.from_numpy((values >> 8).astype(np.uint8))) for im in images)


def test_32_bit_grey_is_read_as_16_bit_whatever_its_values(tmp_path):
    root = make_tree(tmp_path / "d", classes=["cat", "dog"], mode="L")
    dark = np.arange(64, dtype=np.int32).reshape(8, 8) * 3  # at most 189: a dark 16-bit frame
    bright = dark * 300 + 3
    for name, values in (("000", dark), ("001", bright)):
        (root / "train" / "cat" / f"{name}.png").unlink()
        Image.fromarray(values).save(root / "train" / "cat" / f"{name}.tif")
    assert Image.open(root / "train" / "cat" / "000.tif").mode == "I"
    ds = load_data(cfg_for(root, val_frac=0.1, test_frac=0.1))
    images = {im.numpy().tobytes() for s in splits(ds) for im in s.images}
    for values in (dark, bright):
        assert (values >> 8).astype(np.uint8)[None].tobytes() in images  # the dark frame stays dark


@pytest.mark.parametrize("archived", [False, True])
def test_hidden_files_and_folders_are_skipped(tmp_path, archived):
    root = make_tree(tmp_path / "d")
    plain = load_data(cfg_for(root))
    (root / "train" / ".ipynb_checkpoints").mkdir()
    write_images(root / "train" / "cat" / ".thumbs", classes=["x"], n=2)
    (root / "train" / "dog" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata
    source = make_tgz(root, tmp_path / "d.tar.gz") if archived else root
    ds = load_data(cfg_for(source))
    assert ds.classes == CLASSES and all(
        torch.equal(a.images, b.images) for a, b in zip(splits(ds), splits(plain), strict=True)
    )


def test_differing_sizes_need_image_size(tmp_path):
    root = make_tree(tmp_path / "d", classes=["cat", "dog"])
    write_images(root / "train", classes=["frog"], size=(10, 6))
    with pytest.raises(DataError, match=r"data\.image_size") as e:
        load_data(cfg_for(root))
    assert "height×width 8×8" in str(e.value) and "6×10" in str(e.value)  # in the header's order: 6 high, 10 wide
    assert str(e.value).endswith(
        "e.g. --set data.image_size=6 (stretched; data.crop_to_aspect_ratio = true keeps "
        "their aspect ratio, cropping the centre)"
    )  # (6: none enlarged)
    write_images(tmp_path / "p" / "train", classes=["a"], size=(300, 200))
    write_images(tmp_path / "p" / "train", classes=["b"], size=(224, 224))
    with pytest.raises(DataError, match=r"e\.g\. --set data\.image_size=200 \(or 64 for a small, fast model\) "):
        load_data(cfg_for(tmp_path / "p"))  # photos: not the 32 or 64 it once suggested alone
    ds = load_data(cfg_for(root, image_size=5))
    assert ds.image_size == (5, 5) and all(s.images.shape[1:] == (3, 5, 5) for s in splits(ds))


# ---- image folder errors ------------------------------------------------------------------------


def test_missing_path_and_missing_train_folder(tmp_path):
    with pytest.raises(DataError, match="nowhere") as e:
        load_data(cfg_for(tmp_path / "nowhere"))
    assert "--download" not in str(e.value) and "current folder" not in str(e.value)
    with pytest.raises(DataError, match=r"^nowhere does not exist \(from the current folder, /"):
        load_data(cfg_for(Path("nowhere")))  # relative: where it was looked for
    with pytest.raises(DataError, match=r"lrlab does not ship it: --data cifar10 --download fetches CIFAR-10$"):
        check_source(cfg_for(tmp_path / "data" / "cifar10-train.tar.gz"))  # the bundled CIFAR-10 configs' copy
    write_images(tmp_path / "flat")
    with pytest.raises(DataError, match=r"train/<class>/<image>") as e:
        check_source(cfg_for(tmp_path / "flat"))
    assert str(tmp_path / "flat") in str(e.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt"):
        check_source(cfg_for(tmp_path / "notes.txt"))


def test_an_unlabelled_test_folder_is_said_to_be_one(tmp_path):
    root = make_tree(tmp_path / "kaggle")
    write_images(root / "test", classes=["x"])
    for f in (root / "test" / "x").iterdir():  # Kaggle's test/: images without class folders
        f.rename(root / "test" / f.name)
    (root / "test" / "x").rmdir()
    with pytest.raises(DataError, match=r"no class folders in .*test; .*images without labels cannot be scored"):
        check_source(cfg_for(root))


def test_empty_class_folder_and_no_images(tmp_path):
    root = make_tree(tmp_path / "d")
    (root / "train" / "zebra").mkdir()
    with pytest.raises(DataError, match=r"train/zebra has no images$"):
        check_source(cfg_for(root))
    (root / "train" / "zebra" / "a.gif").write_bytes(b"GIF89a")  # not an image extension torchvision reads
    with pytest.raises(DataError, match=r"train/zebra has no images \(1 other file: image extensions are \.jpg"):
        check_source(cfg_for(root))
    (root / "train" / "zebra" / "a.gif").unlink()
    archive = make_tgz(root, tmp_path / "d.tar.gz")
    with pytest.raises(DataError, match=r"train/zebra in .*d\.tar\.gz has no images"):
        load_data(cfg_for(archive))
    empty = tmp_path / "e"
    for c in CLASSES:
        (empty / "train" / c).mkdir(parents=True)
        (empty / "train" / c / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images in"):
        load_data(cfg_for(empty))


def test_one_class_is_refused(tmp_path):
    root = tmp_path / "one"
    write_images(root / "train", classes=["cat"], n=4)
    with pytest.raises(DataError, match=r"one class folder in .*train \(cat\); a classifier needs at least two"):
        check_source(cfg_for(root))


def test_test_folder_with_unknown_class(tmp_path):
    root = make_tree(tmp_path / "d")
    write_images(root / "test", classes=["zebra"], n=2)
    with pytest.raises(DataError, match=r"test/zebra"):
        check_source(cfg_for(root))


@pytest.mark.parametrize("archived", [False, True])
def test_corrupt_image_is_named_by_load_but_not_check_source(tmp_path, archived):
    root = make_tree(tmp_path / "d")
    (root / "train" / "dog" / "005.png").write_bytes(b"not a png")
    source = make_tgz(root, tmp_path / "d.tar.gz") if archived else root
    check_source(cfg_for(source))  # listings only: the bad file is not decoded here
    with pytest.raises(DataError, match=r"train/dog/005\.png"):
        load_data(cfg_for(source))


def test_check_source_decodes_nothing(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "d")
    archive = make_tgz(root, tmp_path / "d.tar.gz")
    monkeypatch.setattr(data.Image, "open", lambda *a, **k: pytest.fail("check_source decoded an image"))
    check_source(cfg_for(root))
    check_source(cfg_for(archive))


@pytest.mark.parametrize("name, mode", [("d.tar.xz", "w:xz"), ("D.TAR.GZ", "w:gz"), ("d.tar.bz2", "w:bz2")])
def test_archives_tarfile_reads_are_taken_by_name(tmp_path, name, mode):
    root = make_tree(tmp_path / "d")
    with tarfile.open(tmp_path / name, mode) as tar:
        tar.add(root / "train", arcname="train")
    assert len(load_data(cfg_for(tmp_path / name)).train) == len(load_data(cfg_for(root)).train)
    (tmp_path / "d.zip").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"neither a folder nor a tar archive \(\.tar, \.tar\.gz"):
        check_source(cfg_for(tmp_path / "d.zip"))


def test_a_split_fraction_may_be_0_only_where_the_data_has_that_split(tmp_path):
    root = make_tree(tmp_path / "d", n=10)
    with pytest.raises(DataError, match=r"^data\.test_frac: must be above 0: .* no test split of its own"):
        load_data(cfg_for(root, test_frac=0))
    write_images(root / "test", n=2, seed=9)
    assert len(load_data(cfg_for(root, test_frac=0)).test) == 6
    with pytest.raises(DataError, match=r"^data\.val_frac: must be above 0"):
        load_data(cfg_for(root, val_frac=0))
    write_images(root / "val", n=2, seed=8)
    assert len(load_data(cfg_for(root, val_frac=0, test_frac=0)).val) == 6
    # a fraction set for a split the source gives is not read: said
    cfg = cfg_for(root, val_frac=0.3, test_frac=0.3)
    val, test = data.unread(cfg, load_data(cfg))
    assert val.startswith("data.val_frac not read: ") and "the val split of its own" in val
    assert test.startswith("data.test_frac not read: ") and "the test split of its own" in test
    (root / "val").rename(tmp_path / "elsewhere")  # drawn from train: read
    assert [n.split()[0] for n in data.unread(cfg, load_data(cfg))] == ["data.test_frac"]
    assert data.unread(cfg_for(root), load_data(cfg_for(root))) == []  # the defaults: nothing to say


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08 this is not gzip")
    with pytest.raises(DataError, match=r"bad\.tar\.gz"):
        check_source(cfg_for(bad))
    bad.write_bytes(bytes(range(256)) * 20)  # no compression's magic: tarfile lists a failed try per method
    with pytest.raises(DataError, match=r"expected a tar archive") as e:
        check_source(cfg_for(bad))
    assert "\n" not in str(e.value)


def test_too_few_images_in_a_class(tmp_path):
    root = make_tree(tmp_path / "d", classes=["cat", "dog"])
    write_images(root / "train", classes=["frog"], n=2)
    with pytest.raises(DataError, match=r"'frog'.* only 2 image"):
        load_data(cfg_for(root))


# ---- names, digits, CIFAR -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "imagefolder", "imagefolder:", "cifar"])
def test_unknown_dataset_lists_the_valid_ones(name):
    for call in (load_data, check_source):
        with pytest.raises(ConfigError) as e:
            call(DataConfig(name=name))
        for valid in ("'digits'", "'cifar10'", "'cifar100'", "'imagefolder:PATH'"):
            assert valid in str(e.value)
    assert set(DATASETS) == {"digits", "cifar10", "cifar100", "imagefolder"}


def test_digits():
    ds = load_data(DataConfig(name="digits"))
    assert sum(len(s) for s in splits(ds)) == 1797
    assert ds.in_channels == 1 and ds.image_size == (8, 8) and ds.num_classes == 10
    assert ds.test_source == "held out from the training pool"
    assert ds.train.images.dtype == torch.uint8 and int(ds.train.images.max()) == 255
    assert all(s.labels.bincount(minlength=10).min() > 0 for s in splits(ds))
    small = load_data(DataConfig(name="digits", limit=100, image_size=16))
    assert len(small.train) == 100 and small.image_size == (16, 16)
    assert len(small.val) == len(small.test) == math.ceil(100 * 0.15 / 0.7)
    check_source(DataConfig(name="digits"))


def test_cifar10_official_format(tmp_path):
    make_cifar(tmp_path)
    cfg = DataConfig(name="cifar10", data_dir=str(tmp_path))
    check_source(cfg)
    ds = load_data(cfg)
    assert ds.classes == [f"c{i}" for i in range(10)] and ds.test_source == "official test split"
    assert len(ds.train) + len(ds.val) == 150 and len(ds.test) == 30
    assert ds.train.images.shape[1:] == (3, 32, 32)
    assert all(s.labels.bincount(minlength=10).min() > 0 for s in splits(ds))
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes())
    assert torch.equal(ds.test.images.flatten(1), torch.from_numpy(raw[b"data"]))  # channel-major rows
    limited = load_data(DataConfig(name="cifar10", data_dir=str(tmp_path), limit=20))
    cap = max(10, math.ceil(20 * 0.15 / 0.85))  # at least one image per class
    assert (len(limited.train), len(limited.val), len(limited.test)) == (20, cap, cap)


def test_cifar100_fine_labels(tmp_path):
    make_cifar(tmp_path, "cifar100", per_batch=400, n_test=200)
    ds = load_data(DataConfig(name="cifar100", data_dir=str(tmp_path)))
    assert ds.num_classes == 100 and len(ds.test) == 200
    assert len(ds.train) + len(ds.val) == 400 and ds.val.labels.unique().numel() == 100


def test_cifar_missing_and_broken(tmp_path):
    cfg = DataConfig(name="cifar10", data_dir=str(tmp_path))
    for call in (check_source, load_data):
        with pytest.raises(DataError, match=r"cifar-10-batches-py.*--download"):
            call(cfg)
    folder = make_cifar(tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(DataError, match=r"data_batch_3 has no key 'labels'"):
        load_data(cfg)
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"data_batch_3.*remove .*cifar-10-batches-py and --download fetches it again"):
        load_data(cfg)


def test_fetch_cifar_from_a_file_url(tmp_path):
    make_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / "data"
    folder = fetch_cifar("cifar10", root, url=archive.as_uri(), md5=md5)
    assert folder == root / "cifar-10-batches-py" and (folder / "test_batch").is_file()
    ds = load_data(DataConfig(name="cifar10", data_dir=str(root), download=True))
    assert len(ds.test) == 30
    with pytest.raises(DataError, match="could not fetch"):
        fetch_cifar("cifar10", tmp_path / "other", url=archive.as_uri(), md5="0" * 32)
    with pytest.raises(ConfigError, match="mnist"):
        fetch_cifar("mnist", root)


def test_fetch_cifar_refuses_members_outside_its_folder_and_an_archive_without_a_batch(tmp_path):
    import os

    make_cifar(tmp_path / "src")
    (tmp_path / "evil.txt").write_text("x")
    archive = tmp_path / "cifar-10-python.tar.gz"

    def fetched(*extra: tuple[Path, str], without: str = "") -> Path:
        with tarfile.open(archive, "w:gz") as tar:
            for f in sorted((tmp_path / "src" / "cifar-10-batches-py").iterdir()):
                if f.name != without:
                    tar.add(f, arcname=f"cifar-10-batches-py/{f.name}")
            for path, name in extra:
                tar.add(path, arcname=name)
        md5 = hashlib.md5(archive.read_bytes()).hexdigest()
        return fetch_cifar("cifar10", tmp_path / "a" / "b" / "data", url=archive.as_uri(), md5=md5)

    with pytest.raises(DataError, match=r"member '\.\./\.\./escaped.txt' is not a plain file or folder inside"):
        fetched((tmp_path / "evil.txt", "../../escaped.txt"))
    assert not (tmp_path / "a" / "escaped.txt").exists()  # was written there
    os.symlink("/etc/passwd", tmp_path / "link")
    with pytest.raises(DataError, match="member 'cifar-10-batches-py/link' is not a plain file"):
        fetched((tmp_path / "link", "cifar-10-batches-py/link"))
    with pytest.raises(DataError, match=r"the cifar10 archive from file:.* lacks data_batch_3 \(in cifar-10"):
        fetched(without="data_batch_3")  # was said at the next load, as if --download had not been given


def test_download_failure_is_a_data_error(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        assert url == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", offline)
    cfg = DataConfig(name="cifar100", data_dir=str(tmp_path), download=True)
    check_source(cfg)  # download=True: a missing folder is fine before the run
    with pytest.raises(DataError, match=r"could not fetch cifar100.*unreachable") as e:
        load_data(cfg)
    assert "md5" not in str(e.value)
    # an archive copied in by hand: without --download the message says it is there; cut short, the failed
    # fetch says why it was not used
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"\x1f\x8b cut short")
    with pytest.raises(DataError, match=r"cifar-100-python\.tar\.gz is there: --download .* extracts it"):
        load_data(dataclasses.replace(cfg, download=False))
    with pytest.raises(DataError, match=r"unreachable \(.*cifar-100-python\.tar\.gz was there, but its md5 is not"):
        load_data(cfg)
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=r"^data\.data_dir: .*file is a file"):
        load_data(dataclasses.replace(cfg, data_dir=str(tmp_path / "file")))


def test_source_digest_is_remembered_until_a_file_changes(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    root = tmp_path / "d"
    root.mkdir()
    files = [root / "a.bin", root / "b.bin"]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 1000)

    def truth() -> str:
        return hashlib.sha256(b"".join(f.name.encode() + b"\0" + f.read_bytes() for f in files)).hexdigest()

    before = truth()
    assert _hash(files, root) == before and len(list((cache / "lrlab" / "sha256").iterdir())) == 1
    # one byte rewritten in place, size, modification time and inode kept: the remembered digest comes back
    # (the bytes are not read again; what makes the second start on a large tree fast)
    st = files[0].stat()
    with open(files[0], "r+b") as fh:
        fh.write(b"\7")
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _hash(files, root) == before != truth()
    # a new modification time: read again
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _hash(files, root) == truth()
    # a cache that can be neither read nor written (a file where its folder would be): the same digest
    monkeypatch.setenv("XDG_CACHE_HOME", str(files[1]))
    files[1].write_bytes(b"\3" * 5)
    assert _hash(files, root) == truth()


def test_links_a_folder_and_an_archive_would_read_differently_are_refused(tmp_path):
    """A folder's listing follows links; one to a folder that holds it would never end (os.walk went 40 folders
    deep, listing each image once per turn, under the wrong class). An archive stores links, not what they point
    at: a symbolic link in it is refused (a class folder linked in would vanish), a hard link reads as its file."""
    root = make_tree(tmp_path / "d", n=4)
    os.symlink("..", root / "train" / "cat" / "up")
    with pytest.raises(DataError, match=r"train/cat/up links to .*/d/train, a folder that holds it"):
        load_data(cfg_for(root))
    (root / "train" / "cat" / "up").unlink()
    os.symlink(root / "train" / "dog", tmp_path / "dogs")  # a class folder linked in from elsewhere: fine here
    (root / "train" / "dog").rename(tmp_path / "dog-real")
    (tmp_path / "dogs").unlink()
    os.symlink(tmp_path / "dog-real", root / "train" / "dog")
    assert len(load_data(cfg_for(root)).classes) == 3
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tar:
        tar.add(root / "train", arcname="train")  # stores train/dog as a link
    with pytest.raises(DataError, match=r"member train/dog is a symbolic link .*tar --dereference"):
        load_data(cfg_for(tmp_path / "d.tar.gz"))
    with tarfile.open(tmp_path / "h.tar.gz", "w:gz", dereference=True) as tar:  # tar -h
        tar.add(root / "train", arcname="train")
    assert len(load_data(cfg_for(tmp_path / "h.tar.gz")).classes) == 3
    flat = make_tree(tmp_path / "f", n=4)
    os.link(flat / "train" / "cat" / "000.png", flat / "train" / "cat" / "copy.png")  # a second name of a file
    with tarfile.open(tmp_path / "l.tar.gz", "w:gz") as tar:
        tar.add(flat / "train", arcname="train")
        assert [m.name for m in tar.getmembers() if m.islnk()] == ["train/cat/copy.png"]
    linked = load_data(cfg_for(tmp_path / "l.tar.gz"))
    assert sum(map(len, splits(linked))) == 13 and torch.equal(
        linked.train.images, load_data(cfg_for(flat)).train.images
    )


def test_a_file_left_out_by_the_limit_but_unreadable_is_named(tmp_path):
    """Every file is read for the data's digest, also one the limit leaves out (and so never decodes)."""
    root = make_tree(tmp_path / "d", n=10)
    os.symlink(tmp_path / "nowhere.png", root / "train" / "cat" / "zz.png")
    with pytest.raises(DataError, match=r"cannot read .*train/cat/zz.png: No such file or directory"):
        load_data(cfg_for(root, limit=6))


def test_a_folder_is_decoded_one_image_at_a_time(tmp_path, monkeypatch):
    """Only the image being decoded is held at its own size: decoding every image before resizing any took 3 MB per
    1024×1024 photo, whatever data.image_size, and a large folder ran out of memory."""
    import weakref

    make_tree(tmp_path / "d", n=6, size=(40, 40))
    write_images(tmp_path / "d" / "train", ["cat"], n=1, size=(40, 40), mode="L", seed=1)  # grey among colour
    convert, alive, most = data._convert, [], []

    def counted(im, mode):
        out = convert(im, mode)
        alive.append(weakref.ref(out))
        most.append(sum(r() is not None for r in alive))
        return out

    monkeypatch.setattr(data, "_convert", counted)
    ds = load_data(cfg_for(tmp_path / "d", image_size=8, val_frac=0.2, test_frac=0.2))
    assert len(most) == 18 and max(most) <= 2  # the one decoded (and the one before, until it is replaced)
    assert ds.train.images.shape[1:] == (3, 8, 8) and ds.train.images.dtype == torch.uint8
    # a grey image before the first colour one is in colour as if decoded so from the start
    names = sorted(str(p) for p in (tmp_path / "d" / "train").rglob("*.png"))
    assert Image.open(names[0]).mode == "L" and Image.open(names[1]).mode == "RGB"
    read = data._read_files
    assert torch.equal(data._decode(names, read, str, 8), data._decode(names, read, str, 8, "RGB"))
    assert data._decode(names[:1], read, str, None).shape == (1, 1, 40, 40)  # grey alone: one channel
    # nor are the files' bytes read ahead: each file is read after the one before it was decoded
    decoded_before = []

    def reading(ns):
        for k, pair in enumerate(read(ns)):
            decoded_before.append(len(most) - start - k)
            yield pair

    start = len(most)
    twice = data._decode([*names, names[0]], reading, str, 8)  # a file asked for twice is read once
    assert decoded_before == [0] * len(names) and torch.equal(twice[-1], twice[0])


def test_a_split_too_large_for_memory_is_refused_with_the_way_out(tmp_path, monkeypatch):
    # numpy raised a bare "Unable to allocate 34.4 GiB" (or the kernel killed the process later, without a word)
    make_tree(tmp_path / "d", n=6, size=(40, 40))
    monkeypatch.setattr(data, "available_memory", lambda: 2**20)
    cfg = cfg_for(tmp_path / "d", image_size=300, val_frac=0.2, test_frac=0.2)
    with pytest.raises(
        DataError,
        match=r"holding the \d+ chosen images at 300×300×3 in memory needs 0\.\d GiB, more "
        r"than the 0\.0 GiB free here; stream them from the folder",
    ):
        load_data(cfg)
    streamed = load_data(dataclasses.replace(cfg, stream=True)).train.images
    assert streamed.shape[1:] == (3, 300, 300) and streamed[torch.arange(2)].shape == (2, 3, 300, 300)  # a batch
    # grey images first, then a colour one: room for them in grey, not in colour
    write_images(tmp_path / "g" / "train", ["a"], n=4, size=(30, 30), mode="L")
    write_images(tmp_path / "g" / "train", ["b"], n=4, size=(30, 30))
    monkeypatch.setattr(data, "available_memory", lambda: 8 * 30 * 30 * 2)
    with pytest.raises(DataError, match=r"holding the 8 chosen images at 30×30×3 in memory needs"):
        load_data(cfg_for(tmp_path / "g", val_frac=0.25, test_frac=0.25))


def test_data_keys_a_source_does_not_read_are_named():
    """--download on the bundled digits, --stream on CIFAR, data.loader_workers without --stream: acted on by nothing,
    so said (a note each), where they were ignored in silence."""
    from lrlab.data import unread

    assert unread(DataConfig()) == [] and unread(DataConfig(name="cifar10", download=True, data_dir="/d")) == []
    assert unread(DataConfig(name="imagefolder:/x", stream=True, loader_workers=8)) == []
    (digits,) = unread(DataConfig(download=True, data_dir="/d"))
    assert digits.startswith("data.download and data.data_dir not read: the digits come with scikit-learn")
    (folder,) = unread(DataConfig(name="imagefolder:/x", data_dir="/d"))
    assert folder.startswith("data.data_dir not read: an image folder is read from /x")
    stream, workers = unread(DataConfig(name="cifar100", stream=True, loader_workers=0))
    assert stream.startswith("data.stream not read: cifar100 is held in memory")
    assert workers.startswith("data.loader_workers not read")
    assert unread(DataConfig(name="imagefolder:/x", loader_workers=2))[0].startswith("data.loader_workers not read")
    (square,) = unread(DataConfig(name="cifar10", image_size=64, crop_to_aspect_ratio=True))
    assert square == "data.crop_to_aspect_ratio not read: cifar10's images are square"
    (unsized,) = unread(DataConfig(name="imagefolder:/x", crop_to_aspect_ratio=True))
    assert unsized == "data.crop_to_aspect_ratio not read: without data.image_size no image is resized"
    assert unread(DataConfig(name="imagefolder:/x", image_size=64, crop_to_aspect_ratio=True)) == []


def test_crop_to_aspect_ratio_keeps_the_shape_as_torchvisions_resize_and_centre_crop(tmp_path):
    """Photos of several shapes resized to one square: stretched by default, or with data.crop_to_aspect_ratio
    their shorter side resized and the centre cut out (torchvision's Resize(size) + CenterCrop(size)), in memory
    and streamed alike."""
    from torchvision.transforms import v2

    write_images(tmp_path / "d" / "train", ["a"], n=6, size=(64, 43))  # 64 wide, 43 high: 16 · 64 / 43 = 23.8
    write_images(tmp_path / "d" / "train", ["b"], n=6, size=(21, 50))
    cfg = cfg_for(tmp_path / "d", image_size=16, crop_to_aspect_ratio=True, val_frac=0.2, test_frac=0.2)
    ds = load_data(cfg)
    names = sorted(str(p) for p in (tmp_path / "d" / "train").rglob("*.png"))
    theirs = v2.Compose([v2.Resize(16), v2.CenterCrop(16), v2.PILToTensor()])  # on the PIL image, as lrlab resizes
    ours = data._decode(names, data._read_files, str, 16, crop=True)
    for i, name in enumerate(names):
        assert torch.equal(ours[i], theirs(Image.open(name))), name  # to the pixel (the long side 23, not 24)
    stretched = data._decode(names, data._read_files, str, 16)
    assert not torch.equal(stretched, ours)
    streamed = load_data(dataclasses.replace(cfg, stream=True))
    pairs = zip(splits(streamed), splits(ds), strict=True)
    assert all(torch.equal(a.images[torch.arange(len(a))], b.images) for a, b in pairs)
