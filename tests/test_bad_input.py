"""Every row of the README's bad-input table: one line naming the problem, exit code 2, no
traceback, and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrlab.cli import main


def tree(
    root: Path, empty_class: bool = False, corrupt: bool = False, images: bool = True, classes=("cat", "dog")
) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / "train" / c).mkdir(parents=True)
        if not images or (empty_class and c == "dog"):
            continue
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / "train" / c / f"{i}.png")
    if corrupt:
        (root / "train" / "cat" / "3.png").write_bytes(b"not a png at all")
    return root


def flat(root: Path) -> Path:
    (root / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "train" / "0.png")
    return root


def toml(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


S = "[schedules.s]\n"
CASES = {
    "misspelled schedule": (lambda t: ["--schedules", "standard,onecylce"], "did you mean 'onecycle'"),
    "baseline left out": (lambda t: ["--unset", "schedules.standard"],
                          "baseline: 'standard' is not a schedule of this study; valid: 'cyclic', 'warmup', "
                          "'annealing', 'onecycle', 'uneven-cyclic' (give one with --set baseline=NAME, or "
                          "--unset baseline for the first)"),
    "auto_lr out of order": (lambda t: [toml(t / "c.toml", S + "type='cyclic'\nbase_lr='auto'\nmax_lr=0.05\n"
                                              "up_epochs=1\n"), "--auto-lr", "1"],
                             'schedules.s.max_lr: must be at least base_lr (0.05 < 0.1) ("auto" LRs: 1 (given '
                             "(auto_lr)))"),
    "unknown dataset": (lambda t: ["--data", "mnist"], "valid: 'digits', 'cifar10', 'cifar100', 'imagefolder:PATH'"),
    "missing CIFAR files": (lambda t: ["--data", "cifar10", "--data-dir", str(t / "none")], "--download"),
    "missing folder": (lambda t: ["--data", f"imagefolder:{t / 'nowhere'}"], "does not exist"),
    "images without class folders": (lambda t: ["--data", f"imagefolder:{flat(t / 'd')}"],
                                     "no class folders in "),
    "folder without images": (lambda t: ["--data", f"imagefolder:{tree(t / 'd', images=False)}"], "no images"),
    "class folder without images": (lambda t: ["--data", f"imagefolder:{tree(t / 'd', empty_class=True)}"],
                                    "train/dog has no images"),
    "corrupt image": (lambda t: ["--data", f"imagefolder:{tree(t / 'd', corrupt=True)}"], "cannot read image"),
    "one class": (lambda t: ["--data", f"imagefolder:{tree(t / 'd', classes=('cat',))}"],
                  "d/train (cat); a classifier needs at least two"),
    "no schedules named": (lambda t: ["--schedules", ","], "--schedules: no names in ','; valid: 'standard'"),
    "a schedule not picked": (lambda t: ["--schedules", "standard", "--set", "schedules.onecycle.max_lr=-1"],
                              "schedules.onecycle.max_lr: a learning rate must be positive"),
    "misspelled config key": (lambda t: [toml(t / "c.toml", "[train]\nepoch = 3\n" + S + "type='constant'\nlr=0.1\n")],
                              "unknown config key 'train.epoch' (did you mean 'epochs'?)"),
    "wrong type": (lambda t: [toml(t / "c.toml", "[train]\nepochs = 'ten'\n" + S + "type='constant'\nlr=0.1\n")],
                   "train.epochs: expected an integer"),
    "not UTF-8": (lambda t: [str(t / "c.toml") if (t / "c.toml").write_bytes(b"name = '\xe9t\xe9'\n") else ""],
                  "is not UTF-8 text (TOML must be)"),
    "epochs 0": (lambda t: ["--epochs", "0"], "train.epochs: must be positive"),
    "negative LR": (lambda t: [toml(t / "c.toml", S + "type='constant'\nlr=-0.1\n")],
                    "schedules.s.lr: a learning rate must be positive"),
    "LR past any use": (lambda t: [toml(t / "c.toml", S + "type='warmup'\nlr=1e308\nwarmup_steps=3\n")],
                        "schedules.s.lr: a learning rate must be at most 1e+06 (no network trains above it)"),
    "unknown schedule type": (lambda t: [toml(t / "c.toml", S + "type='one-cycle'\nmax_lr=0.1\n")],
                              "schedules.s.type: unknown schedule type 'one-cycle' (did you mean 'onecycle'?)"),
    "max below base": (lambda t: [toml(t / "c.toml", S + "type='cyclic'\nbase_lr=0.1\nmax_lr=0.01\nup_epochs=1\n")],
                       "schedules.s.max_lr: must be at least base_lr"),
    "phase under a step": (lambda t: [toml(t / "c.toml", S + "type='cyclic'\nbase_lr=0.1\nmax_lr=1\nup_steps=0.5\n")],
                           "schedules.s.up_steps: 0.5 steps, in a run of 90 steps; a phase must last at least one"),
    "warm-up too long": (lambda t: [toml(t / "c.toml", S + "type='constant'\nlr=0.1\nwarmup_steps=5000\n")],
                         "schedules.s.warmup_steps: the warm-up (5000 steps) must be shorter than the run"),
    "batch above data": (lambda t: ["--batch-size", "4096"], "train.batch_size: 4096 is larger than the training"),
    "no CUDA": (lambda t: ["--device", "cuda"], "no CUDA device is available"),
    "Triton pools on a CPU": (lambda t: ["--device", "cpu", "--set", "train.pool_kernel=triton"],
                              "train.pool_kernel: 'triton' needs a CUDA device (this run is on cpu); use 'aten'"),
    "SyncBatchNorm on a CPU": (lambda t: ["--device", "cpu", "--sync-bn"],
                               "train.sync_bn: PyTorch's SyncBatchNorm runs on CUDA only (this run is on cpu)"),
    "cutout above image": (lambda t: ["--set", "data.cutout=9"], "data.cutout: a 9 px square is larger than the"),
    "threads past int64": (lambda t: ["--threads", str(10**20)], "train.threads: must be in [1, 1024], got 1000"),
    "width past memory": (lambda t: ["--width", "10000"], "model.width: 10000 makes a model too large for this"),
    "a schedule named twice": (lambda t: ["--schedules", "standard,standard"],
                               "--schedules: 'standard' is named twice"),
    "an LR in [train]": (lambda t: ["--set", "train.lr=0.1"],
                         "unknown config key 'train.lr' (an LR is a schedule's: schedules.<name>.lr or max_lr, or "),
    "lr on one-cycle": (lambda t: ["--set", "schedules.onecycle.lr=0.1"],
                        "schedules.onecycle.lr: not a parameter of 'onecycle' (its LRs: 'max_lr')"),
    "a length in two units": (lambda t: ["--set", "schedules.cyclic.up_frac=0.5"],
                              "schedules.cyclic.up_frac: the length 'up' is given twice, as up_epochs and as up_frac; "
                              "give one of them (--unset schedules.cyclic.up_epochs removes the first)"),
    "another family's spelling": (lambda t: ["--set", "schedules.onecycle.anneal=cosine"],
                                  "must be one of 'cos', 'linear', got 'cosine' (did you mean 'cos'?)"),
    "nothing left to train on": (lambda t: ["--set", "data.val_frac=0.9"],
                                 "val_frac + test_frac must be below 1 (none would be left to train on), got 0.9 + "),
    "a bundled study misspelt": (lambda t: ["six-setting"], "(did you mean 'six-settings'?)"),
    "nested too deeply": (lambda t: [toml(t / "c.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n")],
                          "is not valid TOML here: values nested too deeply"),
    "torch's parameter name": (lambda t: ["--set", "schedules.onecycle.pct_start=0.3"],
                               "schedules.onecycle.pct_start: not a parameter of 'onecycle' (torch's pct_start is "
                               "peak_frac here)"),
    "torch's class name": (lambda t: [toml(t / "c.toml", S + "type='CosineAnnealingLR'\nlr=0.1\n")],
                           "unknown schedule type 'CosineAnnealingLR' (torch's CosineAnnealingLR is 'cosine' here)"),
    "auto on a floor": (lambda t: [toml(t / "c.toml", S + "type='cosine'\nlr=0.1\nmin_lr='auto'\n")],
                        "schedules.s.min_lr: \"auto\" is for lr, max_lr, base_lr only (the LR range test sets them); "
                        "give min_lr a number"),
    "auto as a momentum": (lambda t: [toml(t / "c.toml", S + "type='cosine'\nlr=0.1\nmomentum={type='cosine', "
                                           "lr='auto'}\n")],
                           "schedules.s.momentum.lr: \"auto\" is an LR from the LR range test; a momentum table's "
                           "values are momenta: give a number in [0, 1)"),
    "an LR as text": (lambda t: [toml(t / "c.toml", S + "type='constant'\nlr='1e-1'\n")],
                      "schedules.s.lr: expected a finite number or \"auto\", got '1e-1' (write 0.1, not .1 or"),
    "a top-level key after a table": (lambda t: [toml(t / "c.toml", S + "type='constant'\nlr=0.1\nbaseline='s'\n")],
                                      "schedules.s.baseline: baseline is a top-level key, read as the schedule's "
                                      "because it follows [schedules.s] in the file; in TOML, write top-level keys "
                                      "before the first [table]"),
    "a key in another section": (lambda t: ["--set", "model.epochs=3"],
                                 "unknown config key 'model.epochs' (did you mean 'train.epochs'?)"),
    "seeds as text": (lambda t: ["--set", 'seeds="3"'], "seeds: expected a list or a count (seeds = 3: seeds 0, 1, 2)"),
    "label smoothing 10": (lambda t: ["--set", "train.label_smoothing=10"],
                           "train.label_smoothing: must be in [0, 1), got 10.0"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path, capsys):
    make, needle = CASES[case]
    out = tmp_path / "out"
    code = main(["study", *make(tmp_path), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    if case == "no CUDA" and code == 0:
        pytest.skip("this machine has a GPU")
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("lrlab: error: ") and "Traceback" not in err
    assert needle in err, err
    assert not out.exists()


def test_output_folder_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["study", "--limit", "100", "--epochs", "2", "--batch-size", "16", "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be written" in err and str(blocker / "out") in err


def test_train_seed_and_empty_peak_lrs_are_refused(tmp_path, capsys):
    out = tmp_path / "out"
    for seed in ("-1", str(2**32)):  # the range --seeds has; named as train's option, --seed (not seeds)
        with pytest.raises(SystemExit) as stop:
            main(["train", "--seed", seed, "--out", str(out)])
        err = capsys.readouterr().err
        said = f"argument --seed: a seed must be in [0, 2**32) (numpy's seeds), got {seed}"
        assert stop.value.code == 2 and said in err
    for empty in (",", ""):  # not "no LR axis", which is leaving the option out
        with pytest.raises(SystemExit) as stop:
            main(["study", "--peak-lrs", empty, "--out", str(out)])
        assert (
            stop.value.code == 2 and "argument --peak-lrs: expected comma-separated numbers" in capsys.readouterr().err
        )
    assert not out.exists()


def test_output_folder_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("kept")
    code = main(["study", "--limit", "100", "--epochs", "2", "--batch-size", "16", "--out", str(blocker)])
    err = capsys.readouterr().err  # (was: "cannot be written: File exists")
    assert code == 2 and f"output folder '{blocker}' is a file, not a folder; choose another --out" in err
    assert blocker.read_text() == "kept"


def test_empty_names_and_paths_are_refused_not_read_as_left_out(tmp_path, capsys):
    """An empty shell variable ($OUT unset) gave the default instead: a study trained into runs/<name>, a report
    written into the first folder, the first schedule trained, a --plot written nowhere."""
    tree(tmp_path / "d")
    for argv in (["study", "--out", ""], ["train", "--schedule", " "], ["report", str(tmp_path), "--out", ""],
                 ["report", str(tmp_path), "--baseline", ""], ["schedules", "--plot", ""], ["find-lr", "--out", ""],
                 ["schedules", "--csv", ""], ["study", "--data", ""], ["study", "--data-dir", ""], ["study", ""],
                 ["train", "--device", ""], ["find-lr", "--model", ""], ["schedules", ""]):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "empty (an unset shell variable?); leave the option out" in err, argv


def test_previews_refuse_what_a_study_would_refuse_or_ignore(tmp_path, capsys):
    plot = tmp_path / "fam.png"
    for argv, needle in (
        (["--steps", "100", "--auto-lr", "0.1"], 'auto_lr: no schedule has an "auto" LR'),
        (
            [
                toml(tmp_path / "a.toml", S + "type='cyclic'\nbase_lr='auto'\nmax_lr=0.05\nup_steps=5\n"),
                "--steps",
                "100",
                "--auto-lr",
                "1",
            ],
            'must be at least base_lr (0.05 < 0.1) ("auto" LRs: 1 (given (auto_lr)))',
        ),
        # a refusal at any LR is not the given auto_lr's: not said to be (a fixed schedule beside, or a warm-up)
        (
            [
                toml(
                    tmp_path / "b.toml",
                    S + "type='constant'\nlr='auto'\n[schedules.b]\ntype='constant'\nlr=0.1\nwarmup_steps=200\n",
                ),
                "--steps",
                "100",
                "--auto-lr",
                "0.05",
            ],
            "schedules.b.warmup_steps: the warm-up (200 steps) must be shorter than the run (100 steps)$",
        ),
        (
            [
                toml(tmp_path / "c.toml", S + "type='constant'\nlr='auto'\nwarmup_steps=200\n"),
                "--steps",
                "100",
                "--auto-lr",
                "0.05",
            ],
            "schedules.s.warmup_steps: the warm-up (200 steps) must be shorter than the run (100 steps)$",
        ),
        (["--steps", "100", "--data", "mnist"], "unknown dataset 'mnist'"),
        (["--families", "--plot", str(plot)], "--families: lists the families only; leave out --plot"),
        (["--families", "--steps", "0", "--set", "x=1"], "leave out --set, --steps"),
        (["--families", "c.toml", "--width", "2"], "leave out config, --width"),
    ):
        assert main(["schedules", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.endswith(needle[:-1]) if needle.endswith("$") else needle in err, argv  # $: all that is said
    assert not plot.exists()
    for flag in ("--compile", "--sync-bn"):  # a preview trains nothing: refused as unknown, not ignored
        with pytest.raises(SystemExit) as stop:
            main(["schedules", "--steps", "100", flag])
        assert stop.value.code == 2 and f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_find_lr_refuses_an_infinite_lr_before_any_folder(tmp_path, capsys):
    out = tmp_path / "f"
    for flag in ("--end-lr", "--start-lr"):
        assert main(["find-lr", flag, "inf", "--out", str(out)]) == 2
        assert f"find-lr: {flag[2:].replace('-', '_')} must be a finite number, got inf" in capsys.readouterr().err
    assert not out.exists()


def test_an_output_folder_in_the_image_folder_is_refused(tmp_path, capsys):
    """Its runs/ and plots/ in train/ were read as classes by the next start (or by any use of the data)."""
    data = tree(tmp_path / "d")
    for command, out in (("study", data / "train" / "runs"), ("study", data), ("find-lr", data / "lr")):
        assert main([command, "--data", f"imagefolder:{data}", "--out", str(out)]) == 2
        assert f"the output folder {out} is in the image folder {data} (data.name)" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["train"] and not (data / "train" / "runs").exists()


def test_an_unreadable_config_and_an_unwritable_plot_are_one_line(tmp_path, capsys, monkeypatch):
    """As root, chmod does not stop a read or a write: permission is refused by hand here."""
    import matplotlib.figure

    from lrlab import store

    config = tmp_path / "c.toml"
    config.write_text("")
    real_read = Path.read_text

    def no_read(self, *a, **k):
        if self == config:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", no_read)
    assert main(["schedules", str(config), "--steps", "100"]) == 2
    assert f"config '{config}' cannot be read: Permission denied" in capsys.readouterr().err
    monkeypatch.undo()
    # a folder that takes no new file: refused before any work (a range test can take minutes)
    monkeypatch.setattr(store.os, "access", lambda path, mode: Path(path) != tmp_path)
    assert main(["schedules", "--steps", "100", "--plot", str(tmp_path / "x.png")]) == 2
    assert f"{tmp_path} is not writable" in capsys.readouterr().err
    monkeypatch.undo()
    # a write that fails anyway (a full disk): one line, and no temporary file left

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    assert main(["schedules", "--steps", "100", "--plot", str(tmp_path / "x.png")]) == 2
    assert f"cannot write {tmp_path / 'x.png'}: No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [config]
