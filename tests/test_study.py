"""A whole study through its Python API: outputs, pairing, statistics in the report, keeping
finished runs, refusing a folder of another configuration, rebuilding and merging reports."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lrlab import config
from lrlab.cli import main
from lrlab.data import load_data
from lrlab.errors import ConfigError, LrlabError
from lrlab.metrics import ALL_METRICS
from lrlab.report import build_report
from lrlab.results import RUN_CSVS, by_name, comparisons, load_runs
from lrlab.study import run_study

# workers 1: runs in the test's own process (two worker processes took 6 to 8 s to start, longer than such runs)
QUICK = {"data.limit": 200, "train.epochs": 2, "train.batch_size": 32, "model.width": 0.125, "workers": 1}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    # in two worker processes, as the default study trains (their start is worth it for twelve runs)
    cfg = config.load(None, {**QUICK, "out": str(out), "seeds": 2, "workers": 2})
    lines: list[str] = []
    table = run_study(cfg, progress=False, echo=lines.append)
    return cfg, out, table, lines


def read_csv(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_outputs_for_every_run(study):
    cfg, out, table, _ = study
    mean, std = load_data(cfg.data).channel_stats()
    names = list(cfg.schedules)
    assert len(names) == 6 and [r["schedule"] for r in table] == names
    for name in names:
        for seed in (0, 1):
            run = out / "runs" / name / f"seed-{seed}"
            for f in ("config.json", "epochs.csv", "lr.csv", "steps.csv", "result.json"):
                assert (run / f).is_file(), run / f
            res = json.loads((run / "result.json").read_text())
            assert res["status"] == "ok" and 0 <= res["test"]["accuracy"] <= 1
            assert len(res["test"]["confusion_matrix"]) == 10 and len(res["test"]["per_class"]) == 10
            saved = json.loads((run / "config.json").read_text())
            trace = read_csv(run / "lr.csv")
            assert len(trace) == saved["plan"]["total_steps"]
            # epochs.csv names each epoch's last step as lr.csv does: joined on step, the LRs agree
            lr_at = {r["step"]: r["lr"] for r in trace}
            assert all(e["lr"] == lr_at[e["step"]] for e in read_csv(run / "epochs.csv"))
            assert saved["config"]["train"]["epochs"] == 2 and saved["seed"] == seed
            prov = saved["provenance"]
            assert prov["torch"] and prov["torchvision"] and prov["lrlab"] and prov["device"] == "cpu"
            assert len(saved["data"]["files_hash"]) == 64
            assert saved["config"]["data"]["augment"] == "auto" and saved["data"]["augment"] == "none"  # digits
            # the input the weights expect, to use them without lrlab: the training split's own statistics
            assert saved["data"]["image_size"] == [8, 8] and saved["data"]["channels"] == 1
            assert saved["data"]["mean"] == pytest.approx(mean) and saved["data"]["std"] == pytest.approx(std)
    for plot in ("lr", "val_accuracy", "train_loss", "accuracy", "differences", "confusion"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 5000


def test_summary_csv(study):
    cfg, out, _, _ = study
    rows = read_csv(out / "summary.csv")
    assert len(rows) == 12
    for col in ("schedule", "seed", "status", "accuracy", "precision", "recall", "f1", "peak_lr", "mean_lr"):
        assert col in rows[0]
    assert [r["schedule"] for r in rows[::2]] == list(cfg.schedules)


def test_comparisons_csv_holds_the_reports_statistics(study):
    cfg, out, _, _ = study
    rows = read_csv(out / "comparisons.csv")
    runs = load_runs([out])
    comps = comparisons(by_name(runs, list(cfg.schedules)), "standard")
    assert [r["schedule"] for r in rows] == list(cfg.schedules)[1:] and {r["baseline"] for r in rows} == {"standard"}
    assert not (out / "peaks.csv").exists()  # no LR axis: no peaks to compare
    for row, c in zip(rows, comps, strict=True):
        assert int(row["n"]) == c.n == 2 and row["verdict"] == c.verdict
        for key in ("diff_mean", "p_ttest", "p_holm", "seeds_needed"):  # an empty cell: missing (nan)
            assert float(row[key] or "nan") == pytest.approx(getattr(c, key), rel=1e-5, nan_ok=True)


def test_report_states_n_interval_and_test(study):
    cfg, out, table, lines = study
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    printed = "\n".join(lines)
    for name in cfg.schedules:
        assert f"| {name} |" in md and f"| {name} |" in printed and f'<td class="t">{name}</td>' in html
    assert "95 % t-interval" in md and "paired t-test" in md and "Holm" in md and "| n |" in md.replace(" n |", " n |")
    assert "Against the baseline (standard)" in md and "Wilcoxon" in md
    # numbers right-aligned, so that their digits line up; names and words (a verdict, a status) to the left
    header = next(line for line in md.splitlines() if line.startswith("| schedule |") and "verdict" in line)
    rule = md.splitlines()[md.splitlines().index(header) + 1]
    aligned = dict(zip(header.strip("|").split("|"), rule.strip("|").split("|"), strict=True))
    assert aligned[" schedule "] == aligned[" verdict "] == "---" and aligned[" p (Holm) "] == "---:", aligned
    assert "Holm-adjusted over 5 comparisons, alpha 0.05" in md and "at α/5 (Holm's strictest step)" in md
    assert "data:image/png;base64," in html and "plots/" not in html.split("<body>")[1]  # self-contained
    assert md.count("![") == 6
    assert "The tests behind the ranks: each schedule against the one directly above it" in md
    assert "| schedule | above it | Δ accuracy | pairs | p (Holm) | its rank |" in md
    row = table[0]
    assert row["n"] == 2 and row["accuracy"].n == 2 and row["accuracy"].ci_low <= row["accuracy"].mean


def test_paired_seeds_share_initial_weights(study):
    cfg, out, _, _ = study
    hashes = {
        (n, s): json.loads((out / "runs" / n / f"seed-{s}" / "result.json").read_text())["init_hash"]
        for n in cfg.schedules
        for s in (0, 1)
    }
    assert len({hashes[(n, 0)] for n in cfg.schedules}) == 1
    assert hashes[("standard", 0)] != hashes[("standard", 1)]


def test_rerun_keeps_finished_runs_and_refuses_another_config(study):
    _, out, table, _ = study
    lines: list[str] = []
    again = run_study(config.load(None, {**QUICK, "out": str(out), "seeds": 2}), progress=False, echo=lines.append)
    assert sum("kept" in ln for ln in lines) == 12
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in table]
    changed = config.load(None, {**QUICK, "out": str(out), "seeds": 2, "train.epochs": 3})
    with pytest.raises(ConfigError, match="--fresh"):
        run_study(changed, progress=False, echo=lines.append)


def test_report_rebuilds_identical_summary_from_copied_run_folders(study, tmp_path, capsys):
    _, out, _, _ = study
    copy = tmp_path / "copy"
    shutil.copytree(out / "runs", copy / "runs")  # run folders alone: no study.json, no summary
    assert main(["report", str(copy)]) == 0
    assert (copy / "summary.csv").read_text() == (out / "summary.csv").read_text()
    assert (copy / "report.html").is_file() and (copy / "plots" / "accuracy.png").is_file()
    # a study folder as --out for other runs: refused, its report kept
    other = tmp_path / "other"
    shutil.copytree(out / "runs" / "standard", other / "runs" / "standard")
    before = (copy / "report.md").read_text()
    assert main(["report", str(other), "--out", str(copy)]) == 2
    assert (copy / "report.md").read_text() == before
    assert main(["report", str(other), str(copy), "--out", str(copy)]) == 0  # among the DIRs: merged there
    assert "note: the report in" not in capsys.readouterr().out  # (other's runs are copy's too)
    shutil.move(copy / "runs" / "onecycle", tmp_path / "onecycle")  # now only other holds them
    shutil.move(tmp_path / "onecycle", other / "runs" / "onecycle")
    assert main(["report", str(other), str(copy), "--out", str(copy)]) == 0
    seeds = len(list((other / "runs" / "onecycle").iterdir()))
    assert f"note: the report in {copy} covers {seeds} runs of the other folders" in capsys.readouterr().out
    # a report needs no torch: it is not loaded, not even at the exit (a process group is shut down there)
    code = f"import sys; from lrlab.cli import main; main(['report', {str(copy)!r}]); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "False", done.stderr[-2000:]


def test_a_report_of_an_unfinished_study_says_what_is_missing(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out, tmp_path / "s")
    shutil.rmtree(tmp_path / "s" / "runs" / "annealing")
    run = tmp_path / "s" / "runs" / "standard" / "seed-1"
    (run / "result.json").unlink()  # stopped before its first checkpoint: its config.json alone, nothing to keep
    assert main(["report", str(tmp_path / "s")]) == 0
    said = "3 of the 12 planned runs have no result here: standard (seed 1); annealing (seeds 0, 1)"
    assert f"not finished: {said}\n" in capsys.readouterr().out  # (was "1 of them part-trained")
    (run / "checkpoint.pt").write_bytes(b"")  # stopped mid-run
    assert main(["report", str(tmp_path / "s")]) == 0
    said += "; 1 of them part-trained: rerun the study to finish them"
    assert f"not finished: {said}" in capsys.readouterr().out
    assert f"**Not finished:** {said}." in (tmp_path / "s" / "report.md").read_text()
    assert main(["report", str(out)]) == 0 and "not finished" not in capsys.readouterr().out


def test_a_report_of_a_study_with_no_finished_run_says_it_is_part_trained(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out / "runs" / "standard" / "seed-0", tmp_path / "s" / "runs" / "standard" / "seed-0")
    (tmp_path / "s" / "runs" / "standard" / "seed-0" / "result.json").unlink()  # stopped before a checkpoint
    assert main(["report", str(tmp_path / "s")]) == 2
    assert "part-trained" not in capsys.readouterr().err
    (tmp_path / "s" / "runs" / "standard" / "seed-0" / "checkpoint.pt").write_bytes(b"")  # stopped mid-run
    assert main(["report", str(tmp_path / "s")]) == 2
    assert "1 run part-trained there: rerun the study to finish them" in capsys.readouterr().err


def test_a_rerun_with_fewer_seeds_or_without_a_schedule_plans_no_more_of_them(study, tmp_path, capsys):
    """A study stopped with --seeds 3 and rerun with 2, or a schedule since dropped from the config: the report
    named their runs as not finished forever (study.json's plan only grew), even after their folders were gone."""
    _, out, _, _ = study
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    doc = json.loads((copy / "study.json").read_text())
    doc["planned"] += [["standard", 2], ["warmup", 2], ["gone", 0]]  # a third seed begun, a schedule since dropped
    (copy / "study.json").write_text(json.dumps(doc))
    assert main(["report", str(copy)]) == 0
    assert "not finished: 3 of the 15 planned runs have no result here" in capsys.readouterr().out
    flags = ["--set", "data.limit=200", "--epochs", "2", "--batch-size", "32", "--width", "0.125", "--seeds", "2",
             "--workers", "1", "--no-progress", "--out", str(copy)]  # fmt: skip
    assert main(["study", "--schedules", "standard", *flags]) == 0  # a part: the others' plans stand
    assert "not finished: 1 of the 13 planned runs have no result here: warmup (seed 2)" in capsys.readouterr().out
    assert main(["study", *flags]) == 0  # the whole study, with 2 seeds: nothing is missing, nothing trained
    printed = capsys.readouterr().out
    assert "not finished" not in printed and printed.count("kept (finished earlier)") == 12
    assert json.loads((copy / "study.json").read_text())["planned"] == doc["planned"][:12]


def test_runs_that_ran_on_other_code_or_threads_are_said(study, tmp_path, capsys):
    """The report named the first run's commit, device and versions as if every run had them: runs trained into a
    folder after a commit, or resumed with another thread count, were not told apart."""
    _, out, _, _ = study
    assert "not every run ran alike" not in (out / "report.md").read_text()  # one start, one machine: nothing
    shutil.copytree(out / "runs", tmp_path / "runs")
    path = tmp_path / "runs" / "cyclic" / "seed-1" / "config.json"
    doc = json.loads(path.read_text())
    prov = doc["provenance"]
    later = {**prov, "git_commit": "abc1234", "git_dirty": False, "torch_threads": prov["torch_threads"] + 1}
    path.write_text(json.dumps({**doc, "resumes": [{"from_epoch": 1, "provenance": later}]}))
    assert main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    commit = (prov["git_commit"] or "n/a")[:12]
    assert f"commit {commit}{' with uncommitted changes' * bool(prov['git_dirty'])} in 12 runs, abc1234 in 1 run" in md
    assert f"torch threads {prov['torch_threads']} in 12 runs, {prov['torch_threads'] + 1} in 1 run" in md
    assert "(a resumed run counts under what ran before and after its resume)" in md
    assert "The first run: lrlab " in md
    # one card, named as a single process records it (cuda) and as a torchrun process does (cuda:0): the same
    for k, run in enumerate(sorted((tmp_path / "runs").glob("*/seed-*"))):
        doc = json.loads((run / "config.json").read_text())
        doc["provenance"].update(device=["cuda", "cuda:0"][k % 2], device_name="NVIDIA H200")
        doc.pop("resumes", None)
        (run / "config.json").write_text(json.dumps(doc))
    assert main(["report", str(tmp_path)]) == 0
    assert "not every run ran alike" not in (tmp_path / "report.md").read_text()


def test_runs_of_one_process_and_of_several_compared_are_said(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    path = tmp_path / "runs" / "cyclic" / "seed-0" / "config.json"
    assert json.loads(path.read_text())["processes"] == 1
    path.write_text(json.dumps({**json.loads(path.read_text()), "processes": 2}))  # as torchrun would record it
    assert main(["report", str(tmp_path)]) == 0
    assert "note: runs trained on 1 and 2 processes are compared here" in capsys.readouterr().out
    assert "data-parallel" not in (tmp_path / "report.md").read_text()
    for path in (tmp_path / "runs").glob("*/seed-*/config.json"):  # all on two: the report's setup says so
        path.write_text(json.dumps({**json.loads(path.read_text()), "processes": 2}))
    assert main(["report", str(tmp_path)]) == 0
    assert "compared here" not in capsys.readouterr().out
    batch = json.loads(path.read_text())["config"]["train"]["batch_size"]
    said = f"batch {batch} (data-parallel on 2 processes: {batch // 2} images each)"
    assert said in (tmp_path / "report.md").read_text()
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "processes_resumed": [1]}))  # one of them resumed on one process
    assert main(["report", str(tmp_path)]) == 0
    assert "data-parallel" not in (tmp_path / "report.md").read_text() and "compared here" in capsys.readouterr().out


