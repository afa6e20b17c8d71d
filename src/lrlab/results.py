"""A study's results read back from its run folders, and the numbers computed from them: the
summary rows, per-schedule statistics, comparisons with the baseline, and training dynamics.
Pure functions of the saved files; report.py and plots.py present them."""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import config as config_mod
from lrlab import stats, store
from lrlab.errors import LrlabError, did_you_mean
from lrlab.metrics import ALL_METRICS

RUNS_DIR = "runs"  # inside a study folder: runs/<schedule>/seed-<k>/
CHECKPOINT = "checkpoint.pt"  # in a run folder while the run is unfinished (from its first epoch's end)
EPOCH_COLUMNS = ["epoch", "step", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]
# the CSVs of a finished run (written with its result.json): their columns, each a number, but those that may be
# empty (lr.csv's momentum where the optimizer has none; steps.csv's loss where it was nan, as at a divergence)
RUN_CSVS = {
    "epochs.csv": (EPOCH_COLUMNS, ()),
    "lr.csv": (["step", "lr", "momentum"], ("momentum",)),
    "steps.csv": (["step", "loss"], ("loss",)),
}
SUMMARY_COLUMNS = [
    "schedule", "seed", "status", *ALL_METRICS, "best_val_accuracy", "best_epoch", "final_val_accuracy",
    "epochs_run", "peak_lr", "final_lr", "mean_lr", "seconds",
]  # fmt: skip
# comparisons.csv: stats.Comparison's fields with the metric after the two schedules, one row per comparison
_FIELDS = [f.name for f in fields(stats.Comparison)]
COMPARISON_COLUMNS = [*_FIELDS[:2], "metric", *_FIELDS[2:]]
LEVEL, ALPHA, TEST = 0.95, 0.05, "t-test"  # the report's interval, significance level and paired test
LATE = 0.25  # "late in training": the last quarter of the steps
TARGET_OF_BEST = 0.9  # default target accuracy: this fraction of the best validation accuracy seen


