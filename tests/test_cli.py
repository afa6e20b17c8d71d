"""The command line through its real entry points: help, a study, previews, and bad input."""

from __future__ import annotations

import csv
import os
import select
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrlab import config
from lrlab.cli import main
from lrlab.data import load_data
from lrlab.schedules import compile_schedule

LRLAB = Path(sys.executable).parent / "lrlab"  # the installed console script
QUICK = ["--limit", "150", "--epochs", "1", "--batch-size", "32", "--width", "0.125", "--no-progress"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LRLAB), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("cmd", [[], ["study"], ["schedules"]])
def test_help_on_every_command(cmd):
    res = run(*cmd, "--help")
    assert res.returncode == 0
    assert "usage: lrlab" in res.stdout
    if cmd == ["study"]:
        for flag in (
            "--data",
            "--schedules",
            "--seeds",
            "--epochs",
            "--model",
            "--width",
            "--device",
            "--out",
            "--limit",
        ):
            assert flag in res.stdout


def test_find_lr_offers_no_option_that_would_change_nothing(capsys):
    """find-lr runs no "auto" LR and trains no run: --auto-lr, --compile and --sync-bn are not offered there
    (they were, doing nothing); study has them."""
    for cmd, offered in ((["study"], True), (["find-lr"], False)):
        with pytest.raises(SystemExit):
            main([*cmd, "--help"])
        shown = capsys.readouterr().out
        for flag in ("--auto-lr", "--compile", "--sync-bn"):
            assert (flag in shown) == offered, (cmd, flag)


def test_auto_lrs_preview_without_data_when_given(capsys):
    """A config of "auto" LRs previews with --steps (no data, so no range test) once --auto-lr gives the LR."""
    assert main(["schedules", "cifar10-cpu", "--steps", "100"]) == 2
    assert "--auto-lr LR" in capsys.readouterr().err
    assert main(["schedules", "cifar10-cpu", "--steps", "100", "--auto-lr", "0.05"]) == 0
    out = capsys.readouterr().out
    assert '"auto" LRs: 0.05 (given' in out and "peak 0.05," in out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["train", "--schedules", "onecycle"], "unrecognized arguments: --schedules; did you mean --schedule?"),
        (["study", "--epoch", "3", "--sed"], "did you mean --epochs for --epoch, --seeds for --sed?"),
        (["study", "--xyzzy"], "unrecognized arguments: --xyzzy\n"),
        (["study", "--bogus"], "unrecognized arguments: --bogus\n"),  # not "--out": the dashes do not count
        (["study", "--seed", "7"], "for seed 7 alone: --seeds 7,"),
        (
            ["study", "--set", "a=1", "b=2", "c=3"],
            "c=3; --set takes one KEY=VALUE: give it once for each (--set b=2 --set c=3)",
        ),  # (b=2 taken for the config)
        (
            ["study", "--set", "a=1", "b=2", "x.toml", "--sed", "2"],
            "--sed 2; did you mean --seeds for --sed?; --set takes one KEY=VALUE: give it once for each (--set b=2)",
        ),
    ],
)
def test_a_mistyped_option_gets_the_closest_one(argv, said, capsys):
    with pytest.raises(SystemExit) as ended:
        main(argv)
    err = capsys.readouterr().err
    assert ended.value.code == 2 and said in err and f"usage: lrlab {argv[0]}" in err, err


@pytest.mark.parametrize(
    ("rank", "local_rank", "world", "says"),
    [("0", "0", "4", True), ("3", "1", "4", False), ("2", "0", "4", True), ("1", "1", "1", True)],
)
def test_under_torchrun_a_config_error_is_said_once_a_machine(rank, local_rank, world, says, monkeypatch, capsys):
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    monkeypatch.setenv("WORLD_SIZE", world)  # (1: one process, whatever ranks another launcher left set)
    assert main(["schedules", "--set", "train.epochs=0"]) == 2  # refused on every rank: each exits with 2
    err = capsys.readouterr().err
    assert ("lrlab: error: train.epochs" in err) is says, err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["study", "--seeds", "-1,2"], "seeds: a seed must be in [0, 2**32) (numpy's seeds), got -1"),
        (["study", "--auto-lr", "-1e-3"], "auto_lr: must be a positive number, got -0.001"),
        (["schedules", "--peak-lrs", "-.1,1"], "peak_lrs: every peak LR must be positive, got [-0.1, 1.0]"),
    ],
)
def test_a_negative_value_gets_its_options_check_not_argparses_expected_one_argument(argv, said, capsys):
    assert main(argv) == 2
    assert said in capsys.readouterr().err


