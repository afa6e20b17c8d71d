"""A study: schedules × seeds (× peak LRs), paired by seed. Everything is checked before the
first output is written; each finished run is saved to its own folder at once, and the summary
and report are rebuilt from those folders."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import torch
from tqdm.auto import tqdm

from lrlab import config as config_mod
from lrlab import data as data_mod
from lrlab import distributed, report, results, store
from lrlab.config import StudyConfig
from lrlab.distributed import SINGLE, Dist
from lrlab.errors import ConfigError, DataError, LrlabError, unknown
from lrlab.lr_finder import range_test
from lrlab.metrics import classification_metrics
from lrlab.model import AUTO_STEM_MAX_SIDE, build_model, count_params, stem_notes
from lrlab.schedules import (
    AUTO_RULE,
    Plan,
    Schedule,
    auto_scales_away,
    compile_schedule,
    parse_spec,
    resolve_auto,
    scale_to_peak,
    uses_auto,
)
from lrlab.training import (
    RunInputs,
    RunResult,
    Speed,
    progress_bar,
    resolve_device,
    save_checkpoint,
    steps_per_epoch,
    train_run,
)


def run_dir(out: Path, schedule: str, seed: int) -> Path:
    return out / results.RUNS_DIR / schedule / f"seed-{seed}"


def check_schedule_names(cfg: StudyConfig, names: list[str]) -> None:
    """Refuse a name that is not a schedule of the config, listing the valid ones."""
    for n in names:
        if n not in cfg.schedules:
            raise unknown("schedule", n, cfg.schedules)


def select_schedules(cfg: StudyConfig, names: list[str]) -> None:
    """Make `cfg` a study of the named schedules only (in the given order): a preview of some of them, or a
    smaller study. To train some schedules of a study into its folder, run_study's `only` keeps the study
    (its order and baseline) whole instead."""
    check_schedule_names(cfg, names)
    cfg.schedules = {n: cfg.schedules[n] for n in names}
    if cfg.baseline is not None and cfg.baseline not in cfg.schedules:
        cfg.baseline = None


@dataclass
class Prepared:
    """A study checked against its data: what `run_study` needs, built before anything is written."""

    cfg: StudyConfig
    dataset: data_mod.Dataset
    inputs: RunInputs
    plan: Plan
    # run name (a schedule, or schedule@peak on the LR axis) -> (config schedule, peak LR or None)
    variants: dict[str, tuple[str, float | None]]
    specs: dict[str, dict[str, Any]]  # run name -> spec with "auto" resolved and the LR axis applied
    schedules: dict[str, Schedule]
    device: torch.device
    build: Callable[[], torch.nn.Module]
    model_info: dict[str, Any]  # the resolved stem and "5×5" branch, and the parameter count
    auto_lr: dict[str, Any] | None  # the LR range test behind "auto" LRs, if any
    dist: Dist = SINGLE  # this process's place under torchrun
    only: list[str] | None = None  # the schedules this start trains (variants has only theirs); None: all
    notes: tuple[str, ...] = ()  # what the start line notes about the setting (model.stem_notes)


def resolve_augment(name: str, ds: data_mod.Dataset) -> str:
    """`auto`: none for digits (a flipped or shifted digit is another digit), pad-crop + flip for
    small images (the CIFAR recipe), random resized crop + flip above 64 px (the ImageNet recipe)."""
    if name != "auto":
        return name
    if ds.name == "digits":
        return "none"
    return "crop-flip" if max(ds.image_size) <= AUTO_STEM_MAX_SIDE else "resized-crop-flip"


def auto_key(cfg: StudyConfig, files_hash: str) -> str:
    """What an LR range test's answer is for: the setting (model, training, data) and the data's content. Not
    the seed it started from (recorded beside it): a study given other seeds later keeps its runs' LR."""
    doc = {"setting": config_mod.setting(config_mod.to_dict(cfg)), "data_files": files_hash}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


# torch's CPU threads when lrlab was imported (the machine's cores, or OMP_NUM_THREADS): the share of each
# run is taken from this, not from the count an earlier study in the same process set
_THREADS = torch.get_num_threads()


