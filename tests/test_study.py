"""A whole study through its Python API: outputs, pairing, keeping finished runs, refusing a
folder of another configuration."""

from __future__ import annotations

import csv
import json

import pytest

from lrlab import config
from lrlab.errors import ConfigError
from lrlab.study import run_study

QUICK = {"data.limit": 200, "train.epochs": 2, "train.batch_size": 32, "model.width": 0.125}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    cfg = config.load(None, {**QUICK, "out": str(out), "seeds": 2})
    lines: list[str] = []
    table = run_study(cfg, progress=False, echo=lines.append)
    return cfg, out, table, lines


def test_outputs_for_every_run(study):
    cfg, out, table, _lines = study
    names = list(cfg.schedules)
    assert len(names) == 6 and [r["schedule"] for r in table] == names
    for name in names:
        for seed in (0, 1):
            run = out / "runs" / name / f"seed-{seed}"
            for f in ("config.json", "epochs.csv", "lr.csv", "result.json"):
                assert (run / f).is_file(), run / f
            res = json.loads((run / "result.json").read_text())
            assert res["status"] == "ok" and 0 <= res["test"]["accuracy"] <= 1
            assert len(res["test"]["confusion_matrix"]) == 10
            with (run / "lr.csv").open() as f:
                trace = list(csv.DictReader(f))
            saved = json.loads((run / "config.json").read_text())
            assert len(trace) == saved["plan"]["total_steps"]
            assert saved["config"]["train"]["epochs"] == 2 and saved["provenance"]["torch"]
    for plot in ("lr", "val_accuracy", "metrics", "confusion"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 5000


def test_summary_csv(study):
    cfg, out, _, _ = study
    with (out / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    for col in ("schedule", "seed", "status", "accuracy", "precision", "recall", "f1"):
        assert col in rows[0]
    assert [r["schedule"] for r in rows[::2]] == list(cfg.schedules)


def test_report_and_printed_table(study):
    cfg, out, table, lines = study
    report = (out / "report.md").read_text()
    printed = "\n".join(lines)
    for name in cfg.schedules:
        assert f"| {name} |" in report and f"| {name} |" in printed
    assert "![Learning rate" in report and "plots/val_accuracy.png" in report
    mean_acc = sum(r["accuracy"] for r in table) / len(table)
    assert 0.1 <= mean_acc <= 1.0


def test_paired_seeds_share_initial_weights(study):
    cfg, out, _, _ = study
    hashes = {
        (n, s): json.loads((out / "runs" / n / f"seed-{s}" / "config.json").read_text())["init_hash"]
        for n in cfg.schedules
        for s in (0, 1)
    }
    assert len({hashes[(n, 0)] for n in cfg.schedules}) == 1
    assert hashes[("standard", 0)] != hashes[("standard", 1)]


def test_rerun_keeps_finished_runs_and_refuses_another_config(study):
    _cfg, out, table, _ = study
    lines: list[str] = []
    again = run_study(config.load(None, {**QUICK, "out": str(out), "seeds": 2}), progress=False, echo=lines.append)
    assert sum("kept" in ln for ln in lines) == 12
    assert again == table
    with pytest.raises(ConfigError, match="--fresh"):
        run_study(
            config.load(None, {**QUICK, "out": str(out), "seeds": 2, "train.epochs": 3}),
            progress=False,
            echo=lines.append,
        )