def test_a_run_no_better_than_the_commonest_class_is_said(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    rate = 0.0
    for path in (tmp_path / "runs").glob("*/seed-*/result.json"):  # (the quick study's runs learn little)
        doc = json.loads(path.read_text())
        counts = [sum(row) for row in doc["test"]["confusion_matrix"]]
        rate = max(counts) / sum(counts)
        at_chance = path.parent == tmp_path / "runs" / "warmup" / "seed-1"
        doc["test"]["accuracy"] = rate if at_chance else rate + 0.01  # as one class answered everywhere scores
        path.write_text(json.dumps(doc))
    assert main(["report", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert f"learned nothing: warmup seed 1 ({rate:.3f}) ended no better than always answering the test " in said
    assert "**Learned nothing:** warmup seed 1 (" in (tmp_path / "report.md").read_text()


def test_the_highest_mean_of_a_schedule_with_diverged_seeds_says_so(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    for path in (tmp_path / "runs").glob("*/seed-*/result.json"):
        doc = json.loads(path.read_text())
        doc["test"]["accuracy"] = 0.5 + 0.01 * doc["seed"]
        if path.parent.parent.name == "onecycle":  # seed 0 learns most, seed 1 diverges
            doc["test"]["accuracy"] = 0.99
            if doc["seed"] == 1:
                doc.update(status="diverged", test=None)
        path.write_text(json.dumps(doc))
    assert main(["report", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("Highest mean accuracy: **onecycle**."))
    assert line.endswith("But onecycle diverged on 1 of its 2 seeds: each mean is over the seeds that finished.")
    # its verdict against the baseline pairs only the seed it finished, and says what it left out
    row = next(x for x in text.splitlines() if x.startswith("| onecycle | +"))
    assert "| untested (diverged on 1 of 2 seeds) |" in row
    assert "| untested (diverged on 1 of 2 seeds) |" in capsys.readouterr().out
    assert text.count("diverged on") == 2  # the two lines above, of the schedule that did; no other
    # no seed but seed 0 finished in every schedule: the ranks are over each one's own seeds, and said so
    assert (
        "no two seeds were finished by every schedule, so the ranks and the highest mean compare each "
        "schedule's mean over its own finished seeds (standard: seeds 0 and 1; cyclic: seeds 0 and 1; warmup: seeds "
        "0 and 1; annealing: seeds 0 and 1; onecycle: seed 0; uneven-cyclic: seeds 0 and 1): not the same seeds, "
        "and one seed is one draw"
    ) in text
    from lrlab.report import _ranked_on

    nan = math.nan  # the same number of seeds, not the same seeds: said too
    assert (
        "(A: seeds 0 and 1; B: seeds 2 and 3): not the same seeds."
        in _ranked_on({"A": {0: 0.5, 1: 0.6, 2: nan, 3: nan}, "B": {0: nan, 1: nan, 2: 0.7, 3: 0.8}}) + "."
    )
    assert _ranked_on({"A": {0: 0.5, 1: 0.6}, "B": {0: 0.7, 1: 0.8}}) is None


def test_a_study_whose_every_run_diverged_says_so_and_ranks_nothing(study, tmp_path, capsys):
    """Every run diverged: the schedules were all ranked 1 and the report drew no conclusion; the LR budget mixed
    in the diverged runs' cut-short traces where others finished."""
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    for path in (tmp_path / "runs").glob("*/seed-*/result.json"):
        doc = json.loads(path.read_text())
        doc.update(status="diverged", test=None, diverged={"step": 11, "lr": 9.0, "loss": None}, final_lr=9.0)
        path.write_text(json.dumps(doc))
    assert main(["report", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    md = (tmp_path / "report.md").read_text()
    assert "**No schedule can be recommended:** every run diverged, so nothing was measured or compared." in md
    assert "| standard | — | — | — | — | 0 (2 diverged) | — |" in md and "| — | baseline |" in printed
    assert "every run diverged: no schedule can be recommended; lower the LRs" in printed
    assert "differences.png" not in md and not (tmp_path / "plots" / "differences.png").exists()  # no pairs
    assert "| 9 (diverged) |" in md  # the final LR of runs cut short, said so
    # one schedule finished: its LR budget is of its finished runs alone
    runs = tmp_path / "runs" / "standard"
    for seed in (0, 1):
        shutil.copy(out / "runs" / "standard" / f"seed-{seed}" / "result.json", runs / f"seed-{seed}" / "result.json")
    assert main(["report", str(tmp_path)]) == 0
    row = next(x for x in (tmp_path / "report.md").read_text().splitlines() if x.startswith("| standard | 0."))
    assert "(diverged)" not in row and "| 9 |" not in row


def test_ranks_use_the_seeds_every_schedule_finished(study, tmp_path, capsys):
    # annealing trails standard on both shared seeds, and an extra seed of its own scores high: standard has
    # the highest mean over the seeds both finished, and the report says which seeds the ranks compare
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    runs = tmp_path / "runs"
    shutil.copytree(runs / "annealing" / "seed-1", runs / "annealing" / "seed-2")
    for path in runs.glob("*/seed-*/result.json"):
        doc = json.loads(path.read_text())
        seed = int(path.parent.name.split("-")[1])
        doc["seed"] = seed
        doc["test"]["accuracy"] = {"standard": 0.80, "annealing": 0.79}.get(path.parent.parent.name, 0.5) + seed / 100
        if path.parent == runs / "annealing" / "seed-2":
            doc["test"]["accuracy"] = 0.99
        path.write_text(json.dumps(doc))
    config = runs / "annealing" / "seed-2" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "seed": 2}))
    assert main(["report", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "| annealing | 0.8600 ± 0.2799 |" in said  # its own mean, over its three seeds, is the highest
    assert "note: the ranks and the highest mean compare each schedule's mean over seeds 0 and 1" in said
    assert "Highest mean accuracy: **standard**." in (tmp_path / "report.md").read_text()


def test_report_of_one_seed_says_nothing_was_tested(study, tmp_path):
    _, out, _, _ = study
    for run in (out / "runs").glob("*/seed-0"):
        shutil.copytree(run, tmp_path / "runs" / run.parent.name / run.name)
    assert main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "no interval or p-values: they need at least two seeds" in md and "Holm-adjusted" not in md
    assert "t-interval" not in md and "half-width" not in md  # (the method sentence spoke of intervals not shown)
    assert "95% interval" not in md.split("## Plots")[1].split("##")[0]  # nor the accuracy plot's caption
    assert "t-interval" in (out / "report.md").read_text()  # the study's own, of two seeds


def test_a_report_without_comparisons_leaves_no_differences_plot_of_an_earlier_one(study, tmp_path):
    _, out, _, _ = study
    md = (out / "report.md").read_text()
    assert md.index("## Against the baseline") < md.index("plots/differences.png") < md.index("## Plots")
    shutil.copytree(out, tmp_path / "s")
    for run in (tmp_path / "s" / "runs").iterdir():
        if run.name != "standard":
            shutil.rmtree(run)
    assert (tmp_path / "s" / "plots" / "differences.png").exists()  # the earlier report's
    assert main(["report", str(tmp_path / "s")]) == 0
    assert "differences.png" not in (tmp_path / "s" / "report.md").read_text()
    assert not (tmp_path / "s" / "plots" / "differences.png").exists()  # one schedule: nothing compared


def test_a_difference_without_spread_takes_the_smallest_spread_the_test_split_shows(study, tmp_path):
    """The same gain on every seed: no spread, which on a test split of N images is below what it can show (one
    image is 1/N), not certainty. The t-test and its interval take the spread of one seed one image apart, so
    that an equal gain on every seed counts about as much as gains one image apart (the sign test made gains of
    3, 3, 3 images "no clear difference" and 3, 3, 4 "better")."""
    from lrlab.report import _interval, _p
    from lrlab.stats import compare

    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    base, mine = {}, {}
    for seed in (0, 1):
        base[seed] = json.loads((out / "runs" / "standard" / f"seed-{seed}" / "result.json").read_text())["test"][
            "accuracy"
        ]
        path = tmp_path / "runs" / "warmup" / f"seed-{seed}" / "result.json"
        doc = json.loads(path.read_text())
        doc["test"]["accuracy"] = mine[seed] = base[seed] + 0.02  # the same gain on both seeds
        path.write_text(json.dumps(doc))
    n = json.loads((out / "runs" / "standard" / "seed-0" / "config.json").read_text())["data"]["test"]
    assert main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| warmup | +0.0200 |"))
    (c,) = compare({"standard": base, "warmup": mine}, "standard", resolution=1 / n)
    # (other schedules may be named beside it: runs this short learn little, and some tie on every seed)
    assert f"| {_p(c.p_ttest)} † |" in row and f"| {_interval(c)} |" in row and _interval(c).endswith(" †")
    assert re.search(r"† ([\w-]+, )*warmup(, [\w-]+)*: every seed moved by the same amount, so the seeds show no", md)
    # its interval is that of the smallest spread: mean ± t(0.975, 1) · (1/N/√2)/√2, and the CSV names the test
    assert c.diff_ci_high - c.diff_ci_low == pytest.approx(2 * 12.7062 / (2 * n), rel=1e-4)
    row = next(r for r in read_csv(tmp_path / "comparisons.csv") if r["schedule"] == "warmup")
    assert row["test"] == "t-test-floored"


def test_train_gives_the_weights_of_a_finished_run_and_fresh_touches_only_its_run(study, tmp_path, capsys):
    _, out, _, _ = study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    flags = ["--set", "data.limit=200", "--epochs", "2", "--batch-size", "32", "--width", "0.125",
             "--threads", "1", "--no-progress", "--out", str(copy)]  # fmt: skip
    run = copy / "runs" / "annealing" / "seed-0"
    # stopped (Ctrl-C) while training it again: the finished result stays, beside the new training's checkpoint
    from lrlab import training

    real = training.Trainer.train_epoch

    def stopped(self, epoch, bar):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, epoch, bar)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training.Trainer, "train_epoch", stopped)
        assert main(["train", "--schedule", "annealing", "--seed", "0", *flags]) == 130
    for f in ("result.json", "config.json"):  # the finished run's record too: the new training's waits beside it
        assert (run / f).read_text() == (out / "runs/annealing/seed-0" / f).read_text(), f
    assert (run / "checkpoint.pt").is_file() and (run / "retrain.json").is_file() and not (run / "model.pt").exists()
    capsys.readouterr()
    assert main(["train", "--schedule", "annealing", "--seed", "0", *flags]) == 0
    assert (run / "model.pt").is_file()  # the finished run was trained again for its weights, and said so
    said = capsys.readouterr().out
    assert (
        "resumed from epoch 1" in said and not (run / "checkpoint.pt").exists() and not (run / "retrain.json").exists()
    )
    assert [r["from_epoch"] for r in json.loads((run / "config.json").read_text())["resumes"]] == [1]
    assert "is finished but without its weights (a study does not keep them): training it again" in said
    assert said.startswith("lrlab train 'six-settings': 1 schedule × 1 seed on digits")
    before, after = (json.loads((d / "runs/annealing/seed-0/result.json").read_text()) for d in (out, copy))
    assert after["test"] == before["test"]  # the same run, bit for bit on the CPU
    assert main(["train", "--schedule", "warmup", "--seed", "1", *flags, "--fresh"]) == 0
    assert (copy / "runs" / "warmup" / "seed-1" / "model.pt").is_file()
    assert (run / "model.pt").is_file() and (copy / "runs" / "warmup" / "seed-0" / "result.json").is_file()
    # a run of another seed trained into the study: its plan grows by that run only, so nothing is missing
    capsys.readouterr()
    assert main(["train", "--schedule", "warmup", "--seed", "5", *flags]) == 0
    assert "not finished" not in capsys.readouterr().out
    planned = json.loads((copy / "study.json").read_text())["planned"]
    assert len(planned) == 13 and planned[-1] == ["warmup", 5]


def test_a_runs_identity_is_the_datas_content_not_its_path():
    from lrlab.study import run_fingerprint

    def fp(name: str, files_hash: str = "abc", **data) -> str:
        cfg = config.load(None, {"data.name": name, **{f"data.{k}": v for k, v in data.items()}})
        return run_fingerprint(cfg, cfg.schedules["standard"], None, 0, files_hash)

    assert fp("imagefolder:trees/a") == fp("imagefolder:/mnt/copy/a") != fp("imagefolder:trees/a", "other")
    assert fp("cifar10", data_dir="data") == fp("cifar10", data_dir="/scratch/cifar", download=True)
    assert fp("cifar10") != fp("cifar100") and fp("imagefolder:x") != fp("imagefolder:x", limit=100)


def _set_cell(text: str, column: str, value: str) -> str:
    """A CSV's text with `column` of its first row set to `value`."""
    head, first, *rest = text.splitlines()
    cells = first.split(",")
    cells[head.split(",").index(column)] = value
    return "\n".join([head, ",".join(cells), *rest]) + "\n"


def test_a_damaged_run_file_is_named_not_a_traceback(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    damaged = tmp_path / "runs" / "cyclic" / "seed-1" / "result.json"
    damaged.write_text(damaged.read_text()[:100])
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read the run in {damaged.parent}" in err and "remove that folder" in err
    for doc, said in (
        ("{}", "result.json has no schedule name or seed"),
        ("[1, 2]", "result.json and config.json must each hold"),
    ):
        damaged.write_text(doc)  # JSON, but not a result: named the same way
        assert main(["report", str(tmp_path)]) == 2
        assert f"cannot read the run in {damaged.parent}: {said}" in capsys.readouterr().err
    # JSON of lrlab's shape with a value of another type: named, not a TypeError from the tables or plots
    whole = json.loads((out / "runs" / "cyclic" / "seed-1" / "result.json").read_text())
    for edit, said in (
        (lambda d: d["test"].update(accuracy=None), "result.json: test.accuracy is null, not a number"),
        (lambda d: d.update(best_val_accuracy="abc"), 'result.json: best_val_accuracy is "abc", not a number'),
        (lambda d: d.update(epochs_run="2"), 'result.json: epochs_run is "2", not a whole number'),
        (
            lambda d: d["test"].update(classes=list(range(10))),  # (the readers look the rows up by these)
            "result.json: test.per_class lacks a class of test.classes, or its f1-score or support",
        ),
        (
            lambda d: d["test"].update(confusion_matrix=None),
            "result.json: test.confusion_matrix is not a 10 × 10 table of counts",
        ),
    ):
        doc = json.loads(json.dumps(whole))
        edit(doc)
        damaged.write_text(json.dumps(doc))
        assert main(["report", str(tmp_path)]) == 2
        assert f"cannot read the run in {damaged.parent}: {said}" in capsys.readouterr().err
    damaged.write_text((out / "runs" / "cyclic" / "seed-1" / "result.json").read_text())  # whole again
    config_json = damaged.parent / "config.json"
    kept = config_json.read_text()
    config_json.write_text(json.dumps({**json.loads(kept), "plan": {}}))
    assert main(["report", str(tmp_path)]) == 2
    assert "config.json: plan.total_steps is null, not a whole number" in capsys.readouterr().err
    config_json.write_text(kept)
    steps = json.loads(kept)["plan"]["total_steps"]
    csvs = damaged.parent
    for name, edit, said in (
        (
            "epochs.csv",
            lambda t: t.replace("\n1,", "\nabc,", 1),
            "epochs.csv line 2: epoch is 'abc', not a whole number",
        ),
        ("lr.csv", lambda t: t.replace("\n0,", "\n0\n", 1), "lr.csv line 2: lr is no value"),
        ("steps.csv", None, "steps.csv is missing"),
        # a file emptied or cut short, or edited into what lrlab never writes, gave other numbers or a traceback
        ("epochs.csv", lambda t: "", "epochs.csv has the columns nothing, not ['epoch', "),
        ("epochs.csv", lambda t: t[: t.rstrip().rfind("\n") + 1], "epochs.csv has 1 rows; the run trained 2 epochs"),
        ("lr.csv", lambda t: t.replace("\n0,", "\n0.5,", 1), "lr.csv line 2: step is '0.5', not a whole number"),
        ("lr.csv", lambda t: t.replace("step,lr,", "lr,step,", 1), "lr.csv has the columns ['lr', 'step', "),
        ("epochs.csv", lambda t: _set_cell(t, "val_accuracy", "nan"), "epochs.csv line 2: val_accuracy is 'nan', "),
        # steps.csv emptied (its header alone), or its rows out of order: the loss jitter read it without a word
        (
            "steps.csv",
            lambda t: t.splitlines(keepends=True)[0],
            f"steps.csv has no rows; the run trained {steps} steps, logged at least every 10",
        ),
        ("steps.csv", lambda t: _set_cell(t, "step", str(steps + 5)), f"steps.csv has steps {steps + 5} to "),
    ):
        whole = (csvs / name).read_text()
        (csvs / name).write_text(edit(whole)) if edit else (csvs / name).unlink()
        assert main(["report", str(tmp_path)]) == 2
        assert f"cannot read the run in {csvs}: {said}" in capsys.readouterr().err
        (csvs / name).write_text(whole)
    # steps.csv as lrlab wrote it before 2026-11-27: step counts (10, 20, ...), not indices: still read
    whole = (csvs / "steps.csv").read_text()
    head, *rows = whole.splitlines(keepends=True)
    (csvs / "steps.csv").write_text(
        "".join([head, *(f"{int(x.split(',')[0]) + 1},{x.split(',', 1)[1]}" for x in rows)])
    )
    assert main(["report", str(tmp_path)]) == 0
    (csvs / "steps.csv").write_text(whole)
    assert main(["report", str(tmp_path)]) == 0
    capsys.readouterr()
    damaged.write_text("{}")
    # a study meets it before training, not after: it is neither kept nor reported
    quick = ["--limit", "200", "--epochs", "2", "--batch-size", "32", "--width", "0.125", "--seeds", "2"]
    assert main(["study", *quick, "--no-progress", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"cannot read the run in {damaged.parent}" in captured.err and "kept" not in captured.out
    (tmp_path / "file").write_text("")
    assert main(["report", str(out), "--out", str(tmp_path / "file" / "x")]) == 2
    assert "cannot be written" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ['{"config": {"sched', "[]"])
def test_a_damaged_study_json_is_said_and_the_runs_configs_stand_in(study, tmp_path, capsys, damage):
    _, out, _, _ = study
    shutil.copytree(out, tmp_path / "s")
    (tmp_path / "s" / "study.json").write_text(damage)
    assert main(["report", str(tmp_path / "s")]) == 0
    said = f"lrlab: {tmp_path / 's' / 'study.json'} cannot be read; the run folders' configs are used"
    assert capsys.readouterr().err.count(said) == 1  # (once: it was said twice)
    assert (tmp_path / "s" / "summary.csv").read_text() == (out / "summary.csv").read_text()


def test_report_refuses_to_compare_runs_of_different_settings(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    changed = tmp_path / "runs" / "warmup" / "seed-0" / "config.json"
    doc = json.loads(changed.read_text())
    doc["config"]["train"]["epochs"] = 20
    changed.write_text(json.dumps(doc))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "different settings: train.epochs is 2 in " in err and f"but 20 in {changed.parent}" in err
    # the same run in two folders, trained under different settings: the setting is the reason named, not
    # the results that follow from it
    other = tmp_path / "other" / "runs" / "warmup" / "seed-0"
    shutil.copytree(changed.parent, other)
    result = json.loads((other / "result.json").read_text())
    result["test"]["accuracy"] /= 2
    (other / "result.json").write_text(json.dumps(result))
    assert main(["report", str(out), str(other.parents[2]), "--out", str(tmp_path / "merged")]) == 2
    assert "different settings: train.epochs is 2 in " in capsys.readouterr().err
    doc["config"]["train"].update(epochs=2, threads=7, device="cuda")  # how a run executes: the same setting
    changed.write_text(json.dumps(doc))
    assert main(["report", str(tmp_path)]) == 0


def test_a_part_of_a_study_keeps_its_baseline_and_order(study, tmp_path, capsys):
    """--schedules without the baseline, into the study's folder: nothing to train, and the folder's report
    still compares with the study's baseline, in the study's order; into a new folder: said, not silent, and
    the rest of the study run into it later puts the baseline back first."""
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    shutil.copy(out / "study.json", tmp_path / "study.json")
    quick = ["--limit", "200", "--epochs", "2", "--batch-size", "32", "--width", "0.125", "--no-progress"]
    # (a schedule it does not train, set otherwise: study.json keeps the spec its runs in the folder are of)
    assert main(["study", "--schedules", "onecycle", "--seeds", "2", *quick, "--set", "schedules.cyclic.max_lr=0.9",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    assert "(finished earlier)" in capsys.readouterr().out
    recorded = json.loads((out / "study.json").read_text())["config"]["schedules"]
    assert json.loads((tmp_path / "study.json").read_text())["config"]["schedules"] == recorded  # the order too
    assert (tmp_path / "comparisons.csv").read_text() == (out / "comparisons.csv").read_text()
    assert "Against the baseline (standard)" in (tmp_path / "report.md").read_text()
    part = tmp_path / "part"
    assert main(["study", "--schedules", "onecycle,cyclic", *quick, "--workers", "2", "--out", str(part)]) == 0
    said = "the study's baseline, standard, has no runs here; compared with cyclic, the first that ran"
    assert said in capsys.readouterr().out and said in (part / "report.md").read_text()
    assert {r["baseline"] for r in read_csv(part / "comparisons.csv")} == {"cyclic"}
    saved = json.loads((part / "runs" / "cyclic" / "seed-0" / "config.json").read_text())["config"]
    assert list(saved["schedules"]) == list(recorded)  # a worker's run records the whole study, as study.json does
    assert main(["study", "--schedules", "standard", *quick, "--out", str(part)]) == 0
    assert [r["schedule"] for r in read_csv(part / "summary.csv")] == ["standard", "cyclic", "onecycle"]
    assert {r["baseline"] for r in read_csv(part / "comparisons.csv")} == {"standard"}


def test_fresh_replaces_a_damaged_run(study, tmp_path):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    (tmp_path / "runs" / "onecycle" / "seed-0" / "result.json").write_text("{broken")
    quick = ["--limit", "200", "--epochs", "2", "--batch-size", "32", "--width", "0.125", "--workers", "1",
             "--no-progress"]  # fmt: skip
    assert main(["study", "--schedules", "onecycle", "--seeds", "2", *quick, "--fresh", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "runs" / "onecycle" / "seed-0" / "result.json").read_text())["status"] == "ok"


@pytest.mark.parametrize("fresh", [[], ["--fresh"]])
def test_a_folder_of_another_setting_is_refused_before_training(fresh, study, tmp_path, capsys):
    """Runs of another setting (here epochs; e.g. --data into the default study's folder) that this start would
    keep: refused before anything is trained or removed, not by the report after all the training."""
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    before = (tmp_path / "runs" / "onecycle" / "seed-0" / "result.json").read_text()
    quick = ["--limit", "200", "--epochs", "3", "--batch-size", "32", "--width", "0.125", "--no-progress"]
    assert main(["study", "--schedules", "onecycle", *quick, *fresh, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} holds runs of another setting (train.epochs is 2 in {tmp_path}" in err and "--out" in err
    assert "--fresh to replace them" not in err  # it would not do: other schedules' runs stay
    assert (tmp_path / "runs" / "onecycle" / "seed-0" / "result.json").read_text() == before
    if not fresh:  # every run there is one this start trains: named the same way, and --fresh offered
        assert main(["study", *quick, "--seeds", "2", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "holds runs of another setting (train.epochs is 2 in" in err and "or --fresh to replace them" in err


def test_a_tie_for_the_highest_mean_is_named_as_one(study, tmp_path):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    for name in ("warmup", "annealing"):
        for seed in (0, 1):
            path = tmp_path / "runs" / name / f"seed-{seed}" / "result.json"
            result = json.loads(path.read_text())
            result["test"]["accuracy"] = 1.0 - seed / 270
            path.write_text(json.dumps(result))
    build_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Highest mean accuracy, tied: **warmup** and **annealing**." in md
    # other schedules at rank 1 (not told apart from the top by the tests) are named with it: a lead, not a win
    head = next(i for i, ln in enumerate(md.splitlines()) if ln.startswith("| schedule | accuracy |"))
    rows = [ln.split("|") for ln in md.splitlines()[head + 2 : head + 8]]
    alike = [r[1].strip() for r in rows if r[-2].strip() == "1" and r[1].strip() not in ("warmup", "annealing")]
    said = f"The seeds do not tell them apart from {' and '.join(alike)} (rank 1 too): a lead, not a win."
    assert (said.replace(" and ", ", ", len(alike) - 2) in md) if alike else ("a lead, not a win" not in md)
    assert "confusion matrix of the schedule with the highest mean accuracy (warmup, the first of the 2 tied)" in md
    assert "(90% of the best validation accuracy of any run here, so it moves when runs are added;" in md


def test_the_lr_plot_shows_each_seed_where_the_seeds_lrs_differ(study, tmp_path, monkeypatch):
    """A plateau follows each run's own metric, so its seeds' LRs can differ: the report's LR plot draws a
    line per seed for such a schedule (one line stood for all, the first seed's), one line for the others."""
    from lrlab import plots

    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    lr_csv = tmp_path / "runs" / "standard" / "seed-1" / "lr.csv"
    rows = read_csv(lr_csv)
    for r in rows[len(rows) // 2 :]:  # as if a plateau had halved seed 1's LR halfway
        r["lr"] = repr(float(r["lr"]) / 2)
    with lr_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    drawn = {}
    original = plots.plot_lr
    monkeypatch.setattr(plots, "plot_lr", lambda traces, path, **kw: drawn.update(traces) or original(traces, path))
    build_report(tmp_path)
    assert "standard (seed 0)" in drawn and "standard (seed 1)" in drawn and "standard" not in drawn
    assert drawn["standard (seed 1)"][-1][1] == drawn["standard (seed 0)"][-1][1] / 2
    assert {"cyclic", "onecycle"} <= set(drawn) and "cyclic (seed 0)" not in drawn


def test_the_report_says_which_schedules_scheduled_the_momentum(study, tmp_path):
    """The method sentence gives the optimizer's momentum; a schedule that cycled it (one-cycle's
    cycle_momentum, a momentum table) is named there with the range it spanned, and the others are not."""
    _, out, _, _ = study
    md = (out / "report.md").read_text()
    assert "sgd (momentum 0.9, weight decay" in md  # the default study schedules no momentum
    shutil.copytree(out / "runs", tmp_path / "runs")
    for seed in (0, 1):  # as if onecycle had cycled momentum between 0.85 and 0.95
        lr_csv = tmp_path / "runs" / "onecycle" / f"seed-{seed}" / "lr.csv"
        rows = read_csv(lr_csv)
        for i, r in enumerate(rows):
            r["momentum"] = repr(0.85 + 0.1 * i / (len(rows) - 1))
        with lr_csv.open("w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    build_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "sgd (momentum 0.9; onecycle's scheduled from 0.85 to 0.95, weight decay" in md
    for seed in (0, 1):  # as if both seeds had diverged at step 3: lr.csv ends there, and so does the range
        folder = tmp_path / "runs" / "onecycle" / f"seed-{seed}"
        result = json.loads((folder / "result.json").read_text())
        result.update(status="diverged", diverged={"step": 3, "lr": 1.0}, test=None, epochs_run=0,
                      best_val_accuracy=None, best_epoch=None)  # fmt: skip
        (folder / "result.json").write_text(json.dumps(result))
        for name, keep in (("lr.csv", lambda step: step <= 3), ("epochs.csv", lambda step: False),
                           ("steps.csv", lambda step: step <= 3)):  # fmt: skip
            head, *rows = (folder / name).read_text().splitlines(keepends=True)
            (folder / name).write_text("".join([head, *(x for x in rows if keep(int(x.split(",")[0])))]))
    build_report(tmp_path)
    said = (tmp_path / "report.md").read_text().split("onecycle's scheduled from ")[1].split(",")[0]
    assert said.startswith("0.85 to 0.8") and said.endswith(" until it diverged"), said


def test_report_merges_study_folders(study, tmp_path):
    _, out, _, _ = study
    a, b = tmp_path / "a", tmp_path / "b"
    for d, names in ((a, ["standard", "cyclic", "warmup"]), (b, ["annealing", "onecycle", "uneven-cyclic"])):
        for n in names:
            shutil.copytree(out / "runs" / n, d / "runs" / n)
        shutil.copy(out / "study.json", d / "study.json")
    built = build_report(tmp_path / "merged", [a, b])
    assert (tmp_path / "merged" / "summary.csv").read_text() == (out / "summary.csv").read_text()
    assert len(built.comparisons) == 5
    md = (tmp_path / "merged" / "report.md").read_text()
    assert f"Merged from 2 study folders: `{a}`, `{b}`." in md
    assert "Each run folder `runs/<schedule>/seed-<k>/` of the study folders named above holds" in md
    with pytest.raises(LrlabError, match="a merged report's folder holds no runs: rebuild it from the study folders"):
        build_report(tmp_path / "merged")  # it has no runs of its own
    # nor is it taken, with no word, as one of several folders
    with pytest.raises(LrlabError, match=r"merged holds no runs/ and no study.json \(a merged report's folder"):
        build_report(tmp_path / "m2", [tmp_path / "merged", a])
    (tmp_path / "typo").mkdir()
    with pytest.raises(LrlabError, match=r"typo holds no runs/ and no study.json \(not a study folder\)"):
        build_report(tmp_path / "m2", [a, tmp_path / "typo"])


def test_lr_axis_and_divergence(tmp_path):
    """Every schedule at each peak LR; a huge peak diverges and the report shows it, the rest finish."""
    cfg = config.load(None, {**QUICK, "out": str(tmp_path), "peak_lrs": [0.05, 1e4], "seeds": 2})
    from lrlab.study import select_schedules

    select_schedules(cfg, ["standard", "onecycle"])
    lines: list[str] = []
    run_study(cfg, progress=False, echo=lines.append)
    rows = {r["schedule"]: r for r in read_csv(tmp_path / "summary.csv")}
    assert set(rows) == {"standard@0.05", "standard@10000", "onecycle@0.05", "onecycle@10000"}
    assert rows["standard@10000"]["status"] == "diverged" and rows["standard@0.05"]["status"] == "ok"
    assert float(rows["onecycle@0.05"]["peak_lr"]) == pytest.approx(
        0.05, rel=0.02
    )  # the peak step may fall between steps
    md = (tmp_path / "report.md").read_text()
    assert "lr_sensitivity.png" in md and "diverged at step" in md
    # Holm within each peak LR: one comparison at 0.05; at 1e4 both diverged and nothing is tested
    assert "Holm-adjusted over 1 comparison within each peak LR" in md and "paired t-test at α to reach" in md
    # both runs at 1e4 diverged on every seed: no pairs, so no p-values and no verdict, in every output
    both_gone = next(r for r in read_csv(tmp_path / "comparisons.csv") if r["schedule"] == "onecycle@10000")
    assert both_gone["n"] == "0" and both_gone["verdict"] == "no pairs"
    assert both_gone["p_ttest"] == both_gone["p_wilcoxon"] == both_gone["p_holm"] == both_gone["diff_mean"] == ""
    assert "| onecycle@10000 | — | — | 0 | — | — | — | no pairs | — |" in md and "No pairs for" not in md
    # (the baseline at that peak finished nothing: said of it, not of the schedules compared with it)
    assert "The baseline standard@10000 finished no seed (every run diverged), so nothing is compared" in md
    # each schedule's peaks against its best one: the diverged peak has no pairs there either
    peaks = {r["schedule"]: r for r in read_csv(tmp_path / "peaks.csv")}
    assert set(peaks) == {"standard@10000", "onecycle@10000"}
    assert peaks["onecycle@10000"]["baseline"] == "onecycle@0.05" and peaks["onecycle@10000"]["verdict"] == "no pairs"
    assert "## Peak LR within each schedule" in md and "| standard@10000 | standard@0.05 |" in md
    assert "no pairs" in (tmp_path / "report.html").read_text()
    assert any(
        ln.startswith("| onecycle@10000 |") and ln.endswith("| no pairs |") for ln in "\n".join(lines).splitlines()
    )
    # nothing was tested, but the peak that finished is named, and the one that diverged on every seed said
    peak_lines = [ln for ln in "\n".join(lines).splitlines() if ln.startswith("peak LR:")]
    assert peak_lines[0] == ("peak LR: standard@0.05 has its schedule's highest mean (over the seeds all its peaks "
                             "finished); not compared (no seed where both finished): standard@10000")  # fmt: skip
    assert len(peak_lines) == 2  # (was none)
    gone = tmp_path / "runs" / "standard@10000" / "seed-0" / "result.json"
    strict = json.loads(gone.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in {gone}"))
    assert strict["diverged"]["step"] <= 10 and strict["best_epoch"] is None is strict["best_val_accuracy"]
    # its LR budget and lr.csv are of the steps it ran, not of the plan (planned, onecycle ends near 0)
    trace = read_csv(gone.parent.parent.parent / "onecycle@10000" / "seed-0" / "lr.csv")
    ran = json.loads((gone.parent.parent.parent / "onecycle@10000" / "seed-0" / "result.json").read_text())
    assert len(trace) == ran["diverged"]["step"] + 1  # up to the last step trained, an index
    assert ran["peak_lr"] == pytest.approx(max(float(r["lr"]) for r in trace))
    assert ran["final_lr"] == pytest.approx(float(trace[-1]["lr"])) == pytest.approx(ran["diverged"]["lr"])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(gone.stat().st_mode) == 0o666 & ~umask  # readable like any new file, not private
    assert (tmp_path / "plots" / "lr_sensitivity.png").stat().st_size > 5000
    # against another baseline, only the peak it ran at is compared: the other peaks' rows are not "baseline"
    console = build_report(tmp_path / "other", [tmp_path], baseline="onecycle@0.05").console
    cells = [ln.split("|") for ln in console.splitlines() if ln.startswith("| ")]
    assert {c[1].strip(): c[-2].strip() for c in cells} == {
        "schedule": "vs onecycle@0.05", "standard@0.05": "no clear difference", "onecycle@0.05": "baseline",
        "standard@10000": "not compared", "onecycle@10000": "not compared"}  # fmt: skip


def _axis_study(tmp_path) -> Path:
    """A finished LR-axis study of one schedule at one peak (standard@0.05), two seeds; its run folders."""
    cfg = config.load(None, {**QUICK, "out": str(tmp_path / "s"), "peak_lrs": [0.05], "seeds": 2, "baseline": None})
    from lrlab.study import select_schedules

    select_schedules(cfg, ["standard"])
    run_study(cfg, progress=False, echo=lambda s: None)
    return tmp_path / "s" / "runs"


def _set_peak(runs: Path, peak: float, accuracies: tuple[float | None, ...]) -> None:
    """standard@<peak> as a copy of standard@0.05 whose seed i has test accuracy accuracies[i] (None: diverged)."""
    name = f"standard@{peak:g}"
    if not (runs / name).exists():
        shutil.copytree(runs / "standard@0.05", runs / name)
    for seed, acc in enumerate(accuracies):
        folder = runs / name / f"seed-{seed}"
        result = json.loads((folder / "result.json").read_text())
        result.update(schedule=name)
        if acc is None:  # at step 3 of its first epoch: 4 steps in lr.csv, no epoch in epochs.csv
            result.update(status="diverged", diverged={"step": 3, "lr": peak}, epochs_run=0)
            for csv_name, rows in (("lr.csv", 4), ("epochs.csv", 0)):
                lines = (folder / csv_name).read_text().splitlines(keepends=True)
                (folder / csv_name).write_text("".join(lines[: 1 + rows]))
            head, *logged = (folder / "steps.csv").read_text().splitlines(keepends=True)
            (folder / "steps.csv").write_text("".join([head, *(x for x in logged if int(x.split(",")[0]) <= 3)]))
        else:
            result["test"]["accuracy"] = acc
        (folder / "result.json").write_text(json.dumps(result))
        conf = json.loads((folder / "config.json").read_text())
        conf.update(peak_lr_axis=peak)
        (folder / "config.json").write_text(json.dumps(conf))


def _test_images(runs: Path) -> int:
    """The axis study's test split size: its accuracies are multiples of one over it."""
    return json.loads((runs / "standard@0.05" / "seed-0" / "config.json").read_text())["data"]["test"]


def _ranks(out: str) -> dict[str, str]:
    return {ln.split("|")[1].strip(): ln.split("|")[7].strip() for ln in out.splitlines() if ln.startswith("| st")}


def test_a_peak_told_apart_from_its_schedules_best_is_ranked_and_named(tmp_path, capsys):
    """A copy of an LR-axis study's finished peak, given a clearly higher accuracy as another peak, is that
    schedule's best: the lower peak is worse than it in peaks.csv, in the ranks (no "rank 1 too" beside a peak
    found worse) and in the closing line; without a second peak the report leaves peaks.csv out, and removes an
    earlier one."""
    runs = _axis_study(tmp_path)
    assert not (tmp_path / "s" / "peaks.csv").exists()
    low = [json.loads((runs / "standard@0.05" / f"seed-{i}" / "result.json").read_text())["test"]["accuracy"]
           for i in (0, 1)]  # fmt: skip
    step = 1 / _test_images(runs)  # one test image: gains of 10 and 11 images, t = 21 (p 0.03 with two seeds)
    _set_peak(runs, 0.1, (low[0] + 10 * step, low[1] + 11 * step))
    assert main(["report", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    (row,) = read_csv(tmp_path / "s" / "peaks.csv")
    assert row["schedule"] == "standard@0.05" and row["baseline"] == "standard@0.1" and row["verdict"] == "worse"
    assert "peak LR: standard@0.1 has its schedule's highest mean" in out and "worse than it: standard@0.05" in out
    assert "not compared" not in out
    assert "peaks.csv" in out.splitlines()[-1]
    assert _ranks(out) == {"standard@0.05": "2", "standard@0.1": "1"}
    shutil.rmtree(runs / "standard@0.1")
    assert main(["report", str(tmp_path / "s")]) == 0
    assert "peaks.csv" not in capsys.readouterr().out and not (tmp_path / "s" / "peaks.csv").exists()


def test_ranks_keep_apart_peaks_that_only_the_peak_comparison_tells_apart(tmp_path, capsys):
    """Three peaks A > B > C where neither neighbour pair differs clearly (so the neighbour tests alone would
    chain all three into rank 1) but C is clearly below A: C must not share A's rank. A fourth peak that
    diverged on every seed has no pairs, and the closing line says it was not compared."""
    runs = _axis_study(tmp_path)
    k = 1 / _test_images(runs)  # one test image
    _set_peak(runs, 0.05, (0.10, 0.20))  # C
    _set_peak(runs, 0.2, (0.10 + 5 * k, 0.20 + 12 * k))  # B: B - C = (5, 12) images, A - B = (20, 14)
    _set_peak(runs, 0.1, (0.10 + 25 * k, 0.20 + 26 * k))  # A: A - C = (25, 26), nearly constant: t = 51
    _set_peak(runs, 9.0, (None, None))
    assert main(["report", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    verdicts = {r["schedule"]: r["verdict"] for r in read_csv(tmp_path / "s" / "peaks.csv")}
    assert verdicts == {"standard@0.05": "worse", "standard@0.2": "no clear difference", "standard@9": "no pairs"}
    assert _ranks(out) == {"standard@0.1": "1", "standard@0.2": "1", "standard@0.05": "3", "standard@9": "4"}
    line = next(ln for ln in out.splitlines() if ln.startswith("peak LR:"))
    assert line.startswith("peak LR: standard@0.1 has") and "worse than it: standard@0.05" in line
    assert line.endswith("not compared (no seed where both finished): standard@9")


def test_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = config.load(None, {**QUICK, "out": str(tmp_path), "tensorboard": True})
    from lrlab.study import select_schedules

    select_schedules(cfg, ["onecycle"])
    run_study(cfg, progress=False, echo=lambda s: None)
    acc = EventAccumulator(str(tmp_path / "runs" / "onecycle" / "seed-0" / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"schedule/lr", "epoch/val_accuracy", "train/loss_step"} <= set(tags)
    plan = json.loads((tmp_path / "runs" / "onecycle" / "seed-0" / "config.json").read_text())["plan"]
    assert len(acc.Scalars("schedule/lr")) == plan["total_steps"]
    # written again into the same folder (a rerun after a kill cut the first write short): one events file
    from lrlab.tensorboard import write_run_events

    events = tmp_path / "runs" / "onecycle" / "seed-0" / "tensorboard"
    write_run_events(events, [(0, 0.1, None)], [], [])
    assert len(list(events.iterdir())) == 1


def test_streaming_from_disk_trains_exactly_like_memory(tmp_path, monkeypatch, capsys):
    """data.stream decodes each batch in DataLoader workers; same images, same order, same result (also with more
    training images than the channel statistics' sample)."""
    import numpy as np
    from PIL import Image

    from lrlab import data

    monkeypatch.setattr(data, "STATS_SAMPLE", 20)

    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (tmp_path / "imgs" / "train" / c).mkdir(parents=True)
        for i in range(30):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(
                tmp_path / "imgs" / "train" / c / f"{i}.png"
            )
    common = ["study", "--data", f"imagefolder:{tmp_path / 'imgs'}", "--epochs", "2", "--batch-size", "16", "--width",
              "0.125", "--schedules", "onecycle", "--workers", "1", "--threads", "1", "--no-progress"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "memory")]) == 0
    from lrlab import training

    loaders, loader = [], training.DataLoader  # the validation and test passes decode in the DataLoader's workers too

    def recorded(*args, **kwargs):
        loaders.append((kwargs["num_workers"], sum(map(len, kwargs["batch_sampler"]))))
        return loader(*args, **kwargs)

    monkeypatch.setattr(training, "DataLoader", recorded)
    # (on the device asked for: not read, the images come from disk, and config.json says so)
    assert main([*common, "--stream", "--set", 'train.data_on_device="on"', "--out", str(tmp_path / "stream")]) == 0
    run = json.loads((tmp_path / "stream/runs/onecycle/seed-0/config.json").read_text())
    workers = min(run["config"]["data"]["loader_workers"], os.cpu_count())
    epoch, val, test = (
        (workers, run["data"]["train"] // 16 * 16),
        (workers, run["data"]["val"]),
        (workers, run["data"]["test"]),
    )
    assert loaders == [epoch, val, epoch, val, test]  # two epochs, each with its validation pass, then the test pass
    assert run["config"]["train"]["data_on_device"] == "on" and run["speed"]["data_on_device"] is False
    a, b = (json.loads((tmp_path / d / "runs/onecycle/seed-0/result.json").read_text()) for d in ("memory", "stream"))
    assert a["test"] == b["test"] and a["best_val_accuracy"] == b["best_val_accuracy"]
    assert (
        read_csv(tmp_path / "memory/runs/onecycle/seed-0/epochs.csv")[-1]["train_loss"]
        == read_csv(tmp_path / "stream/runs/onecycle/seed-0/epochs.csv")[-1]["train_loss"]
    )
    # the same images as an archive: other bytes, so other data to the folder's runs, and the refusal says why
    with tarfile.open(tmp_path / "imgs.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "imgs", arcname=".")
    args = [*common, "--data", f"imagefolder:{tmp_path / 'imgs.tar.gz'}", "--out", str(tmp_path / "memory")]
    assert main(args) == 2
    assert "so the same images as a folder and as its archive differ" in capsys.readouterr().err


def test_a_run_in_two_folders_is_kept_once_if_identical_and_refused_if_not(tmp_path):
    def put(study: str, accuracy: float, seconds: float = 1.0) -> None:
        run = tmp_path / study / "runs" / "onecycle" / "seed-0"
        run.mkdir(parents=True)
        test = {**dict.fromkeys(ALL_METRICS, accuracy), "classes": ["a"], "confusion_matrix": [[1]],
                "per_class": {"a": {"f1-score": accuracy, "support": 1}}}  # fmt: skip
        doc = {"schedule": "onecycle", "seed": 0, "status": "ok", "test": test, "seconds": seconds, "peak_lr": 0.1,
               "best_val_accuracy": 0.5}  # fmt: skip
        (run / "result.json").write_text(json.dumps(doc))
        (run / "config.json").write_text('{"config": {}, "plan": {"total_steps": 0}, "data": {}}')
        for name, (columns, _) in RUN_CSVS.items():
            (run / name).write_text(",".join(columns) + "\n")

    put("a", 0.9)
    put("copy", 0.9, seconds=1.2)  # the same run trained again: only its timing differs
    put("other", 0.8)
    a, copy, other = tmp_path / "a", tmp_path / "copy", tmp_path / "other"
    assert len(load_runs([a, a])) == 1 and len(load_runs([a, copy])) == 1  # the same run twice: one run
    with pytest.raises(LrlabError) as refused:
        load_runs([a, copy, other])
    msg = str(refused.value)
    assert "\n" not in msg and "onecycle seed 0" in msg and "different results (test)" in msg
    assert str(a / "runs" / "onecycle" / "seed-0") in msg and str(other / "runs" / "onecycle" / "seed-0") in msg


def test_every_csv_writes_a_missing_value_as_an_empty_cell(tmp_path):
    from lrlab import store

    row = {"none": None, "nan": math.nan, "inf": math.inf, "neg": -math.inf, "x": 0.1234567, "n": 3, "s": "ok"}
    store.write_csv(tmp_path / "t.csv", [row], list(row))
    (back,) = read_csv(tmp_path / "t.csv")
    assert back == {"none": "", "nan": "", "inf": "inf", "neg": "-inf", "x": "0.1234567", "n": "3", "s": "ok"}
    store.write_csv(tmp_path / "t.csv", [{"x": 237 / 270}], ["x"])
    assert float(read_csv(tmp_path / "t.csv")[0]["x"]) == 237 / 270  # in full: reads back as the same float
    assert float(back["inf"]) == math.inf  # a value (seeds_needed above the search limit), not a missing one


def test_a_test_split_without_a_class_of_training_is_named_and_its_columns_are_empty(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, classes, n in (("train", ("cat", "dog", "fox"), 24), ("test", ("cat", "dog"), 8)):
        for shade, c in enumerate(classes):
            (tmp_path / "imgs" / part / c).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 80, (12, 12, 3), dtype=np.uint8) + np.uint8(80 * shade)
                Image.fromarray(pixels).save(tmp_path / "imgs" / part / c / f"{i}.png")
    out = tmp_path / "o"
    args = ["study", "--data", f"imagefolder:{tmp_path / 'imgs'}", "--epochs", "1", "--batch-size", "16",
            "--width", "0.125", "--schedules", "standard", "--workers", "1", "--threads", "1", "--no-progress",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert "scikit-learn's default" in md  # how the macro averages treat classes is said where they are explained
    warning = next(line for line in md.splitlines() if "no images of fox" in line)
    assert "fox" in next(line for line in printed.splitlines() if "no images of" in line)
    assert "—" in warning
    per_class = md.split("## Per-class F1")[1].split("## Runs")[0]
    (row,) = [line for line in per_class.splitlines() if line.startswith("| standard |")]
    assert row.endswith("| — |") and row.count("—") == 1  # fox: no test images, no F1; cat and dog have one


def test_a_resumed_study_keeps_its_lr_range_test(tmp_path, short_range_test):
    """The range test behind "auto" LRs runs once per study folder: a second start (more seeds, or after a
    kill) uses the recorded answer, so that every run of the study shares one LR (on a GPU the test's
    losses, and so its answer, vary a little between starts). A record of another setting is not used."""
    auto = {"standard": {"type": "constant", "lr": "auto"}}
    base = {**QUICK, "train.epochs": 1, "out": str(tmp_path), "schedules": auto}
    lines: list[str] = []
    run_study(config.load(None, {**base, "seeds": 1}), progress=False, echo=lines.append)
    doc = json.loads((tmp_path / "study.json").read_text())
    first = doc["auto_lr"]
    assert any('"auto" LRs:' in line and "kept" not in line for line in lines)
    marked = {**first, "marker": "from the record"}  # seen in a run's config only if the record is used
    (tmp_path / "study.json").write_text(json.dumps({**doc, "auto_lr": marked}))
    lines.clear()
    run_study(config.load(None, {**base, "seeds": [1, 0]}), progress=False, echo=lines.append)  # a new seed first
    assert any("kept from this folder's earlier start" in line for line in lines)
    second = json.loads((tmp_path / "runs" / "standard" / "seed-1" / "config.json").read_text())
    assert second["auto_lr"]["marker"] == "from the record" and second["schedule_resolved"]["lr"] == first["lr"]
    # study.json lost: the runs' configs keep the answer (a new test's answer, another on a GPU, trained the new
    # runs at another LR, and the report then refused the folder)
    (tmp_path / "study.json").unlink()
    seed0 = tmp_path / "runs" / "standard" / "seed-0" / "config.json"
    seed0.write_text(json.dumps({**json.loads(seed0.read_text()), "auto_lr": {**first, "marker": "from a run"}}))
    lines.clear()
    run_study(config.load(None, {**base, "seeds": [0, 2]}), progress=False, echo=lines.append)
    assert any("kept from this folder's earlier start" in line for line in lines)
    third = json.loads((tmp_path / "runs" / "standard" / "seed-2" / "config.json").read_text())
    assert third["auto_lr"]["marker"] == "from a run" and third["schedule_resolved"]["lr"] == first["lr"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "study.json").write_text(json.dumps({**doc, "auto_lr": {**marked, "key": "another-setting"}}))
    lines.clear()
    run_study(config.load(None, {**base, "seeds": 1, "out": str(other)}), progress=False, echo=lines.append)
    fresh = json.loads((other / "runs" / "standard" / "seed-0" / "config.json").read_text())
    assert "marker" not in fresh["auto_lr"] and not any("kept from" in line for line in lines)


def test_a_rerun_without_auto_lr_keeps_the_one_an_earlier_start_gave(tmp_path, monkeypatch):
    """A study started with --auto-lr and rerun without it (more seeds, --fresh) was refused as another setting
    ("auto_lr is 0.02 there, None here"), and with --fresh ran a range test and trained at its answer instead."""
    from lrlab import study as study_mod

    auto = {"standard": {"type": "constant", "lr": "auto"}}
    base = {**QUICK, "train.epochs": 1, "out": str(tmp_path), "schedules": auto}
    lines: list[str] = []
    run_study(config.load(None, {**base, "seeds": 1, "auto_lr": 0.02}), progress=False, echo=lines.append)
    monkeypatch.setattr(study_mod, "range_test", lambda *a, **k: pytest.fail("a range test ran"))
    for fresh in (False, True):
        lines.clear()
        run_study(config.load(None, {**base, "seeds": 2}), progress=False, echo=lines.append, fresh=fresh)
        assert f"note: auto_lr = 0.02, as given at an earlier start of this study in {tmp_path}" in "\n".join(lines)
        for seed in (0, 1):
            ran = json.loads((tmp_path / "runs" / "standard" / f"seed-{seed}" / "config.json").read_text())
            assert ran["schedule_resolved"]["lr"] == 0.02 and ran["auto_lr"]["rule"] == "given"


def test_auto_lr_given_skips_the_range_test_and_differing_auto_lrs_are_not_compared(tmp_path, capsys):
    """Shards in their own folders each ran their own range test, whose answer varies on a GPU: their merged
    report would compare LRs, not schedules. It is refused; --auto-lr gives every shard one LR."""
    auto = {"standard": {"type": "constant", "lr": "auto"}, "anneal": {"type": "anneal", "lr": "auto"}}
    base = {**QUICK, "train.epochs": 1, "seeds": 1, "schedules": auto, "auto_lr": 0.02}
    lines: list[str] = []
    run_study(config.load(None, {**base, "out": str(tmp_path / "a")}), progress=False, echo=lines.append,
              shard=(1, 2))  # fmt: skip
    run_study(config.load(None, {**base, "out": str(tmp_path / "b")}), progress=False, echo=lines.append,
              shard=(2, 2))  # fmt: skip
    assert any('"auto" LRs: 0.02 (given (auto_lr))' in line for line in lines)
    ran = json.loads((tmp_path / "b" / "runs" / "anneal" / "seed-0" / "config.json").read_text())
    assert ran["schedule_resolved"]["lr"] == 0.02 and ran["auto_lr"]["rule"] == "given"
    build_report(tmp_path / "merged", [tmp_path / "a", tmp_path / "b"])  # one LR: compared
    other = tmp_path / "b" / "runs" / "anneal" / "seed-0" / "config.json"  # as if b had run its own test
    other.write_text(json.dumps({**ran, "auto_lr": {"rule": "valley", "lr": 0.0213}}))
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err
    assert 'runs whose "auto" LRs differ: 0.02 in' in err and "0.0213 in" in err and "--auto-lr LR" in err
    # a given LR with no "auto" to stand for changes nothing: refused rather than silently ignored
    plain = {**QUICK, "train.epochs": 1, "seeds": 1, "out": str(tmp_path / "c"), "auto_lr": 0.02,
             "schedules": {"standard": {"type": "constant", "lr": 0.05}}}  # fmt: skip
    with pytest.raises(ConfigError, match='auto_lr: no schedule has an "auto" LR'):
        run_study(config.load(None, plain), progress=False, echo=lines.append)
    with pytest.raises(ConfigError, match="auto_lr: must be a positive number, got -1"):
        config.load(None, {**base, "auto_lr": -1.0})


def test_an_lr_axis_of_all_auto_schedules_runs_no_range_test(tmp_path, monkeypatch):
    """Scaled to each peak, an all-"auto" spec keeps only its LRs' ratios: the study runs no range test (minutes
    on a CPU for CIFAR-10) and records none, so shards of it never disagree on an LR that was not used."""
    import lrlab.study as study_mod

    def no_test(*a, **k):
        raise AssertionError("a range test ran")

    monkeypatch.setattr(study_mod, "range_test", no_test)
    spec = {"type": "cyclic", "base_lr": "auto", "max_lr": "auto", "up_frac": 0.5}
    one = {**QUICK, "out": str(tmp_path), "peak_lrs": [0.1], "baseline": None}
    cfg = config.load(None, {**one, "schedules": {"cy": spec}})
    p = study_mod.prepare(cfg)
    assert p.auto_lr is None
    lrs = [p.schedules["cy@0.1"].lr(i) for i in range(p.plan.total_steps)]
    assert max(lrs) == pytest.approx(0.1) and min(lrs) == pytest.approx(0.01)  # base_lr: a tenth, as "auto" sets
    mixed = config.load(None, {**one, "schedules": {"cy": {**spec, "max_lr": 0.5}}})
    with pytest.raises(AssertionError, match="a range test ran"):
        study_mod.prepare(mixed)
    # a given auto_lr is judged against the whole study, not the schedules one start trains: it stands for "auto"
    # in a schedule this start leaves out
    both = config.load(None, {**one, "auto_lr": 0.02, "schedules": {"cy": spec, "fixed": {"type": "constant",
                                                                                         "lr": 0.05}}})  # fmt: skip
    assert study_mod.prepare(both, only=["fixed"]).auto_lr is None
    assert study_mod.prepare(both, only=["cy"]).auto_lr["lr"] == 0.02


def test_a_start_that_needs_no_range_test_keeps_the_recorded_one(tmp_path, monkeypatch):
    """Training only the schedules without "auto" must not erase the folder's recorded range test: the next start
    for an "auto" schedule would run a new one, whose answer on a GPU differs a little, and the report would then
    refuse runs whose "auto" LRs differ."""
    import lrlab.study as study_mod
    from lrlab.lr_finder import RangeTest

    tests = []

    def fake(*a, **k):
        tests.append(1)
        return RangeTest([1e-3, 1e-2], [2.3, 2.0], [2.3, 2.0], False, {"valley": 0.03}, fall=0.2)

    monkeypatch.setattr(study_mod, "range_test", fake)
    schedules = {"auto": {"type": "constant", "lr": "auto"}, "fixed": {"type": "constant", "lr": 0.05}}
    doc = {**QUICK, "train.epochs": 1, "seeds": 1, "out": str(tmp_path), "baseline": None, "schedules": schedules}
    for only in (["auto"], ["fixed"], ["auto", "fixed"]):
        run_study(config.load(None, doc), progress=False, echo=lambda line: None, only=only)
        assert json.loads((tmp_path / "study.json").read_text())["auto_lr"]["lr"] == 0.03
    assert len(tests) == 1  # the third start reused the first's test


def test_train_names_a_run_of_the_lr_axis(tmp_path, capsys):
    """On an LR axis `train` trains the run it names (<schedule>@<peak>) and keeps the study's axis in study.json; it
    trained the bare schedule and recorded no axis, and the report then held a duplicate of one peak's row."""
    axis = config.load(None, {"peak_lrs": [0.05, 0.1]})
    assert config.train_run(axis, "onecycle@0.1") == ("onecycle", 0.1)
    assert config.train_run(axis, None) == ("standard", 0.05)  # the first run of the study
    assert config.train_run(config.load(None, {}), "onecycle") == ("onecycle", None)
    for name, said in (("onecycle", "'onecycle' is on this study's LR axis (peak LRs 0.05, 0.1): name one of its "
                                    "runs: onecycle@0.05, onecycle@0.1"),
                       ("onecycle@0.2", "'onecycle@0.2' is not a run of this study's LR axis"),
                       ("onecycl@0.1", "unknown schedule 'onecycl' (did you mean 'onecycle'?)")):  # fmt: skip
        with pytest.raises(ConfigError, match=re.escape(said)):
            config.train_run(axis, name)
    with pytest.raises(ConfigError, match="a run of an LR axis, but this config has no peak_lrs"):
        config.train_run(config.load(None, {}), "onecycle@0.1")
    for spelling in ("onecycle@0.10", "onecycle@1e-1"):  # the same number
        assert config.train_run(axis, spelling) == ("onecycle", 0.1)
    fine = config.load(None, {"peak_lrs": [0.0123456789]})
    assert config.train_run(fine, "standard@0.0123457") == ("standard", 0.0123456789)  # as the run's name writes it
    # the folder's recorded axis: used where --peak-lrs is left out, and must match where given
    assert config.train_axis(None, [0.05, 0.1], tmp_path) == [0.05, 0.1]
    assert config.train_axis([0.05, 0.1], [0.05, 0.1], tmp_path) == [0.05, 0.1]
    assert config.train_axis([0.3], None, tmp_path) == config.train_axis([0.3], "junk", tmp_path) == [0.3]
    for given in ([0.1], [0.1, 0.05]):
        with pytest.raises(ConfigError, match=r"is not the LR axis of the study in .* leave --peak-lrs out"):
            config.train_axis(given, [0.05, 0.1], tmp_path)
    args = ["train", "--schedule", "standard@0.1", "--peak-lrs", "0.05,0.1", "--limit", "200", "--epochs", "1",
            "--batch-size", "32", "--width", "0.125", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    assert "1 schedule at peak LR 0.1 × 1 seed" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["standard@0.1"]
    assert (tmp_path / "runs" / "standard@0.1" / "seed-0" / "model.pt").exists()
    assert json.loads((tmp_path / "study.json").read_text())["config"]["peak_lrs"] == [0.05, 0.1]
    # into that folder without --peak-lrs: the study's axis, so a schedule alone is refused, not trained beside it
    assert main(["train", "--schedule", "standard", *args[5:]]) == 2
    assert "'standard' is on this study's LR axis (peak LRs 0.05, 0.1)" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["standard@0.1"]


def test_auto_lr_flag_reaches_the_config(tmp_path, capsys):
    assert main(["study", "--auto-lr", "0.02", "--out", str(tmp_path)]) == 2  # the default config has no "auto"
    assert 'auto_lr: no schedule has an "auto" LR' in capsys.readouterr().err


def test_a_limit_above_the_training_split_and_an_unread_data_key_are_said(tmp_path, capsys):
    args = ["study", "--schedules", "standard", "--limit", "5000", "--epochs", "1", "--batch-size", "128", "--width",
            "0.125", "--no-progress", "--download", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "note: data.limit: 5000 is more than the 1257 training images the split leaves" in out
    assert "note: data.download not read: the digits come with scikit-learn" in out  # (and so are said)


def test_a_limit_below_the_number_of_classes_is_said(tmp_path, capsys):
    args = ["study", "--schedules", "standard", "--limit", "3", "--epochs", "1", "--batch-size", "5", "--width",
            "0.125", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "note: data.limit: 3 is fewer than the 10 classes; each keeps one training image, 10 in all" in out
    assert "(train 10," in out


def test_a_folder_with_runs_on_and_off_the_lr_axis_is_reported(tmp_path):
    """The default folder of a study is its name's: `lrlab study --peak-lrs ...`, then `lrlab study`, put runs
    of both kinds in one folder. The report takes both (the LR-sensitivity plot, the axis runs only)."""
    from lrlab.study import select_schedules

    for peaks in ([0.05, 0.2], None):
        cfg = config.load(None, {**QUICK, "out": str(tmp_path), "peak_lrs": peaks})
        select_schedules(cfg, ["standard"])
        run_study(cfg, progress=False, echo=lambda s: None)
    rows = read_csv(tmp_path / "summary.csv")
    assert [r["schedule"] for r in rows] == ["standard", "standard@0.05", "standard@0.2"]
    assert (tmp_path / "plots" / "lr_sensitivity.png").exists() and "## Peak LR within" in (
        tmp_path / "report.md"
    ).read_text()


def test_runs_of_one_schedule_name_with_different_specs_are_not_pooled(tmp_path, capsys):
    """A config edited between the tasks of a batch array, or a --set on one of them: cyclic seed 1 at another
    max_lr than seed 0. Merged, the table would show one "cyclic" of two seeds: the report refuses; into the
    folder of the first, the study refuses before it trains."""
    # (--workers 1: no worker processes to start, which took longer than these runs)
    args = ["study", "--limit", "100", "--epochs", "1", "--batch-size", "32", "--width", "0.125", "--no-progress",
            "--schedules", "standard,cyclic", "--workers", "1"]  # fmt: skip
    assert main([*args, "--seeds", "0,", "--out", str(tmp_path / "a")]) == 0
    other = ["--seeds", "1,", "--set", "schedules.cyclic.max_lr=0.3"]
    assert main([*args, *other, "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "runs of schedule 'cyclic' that ran different specs: " in err and "'max_lr': 0.3" in err
    assert main([*args, *other, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a'} holds runs of cyclic with another spec (" in err
    assert not (tmp_path / "a" / "runs" / "cyclic" / "seed-1").exists()
    assert main([*args, "--seeds", "1,", "--out", str(tmp_path / "a")]) == 0  # the same spec: a new seed of it


def test_a_loss_gone_nan_diverges_its_run_and_the_study_goes_on(tmp_path):
    # a constant LR of 1e4 makes the loss nan (not inf) in its first steps: steps.csv holds it as an empty
    # cell, which the report and a second start read (they refused it as "not a number", stopping the study)
    overrides = {
        **QUICK,
        "data.limit": 80,  # 10 steps of 8 (steps.csv's first row), 1 epoch
        "train.batch_size": 8,
        "train.epochs": 1,
        "out": str(tmp_path),
        "schedules.boom": {"type": "constant", "lr": 1e4},
    }
    cfg = config.load(None, overrides)
    from lrlab.study import select_schedules

    select_schedules(cfg, ["boom", "standard"])
    run_study(cfg, progress=False, echo=lambda _: None)
    rows = {r["schedule"]: r for r in read_csv(tmp_path / "summary.csv")}
    assert rows["boom"]["status"] == "diverged" and rows["standard"]["status"] == "ok"
    assert [r["loss"] for r in read_csv(tmp_path / "runs" / "boom" / "seed-0" / "steps.csv")] == [""]
    assert "diverged at step" in (tmp_path / "report.md").read_text()
    again = config.load(None, overrides)
    select_schedules(again, ["boom", "standard"])
    run_study(again, progress=False, echo=lambda _: None)  # a second start reads it too


def test_auto_lrs_beside_fixed_ones_are_checked_for_the_lr_they_get(tmp_path, monkeypatch):
    # base_lr = "auto" (a tenth of the LR) under a fixed max_lr holds for a small LR: the check before the range
    # test refused it for its stand-in LR of 1 (a base_lr of 0.1 the user never wrote), also with --auto-lr given
    import types

    from lrlab import study as study_mod
    from lrlab.study import prepare

    cyc = {"cyc": {"type": "cyclic", "base_lr": "auto", "max_lr": 0.05, "up_epochs": 0.5}}
    base = {**QUICK, "train.epochs": 1, "out": str(tmp_path), "schedules": cyc, "baseline": "cyc"}
    assert prepare(config.load(None, {**base, "auto_lr": 0.15})).specs["cyc"]["base_lr"] == pytest.approx(0.015)
    with pytest.raises(ConfigError, match=r"schedules\.cyc\.max_lr: must be at least base_lr \(0\.05 < 0\.09\)"):
        prepare(config.load(None, {**base, "auto_lr": 0.9}))
    # no LR given: checked before the range test for some LR, then for the test's: its answer is named
    monkeypatch.setattr(study_mod, "range_test", lambda *a, **k: pytest.fail("ran the range test"))
    prepare(config.load(None, base), auto_lr=False)
    floor = {**base, "schedules": {"cos": {"type": "cosine", "lr": "auto", "min_lr": 0.3}}, "baseline": "cos"}
    test = types.SimpleNamespace(suggestions={"valley": 0.2}, fall=0.5, caution=lambda study=False: None)
    monkeypatch.setattr(study_mod, "range_test", lambda *a, **k: test)
    with pytest.raises(ConfigError, match=r'schedules\.cos\.min_lr: .*0\.3.*\("auto" LRs: 0\.2 \(valley rule'):
        prepare(config.load(None, floor))


def test_a_report_recommends_nothing_where_nothing_learned(study, tmp_path):
    """Every schedule's mean at or under the commonest class's share of the test split: the report says no
    schedule can be recommended instead of naming the highest mean in bold; the accuracy plot marks that level.
    Also: captions a Markdown reader sees, a page laid out for phones, and the Wilcoxon test's floor said."""
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs")
    for result in (tmp_path / "runs").glob("*/seed-*/result.json"):
        doc = json.loads(result.read_text())
        doc["test"]["accuracy"] = 0.05  # (the test split's commonest class: over 0.05 of it in digits)
        result.write_text(json.dumps(doc))
    build_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "**No schedule can be recommended:** the highest mean accuracy, " in md and "Highest mean" not in md
    assert "*Final test accuracy per schedule: seeds as dots" in md  # the caption, a line of its own
    assert "With 2 pairs a two-sided Wilcoxon p cannot fall below 0.5 (2/2^2)" in md
    # seeds to plan would send a student to run more seeds of runs that learned nothing
    assert "No seeds to plan (—) where annealing, cyclic, onecycle, standard, uneven-cyclic and warmup learned " in md
    assert "more seeds would not fix that; their training would." in md
    rows = [x for x in md.split("## Against the baseline")[1].split("\n\n")[2].splitlines() if x.startswith("| ")]
    assert len(rows) == 6 and all(x.endswith("| — |") for x in rows[1:])  # (the header, then one per schedule)
    page = (tmp_path / "report.html").read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<figure><img alt="Final test accuracy' in page and "plots/" not in page.split("<body>")[1]  # one file


def test_a_worker_process_starts_data_loader_workers_as_the_study_process_does(tmp_path):
    """The study's workers are spawned, and a spawned process's default start method is spawn: with data.stream
    each epoch's DataLoader workers then started fresh interpreters importing torch (runs 50 times slower)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from lrlab import study as study_mod

    ctx = multiprocessing.get_context("spawn")
    doc = config.to_dict(config.load(None, {**QUICK, "out": str(tmp_path)}))
    mine = multiprocessing.get_start_method()
    initargs = (doc, {}, None, 1, ctx.RawValue("b", 0), None, None, mine)
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=study_mod._init_worker, initargs=initargs) as pool:
        assert pool.submit(_start_method).result(timeout=120) == mine


def _start_method() -> str | None:
    """The start method a process's new processes get (a function of this module: a worker imports it, where
    multiprocessing.get_start_method itself would arrive as a pickled copy of this process's context)."""
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=True)


def test_train_keeps_no_weights_of_a_diverged_run_and_does_not_train_it_again(tmp_path, capsys):
    flags = ["--set", "data.limit=200", "--epochs", "2", "--batch-size", "32", "--width", "0.125", "--threads", "1",
             "--no-progress", "--set", "schedules.standard.lr=1e4", "--out", str(tmp_path)]  # fmt: skip
    run = tmp_path / "runs" / "standard" / "seed-0"
    assert main(["train", "--schedule", "standard", *flags]) == 0
    said = capsys.readouterr().out
    assert "DIVERGED" in said and "its weights were not saved (no model.pt)" in said
    assert json.loads((run / "result.json").read_text())["status"] == "diverged"
    assert not (run / "model.pt").exists()  # NaN or huge weights: nothing worth loading
    mtime = (run / "result.json").stat().st_mtime_ns
    assert main(["train", "--schedule", "standard", *flags]) == 0  # finished: kept, not trained again
    said = capsys.readouterr().out
    assert "diverged: it has no weights to save (no model.pt); --fresh trains it again" in said
    assert "training it again" not in said and (run / "result.json").stat().st_mtime_ns == mtime


def test_a_refused_report_writes_nothing(study, tmp_path, capsys):
    # a --baseline without runs was refused after summary.csv had been rewritten: the folder contradicted itself
    _, out, _, _ = study
    shutil.copytree(out, tmp_path / "c")
    for name in ("summary.csv", "comparisons.csv"):  # (a rewrite would give them back their rows)
        (tmp_path / "c" / name).write_text("kept\n")
    before = {f.name: f.read_bytes() for f in (tmp_path / "c").iterdir() if f.is_file()}
    assert main(["report", str(tmp_path / "c"), "--baseline", "standrd"]) == 2
    assert "baseline 'standrd' has no runs here (did you mean 'standard'?)" in capsys.readouterr().err
    assert {f.name: f.read_bytes() for f in (tmp_path / "c").iterdir() if f.is_file()} == before


def test_a_study_of_one_seed_says_nothing_was_tested(study, tmp_path, capsys):
    _, out, _, _ = study
    shutil.copytree(out / "runs", tmp_path / "runs", ignore=shutil.ignore_patterns("seed-1"))
    assert main(["report", str(tmp_path)]) == 0
    console = capsys.readouterr().out
    md = (tmp_path / "report.md").read_text()
    said = "One seed each: nothing could be tested, so the highest mean is one draw of initial weights and batch order"
    assert said in md and "a lead, not a win" not in md  # (not even a lead: no test was made)
    assert (
        "one seed each: nothing could be tested" in console
        and "rerun `lrlab study` with `--seeds 3` or more" in console
    )
    # no band, no interval: the captions do not promise them
    assert "Validation accuracy against epoch, one seed each (no band)" in md and "min–max band" not in md
    assert "on the one seed each pair finished: no interval and no test" in md