def run_threads(cfg: StudyConfig) -> int:
    """CPU threads of every run of a study: train.threads (else all) shared out among its `workers`. The same
    whether a run trains in a worker process, alone in the main one (the last run left) or under `lrlab train`:
    a CPU run's numbers depend on its thread count (the order of float sums), so a resumed study, a shard or
    `train` reproduces the uninterrupted study's results only with the same count. (The LR range test, one
    process's work, keeps every thread.)"""
    return max(1, (cfg.train.threads or _THREADS) // cfg.workers)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """torch's CPU threads set to `n` for the block (None: left alone), then back."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def prepare(
    cfg: StudyConfig,
    auto_lr: bool = True,
    earlier: dict[str, Any] | None = None,
    only: list[str] | None = None,
    peak: float | None = None,
    dataset: data_mod.Dataset | None = None,
) -> Prepared:
    """Load the data and compile every schedule (`only`: these; `peak`: at this one of the LR axis's peak LRs)
    against the real step count; raises LrlabError.
    With auto_lr, "auto" LRs are resolved by an LR range test (else checked with a stand-in); `earlier` is
    a range test's record from an earlier start of this study (study.json), used instead of a new test when
    it was made for the same setting and data: on a GPU the test's losses vary a little from run to run, and
    a resumed study's runs must all share one LR. `dataset`: cfg's data, loaded already (a worker's, shared by
    the study's process)."""
    names = list(cfg.schedules) if only is None else only
    check_schedule_names(cfg, names)
    if dataset is None:
        data_mod.check_source(cfg.data)
    device = resolve_device(cfg.train.device)
    Speed.check(cfg.train, device)  # its refusals (train.pool_kernel) before anything is loaded or written
    d = distributed.from_env(device)  # under torchrun: join the process group
    device = distributed.device_for(d, device)
    distributed.check_setup(d, cfg.train.batch_size, cfg.train.sync_bn, device)
    if cfg.train.threads:  # (the runs themselves take their share: run_threads)
        torch.set_num_threads(cfg.train.threads)
    ds = data_mod.load_data(cfg.data) if dataset is None else dataset
    spe = steps_per_epoch(len(ds.train), cfg.train.batch_size)
    plan = Plan(total_steps=cfg.train.epochs * spe, steps_per_epoch=spe)
    stand_ins = {  # every spec checked before any compute
        n: stand_in(cfg.schedules[n], cfg.auto_lr, lambda s, n=n: compile_schedule(s, plan, n)) for n in names
    }
    # those `only` leaves to another start: their keys and values (the folder's study.json records them), not
    # their fit to this run (a quick look with --epochs 1)
    for name in [n for n in cfg.schedules if n not in names]:
        stand_in(cfg.schedules[name], cfg.auto_lr, lambda s, n=name: parse_spec(s, f"schedules.{n}"))
    mean, std = ds.channel_stats()
    augment = resolve_augment(cfg.data.augment, ds)
    if cfg.data.cutout > min(ds.image_size):
        raise ConfigError(
            f"data.cutout: a {cfg.data.cutout} px square is larger than the images "
            f"({ds.image_size[0]}×{ds.image_size[1]}); DeVries & Taylor used 16 px on 32 px images"
        )
    inputs = RunInputs(ds.train, ds.val, ds.test, ds.num_classes, mean, std, augment, cfg.data.loader_workers,
                       cfg.data.cutout)  # fmt: skip

    def build() -> torch.nn.Module:
        return build_model(cfg.model, ds.num_classes, ds.in_channels, ds.image_size)

    model = build()  # a bad model setting fails here, not in the first run
    model_info = {
        "stem": model.stem_kind,
        "branch5": model.branch5,
        "width": cfg.model.width,
        "parameters": count_params(model),
    }
    specs, auto = {n: cfg.schedules[n] for n in names}, None
    check_auto_lr(cfg)
    given = cfg.auto_lr is not None and any(uses_auto(s) for s in specs.values())
    if auto_lr and (given or auto_lr_needed(cfg, specs)):  # one range test from the first seed's weights
        key = auto_key(cfg, ds.files_hash)
        if cfg.auto_lr is not None:  # given: no test
            auto = {"rule": "given", "lr": cfg.auto_lr, "key": key}
        elif d.is_main and _usable(earlier, key):
            auto = {**earlier, "kept": True}
        elif d.is_main:  # under torchrun rank 0 runs it and every rank uses its answer
            torch.manual_seed(cfg.seeds[0])
            test = range_test(build(), inputs, cfg.train, device, seed=cfg.seeds[0])
            auto = {"rule": AUTO_RULE, "lr": test.suggestions[AUTO_RULE], "suggestions": test.suggestions,
                    "fall": test.fall, "caution": test.caution(study=True), "seed": cfg.seeds[0], "key": key,
                    "threads": torch.get_num_threads()}  # fmt: skip
        auto = d.share(auto)
        specs = {n: resolve_auto(s, auto["lr"]) for n, s in specs.items()}
    specs = {n: resolve_auto(s, stand_ins[n]) for n, s in specs.items()}  # where no test ran (a worker's start)
    variants, run_specs = run_variants(specs, cfg.peak_lrs if peak is None else [peak], plan)
    try:
        schedules = {run: compile_schedule(spec, plan, run) for run, spec in run_specs.items()}
    except ConfigError as e:  # an "auto" LR and a fixed one that only the range test's answer puts out of order
        if auto is None:
            raise
        raise auto_refused(e, auto) from None
    notes = tuple(stem_notes(model, ds.in_channels, ds.image_size))
    return Prepared(cfg, ds, inputs, plan, variants, run_specs, schedules, device, build, model_info, auto, d, only,
                    notes)  # fmt: skip


# stand-ins for the range test's LR that checks "auto" schedules before it runs; spanning the LRs a range test
# can suggest, so that a spec that holds for some LR (an "auto" base_lr under a fixed max_lr holds for a small
# one, an "auto" peak above a fixed floor for a large one) is not refused for one stand-in's value
AUTO_STAND_INS = (1.0, *(10.0**k for k in range(-6, 3) if k != 0))


def stand_in(spec: Any, auto_lr: float | None, check: Callable[[Any], Any]) -> float:
    """The LR that `spec`'s "auto" LRs stand for before a range test, `check`ed on the spec they give: auto_lr
    when given (a refusal that only this LR meets names it), else the first stand-in that passes (an error raised
    is the 1.0 stand-in's); the range test's answer is checked after the test."""
    if auto_lr is not None or not uses_auto(spec):
        try:
            check(resolve_auto(spec, auto_lr or 1.0) if isinstance(spec, dict) else spec)
        except ConfigError as e:
            if auto_lr is None or not uses_auto(spec):
                raise
            try:  # a refusal at every LR is not the given one's (a warm-up longer than the run)
                stand_in(spec, None, check)
            except ConfigError:
                raise e from None
            raise auto_refused(e, {"rule": "given", "lr": auto_lr}) from None
        return auto_lr or 1.0
    first = None
    for lr in AUTO_STAND_INS:
        try:
            check(resolve_auto(spec, lr))
            return lr
        except ConfigError as e:
            first = first or e
    raise first


def check_auto_lr(cfg: StudyConfig) -> None:
    """A given auto_lr needs a schedule of the study with an "auto" LR."""
    if cfg.auto_lr is not None and not any(uses_auto(s) for s in cfg.schedules.values()):
        raise ConfigError('auto_lr: no schedule has an "auto" LR, so it would change nothing; leave it out')


def auto_lr_needed(cfg: StudyConfig, specs: dict[str, Any]) -> bool:
    """Whether the "auto" LRs of `specs` need a value (an LR range test, or auto_lr): some spec has one, and not
    every such spec is on an LR axis (peak_lrs) with all its LRs "auto", where the scaling to each peak leaves
    only their ratios (auto_scales_away)."""
    autos = [s for s in specs.values() if uses_auto(s)]
    return bool(autos) and not (cfg.peak_lrs and all(auto_scales_away(s) for s in autos))


