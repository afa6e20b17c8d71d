"""The bundled studies: each loads, and the CIFAR-10 study runs end to end on the CPU when cut
down with --limit (on a CIFAR-shaped archive the test makes; the real one is not needed)."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from lrlab import config
from lrlab.cli import main


@pytest.mark.parametrize("name", config.bundled_configs())
def test_bundled_configs_load(name):
    cfg = config.load(name)
    assert len(cfg.schedules) == 6


def cifar_like_archive(path, per_class=12):
    rng = np.random.default_rng(0)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with tarfile.open(path, "w:gz") as tar:
        for c in classes:
            for i in range(per_class):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=75)
                info = tarfile.TarInfo(f"train/{c}/{i:04d}.jpg")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
    return path


def test_cifar10_study_runs_end_to_end_with_a_small_limit(tmp_path, short_range_test):
    archive = cifar_like_archive(tmp_path / "cifar10-train.tar.gz")
    out = tmp_path / "out"
    small = ["--limit", "40", "--epochs", "2", "--width", "0.0625", "--batch-size", "10", "--seeds", "1"]
    code = main(
        ["study", "cifar10-study", "--data", f"imagefolder:{archive}", *small, "--out", str(out), "--no-progress"]
    )
    assert code == 0
    study = json.loads((out / "study.json").read_text())
    assert study["auto_lr"]["rule"] == "valley" and study["auto_lr"]["lr"] > 0  # bounds from the range test
    assert len(list(out.glob("runs/*/seed-0/result.json"))) == 6
    assert (out / "report.html").is_file()