def test_a_negative_value_is_joined_only_to_an_option_of_its_command():
    from lrlab.cli import _negatives_joined, build_parser

    parser = build_parser()
    # schedules has no --seeds (it is study's): left for "unrecognized arguments" and its suggestion
    assert _negatives_joined(["schedules", "--seeds", "-1"], parser) == ["schedules", "--seeds", "-1"]
    assert _negatives_joined(["study", "--seeds", "-1,2", "--", "--out", "-3"], parser) == [
        "study", "--seeds=-1,2", "--", "--out", "-3"]  # (after --: as given)  # fmt: skip
    assert _negatives_joined(["study", "--set", "train.epochs=-1"], parser) == ["study", "--set", "train.epochs=-1"]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["schedules", "--set", "train.epochs=3", "--epochs", "2"],
         "train.epochs: given twice, as --epochs 2 and as --set train.epochs=3; give it once"),
        (["study", "--limit", "5", "--unset", "data.limit"],
         "data.limit: given twice, as --limit 5 and as --unset data.limit; give it once"),
        (["study", "--seeds", "2", "--set", "seeds=3"], "seeds: given twice, as --seeds 2 and as --set seeds=3"),
        (["train", "--set", "seeds=[3]"], "seeds: `lrlab train` trains one seed, --seed N (default 0)"),
    ],
)  # fmt: skip
def test_a_key_given_by_its_flag_and_by_set_is_refused_naming_both(argv, said, capsys):
    assert main(argv) == 2
    assert said in capsys.readouterr().err


def test_a_key_given_alike_by_its_flag_and_by_set_is_taken(capsys):
    assert main(["schedules", "--epochs", "2", "--set", "train.epochs=2", "--steps", "10"]) == 0
    assert "valid for 10 steps" in capsys.readouterr().out