def run_variants(
    specs: dict[str, dict[str, Any]], peak_lrs: list[float] | None, plan: Plan
) -> tuple[dict[str, tuple[str, float | None]], dict[str, dict[str, Any]]]:
    """The runs' schedules: each spec as it is, or on an LR axis at each peak LR (<name>@<peak>, its shape
    scaled); returns run name -> (schedule, peak) and run name -> spec."""
    variants: dict[str, tuple[str, float | None]] = {}
    run_specs: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        for peak in peak_lrs or [None]:
            run = config_mod.run_name(name, peak)
            variants[run] = (name, peak)
            run_specs[run] = spec if peak is None else scale_to_peak(spec, peak, plan)
    return variants, run_specs


def run_fingerprint(cfg: StudyConfig, spec: dict[str, Any], peak: float | None, seed: int, files_hash: str) -> str:
    """What determines one run's result: its setting (config.setting: not the study's bookkeeping, where
    the data lies, or where and how fast it runs, so that a study can resume on another machine, or
    eager after a compiler failure), its schedule, peak LR and seed, and the data's content."""
    doc = config_mod.setting(config_mod.to_dict(cfg))
    doc.update(schedule=spec, peak_lr=peak, seed=seed, data_files=files_hash)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def run_state(
    folder: Path,
    fingerprint: str,
    schedule: tuple[str, dict[str, Any]] | None = None,
    setting: dict[str, Any] | None = None,
) -> str:
    """'new' (also one of this configuration that stopped before its first checkpoint), 'partial' (with a
    checkpoint), 'finished', or 'stale': a run of another configuration that stopped before its first checkpoint
    (e.g. at an unreadable image met while streaming), which holds nothing to keep. A folder of another
    configuration with a checkpoint or result is refused (the caller passes --fresh to replace it), naming a key of
    `schedule` (name, spec), or else of `setting` (results.setting_of this start's config), that differs."""
    try:
        saved_config = store.read_json(folder / "config.json")
        saved = saved_config["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return "new"
    if saved != fingerprint:
        if not ((folder / "result.json").exists() or (folder / results.CHECKPOINT).exists()):
            return "stale"
        what, there = "", saved_config.get("schedule_spec")
        if schedule is not None and isinstance(there, dict) and there != schedule[1]:
            key = results.differing(there, schedule[1])[0]
            was, now = (config_mod.shown(spec.get(key)) for spec in (there, schedule[1]))
            what = f" (schedules.{schedule[0]}.{key} is {was} there, {now} here)"
        elif setting is not None and isinstance(saved_config.get("config"), dict):  # epochs, model, data...
            theirs = results.setting_of(saved_config["config"], (saved_config.get("data") or {}).get("files_hash"))
            if key := next(iter(results.differing(theirs, setting)), None):
                was, now = (config_mod.shown(config_mod.setting_value(doc, key)) for doc in (theirs, setting))
                what = f" ({key} is {was} there, {now} here)"
        raise ConfigError(
            f"{folder} holds a run of a different configuration{what}; rerun with --fresh to replace it, "
            "or choose another --out"
        )
    if (folder / "result.json").exists():
        results.read_run(folder)  # one that cannot be read is refused here, not kept and met by the report
        return "finished"
    # a run stopped before its first checkpoint (its config.json alone) kept nothing: it starts over, as a new one
    return "partial" if (folder / results.CHECKPOINT).exists() else "new"


def _state(folder: Path, fingerprint: str, save_model: bool, echo: Callable[[str], None]) -> str:
    """run_state, but a finished run without the weights that `lrlab train` asks for (a study does not
    keep them) is trained again ('again'), and said so; one that diverged is kept, without weights, and said so."""
    state = run_state(folder, fingerprint)
    if state == "stale":
        echo(f"{folder} held a run of another configuration that stopped before its first epoch ended: replacing it")
        shutil.rmtree(folder)
        return "new"
    if state != "finished" or not save_model or (folder / "model.pt").exists():
        return state
    if not results.read_run(folder).ok:  # no weights worth keeping, and trained again it would diverge again
        echo(f"{folder} diverged: it has no weights to save (no model.pt); --fresh trains it again")
        return state
    echo(
        f"{folder} is finished but without its weights (a study does not keep them): training it again to "
        "save them; its result is replaced when the new one is saved (the same on a CPU with the same threads and "
        "processes, close on a GPU or on another number of processes), and kept if this is stopped before"
    )
    return "again"  # in its folder: the finished files stay until save_run replaces them (result.json last)


# in a run folder while a finished run is trained again (`lrlab train` for its weights): the new training's
# config.json, which replaces the folder's when its result is saved
RETRAIN = "retrain.json"


def run_config(p: Prepared, name: str, seed: int, fingerprint: str) -> dict[str, Any]:
    """What a run folder's config.json records: the run, its resolved config and provenance."""
    base, peak = p.variants[name]
    ds = p.dataset
    return {
        "fingerprint": fingerprint,
        "schedule": name,
        "base_schedule": base,
        "schedule_spec": p.cfg.schedules[base],
        "schedule_resolved": p.specs[name],
        "peak_lr_axis": peak,
        "auto_lr": p.auto_lr,
        "seed": seed,
        "plan": {"total_steps": p.plan.total_steps, "steps_per_epoch": p.plan.steps_per_epoch},
        "model": p.model_info,
        "data": {
            "name": ds.name,
            "files_hash": ds.files_hash,
            "classes": ds.classes,
            "train": len(ds.train),
            "val": len(ds.val),
            "test": len(ds.test),
            "test_source": ds.test_source,
            "augment": p.inputs.augment,  # "auto" resolved for this data
            "cutout": p.inputs.cutout,
            # the input model.pt expects: images of this height × width and channels (resized so where
            # data.image_size says), scaled to [0, 1], less `mean`, over `std`, per channel
            "image_size": list(ds.image_size),
            "channels": ds.in_channels,
            "mean": [float(v) for v in p.inputs.mean],
            "std": [float(v) for v in p.inputs.std],
        },
        "config": config_mod.to_dict(p.cfg),
        # how it ran: the config's "auto" speed settings (precision, layout, data, pool kernel) resolved
        "speed": asdict(Speed.resolve(p.cfg.train, p.device, ds.streamed)),
        "processes": p.dist.world,  # data-parallel under torchrun: BatchNorm sees each process's share
        "provenance": store.provenance(str(p.device)),
    }


def save_run(folder: Path, p: Prepared, sched: Schedule, seed: int, result: RunResult) -> dict[str, Any]:
    """Write a finished run's files: per-epoch metrics, LR trace, losses, final metrics
    (result.json last: its presence marks the run finished)."""
    name = sched.name
    ds = p.dataset
    columns = {file: cols for file, (cols, _) in results.RUN_CSVS.items()}
    store.write_csv(folder / "epochs.csv", result.epochs, columns["epochs.csv"])
    trace = sched.trace()
    if result.diverged:  # the steps it ran: its LR budget (peak, final, mean) is of those, not of the plan
        trace = trace[: int(result.diverged["step"]) + 1]  # up to the last step trained (an index)
    store.write_csv(folder / "lr.csv", [{"step": s, "lr": lr, "momentum": m} for s, lr, m in trace], columns["lr.csv"])
    store.write_csv(folder / "steps.csv", [{"step": s, "loss": v} for s, v in result.step_losses], columns["steps.csv"])
    lrs = [lr for _, lr, _ in trace]
    best = result.best if result.epochs else {}  # empty: diverged before an epoch ended
    out: dict[str, Any] = {
        "schedule": name,
        "seed": seed,
        "status": result.status,
        "seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
        "epochs_run": len(result.epochs),
        "best_epoch": best.get("epoch"),
        "best_val_accuracy": best.get("val_accuracy"),
        "final_val_accuracy": result.epochs[-1]["val_accuracy"] if result.epochs else None,
        "peak_lr": max(lrs),
        "final_lr": lrs[-1],
        "mean_lr": sum(lrs) / len(lrs),
        "diverged": result.diverged,
        "init_hash": result.init_hash,
        "resumed_from_epoch": result.resumed_from,
    }
    if result.test_pred is not None:
        out["test"] = classification_metrics(ds.test.labels.tolist(), result.test_pred.tolist(), ds.classes)
    if p.cfg.save_model and result.model is not None and result.status == "ok":  # (diverged: NaN or huge weights)
        save_checkpoint(folder / "model.pt", {k: v.cpu() for k, v in result.model.state_dict().items()})
    if p.cfg.tensorboard:
        from lrlab.tensorboard import write_run_events

        write_run_events(folder / "tensorboard", trace, result.step_losses, result.epochs)
    store.write_json(folder / "result.json", out)
    return out


def select_shard(keys: list[tuple[str, int]], shard: tuple[int, int] | None) -> list[tuple[str, int]]:
    """Shard K of N: every N-th run of the study's fixed order, from the K-th (1-based), so N
    machines split a study into disjoint parts whose folders merge with `lrlab report`."""
    if shard is None:
        return keys
    k, n = shard
    return [key for i, key in enumerate(keys) if i % n == k - 1]


def run_study(
    cfg: StudyConfig,
    fresh: bool = False,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
    shard: tuple[int, int] | None = None,
    only: list[str] | None = None,
    command: str = "study",
    peak: float | None = None,
) -> list[dict[str, Any]]:
    """Run every run of the study (or of its shard; `only`: of these schedules; `peak`: at this peak LR of its LR axis
    only) not already finished in the output folder (an interrupted one continues from its last checkpoint; `fresh`
    discards these runs' folders first); returns the table. The study stays whole under `only` (study.json, the
    report's order and baseline): a part trained into a folder that holds the rest changes nothing else. Under
    torchrun every rank runs this, and only rank 0 writes."""
    t0 = time.perf_counter()
    if cfg.tensorboard:
        from lrlab.tensorboard import check_available

        check_available()
    data_mod.check_out(cfg.data, cfg.out_dir)
    recorded = results.read_study_doc(cfg.out_dir)  # what earlier starts of the study in this folder wrote
    # the folder's recorded range test even with --fresh: other runs there (another shard's) used its answer
    earlier = results.recorded_range_test(recorded, cfg.out_dir)
    if (note := keep_given(cfg, earlier)) and os.environ.get("RANK", "0") == "0":
        echo(note)
    p = prepare(cfg, earlier=earlier, only=only, peak=peak)
    d, out = p.dist, cfg.out_dir
    if not d.is_main:
        echo = _silent
    keys = select_shard([(run, seed) for seed in cfg.seeds for run in p.variants], shard)
    fingerprints = {
        (run, seed): run_fingerprint(cfg, cfg.schedules[p.variants[run][0]], p.variants[run][1], seed,
                                     p.dataset.files_hash)
        for run, seed in keys
    }  # fmt: skip
    held = contextlib.ExitStack()  # rank 0's lock of the folder, taken among its checks
    refused = None  # rank 0's checks of the folder: under torchrun every rank stops with its message (the others
    # waited for rank 0 and met a closed connection, each with a traceback)
    if d.is_main:
        try:
            # a folder with runs of another setting is refused before anything is trained or written, naming
            # what differs (without --fresh also among the runs this start would train)
            _check_folder(out, {run_dir(out, n, s) for n, s in keys}, fresh, p)
            if not fresh:
                setting = results.setting_of(config_mod.to_dict(cfg), p.dataset.files_hash)
                for (n, s), fp in fingerprints.items():
                    base = p.variants[n][0]
                    run_state(run_dir(out, n, s), fp, (base, cfg.schedules[base]), setting)
            store.open_out(out)
            held.enter_context(store.FolderLock(out))  # (another study writing the folder)
        except LrlabError as e:
            refused = e
    if (refused := d.share(refused)) is not None:
        refused.rank0 = True  # type: ignore[attr-defined]  (said once, by rank 0: cli.main)
        raise refused
    with held:
        if d.is_main and fresh:  # only the runs this command trains: another shard's or schedule's stay
            for name, seed in keys:
                shutil.rmtree(run_dir(out, name, seed), ignore_errors=True)
        _run_all(p, fingerprints, recorded, progress, echo, command, command == "study" and shard is None)
        baseline = cfg.baseline or next(iter(cfg.schedules))
        # a shard's folder may hold none of the baseline's runs: its comparison waits for a merged report
        comparable = d.is_main and (
            shard is None or any(r.config.get("base_schedule", r.name) == baseline for r in results.load_runs([out]))
        )
        built = report.build_report(out) if comparable else None
    d.barrier()
    if built is None:
        if shard is not None and d.is_main:
            total = len(cfg.seeds) * len(p.variants)
            if not keys:
                echo(f"shard {shard[0]}/{shard[1]} has no runs: the study has {total}")
                return []
            echo(f"shard {shard[0]}/{shard[1]}: {len(keys)} of the study's {total} runs are in {out}; none of them "
                 f"is of the baseline {baseline!r}, so the comparison waits for the merged report: "
                 "lrlab report <every shard's folder> --out <merged folder>")  # fmt: skip
        return []
    echo("")
    echo(built.console)
    echo("")
    files = report.written(out)
    echo(f"wrote {out}/{files} in {time.perf_counter() - t0:.1f} s")
    sys.stdout.flush()
    return built.table


def _check_folder(out: Path, trains: set[Path], fresh: bool, p: Prepared) -> None:
    """Refuse a folder holding finished runs of another setting (other data, epochs, model...), but for the
    runs this start trains (`trains`) with --fresh, which replaces them: its report, which pairs runs that
    differ only in schedule and seed, would refuse them after all the training (e.g. `--data` into the folder
    that the config's name gives, where the default study ran)."""
    if not (out / results.RUNS_DIR).is_dir():
        return
    mine = results.setting_of(config_mod.to_dict(p.cfg), p.dataset.files_hash)
    runs = results.load_runs([out], skip=trains if fresh else set())  # (with --fresh, those are not read)
    if found := results.other_setting(runs, mine):
        run, key, theirs = found
        # without --fresh: would it do? (only if every such run is one this start trains)
        kept = [r for r in runs if r.folder not in trains]
        fix = (
            ""
            if fresh or results.other_setting(kept, mine)
            else ", or --fresh to replace them (this command trains each of them again)"
        )
        why = (
            " (the digest of the data's bytes: an archive's own, a folder's files', so the same images as a "
            "folder and as its archive differ; give the data as the folder's runs had it)"
        ) * (key == "data_files")
        raise ConfigError(
            f"{out} holds runs of another setting ({key} is {config_mod.shown(theirs)} in {run.folder}, "
            f"{config_mod.shown(config_mod.setting_value(mine, key))} here{why}), "
            f"which a report cannot pair with these: choose another --out{fix}"
        )
    # runs of a schedule this start trains, other seeds of it (the same seed is its fingerprint's to refuse),
    # that ran another spec: the report would pool them as one schedule's seeds
    if found := results.other_spec([r for r in runs if r.folder not in trains], p.specs):
        run, theirs = found
        raise ConfigError(
            f"{out} holds runs of {run.name} with another spec ({theirs} in {run.folder}, {p.specs[run.name]} "
            "here), which its report would pool with these as one schedule: choose another --out, or another "
            "name for the changed schedule"
        )


def _planned(
    recorded: dict[str, Any], runs: list[tuple[str, int]], schedules: list[str], replace: bool
) -> list[list[Any]]:
    """The runs ([name, seed]) that the starts of the study in a folder set out to train: the earlier starts'
    (`recorded`, its study.json), then this one's. A report names those without a result (a stop, a failed
    machine); a schedule dropped from the config (not among `schedules`), or another shard's runs, were never this
    folder's to train. `replace`: this start plans every seed of the schedules it trains (a whole study, not a
    shard's share or `lrlab train`'s one run), so an earlier start's other seeds of them (a study stopped, then
    rerun with fewer seeds) are no longer planned."""

    base = config_mod.schedule_of
    earlier, now = recorded.get("planned"), {base(n) for n, _ in runs}
    kept = [list(x) for x in earlier if isinstance(x, list) and len(x) == 2] if isinstance(earlier, list) else []
    kept = [x for x in kept if base(str(x[0])) in schedules and not (replace and base(str(x[0])) in now)]
    return kept + [[n, s] for n, s in runs if [n, s] not in kept]


def _with_earlier_schedules(doc: dict[str, Any], recorded: dict[str, Any], trained: set[str]) -> dict[str, Any]:
    """A study config to record in study.json: this start's schedules, then those only the folder's earlier
    record (`recorded`) has (a config since changed may have left their runs there, and the report orders by
    it). A schedule this start does not train (not in `trained`: --schedules named others) keeps its recorded
    spec: its runs in the folder are of that one, whatever this start's config says of it."""
    earlier = recorded["config"].get("schedules") if recorded else None
    if isinstance(earlier, dict):
        mine = {n: earlier[n] if n not in trained and n in earlier else spec for n, spec in doc["schedules"].items()}
        doc["schedules"] = mine | {n: spec for n, spec in earlier.items() if n not in mine}
    return doc


def auto_refused(e: ConfigError, auto: dict[str, Any]) -> ConfigError:
    """A spec's refusal once the LR that its "auto" LRs stand for is known (`auto`: a range test's record, or
    auto_lr given), naming that LR and where it came from."""
    return ConfigError(f"{e} ({describe_auto(auto)})")


def describe_auto(auto: dict[str, Any]) -> str:
    """The line that says what "auto" LRs stand for and where the value came from."""
    how = "given (auto_lr)" if auto["rule"] == "given" else f"{auto['rule']} rule of an LR range test"
    kept = ", kept from this folder's earlier start" if auto.get("kept") else ""
    return f'"auto" LRs: {auto["lr"]:.4g} ({how}{kept})'


def keep_given(cfg: StudyConfig, earlier: dict[str, Any] | None) -> str | None:
    """Where this start gives no auto_lr and an earlier start of the study in this folder gave one (--auto-lr; its
    record `earlier`, rule "given"), that LR again, as a range test's recorded answer is kept: every run of the
    folder shares one LR (auto_lr is part of the setting, so without it the folder was refused as another
    setting's, and --fresh ran a range test instead). Sets cfg.auto_lr; returns the note that says so, or None."""
    lr = (earlier or {}).get("lr")
    if cfg.auto_lr is not None or (earlier or {}).get("rule") != "given" or not isinstance(lr, (int, float)):
        return None
    # (and only where an "auto" is left for it to stand for: else auto_lr would be refused, though not given)
    if not (math.isfinite(lr) and lr > 0) or not any(uses_auto(s) for s in cfg.schedules.values()):
        return None
    cfg.auto_lr = float(lr)
    return f"note: auto_lr = {lr:g}, as given at an earlier start of this study in {cfg.out_dir} (another: a new --out)"


def _usable(earlier: dict[str, Any] | None, key: str) -> bool:
    """Whether a recorded range test answers for this setting and data (and holds a usable LR)."""
    if not earlier or earlier.get("key") != key or earlier.get("rule") != AUTO_RULE:
        return False
    lr = earlier.get("lr")
    return isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0


def _silent(_: str) -> None:
    pass


def _run_all(
    p: Prepared,
    fingerprints: dict[tuple[str, int], str],
    recorded: dict[str, Any],
    progress: bool | None,
    echo: Callable[[str], None],
    command: str = "study",
    replace: bool = False,
) -> None:
    """Write study.json (`recorded`: the folder's earlier one) and train the runs not finished yet; `command`
    (study, train) heads the first line; `replace`: this start's plan replaces the earlier ones' for the schedules
    it trains (_planned)."""
    cfg, ds, out, d = p.cfg, p.dataset, p.cfg.out_dir, p.dist
    peaks = list(dict.fromkeys(pk for _, pk in p.variants.values() if pk is not None))
    axis = f" at peak LR {peaks[0]:g}" if len(peaks) == 1 else f" × {len(peaks)} peak LRs" if peaks else ""
    ranks = f" on {d.world} processes" if d.enabled else ""

    def count(n: int, what: str) -> str:
        return f"{n} {what}{'s' * (n != 1)}"

    echo(
        f"lrlab {command} {cfg.name!r}: {count(len(p.only or cfg.schedules), 'schedule')}{axis} × "
        f"{count(len(cfg.seeds), 'seed')} "
        f"on {ds.name} (train {len(ds.train)}, val {len(ds.val)}, test {len(ds.test)}; "
        f"{ds.image_size[0]}×{ds.image_size[1]}×{ds.in_channels}), GoogLeNet width {cfg.model.width:g}, stem "
        f"{p.model_info['stem']} ({p.model_info['parameters']:,} parameters), {count(cfg.train.epochs, 'epoch')} × "
        f"{count(p.plan.steps_per_epoch, 'step')}, device {p.device}{ranks}, out {out}"
    )
    if cfg.data.limit is not None and cfg.data.limit > len(ds.train):
        echo(f"note: data.limit: {cfg.data.limit} is more than the {len(ds.train)} training images the split leaves; "
             "all of them are used")  # fmt: skip
    elif cfg.data.limit is not None and cfg.data.limit < len(ds.train):  # (data._subsample's floor)
        echo(f"note: data.limit: {cfg.data.limit} is fewer than the {len(ds.classes)} classes; each keeps one "
             f"training image, {len(ds.train)} in all")  # fmt: skip
    for note in [*data_mod.unread(cfg.data, ds), *p.notes]:
        echo(f"note: {note}")
    for name, sched in p.schedules.items():
        for note in sched.notes:
            echo(f"note: schedules.{name}: {note}")
    if p.auto_lr:
        echo(describe_auto(p.auto_lr))
        if p.auto_lr.get("caution"):
            echo(f"caution: {p.auto_lr['caution']}")
    if d.is_main:
        study_doc = {
            "config": _with_earlier_schedules(
                config_mod.to_dict(cfg), recorded, {p.variants[n][0] for n, _ in fingerprints}
            ),
            # a start that needed no range test (some schedules of the study) keeps the one recorded earlier
            "auto_lr": p.auto_lr or recorded.get("auto_lr"),
            "planned": _planned(recorded, list(fingerprints), list(cfg.schedules), replace),
            "provenance": store.provenance(str(p.device)),
        }
        store.write_json(out / "study.json", study_doc)
    # [k/total]: k counts the runs as they are done (kept ones first), not their place in the plan, which, printed
    # as runs finish in parallel or around kept ones, read as runs lost or repeated
    total, done = len(fingerprints), 0
    todo = []
    for (name, seed), fp in fingerprints.items():
        state = d.share(_state(run_dir(out, name, seed), fp, cfg.save_model, echo) if d.is_main else None)
        if state == "finished":
            done += 1
            echo(f"[{done}/{total}] {name} seed {seed}: kept (finished earlier)")
        else:
            todo.append((name, seed, fp, state))
    if cfg.workers > 1 and len(todo) > 1 and d.enabled:
        echo(f"workers = {cfg.workers} is not used under torchrun: the runs go one at a time, each over the "
             f"{d.world} processes")  # fmt: skip
    if cfg.workers > 1 and len(todo) > 1 and not d.enabled:
        _run_parallel(p, todo, total, echo, progress)
        return
    # one at a time in this process (under torchrun each process keeps its OMP_NUM_THREADS)
    with _torch_threads(None if d.enabled or p.device.type != "cpu" else run_threads(cfg)):
        for name, seed, fp, state in todo:
            line = _train_one(p, name, seed, fp, state, progress)
            done += 1
            if d.is_main:
                results.write_summary(out)
                echo(f"[{done}/{total}] {name} seed {seed}: {line}")


def _train_one(
    p: Prepared, name: str, seed: int, fp: str, state: str, progress: bool | None, make_bar: Callable | None = None
) -> str:
    """Train one run (resuming its checkpoint), save its folder; returns the line that reports it."""
    d, folder = p.dist, run_dir(p.cfg.out_dir, name, seed)
    checkpoint = folder / results.CHECKPOINT
    # what ran: config.json, but a finished run trained again keeps its own until the new result replaces it, and
    # the new training's record waits beside it
    record = folder / (RETRAIN if state == "again" else "config.json")
    # (a retrain.json without a checkpoint: a retrain stopped before its first epoch ended, which kept nothing)
    if d.is_main and (state == "new" or not record.exists() or (state == "again" and not checkpoint.exists())):
        store.write_json(record, run_config(p, name, seed, fp))

    def resumed(epoch: int) -> None:  # each resume, when it happens: what ran from there on
        doc = store.read_json(record)
        doc["resumes"] = [*doc.get("resumes", []), {"from_epoch": epoch, "provenance": store.provenance(str(p.device))}]
        earlier = doc.get("processes_resumed", [])  # on another number of processes its BatchNorm saw other batches
        if d.world not in [doc.get("processes"), *earlier]:
            doc["processes_resumed"] = [*earlier, d.world]
        store.write_json(record, doc)

    sched = compile_schedule(p.specs[name], p.plan, name)  # fresh: a plateau's history is per run
    result = train_run(p.build, p.inputs, sched, p.cfg.train, seed, p.device, progress, f"{name} s{seed}",
                       checkpoint, fp, d, make_bar, resumed if d.is_main else None)  # fmt: skip
    if not d.is_main:
        return ""
    if state == "again":  # the new training's record, with its result (the earlier one's stood until now)
        store.write_json(folder / "config.json", store.read_json(record))
        record.unlink()
    saved = save_run(folder, p, sched, seed, result)
    checkpoint.unlink(missing_ok=True)  # the result is saved; the checkpoint has done its work
    if result.status == "ok":
        what = (
            f"test accuracy {saved['test']['accuracy']:.4f} (best val "
            f"{result.best['val_accuracy']:.4f} at epoch {result.best['epoch']})"
        )
    else:
        dv = result.diverged
        of = "validation loss" if dv.get("loss_of") == "validation" else "loss"
        what = f"DIVERGED at step {dv['step']} (lr {dv['lr']:.3g}, {of} {dv['loss']:.3g})"
        if p.cfg.save_model:
            what += "; its weights were not saved (no model.pt)"
    resumed = f", resumed from epoch {result.resumed_from}" if result.resumed_from else ""
    compiled = f" (+ {result.compile_seconds:.1f} s compiling)" if result.compile_seconds >= 0.05 else ""
    return f"{what}, {result.seconds:.1f} s{compiled}{resumed}"


# -- several runs at once: worker processes, each preparing the study once ------------------------

_WORKER: Prepared | None = None
_BARS: Any = None  # a queue to the parent, which draws the workers' progress bars; None: no bars


class QueueBar:
    """The calls a Trainer makes on its tqdm bar, sent to the parent process (at most 4 a second),
    whose thread draws every worker's bar: bars drawn by several processes would overwrite each other."""

    def __init__(self, queue: Any, label: str, total: int, initial: int) -> None:
        self.queue, self.label, self.total, self.n = queue, label, total, initial
        self.postfix: dict[str, str] = {}
        self.sent = -math.inf

    def update(self, n: int = 1) -> None:
        self.n += n
        self._send()

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self.postfix = {k: str(v) for k, v in values.items()}
        self._send()

    def close(self) -> None:
        self._send(done=True)

    def _send(self, done: bool = False) -> None:
        now = time.monotonic()
        if done or now - self.sent >= 0.25:
            self.queue.put((self.label, self.n, self.total, self.postfix, done))
            self.sent = now


def _draw_bars(queue: Any, slots: int, stop: Any) -> None:
    """The parent's thread that draws the bars the workers' QueueBars describe, one line per run in
    training; a run's bar goes when it ends (its result line follows). Ends at a None."""
    bars: dict[str, tuple[Any, int]] = {}
    free = list(range(slots))

    def draw(label: str, n: int, total: int, postfix: dict[str, str], done: bool) -> None:
        if label not in bars:
            pos = free.pop(0) if free else slots + len(bars)
            bar = progress_bar(total, n, label, True, position=pos, leave=False)  # lines in a log, else tqdm's
            bars[label] = (bar, pos)
        bar, pos = bars[label]
        bar.set_postfix(postfix, refresh=False)
        bar.update(n - bar.n)
        if done:
            bar.refresh()  # its last state, drawn whatever tqdm's refresh interval, then gone
            bar.close()
            del bars[label]
            free.append(pos)
            free.sort()

    try:
        while (msg := queue.get()) is not None:
            draw(*msg)
        # each process writes its own end of the pipe: the None can overtake a worker's last message
        deadline = time.monotonic() + 1.0
        while bars and not stop.value and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(Empty):
                if (msg := queue.get(timeout=left)) is not None:
                    draw(*msg)
    finally:
        for bar, _ in bars.values():
            bar.close()


def _init_worker(
    doc: dict[str, Any],
    specs: dict[str, dict[str, Any]],
    auto: dict[str, Any] | None,
    threads: int,
    stop: Any,
    bars: Any = None,
    only: list[str] | None = None,
    start_method: str | None = None,
    dataset: data_mod.Dataset | None = None,
) -> None:
    global _WORKER, _BARS
    _BARS = bars
    if start_method:  # a spawned process's default is spawn: its DataLoader workers (data.stream) then started
        # a fresh interpreter that imports torch for each epoch, 50 times slower than the study's own process
        multiprocessing.set_start_method(start_method, force=True)
    # Ctrl-C reaches the whole process group: the parent alone handles it (it sets `stop`). A worker ends
    # at once when `stop` is set or the parent is gone (killed with SIGKILL, say), so it never trains on
    # unlocked, unwatched; its run resumes from its last epoch checkpoint, as after any kill.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def leave(*_: Any) -> None:
        # what a worker process runs at a normal exit: it releases the semaphores this process registered
        # (tqdm's lock), which the resource tracker would otherwise report as leaked
        multiprocessing.util._exit_function()
        os._exit(1)

    def watch() -> None:
        while not stop.value and os.getppid() == parent:
            time.sleep(0.5)
        leave()

    signal.signal(signal.SIGTERM, leave)  # SIGTERM to the process group (timeout, a batch scheduler)
    threading.Thread(target=watch, daemon=True).start()
    cfg = config_mod.from_dict(doc)  # the study's, as its runs' config.json records it
    p = prepare(cfg, auto_lr=False, only=only, dataset=dataset)
    torch.set_num_threads(threads)  # the parent's run_threads: each run's share
    p.specs, p.auto_lr = specs, auto  # the parent's: one LR range test per study, not per worker
    _WORKER = p


def _worker_run(name: str, seed: int, fp: str, state: str) -> str:
    assert _WORKER is not None
    queue = _BARS
    make_bar = (lambda total, initial, label: QueueBar(queue, label, total, initial)) if queue is not None else None
    return _train_one(_WORKER, name, seed, fp, state, progress=False, make_bar=make_bar)


SHM = Path("/dev/shm")  # where torch's multiprocessing puts a tensor that another process is given (Linux)


def _held_bytes(ds: data_mod.Dataset) -> int:
    """Bytes of the decoded splits (by storage: the splits of a folder are views of one tensor); 0 when streamed."""
    if ds.streamed:
        return 0
    parts = [x.untyped_storage() for split in (ds.train, ds.val, ds.test) for x in (split.images, split.labels)]
    return sum({st.data_ptr(): st.nbytes() for st in parts}.values())


def _shareable(ds: data_mod.Dataset) -> bool:
    """Whether the workers can be given the study's own decoded images (torch's multiprocessing moves a tensor to
    shared memory when it is sent: one copy for every process, decoded once) rather than each worker loading the
    data again (a folder of JPEGs decoded by every process, and held by each). Not where shared memory is small
    (a container's 64 MB /dev/shm: the tensor would not fit) or unknown, nor where memory has no room for the
    moment the images are copied there: then each worker loads its own (_check_workers_fit)."""
    if ds.streamed:  # file names, read batch by batch: nothing decoded to share
        return True
    held = _held_bytes(ds)
    try:
        free = shutil.disk_usage(SHM).free
    except OSError:
        return False
    room = data_mod.available_memory()
    return held < free / 2 and (room is None or held <= room)


def _check_workers_fit(ds: data_mod.Dataset, workers: int) -> None:
    """Refuse, before they start, worker processes that would each load images that memory cannot hold so many
    times (a worker refused in its start is only a broken pool to the study)."""
    need, room = workers * _held_bytes(ds), data_mod.available_memory()
    if room is not None and need > room:
        gib = 2**30
        raise DataError(
            f"{workers} worker processes would each hold their own {need / workers / gib:.1f} GiB of decoded images "
            f"({SHM} has no room to share the study's), more than the {room / gib:.1f} GiB free here; run one at a "
            "time (--workers 1), or stream the images from a folder (--stream)"
        )


def _run_parallel(
    p: Prepared,
    todo: list[tuple[str, int, str, str]],
    total: int,
    echo: Callable[[str], None],
    progress: bool | None = None,
) -> None:
    """Runs in `workers` processes (spawned: forking a process that has started torch's thread
    pools can deadlock), each with an equal share of the CPU threads. Small models use threads
    poorly, so on a CPU two one-thread runs at once beat one two-thread run."""
    cfg = p.cfg
    workers = min(cfg.workers, len(todo))
    threads = run_threads(cfg)  # by cfg.workers, not by the runs left: as every run of the study
    echo(f"running {len(todo)} runs in {workers} worker processes × {threads} thread{'s' if threads > 1 else ''}")
    ctx = multiprocessing.get_context("spawn")
    # a flag without a lock, not an Event: a worker killed inside Event.wait stays counted as a waiter,
    # and the parent's Event.set then waits for it forever (SIGTERM to the process group, an OOM kill)
    stop = ctx.RawValue("b", 0)
    # progress None: bars only on a terminal (tqdm's rule for one run's bar)
    bars = ctx.Queue() if (sys.stderr.isatty() if progress is None else progress) else None
    drawer = threading.Thread(target=_draw_bars, args=(bars, workers, stop), daemon=True) if bars is not None else None
    if drawer is not None:
        drawer.start()
        say = echo

        def echo(line: str) -> None:  # a line above the bars, which are drawn again below it
            with tqdm.external_write_mode():
                say(line)

    shared = _shareable(p.dataset)
    if not shared:
        _check_workers_fit(p.dataset, workers)
    initargs = (config_mod.to_dict(cfg), p.specs, p.auto_lr, threads, stop, bars, p.only,
                multiprocessing.get_start_method(), p.dataset if shared else None)  # fmt: skip
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=initargs) as pool:
        # the workers start here (submit spawns them) with Ctrl-C ignored from their first instruction: an
        # ignored signal stays ignored through exec, and Python then installs no KeyboardInterrupt handler,
        # so a Ctrl-C while they import torch stops the study without a traceback from each of them
        main = threading.current_thread() is threading.main_thread()  # (only it may set signal handlers)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            try:
                futures = {
                    pool.submit(_worker_run, name, seed, fp, state): (name, seed) for name, seed, fp, state in todo
                }
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous)
            done = total - len(todo)  # the runs kept from earlier starts
            for fut in as_completed(futures):
                name, seed = futures[fut]
                done += 1
                try:
                    line = fut.result()
                except BrokenProcessPool:  # a worker killed (the kernel's out-of-memory killer, kill -9)
                    raise LrlabError(
                        "a worker process ended abruptly (killed, or out of memory?), which stops the study; its "
                        "finished runs are saved: run the same command again to continue"
                    ) from None
                results.write_summary(cfg.out_dir)
                echo(f"[{done}/{total}] {name} seed {seed}: {line}")
        except BaseException:  # an interrupt, a termination or a failed run: the workers stop too
            stop.value = 1
            pool.shutdown(wait=True, cancel_futures=True)  # the workers exit within half a second
            raise
        finally:
            if drawer is not None:  # after the workers' last messages (their bars closed), or at a stop
                bars.put(None)
                drawer.join(5)