@dataclass
class Run:
    folder: Path
    result: dict[str, Any]
    config: dict[str, Any]
    _csv: dict[str, list[dict[str, str]]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.result["schedule"]

    @property
    def seed(self) -> int:
        return int(self.result["seed"])

    @property
    def ok(self) -> bool:
        return self.result["status"] == "ok"

    def metric(self, m: str) -> float:
        return float(self.result["test"][m]) if self.ok else math.nan

    def csv(self, name: str) -> list[dict[str, str]]:
        """A CSV of the run folder as rows (read once: the tables and several plots use them)."""
        if name not in self._csv:
            path = self.folder / name
            self._csv[name] = store.read_csv(path) if path.exists() else []
        return self._csv[name]


# result keys that say how a run went, not what it gave: two copies of one run may differ in them
HOW_IT_RAN = frozenset({"seconds", "compile_seconds", "resumed_from_epoch"})


def load_runs(dirs: list[Path], skip: Collection[Path] = ()) -> list[Run]:
    """Every finished run under the study folders (but the run folders in `skip`, unread). A (schedule, seed)
    met twice is kept once when both copies hold the same result (the same folder given twice, or a copy of
    it) and refused when they differ: which one the report used would otherwise depend on the order of the
    folders."""
    runs: dict[tuple[str, int], Run] = {}
    for d in dirs:
        if not d.is_dir():
            raise LrlabError(f"{d} is not a folder; expected a study folder holding runs/<schedule>/seed-<k>/")
        for res in sorted(d.glob(f"{RUNS_DIR}/*/seed-*/result.json")):
            if res.parent in skip:
                continue
            run = read_run(res.parent)
            kept = runs.setdefault((run.name, run.seed), run)
            if differ := [k for k in differing(kept.result, run.result) if k not in HOW_IT_RAN]:
                check_one_setting([kept, run])  # the copies' settings differ: that is the reason to name
                raise LrlabError(
                    f"run {run.name} seed {run.seed} is in both {kept.folder} and {run.folder} with different "
                    f"results ({', '.join(differ)}); remove one of them, or report the studies separately"
                )
    return list(runs.values())


def read_run(folder: Path) -> Run:
    """A finished run's folder; LrlabError where its result.json or config.json cannot be read, or is not
    what lrlab writes (damaged by hand or by a disk: lrlab writes them atomically)."""
    try:
        run = Run(folder, store.read_json(folder / "result.json"), store.read_json(folder / "config.json"))
        _check_shape(run)
        _check_csvs(run)
    except (OSError, ValueError) as e:
        raise LrlabError(
            f"cannot read the run in {folder}: {e}; remove that folder and rerun the study to train it"
        ) from None
    return run


def _check_shape(run: Run) -> None:
    """ValueError unless the run's documents hold what the tables read from them."""
    res, cfg = run.result, run.config
    if not isinstance(res, dict) or not isinstance(cfg, dict):
        raise ValueError("result.json and config.json must each hold a JSON object")
    if not isinstance(res.get("schedule"), str) or not isinstance(res.get("seed"), int):
        raise ValueError("result.json has no schedule name or seed")
    if res.get("status") not in ("ok", "diverged"):
        raise ValueError(f"result.json has status {res.get('status')!r}, not 'ok' or 'diverged'")
    if run.ok and not (isinstance(res.get("test"), dict) and all(m in res["test"] for m in ALL_METRICS)):
        raise ValueError(f"result.json has no test metrics ({', '.join(ALL_METRICS)})")
    if not all(isinstance(cfg.get(k), dict) for k in ("config", "plan", "data")):
        raise ValueError("config.json has no config, plan or data")

    # the values the tables, plots and statistics read, of the types lrlab writes (a null or a string where a
    # number was stopped the report with a traceback); `optional`: may be null or absent (a diverged run's
    # validation figures; values the report reads only where they are there)
    def check(doc: dict[str, Any], key: str, whole: bool = False, optional: bool = False) -> None:
        v = doc.get(key.rsplit(".", 1)[-1])
        if (v is None and optional) or (_number(v) and (not whole or v == int(v))):
            return
        where = "config" if key.startswith("plan.") else "result"
        raise ValueError(f"{where}.json: {key} is {json.dumps(v)}, not a {'whole ' * whole}number")

    check(res, "seconds")
    check(res, "peak_lr")
    check(res, "best_val_accuracy", optional=not run.ok)
    for key in ("final_lr", "mean_lr", "final_val_accuracy", "compile_seconds"):
        check(res, key, optional=True)
    for key in ("epochs_run", "best_epoch"):
        check(res, key, whole=True, optional=True)
    check(cfg["plan"], "plan.total_steps", whole=True)
    for m in ALL_METRICS if run.ok else ():
        check(res["test"], f"test.{m}")
    if run.ok:
        test = res["test"]
        classes, matrix = test.get("classes"), test.get("confusion_matrix")
        k = len(classes) if isinstance(classes, list) else -1
        square = isinstance(matrix, list) and len(matrix) == k and all(
            isinstance(row, list) and len(row) == k and all(_number(x) for x in row) for row in matrix
        )  # fmt: skip
        if not square:
            raise ValueError(f"result.json: test.confusion_matrix is not a {k} × {k} table of counts (test.classes)")
        per = test.get("per_class")
        rows = [per.get(c) if isinstance(per, dict) and isinstance(c, str) else None for c in classes]
        if not all(isinstance(x, dict) and _number(x.get("f1-score")) and _number(x.get("support")) for x in rows):
            raise ValueError("result.json: test.per_class lacks a class of test.classes, or its f1-score or support")


def _number(v: Any) -> bool:
    """A finite JSON number (not a bool, which Python counts as an int)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_csvs(run: Run) -> None:
    """ValueError unless the run's CSVs are there as lrlab wrote them: their header, numbers where the report
    reads them (whole ones for steps and epochs; a nan is written as an empty cell, where one may be), and a row
    per epoch trained (epochs.csv) and per step trained (lr.csv). A cell edited by hand otherwise stopped the
    report with a traceback, and a file emptied or cut short gave other numbers without a word."""
    for name, (columns, optional) in RUN_CSVS.items():
        path = run.folder / name
        if not path.is_file():
            raise ValueError(f"{name} is missing")
        with path.open(encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), None)
        if header != columns:
            raise ValueError(f"{name} has the columns {header or 'nothing'}, not {columns}")
        for line, row in enumerate(run.csv(name), start=2):
            for col in columns:
                v = row.get(col)
                if v == "" and col in optional:
                    continue
                try:
                    x = (int if col in ("step", "epoch") else float)(v)  # type: ignore[arg-type]  (None: short row)
                    if x != x:  # nan: lrlab writes an empty cell
                        raise ValueError
                except (TypeError, ValueError):
                    said = "no value" if v is None else f"{v!r}, not a {'whole ' * (col in ('step', 'epoch'))}number"
                    raise ValueError(f"{name} line {line}: {col} is {said}") from None
    res, gone = run.result, run.result.get("diverged")
    last = gone.get("step") if isinstance(gone, dict) else None  # a diverged run's last step trained
    steps = last + 1 if isinstance(last, int) else run.config["plan"].get("total_steps")
    for name, rows in (("epochs.csv", res.get("epochs_run")), ("lr.csv", steps)):
        if isinstance(rows, int) and len(run.csv(name)) != rows:
            raise ValueError(f"{name} has {len(run.csv(name))} rows; the run trained {rows} "
                             f"{'epochs' if name == 'epochs.csv' else 'steps'}")  # fmt: skip
    if isinstance(steps, int):
        _check_logged(steps, [int(r["step"]) for r in run.csv("steps.csv")])


def _check_logged(steps: int, logged: list[int]) -> None:
    """ValueError unless steps.csv's steps are those of a run that trained `steps`: in order, a row at least every
    LOG_EVERY steps, the last within LOG_EVERY of the end. Not the exact rows, which runs of lrlab before
    2026-11-28 logged without each epoch's last steps: a file cut short or emptied, whose rows the report's loss
    jitter reads, gave other numbers without a word."""
    every = config_mod.LOG_EVERY
    # in order, a row at least every `every` steps from the start to the end; one step more allowed, for runs of
    # lrlab before 2026-11-27 that logged step counts (10, 20, ...), not indices (9, 19, ...)
    ends = [-1, *logged, steps + 1]
    if any(not 0 < b - a <= every + 1 for a, b in itertools.pairwise(ends)):
        span = f"steps {logged[0]} to {logged[-1]} in {len(logged)} rows" if logged else "no rows"
        raise ValueError(f"steps.csv has {span}; the run trained {steps} steps, logged at least every {every}")


def differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys, sorted, whose values differ between two documents (a key missing from one differs)."""
    return [k for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {prefix: doc}
    return {k: v for key, value in doc.items() for k, v in _flat(value, f"{prefix}.{key}" if prefix else key).items()}


def setting_of(config_doc: dict[str, Any], files_hash: str | None) -> dict[str, Any]:
    """What runs must share to be compared (config.setting and the data's hash), as flat dotted keys."""
    return _flat({**config_mod.setting(config_doc), "data_files": files_hash})


def other_setting(runs: list[Run], mine: dict[str, Any]) -> tuple[Run, str, Any] | None:
    """The first run made under another setting than `mine` (setting_of), the first key that differs, and
    that run's value of it."""
    for r in runs:  # (read_run has checked that each holds its config and data)
        theirs = setting_of(r.config["config"], r.config["data"].get("files_hash"))
        if (diff := next(iter(differing(theirs, mine)), None)) is not None:
            return r, diff, config_mod.setting_value(theirs, diff)
    return None


def check_one_setting(runs: list[Run]) -> None:
    """Refuse to compare runs made under different settings (epochs, model, data...: config.setting and
    the data's hash): pairing by seed assumes that only the schedule differs."""
    if not runs:
        return
    first = runs[0]
    mine = setting_of(first.config["config"], first.config["data"].get("files_hash"))
    if found := other_setting(runs, mine):
        r, diff, theirs = found
        raise LrlabError(
            f"runs made under different settings: {diff} is {config_mod.setting_value(mine, diff)!r} in "
            f"{first.folder} but {theirs!r} in {r.folder}; report them separately (a comparison pairs runs that "
            "differ only in schedule and seed)"
        )


def other_spec(runs: list[Run], specs: dict[str, Any]) -> tuple[Run, Any] | None:
    """The first run whose schedule, as it ran ("auto" resolved, on an LR axis scaled to its peak), is not the
    one `specs` gives its name, and that spec; runs of names not in `specs` are not compared."""
    for r in runs:
        if r.name in specs and (theirs := r.config.get("schedule_resolved")) != specs[r.name]:
            return r, theirs
    return None


def check_one_spec(runs: list[Run]) -> None:
    """Refuse runs of one schedule name that ran different specs (a config edited between the tasks of a batch
    array, a --set on one of them): the table would pool them as one schedule's seeds."""
    first: dict[str, Run] = {}
    for r in runs:
        first.setdefault(r.name, r)
    if found := other_spec(runs, {name: r.config.get("schedule_resolved") for name, r in first.items()}):
        r, theirs = found
        raise LrlabError(
            f"runs of schedule {r.name!r} that ran different specs: {first[r.name].config.get('schedule_resolved')} "
            f"in {first[r.name].folder} but {theirs} in {r.folder}; report them separately, or give one of them "
            "another name"
        )


def check_one_auto_lr(runs: list[Run]) -> None:
    """Refuse to compare runs whose "auto" LRs came out differently: folders that each ran their own LR range
    test (shards of a study on GPUs, where the test's answer varies a little) would compare LRs, not schedules."""
    seen: dict[float, Path] = {}
    for r in runs:
        auto = r.config.get("auto_lr")
        if isinstance(auto, dict) and isinstance(auto.get("lr"), (int, float)):
            seen.setdefault(auto["lr"], r.folder)
    if len(seen) > 1:
        (a, fa), (b, fb) = list(seen.items())[:2]
        raise LrlabError(
            f'runs whose "auto" LRs differ: {a:.6g} in {fa} but {b:.6g} in {fb} (each folder ran its own LR range '
            "test); give every part of a study one LR (lrlab study ... --auto-lr LR), or report them separately"
        )


def read_study_doc(folder: Path) -> dict[str, Any]:
    """The study.json a study wrote in `folder`; {} if there is none, or it is not one lrlab wrote."""
    try:
        doc = store.read_json(folder / "study.json")
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) and isinstance(doc.get("config"), dict) else {}


def recorded_range_test(doc: dict[str, Any], folder: Path | None = None) -> dict[str, Any] | None:
    """The LR range test a study.json (read_study_doc) records for its "auto" LRs, else (with `folder`, the
    study's) one its run folders record, or None. Each run's config.json keeps the test its LRs came from, so a
    study.json deleted or damaged does not set off a new test, whose other answer would train the remaining runs
    (and the rest of a part-trained one) at another LR than the finished ones."""
    auto = doc.get("auto_lr")
    if isinstance(auto, dict) or folder is None:
        return auto if isinstance(auto, dict) else None
    for path in sorted((folder / RUNS_DIR).glob("*/seed-*/config.json")):
        try:
            auto = store.read_json(path).get("auto_lr")
        except (OSError, ValueError, AttributeError):  # a damaged one: said where the run is read
            continue
        if isinstance(auto, dict):  # (a given LR too: study.keep_given)
            return {k: v for k, v in auto.items() if k != "kept"}
    return None


def study_docs(dirs: list[Path]) -> list[dict[str, Any]]:
    """The folders' study.json documents; a damaged one is said and left out (the run folders' own configs
    stand in: they hold the same study config)."""
    docs = []
    for d in dirs:
        if (d / "study.json").exists():
            if doc := read_study_doc(d):
                docs.append(doc)
            else:
                print(f"lrlab: {d / 'study.json'} cannot be read; the run folders' configs are used", file=sys.stderr)
    return docs


def missing_runs(docs: list[dict[str, Any]], runs: list[Run], dirs: list[Path]) -> str | None:
    """The runs the studies' starts set out to train (study.json's "planned") that have no result in `dirs`,
    as a sentence; None when every planned run is there (or no plan was recorded)."""
    planned: list[tuple[str, int]] = []
    for doc in docs:
        for x in doc.get("planned") or []:
            if isinstance(x, list) and len(x) == 2 and (key := (str(x[0]), x[1])) not in planned:
                planned.append(key)
    found = {(r.name, r.seed) for r in runs}
    missing = [(n, s) for n, s in planned if (n, s) not in found]
    if not missing:
        return None
    seeds_of: dict[str, list[int]] = {n: [] for n, _ in planned}  # in the study's order of schedules
    for n, s in missing:
        seeds_of[n].append(s)
    seeds_of = {n: ss for n, ss in seeds_of.items() if ss}
    said = "; ".join(f"{n} (seed{'s' * (len(ss) > 1)} {', '.join(map(str, ss))})" for n, ss in seeds_of.items())
    # (a run stopped before its first checkpoint has its config.json only: nothing trained is kept)
    started = sum(any((d / RUNS_DIR / n / f"seed-{s}" / CHECKPOINT).exists() for d in dirs) for n, s in missing)
    part = f"; {started} of them part-trained: rerun the study to finish them" if started else ""
    return f"{len(missing)} of the {len(planned)} planned runs have no result here: {said}{part}"


def mixed_processes(runs: list[Run]) -> str | None:
    """A sentence where runs trained on different numbers of processes (torchrun) are compared, or a run resumed
    on another number than it began on (processes_resumed); else None."""
    counts = sorted({int(n) for r in runs for n in [r.config.get("processes"), *r.config.get("processes_resumed", [])]
                     if n is not None})  # fmt: skip
    if len(counts) < 2:
        return None
    listed = " and ".join(map(str, counts))
    resumed = [f"{r.name} seed {r.seed}" for r in runs if r.config.get("processes_resumed")]
    also = f" ({', '.join(resumed)} resumed on another number than begun on)" if resumed else ""
    return (
        f"runs trained on {listed} processes are compared here{also}: under torchrun each process's BatchNorm "
        "normalises its own share of the batch (unless train.sync_bn), so they did not train quite alike"
    )


# what ran, as the report names it: (label, how a run's provenance gives it); CPU threads change a CPU run's numbers
_RAN = (
    (
        "commit",
        lambda p: f"{(p.get('git_commit') or 'n/a')[:12]}{' with uncommitted changes' * bool(p.get('git_dirty'))}",
    ),
    ("lrlab", lambda p: p.get("lrlab")),
    ("torch", lambda p: p.get("torch")),
    # (the card's model, not its index: a torchrun process records cuda:0, a single process cuda)
    ("device", lambda p: " ".join(filter(None, [str(p.get("device")).split(":")[0], p.get("device_name")]))),
    ("torch threads", lambda p: p.get("torch_threads") if str(p.get("device")).startswith("cpu") else None),
)


def mixed_provenance(runs: list[Run]) -> str | None:
    """A sentence where the runs compared ran on other code, versions, devices or CPU thread counts, counting a
    resumed run under what ran before and after its resume (config.json's `resumes`); else None."""
    said = []
    for label, of in _RAN:
        counts: dict[str, int] = {}
        for r in runs:
            starts = [
                r.config.get("provenance") or {},
                *(x.get("provenance") or {} for x in r.config.get("resumes", [])),
            ]
            for value in dict.fromkeys(str(v) for p in starts if (v := of(p)) not in (None, "")):
                counts[value] = counts.get(value, 0) + 1
        if len(counts) > 1:
            said.append(f"{label} " + ", ".join(f"{v} in {n} run{'s' * (n != 1)}" for v, n in counts.items()))
    if not said:
        return None
    resumed = " (a resumed run counts under what ran before and after its resume)" * any(
        r.config.get("resumes") for r in runs
    )
    return (
        f"not every run ran alike: {'; '.join(said)}{resumed}. On a CPU the thread count changes the numbers a "
        "little; other code or versions may change them more"
    )


def commonest_class(run: Run) -> float | None:
    """The test accuracy of always answering the test split's commonest class (the confusion matrix's row
    sums), for a finished run; else None."""
    matrix = run.result.get("test", {}).get("confusion_matrix") if run.ok else None
    counts = [sum(row) for row in matrix or []]
    return max(counts) / sum(counts) if sum(counts) else None


def study_floor(runs: list[Run]) -> float | None:
    """commonest_class of the study's test split (one split for all its runs), or None without a finished run."""
    return next((c for r in runs if (c := commonest_class(r)) is not None), None)


def at_chance(runs: list[Run]) -> str | None:
    """A sentence naming the finished runs whose test accuracy is no better than always answering the test
    split's commonest class (commonest_class); else None."""
    hits, rate = [], 0.0
    for r in runs:
        if (base := commonest_class(r)) is not None and r.metric("accuracy") <= base:
            hits.append(f"{r.name} seed {r.seed} ({r.metric('accuracy'):.3f})")
            rate = base
    if not hits:
        return None
    return (
        f"{', '.join(hits)} ended no better than always answering the test split's commonest class "
        f"({rate:.3f}): {'it' if len(hits) == 1 else 'each'} learned nothing there; too few steps, or an LR far "
        "too high or too low for this setting, are the usual causes (lrlab find-lr shows the LRs that train)"
    )


def _config_order(cfg: dict[str, Any]) -> list[str]:
    """Run names in the order a study config runs them (schedules, then peak LRs)."""
    peaks = cfg.get("peak_lrs")
    return [n if not peaks else f"{n}@{p:g}" for n in cfg["schedules"] for p in peaks or [None]]


def run_order(dirs: list[Path], runs: list[Run], docs: list[dict[str, Any]] | None = None) -> list[str]:
    """Run names in the study config's order (from study.json, `docs` where the caller read them, or the configs
    saved in the run folders), then any others in order of appearance."""
    names: list[str] = []
    configs = [doc["config"] for doc in (study_docs(dirs) if docs is None else docs)] + [
        r.config["config"] for r in runs
    ]
    for cfg in configs:
        names += [n for n in _config_order(cfg) if n not in names]
    names += [r.name for r in runs if r.name not in names]
    present = {r.name for r in runs}
    return [n for n in names if n in present]


def sort_runs(runs: list[Run], order: list[str]) -> list[Run]:
    pos = {n: i for i, n in enumerate(order)}
    return sorted(runs, key=lambda r: (pos.get(r.name, len(pos)), r.seed))


def summary_rows(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        row = {k: r.result.get(k) for k in SUMMARY_COLUMNS}
        row.update({m: (r.result["test"][m] if r.ok else None) for m in ALL_METRICS})
        rows.append(row)
    return rows


def write_summary(out: Path, dirs: list[Path] | None = None) -> list[dict[str, Any]]:
    """summary.csv: one row per finished run, by schedule (config order) then seed."""
    dirs = dirs or [out]
    runs = load_runs(dirs)
    rows = summary_rows(sort_runs(runs, run_order(dirs, runs)))
    store.write_csv(out / "summary.csv", rows, SUMMARY_COLUMNS)
    return rows


def by_name(runs: list[Run], order: list[str]) -> dict[str, list[Run]]:
    return {n: [r for r in runs if r.name == n] for n in order}


def study_table(groups: dict[str, list[Run]]) -> list[dict[str, Any]]:
    """Per schedule: n, diverged count, and a stats.Summary of every metric over its seeds."""
    table = []
    for name, runs in groups.items():
        row: dict[str, Any] = {"schedule": name, "n": sum(r.ok for r in runs), "diverged": sum(not r.ok for r in runs)}
        for m in ALL_METRICS:
            row[m] = stats.summarize([r.metric(m) for r in runs], LEVEL)
        table.append(row)
    return table


def test_resolution(groups: dict[str, list[Run]]) -> float | None:
    """The step of test accuracy: 1/N on the study's test split of N images (one split for all its runs), which
    floors the spread the paired t-test takes (stats.spread_floor); None where the runs do not say one N."""
    sizes = {r.config.get("data", {}).get("test") for runs in groups.values() for r in runs}
    n = next(iter(sizes)) if len(sizes) == 1 else None
    return 1 / n if isinstance(n, int) and n > 0 else None


def comparisons(groups: dict[str, list[Run]], baseline: str, metric: str = "accuracy") -> list[stats.Comparison]:
    """Every schedule against the baseline, paired by seed, Holm-adjusted together. On an LR axis
    each schedule is compared with the baseline at the same peak LR (Holm within each peak)."""
    peaks = {n: rs[0].config.get("peak_lr_axis") for n, rs in groups.items()}
    bases = {n: rs[0].config.get("base_schedule", n) for n, rs in groups.items()}
    names = list(bases.values())
    if baseline not in groups and baseline not in names:
        known = list(dict.fromkeys(names))
        raise LrlabError(f"baseline {baseline!r} has no runs here{did_you_mean(baseline, known)}; schedules: "
                         f"{', '.join(known)}")  # fmt: skip
    out, step = [], test_resolution(groups) if metric == "accuracy" else None
    for peak in dict.fromkeys(peaks.values()):
        at = {n: {r.seed: r.metric(metric) for r in groups[n]} for n in groups if peaks[n] == peak}
        base = next((n for n in at if n == baseline or bases[n] == baseline), None)
        if base is not None and len(at) > 1:
            out += stats.compare(at, base, TEST, ALPHA, LEVEL, step)
    return out


def peak_comparisons(groups: dict[str, list[Run]], metric: str = "accuracy") -> list[stats.Comparison]:
    """On an LR axis, which peak LR suits each schedule: every peak of a schedule with two or more against its
    peak of the highest mean (over the seeds all its peaks finished, as ranks are), paired by seed, Holm-adjusted
    over all pairs of the schedule's peaks (stats.compare_to_best). The comparisons against the baseline, made
    at one peak at a time, do not answer it. Empty without an LR axis."""
    by_base: dict[str, dict[str, dict[int, float]]] = {}
    for name, rs in groups.items():
        if rs[0].config.get("peak_lr_axis") is not None:
            base = rs[0].config.get("base_schedule", name)
            by_base.setdefault(base, {})[name] = {r.seed: r.metric(metric) for r in rs}
    step = test_resolution(groups) if metric == "accuracy" else None
    return [c for peaks in by_base.values() for c in stats.compare_to_best(peaks, TEST, ALPHA, LEVEL, step)]


def absent_classes(runs: list[Run]) -> list[str]:
    """Classes of the training data with no image in the test split (a user's test/ folder may lack some):
    they have no recall, and their per-class numbers say nothing. From the finished runs' test supports."""
    tested = [r.result["test"] for r in runs if r.ok]
    if not tested:
        return []
    return [c for c in tested[0]["classes"] if all(t["per_class"][c]["support"] == 0 for t in tested)]


def dynamics(groups: dict[str, list[Run]], target: float) -> list[dict[str, Any]]:
    """Beyond the final numbers, per schedule (means over finished seeds)."""
    rows = []
    for name, runs in groups.items():
        ok = [r for r in runs if r.ok]
        reach_epochs, reach_secs, late_jitter = [], [], []
        for r in ok:
            epochs = r.csv("epochs.csv")
            elapsed = np.cumsum([float(e["seconds"]) for e in epochs])
            hit = [i for i, e in enumerate(epochs) if float(e["val_accuracy"]) >= target]
            if hit:
                reach_epochs.append(int(epochs[hit[0]]["epoch"]))
                reach_secs.append(float(elapsed[hit[0]]))
            losses = [(int(s["step"]), float(s["loss"])) for s in r.csv("steps.csv")]
            total = r.config["plan"]["total_steps"]
            late = [v for s, v in losses if s > (1 - LATE) * total]
            if len(late) >= 3:  # changes between logged windows (at most 10 steps): noise, not the downward trend
                late_jitter.append(float(np.std(np.diff(late)) / np.mean(late)))

        def mean(key: str, rs: list[Run] = ok) -> float:
            vals = [float(r.result[key]) for r in rs if r.result.get(key) is not None]
            return float(np.mean(vals)) if vals else math.nan

        rows.append({
            "schedule": name,
            "best_val": mean("best_val_accuracy"),
            "best_epoch": mean("best_epoch"),
            "final_val": mean("final_val_accuracy"),
            "reached": f"{len(reach_epochs)}/{len(ok)}",
            "epochs_to_target": float(np.mean(reach_epochs)) if reach_epochs else math.nan,
            "seconds_to_target": float(np.mean(reach_secs)) if reach_secs else math.nan,
            "late_loss_jitter": float(np.mean(late_jitter)) if late_jitter else math.nan,
            # the LR budget of the finished runs (a diverged run's trace stops short); of the diverged ones, up to
            # where they stopped, where none finished
            "peak_lr": mean("peak_lr", ok or runs),
            "final_lr": mean("final_lr", ok or runs),
            "mean_lr": mean("mean_lr", ok or runs),
            "lr_cut": not ok,
        })  # fmt: skip
    return rows