def test_python_dash_m():
    res = subprocess.run([sys.executable, "-m", "lrlab", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("lrlab ")


def test_study_through_the_console_script(tmp_path):
    out = tmp_path / "o"
    res = run("study", *QUICK, "--schedules", "standard,onecycle", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "| standard |" in res.stdout and "| onecycle |" in res.stdout
    with (out / "summary.csv").open() as f:
        assert [r["schedule"] for r in csv.DictReader(f)] == ["standard", "onecycle"]


def test_progress_lines_reach_a_pipe_while_the_study_runs(tmp_path):
    """Output into a file or pipe (a batch job's log) is written a line at a time: the study's first
    line is readable while it is still training, not only when it ends."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    # 60 epochs: minutes of training
    cmd = [str(Path(sys.executable).parent / "lrlab"), "study", "--schedules", "standard", "--epochs", "60",
           "--workers", "1", "--out", str(tmp_path / "o"), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        # block-buffered, nothing would arrive before the study ends; a line at a time, it comes in seconds
        assert select.select([proc.stdout], [], [], 60)[0], "no output within 60 s"
        assert proc.stdout.readline().startswith("lrlab study 'six-settings'") and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def make_tree(root: Path, classes=("cat", "dog", "frog"), n=20, size=12) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / "train" / c).mkdir(parents=True)
        for i in range(n):
            px = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(px).save(root / "train" / c / f"{i}.png")
    return root


def test_study_on_an_image_folder(tmp_path):
    tree = make_tree(tmp_path / "imgs")
    out = tmp_path / "o"
    code = main(
        [
            "study",
            "--data",
            f"imagefolder:{tree}",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--width",
            "0.125",
            "--schedules",
            "onecycle",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert (out / "report.md").is_file() and (out / "runs" / "onecycle" / "seed-0" / "result.json").is_file()


def test_study_worker_processes_are_given_the_decoded_images(tmp_path, monkeypatch):
    """Each worker process loaded the data again: a folder of JPEGs decoded by every process and held by each. The
    folder is gone once the study's process has loaded it, so a worker that reads it fails its runs."""
    from lrlab import data as data_mod
    from lrlab import study as study_mod
    from lrlab.errors import DataError

    tree = make_tree(tmp_path / "imgs")
    parallel = study_mod._run_parallel

    def without_the_folder(p, *args, **kwargs):
        assert study_mod._shareable(p.dataset)
        shutil.rmtree(tree)
        return parallel(p, *args, **kwargs)

    monkeypatch.setattr(study_mod, "_run_parallel", without_the_folder)
    out = tmp_path / "o"
    flags = ["--epochs", "1", "--batch-size", "8", "--width", "0.125", "--schedules", "standard,onecycle"]
    assert main(["study", "--data", f"imagefolder:{tree}", *flags, "--set", "workers=2", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    assert all((out / "runs" / s / "seed-0" / "result.json").is_file() for s in ("standard", "onecycle"))
    # where shared memory is unknown (or too small for the images), each worker loads its own copy, as before, if
    # memory holds a copy for each; else the study is refused before they start
    monkeypatch.setattr(study_mod, "SHM", tmp_path / "no-shm")
    digits = load_data(config.load(None, {"data.limit": 50}).data)
    assert not study_mod._shareable(digits)
    held = study_mod._held_bytes(digits)
    monkeypatch.setattr(data_mod, "available_memory", lambda: held * 3 // 2)
    study_mod._check_workers_fit(digits, 1)
    with pytest.raises(DataError, match=r"^2 worker processes would each hold their own 0\.0 GiB of decoded images "
                                        r"\(.*no-shm has no room to share the study's\), more than the 0\.0 GiB "
                                        r"free here; run one at a time \(--workers 1\)"):  # fmt: skip
        study_mod._check_workers_fit(digits, 2)


def test_schedules_preview_writes_plot_and_csv(tmp_path):
    png, table = tmp_path / "lr.png", tmp_path / "lr.csv"
    assert main(["schedules", "--plot", str(png), "--csv", str(table)]) == 0
    assert png.stat().st_size > 5000
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["schedule"] for r in rows} == {
        "standard",
        "cyclic",
        "warmup",
        "annealing",
        "onecycle",
        "uneven-cyclic",
    }
    assert list(rows[0]) == ["step", "schedule", "lr", "momentum"]


def test_schedules_plot_is_written_in_the_format_its_name_asks_for(tmp_path, capsys):
    """--plot lr.svg writes SVG and lr.jpg JPEG (not PNG bytes under another name); an extension matplotlib
    cannot write is refused before any work, with the valid ones listed."""
    svg, jpg = tmp_path / "lr.svg", tmp_path / "lr.JPG"
    assert main(["schedules", "--steps", "50", "--plot", str(svg)]) == 0
    assert main(["schedules", "--steps", "50", "--plot", str(jpg)]) == 0
    assert b"<svg" in svg.read_bytes()[:2000]
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG's start-of-image marker
    capsys.readouterr()
    assert main(["schedules", "--steps", "50", "--plot", str(tmp_path / "lr.docx")]) == 2
    err = capsys.readouterr().err
    assert "'docx'" in err and "'svg'" in err and "'pgf'" not in err
    assert not (tmp_path / "lr.docx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.JPG", "lr.svg"]  # no temporary file left


def test_schedules_says_the_data_options_its_source_does_not_read(capsys):
    """As a study does: --download on the digits is said, with --steps (no data read) and without (the config's
    data read for its step count); so is a stem unsuited to the images."""
    for args in (["--steps", "50"], ["--limit", "100"]):
        assert main(["schedules", *args, "--schedules", "standard", "--download", "--stream"]) == 0
        out = capsys.readouterr().out
        assert "note: data.download not read: the digits come with scikit-learn" in out, args
        assert "note: data.stream not read: digits is held in memory" in out, args
    # and, where it reads the data, a stem that does not suit its images (model.stem_notes), as a study's start does
    assert main(["schedules", "--limit", "100", "--schedules", "standard", "--model", "imagenet"]) == 0
    assert "note: model.stem = 'imagenet' on 8×8 images: it downsamples by 8" in capsys.readouterr().out


def test_schedules_previews_the_lr_axis_a_study_would_train(tmp_path, capsys):
    """--peak-lrs (or peak_lrs in the config) previews <schedule>@<peak>, each shape scaled to its peak, with
    the data's steps or --steps; an "auto" LR's value cancels out in the scaling, so --steps needs no test."""
    cfg = tmp_path / "a.toml"
    cfg.write_text('name = "a"\n[schedules.oc]\ntype = "onecycle"\nmax_lr = "auto"\n'
                   '[schedules.cy]\ntype = "cyclic"\nbase_lr = "auto"\nmax_lr = "auto"\nup_frac = 0.5\n')  # fmt: skip
    table = tmp_path / "lr.csv"
    assert main(["schedules", str(cfg), "--steps", "100", "--peak-lrs", "0.1,1", "--csv", str(table)]) == 0
    out = capsys.readouterr().out
    assert "4 schedules valid for 100 steps" in out
    with table.open() as f:
        rows = list(csv.DictReader(f))
    peaks = {n: max(float(r["lr"]) for r in rows if r["schedule"] == n) for n in ("oc@0.1", "oc@1", "cy@0.1", "cy@1")}
    assert peaks == pytest.approx({"oc@0.1": 0.1, "oc@1": 1.0, "cy@0.1": 0.1, "cy@1": 1.0})
    assert min(float(r["lr"]) for r in rows if r["schedule"] == "cy@1") == pytest.approx(0.1)  # base_lr: 0.1 × auto
    assert main(["schedules", "--peak-lrs", "0.5", "--schedules", "standard"]) == 0  # the data's real steps
    assert "standard@0.5     constant        LR first 0.5, peak 0.5" in capsys.readouterr().out


def test_an_lr_axis_needs_the_auto_value_only_where_a_fixed_lr_sits_beside_it(tmp_path, capsys):
    """base_lr = "auto" beside a fixed max_lr: the value of "auto" sets their ratio, which the scaling to each
    peak keeps, so the preview needs it (--auto-lr) as the study does (its range test); with 1.0 standing in, the
    preview once drew a base of 0.2 of the peak whatever the test would say. All-"auto" specs need no value."""
    mixed = tmp_path / "m.toml"
    mixed.write_text('[schedules.c]\ntype = "cyclic"\nbase_lr = "auto"\nmax_lr = 0.5\nup_frac = 0.5\n')
    args = ["schedules", str(mixed), "--steps", "100", "--peak-lrs", "1"]
    assert main(args) == 2
    assert "--auto-lr LR" in capsys.readouterr().err
    table = tmp_path / "lr.csv"
    assert main([*args, "--auto-lr", "0.5", "--csv", str(table)]) == 0
    with table.open() as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert max(lrs) == pytest.approx(1.0) and min(lrs) == pytest.approx(0.1)  # base 0.1 × 0.5, max 0.5: ratio 0.1
    capsys.readouterr()
    every = tmp_path / "e.toml"
    every.write_text('[schedules.cy]\ntype = "cyclic"\nbase_lr = "auto"\nmax_lr = "auto"\nup_frac = 0.5\n')
    for given in ([], ["--auto-lr", "0.5"]):  # the value, given or not, changes nothing there
        assert main(["schedules", str(every), "--steps", "100", "--peak-lrs", "1", "--csv", str(table), *given]) == 0
        with table.open() as f:
            lrs = [float(r["lr"]) for r in csv.DictReader(f)]
        assert max(lrs) == pytest.approx(1.0) and min(lrs) == pytest.approx(0.1)


def test_schedules_says_it_runs_a_range_test_and_reuses_a_studys(tmp_path, capsys, short_range_test):
    cfg = tmp_path / "auto.toml"
    cfg.write_text('[schedules.oc]\ntype = "onecycle"\nmax_lr = "auto"\n')
    flags = ["--set", "data.limit=200", "--epochs", "1", "--batch-size", "32", "--width", "0.125", "--threads", "1",
             "--set", f"out={tmp_path / 'study'}"]  # fmt: skip
    first = '"auto" LRs: an LR range test on this config\'s data and model first'
    assert main(["schedules", str(cfg), *flags]) == 0
    out = capsys.readouterr().out
    assert first in out and "rule of an LR range test)" in out
    assert main(["study", str(cfg), *flags, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["schedules", str(cfg), *flags]) == 0  # the study's recorded test: no new one
    again = capsys.readouterr().out
    assert first not in again and "kept from this folder's earlier start" in again


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--steps", "0"], "--steps: must be in [1, 10,000,000] (each step is computed), got 0"),
        (["--steps", "1000000000"], "--steps: must be in [1, 10,000,000] (each step is computed), got 1000000000"),
        (["--steps", "10", "--steps-per-epoch", "0"], "--steps-per-epoch: must be in [1, 10,000,000]"),
        (["--steps-per-epoch", "3"], "--steps-per-epoch: goes with --steps"),
    ],
)
def test_schedules_step_flags_refuse_what_they_would_ignore(capsys, args, needle):
    assert main(["schedules", *args]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--schedules", "standard,onecylce"], ["'onecylce'", "did you mean 'onecycle'", "'uneven-cyclic'"]),
        (["--data", "mnist"], ["'mnist'", "'digits'", "'cifar10'"]),
        (["--data", "cifar10", "--data-dir", "{tmp}/nothing"], ["cifar-10-batches-py", "--download"]),
        (["--data", "imagefolder:{tmp}/nothing"], ["{tmp}/nothing"]),
        (["{tmp}/bad.toml"], ["'train.epoch'", "did you mean 'epochs'"]),
        (["{tmp}/badsched.toml"], ["schedules.s.type", "'onecycle'"]),
        (["--epochs", "0"], ["train.epochs"]),
        (["--device", "tpu"], ["train.device"]),
        (["--set", "train.emma=0.9"], ["'train.emma'", "did you mean 'ema'"]),
        (["--set", "name.x=1"], ["name.x: name is a value, not a table"]),
        (["--set", "train.compile_mode=fast"], ["train.compile_mode", "'reduce-overhead'"]),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, needles):
    (tmp_path / "bad.toml").write_text("[train]\nepoch = 3\n[schedules.s]\ntype = 'constant'\nlr = 0.1\n")
    (tmp_path / "badsched.toml").write_text("[schedules.s]\ntype = 'one-cycle'\nmax_lr = 0.1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "out"
    code = main(["study", *args, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("lrlab: error: ")
    for n in needles:
        assert n.replace("{tmp}", str(tmp_path)) in err
    assert not out.exists()


def test_bad_flag_value_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["study", "--seeds", "a,b"])
    assert e.value.code == 2
    assert "--seeds" in capsys.readouterr().err


def test_set_overrides_any_key_with_toml_values():
    from lrlab.cli import _load, build_parser

    args = build_parser().parse_args(["study", "--epochs", "2", "--set", "train.ema=0.999", "--set", "train.epochs=2",
                                      "--set", "schedules.onecycle.max_lr=0.2", "--set", "data.name=digits",
                                      "--set", "seeds=[4, 5]", "--compile"])  # fmt: skip
    cfg = _load(args)
    assert cfg.train.ema == 0.999 and cfg.train.epochs == 2  # (alike by the named flag: no conflict)
    assert cfg.schedules["onecycle"]["max_lr"] == 0.2 and cfg.data.name == "digits" and cfg.seeds == [4, 5]
    assert cfg.train.compile is True


def test_set_without_equals_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["study", "--set", "train.ema"])
    assert e.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_find_lr_checks_its_output_folder_before_the_test(tmp_path, capsys, monkeypatch):
    import lrlab.lr_finder

    monkeypatch.setattr(lrlab.lr_finder, "range_test", lambda *a, **k: pytest.fail("ran the range test"))
    (tmp_path / "file").write_text("")
    assert main(["find-lr", "--out", str(tmp_path / "file" / "x")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_schedules_preview_shows_notes(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[schedules.ms]\ntype = "multistep"\nlr = 0.1\nmilestones_epochs = [2, 90]\n')
    assert main(["schedules", str(cfg), "--steps", "80", "--steps-per-epoch", "10"]) == 0
    out = capsys.readouterr().out
    assert "1 schedule valid for 80 steps" in out and "note: milestones_epochs 90 is step 900" in out


def test_families_listing_shows_defaults_a_spec_accepts(capsys):
    from .test_schedules import PLAN, REQUIRED_KEYS

    assert main(["schedules", "--families"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "down_*=(as up)" in lines["cyclic"] and "cycle_momentum=false" in lines["onecycle"]
    assert "warmup_*" in lines["warmup"]
    for family, required in REQUIRED_KEYS.items():
        pairs = [p for p in lines[family].split(None, 1)[1].split(", ") if "=" in p and "=(" not in p]
        written = tomllib.loads("\n".join(pairs))  # every shown default is valid TOML for its key
        if "cycle_momentum" in written:  # the momentum values are refused unless it is cycled
            written["cycle_momentum"] = True
        compile_schedule({"type": family, **written, **required}, PLAN)


def test_no_option_prefixes_and_seed_is_not_seeds(capsys):
    """argparse would read `study --seed 42` as `--seeds 42`: 42 seeds where one was meant."""
    for args in (["study", "--seed", "42"], ["find-lr", "--seed", "42"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2 and "takes --seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["schedules", "--sched", "standard"])
    assert "unrecognized arguments: --sched" in capsys.readouterr().err


@pytest.mark.parametrize("names", [",", "", " , "])
def test_an_empty_schedule_list_is_refused_not_read_as_all(names, capsys):
    assert main(["schedules", "--steps", "20", "--schedules", names]) == 2
    assert "--schedules: no names in" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["2", "1"])
def test_progress_into_a_log_is_a_line_per_run(workers, tmp_path, capsys):
    """--progress where stderr is not a terminal (here captured; a batch job's log): plain lines, no carriage
    returns or cursor moves; with workers, the parent writes them from each worker's state, one per run."""
    args = ["study", "--schedules", "standard,onecycle,cyclic", "--epochs", "1", "--limit", "150", "--batch-size",
            "32", "--width", "0.125", "--workers", workers, "--progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err and "\x1b" not in err, err[-2000:]
    for run in ("standard s0", "onecycle s0", "cyclic s0"):
        (line,) = [x for x in err.splitlines() if x.startswith(f"{run}: step ")]  # the end's line: runs are short
        assert "(100%)" in line and "steps/s, loss " in line and ", val " in line, line
        assert f"{run.split()[0]} seed 0: test accuracy" in out
    if workers == "1":  # (the parent's own lines: once is enough)
        quiet = ["study", *args[1:-3], "--no-progress", "--fresh", "--out", str(tmp_path)]
        assert main(quiet) == 0 and "steps/s" not in capsys.readouterr().err


def test_an_interrupted_fresh_study_says_to_continue_without_fresh(monkeypatch, capsys):
    """Rerunning `--fresh` after a stop would discard the runs it had just trained."""
    import lrlab.study

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lrlab.study, "run_study", stopped)
    assert main(["study", "--fresh", "--no-progress"]) == 130
    assert "rerun the command without --fresh to continue" in capsys.readouterr().err
    assert main(["study", "--no-progress"]) == 130
    assert "rerun the same command to continue" in capsys.readouterr().err
    monkeypatch.setattr(lrlab.study, "prepare", stopped)  # a command that trains no runs says no more
    assert main(["schedules"]) == 130
    assert capsys.readouterr().err.strip() == "lrlab: interrupted"


def test_a_config_that_is_neither_a_file_nor_bundled_lists_the_bundled_ones(capsys):
    assert main(["schedules", "nosuch"]) == 2
    assert "config 'nosuch' is neither a file nor a bundled study; bundled: 'cifar10-cpu'" in capsys.readouterr().err
    assert main(["schedules", "--set", "train.epochs=2", "seeds=2"]) == 2  # the second setting taken for the config
    said = capsys.readouterr().err
    assert "config 'seeds=2' is neither a file nor a bundled study (a setting? --set seeds=2)" in said
