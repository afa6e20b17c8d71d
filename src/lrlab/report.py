"""The study's report, rebuilt from run folders alone (no training): `summary.csv`, `report.md`,
a self-contained `report.html` (images embedded) and `plots/*.png`. Several study folders (e.g.
shards run on different machines) merge into one report."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import plots, stats, store
from lrlab.errors import LrlabError
from lrlab.metrics import TABLE_METRICS
from lrlab.results import (
    ALPHA,
    CHECKPOINT,
    COMPARISON_COLUMNS,
    LATE,
    LEVEL,
    RUNS_DIR,
    SUMMARY_COLUMNS,
    TARGET_OF_BEST,
    TEST,
    Run,
    absent_classes,
    at_chance,
    by_name,
    check_one_auto_lr,
    check_one_setting,
    check_one_spec,
    comparisons,
    dynamics,
    load_runs,
    missing_runs,
    mixed_processes,
    mixed_provenance,
    peak_comparisons,
    run_order,
    sort_runs,
    study_docs,
    study_floor,
    study_table,
    summary_rows,
    test_resolution,
)

# How the macro averages treat classes, said where they are explained (metrics.classification_metrics).
MACRO = (
    "Precision, recall and F1 are macro averages: the unweighted mean over the classes that occur in the test "
    "labels or in the predictions (scikit-learn's default), a precision or recall of 0/0 counted as 0."
)


def _fmt(x: float, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pm(s: stats.Summary) -> str:
    if s.n == 0:
        return "—"
    if s.n < 2:
        return f"{s.mean:.4f}"
    return f"{s.mean:.4f} ± {(s.ci_high - s.ci_low) / 2:.4f}"


def _p(p: float) -> str:
    """p to 3 decimals, rounded up: a p shown at or under alpha is one that rejected (0.0503 is 0.051, not 0.050,
    beside "no clear difference")."""
    return "—" if math.isnan(p) else ("<0.001" if p < 0.001 else f"{math.ceil(round(p * 1000, 9)) / 1000:.3f}")


@dataclass
class Doc:
    """A report as a list of blocks, rendered to Markdown and to self-contained HTML."""

    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", head, rows))

    def img(self, rel: str, caption: str) -> None:
        self.blocks.append(("img", rel, caption))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append("| " + " | ".join(b[1]) + " |")
                out.append("|" + "|".join("---:" if n else "---" for n in _numeric_columns(b[2], len(b[1]))) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in b[2]]
            else:  # (GitHub shows an image's alt text nowhere: the caption is a line of its own)
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
            out.append("")
        return "\n".join(out)

    def html(self, root: Path, title: str) -> str:
        def inline(text: str) -> str:  # **bold** and `code`, the only Markdown the blocks use
            t = html.escape(text)
            for mark, tag in (("**", "strong"), ("`", "code")):
                parts = t.split(mark)
                t = "".join(p if i % 2 == 0 else f"<{tag}>{p}</{tag}>" for i, p in enumerate(parts))
            return t

        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{inline(b[1])}</p>")
            elif b[0] == "table":
                left = [' class="t"' * (not n) for n in _numeric_columns(b[2], len(b[1]))]  # text: to the left
                head = "".join(f"<th{a}>{inline(c)}</th>" for c, a in zip(b[1], left, strict=True))
                rows = "".join("<tr>" + "".join(f"<td{a}>{inline(c)}</td>" for c, a in zip(r, left, strict=True))
                               + "</tr>" for r in b[2])  # fmt: skip
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            else:
                data = base64.b64encode((root / b[1]).read_bytes()).decode()
                body.append(
                    f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{inline(b[2])}</figcaption></figure>"
                )
        return HTML_PAGE.format(title=html.escape(title), body="\n".join(body))


# a cell of a number: a value, a bound ("> 64"), an interval ("[-0.1, +0.2]", "0.5 ± 0.1") or "—" (none)
_NUMBER = re.compile(r"^(?:[<>≤≥] ?|\[)?[-−+]?(?:\d|\.\d|inf|nan|—$)")


def _numeric_columns(rows: list[list[str]], width: int) -> list[bool]:
    """Which columns of a table hold numbers, most of their cells (an interval's column has "no spread" where there
    is none): right-aligned, so that their digits line up. The first, the row's name, never does, and text columns
    (a verdict, a status) stay left-aligned."""
    return [i > 0 and 2 * sum(bool(_NUMBER.match(r[i])) for r in rows) > len(rows) for i in range(width)]


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #222; }}
h1 {{ border-bottom: 2px solid #ddd; padding-bottom: .3em; }} h2 {{ margin-top: 1.8em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; display: block;
         overflow-x: auto; max-width: 100%; }}
th, td {{ border: 1px solid #ddd; padding: .35em .7em; text-align: right; }} td {{ white-space: nowrap; }}
th.t, td.t {{ text-align: left; }} td.t {{ white-space: normal; min-width: 7em; }}
td.t:first-child {{ white-space: nowrap; }} thead {{ background: #f4f6f8; }}
tbody tr:nth-child(even) {{ background: #fafafa; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #666; font-size: 90%; }}
code {{ background: #f2f2f2; padding: 0 .25em; border-radius: 3px; }}
</style></head>
<body>
{body}
</body></html>
"""


@dataclass
class Built:
    table: list[dict[str, Any]]  # per schedule: n, diverged, stats.Summary per metric
    comparisons: list[stats.Comparison]
    console: str  # the short form printed at the end of a study


def written(out: Path) -> str:
    """The report's files, as the line that ends a study or `lrlab report` names them."""
    peaks = " peaks.csv," if (out / "peaks.csv").exists() else ""
    return f"summary.csv, comparisons.csv,{peaks} report.md, report.html, plots/"


def build_report(out: Path, dirs: list[Path] | None = None, baseline: str | None = None) -> Built:
    """Write summary.csv, comparisons.csv, plots/, report.md and report.html into `out` from the run
    folders of `dirs` (default: `out` itself)."""
    dirs = dirs or [out]
    for d in dirs if len(dirs) > 1 else []:  # (one folder alone: said below, with what it holds instead)
        # a merged report's folder or a mistyped one, among study folders: its absence from the report would go
        # unsaid (a shard that got no runs has its study.json, and passes)
        if d.is_dir() and not (d / RUNS_DIR).is_dir() and not (d / "study.json").exists():
            what = "a merged report's folder: give the study folders its report.md names" if (
                d / "report.md").exists() else "not a study folder"  # fmt: skip
            raise LrlabError(f"{d} holds no runs/ and no study.json ({what})")
    runs = load_runs(dirs)
    if not runs:
        merged = (
            "; a merged report's folder holds no runs: rebuild it from the study folders its report.md names"
            if any((d / "report.md").exists() for d in dirs)
            else ""
        )
        started = sum(1 for d in dirs for _ in (d / RUNS_DIR).glob(f"*/seed-*/{CHECKPOINT}"))
        if started:  # an interrupted study: runs begun, none finished
            merged = f"; {started} run{'s' * (started != 1)} part-trained there: rerun the study to finish them"
        raise LrlabError(
            f"no finished runs under {', '.join(map(str, dirs))} (expected runs/<schedule>/seed-<k>/){merged}"
        )
    check_one_setting(runs)
    check_one_auto_lr(runs)
    check_one_spec(runs)  # (after the auto LRs: runs of two range tests differ in their specs too)
    docs = study_docs(dirs)  # (read once: a damaged one is said once)
    order = run_order(dirs, runs, docs)
    runs = sort_runs(runs, order)
    groups = by_name(runs, order)
    table = study_table(groups)
    cfg = docs[0]["config"] if docs else runs[0].config["config"]
    baseline, stand_in = _baseline(baseline, cfg, groups, order)
    comps = comparisons(groups, baseline)  # (refuses a --baseline without runs: before anything is written)
    store.open_out(out)
    store.write_csv(out / "summary.csv", summary_rows(runs), SUMMARY_COLUMNS)
    store.write_csv(out / "comparisons.csv", _csv_rows(comps), COMPARISON_COLUMNS)
    peak_comps = peak_comparisons(groups)
    if peak_comps:
        store.write_csv(out / "peaks.csv", _csv_rows(peak_comps), COMPARISON_COLUMNS)
    else:  # not one of an earlier report of this folder, whose runs or folders differed
        (out / "peaks.csv").unlink(missing_ok=True)
    accuracy = {n: {r.seed: r.metric("accuracy") for r in rs} for n, rs in groups.items()}
    apart = [c.apart for c in comps + peak_comps if c.decided]
    step = test_resolution(groups)
    ranks = stats.rank_with_ties(accuracy, ALPHA, TEST, separated=apart, resolution=step)
    neighbours = stats.neighbour_tests(accuracy, TEST, step)
    ranking_mean = stats.ranking_means(accuracy)  # (over the seeds every schedule finished, where some have others)
    best_val = max((float(r.result["best_val_accuracy"]) for r in runs if r.ok), default=math.nan)
    target = cfg.get("target_accuracy") or TARGET_OF_BEST * best_val
    dyn = dynamics(groups, target)

    plot_dir = out / "plots"
    # each schedule's LR as planned: from a finished run (a diverged one's lr.csv ends where it stopped);
    # one line per seed where the seeds' LRs differ (a plateau follows each run's own metric)
    shown: dict[str, list[dict[str, str]]] = {}
    cycled = {}  # schedule: the range its scheduled momentum spans (the optimizer's own momentum elsewhere)
    for n, rs in groups.items():
        done = [r for r in rs if r.ok]
        first = (done or rs)[0]  # (a diverged run's trace stops short: said so)
        if values := [float(x["momentum"]) for x in first.csv("lr.csv") if x["momentum"]]:
            cycled[n] = (min(values), max(values), bool(done))
        if not done:  # every seed diverged: the first one's trace, as far as it went, and said so
            shown[f"{n}, {_diverged(first)}"] = first.csv("lr.csv")
            continue
        each = {r.seed: r.csv("lr.csv") for r in done}
        if len({tuple(x["lr"] for x in rows) for rows in each.values()}) > 1:
            shown.update({f"{n} (seed {seed})": rows for seed, rows in each.items()})
        else:
            shown[n] = next(iter(each.values()))
    traces = {n: [(int(x["step"]), float(x["lr"])) for x in rows] for n, rows in shown.items()}
    moms = {
        n: [(int(x["step"]), float(x["momentum"])) for x in rows]
        for n, rows in shown.items()
        if rows and rows[0]["momentum"]  # a scheduled momentum
    }
    plots.plot_lr(traces, plot_dir / "lr.png", momentum=moms or None)
    plots.plot_curves(groups, "val_accuracy", "validation accuracy", plot_dir / "val_accuracy.png")
    plots.plot_curves(groups, "train_loss", "training loss", plot_dir / "train_loss.png")
    floor = study_floor(runs)
    plots.plot_final(table, groups, plot_dir / "accuracy.png", floor)
    drawn = set()  # the plots that only some reports have
    if any(c.n for c in comps):  # (not where no comparison has a pair: every row would be empty)
        at_peak = " at the same peak LR" if len({c.baseline for c in comps}) > 1 else ""
        plots.plot_differences(_difference_rows(comps, accuracy), f"{baseline}{at_peak}", plot_dir / "differences.png")
        drawn.add("differences")
    ranked = [row["schedule"] for row in table if row["schedule"] in ranking_mean]
    top = max(ranking_mean.values(), default=math.nan)
    # every schedule at the highest mean: on a small test split two schedules often score exactly alike
    best = [n for n in ranked if math.isclose(ranking_mean[n], top, rel_tol=1e-9)]
    if best:
        plots.plot_confusion(best[0], [r for r in groups[best[0]] if r.ok], plot_dir / "confusion.png")
        drawn.add("confusion")
    # the runs of an LR axis (a folder may also hold runs of the same study without one)
    sweep = [r for r in runs if r.config.get("peak_lr_axis") is not None]
    if sweep:
        plots.plot_sensitivity(sweep, plot_dir / "lr_sensitivity.png")
        drawn.add("lr_sensitivity")
    for name in {"differences", "confusion", "lr_sensitivity"} - drawn:  # not one of an earlier report's here
        (plot_dir / f"{name}.png").unlink(missing_ok=True)

    absent = absent_classes(runs)
    notes = [(label, text) for label, text in (("not finished", missing_runs(docs, runs, dirs)),
                                                  ("note", mixed_processes(runs)),
                                                  ("note", mixed_provenance(runs)),
                                                  ("learned nothing", at_chance(runs)),
                                                  ("note", _ranked_on(accuracy)),
                                                  ("note", _conflicts(accuracy, apart))) if text]  # fmt: skip
    doc = _document(cfg, runs, table, comps, ranks, dyn, baseline, stand_in, best, target, bool(sweep), dirs, absent,
                    notes, peak_comps, neighbours, apart, cycled)  # fmt: skip
    store.write_text(out / "report.md", doc.markdown())
    store.write_text(out / "report.html", doc.html(out, f"lrlab study: {cfg['name']}"))
    console = _console(cfg, runs, table, comps, ranks, baseline, stand_in, absent, notes, peak_comps)
    return Built(table, comps, console)


def _csv_rows(comps: list[stats.Comparison]) -> list[dict[str, Any]]:
    """Comparisons of test accuracy as rows of comparisons.csv or peaks.csv."""
    return [{**asdict(c), "metric": "accuracy"} for c in comps]


def _baseline(
    given: str | None, cfg: dict[str, Any], groups: dict[str, list[Run]], order: list[str]
) -> tuple[str, str | None]:
    """The schedule to compare with: `given` (--baseline; must have runs), else the study's (its `baseline`,
    else its first schedule: of the whole study, where a part ran), else the first schedule that ran; and a
    note when the study's has no runs here (e.g. a --schedules part without it)."""
    configured = cfg.get("baseline") or next(iter(cfg.get("schedules") or {}), None)
    first = groups[order[0]][0].config.get("base_schedule", order[0])
    if given or not configured:
        return given or first, None
    ran = set(groups) | {rs[0].config.get("base_schedule", n) for n, rs in groups.items()}
    if configured in ran:
        return configured, None
    return first, f"the study's baseline, {configured}, has no runs here; compared with {first}, the first that ran"


def _ranked_on(accuracy: dict[str, dict[int, float]]) -> str | None:
    """The sentence for ranks made over the seeds every schedule finished (stats.ranking_seeds), or None."""
    if not (seeds := stats.ranking_seeds(accuracy)):
        done = {n: [k for k, v in by_seed.items() if math.isfinite(v)] for n, by_seed in accuracy.items()}
        sets = {tuple(sorted(k)) for k in done.values() if k}
        if len(sets) < 2:  # (every schedule finished the same seeds, or none finished any)
            return None
        # under two seeds every schedule finished: no common ground to rank on
        mine = "; ".join(f"{n}: seed{'s' * (len(k) > 1)} {_and([str(x) for x in sorted(k)])}"
                         for n, k in done.items() if k)  # fmt: skip
        one = ", and one seed is one draw" if any(len(k) == 1 for k in done.values()) else ""
        return (
            "no two seeds were finished by every schedule, so the ranks and the highest mean compare each schedule's "
            f"mean over its own finished seeds ({mine}): not the same seeds{one}"
        )
    return (
        f"the ranks and the highest mean compare each schedule's mean over seeds {_and([str(k) for k in seeds])}, "
        "the ones every schedule finished; the table's means are over each schedule's own finished seeds, and "
        "each paired test over the seeds its two schedules share"
    )


def _conflicts(accuracy: dict[str, dict[int, float]], apart: list[tuple[str, str]]) -> str | None:
    """The sentence for verdicts that the order over the seeds every schedule finished puts the other way round
    (stats.order_conflicts), or None."""
    pairs = stats.order_conflicts(accuracy, apart)
    if not pairs:
        return None
    said = _and([f"{worse} is ahead of {better}" for better, worse in pairs])
    return (
        f"the seeds disagree: over the seeds every schedule finished {said}, yet over all the seeds the two share "
        f"{'it is' if len(pairs) == 1 else 'each is'} worse (the comparison's verdict); their ranks do not follow "
        "that verdict (more seeds, or fewer diverged runs, would settle it)"
    )


def _and(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _results_rows(table: list[dict[str, Any]], ranks: dict[str, int]) -> list[list[str]]:
    rows = []
    for row in table:
        n = str(row["n"]) + (f" ({row['diverged']} diverged)" if row["diverged"] else "")
        rows.append([row["schedule"], *[_pm(row[m]) for m in TABLE_METRICS], n, str(ranks.get(row["schedule"], "—"))])
    return rows


# the columns of a table of comparisons after its schedule's (_significance_rows); the interval is a plain t-interval
SIGNIFICANCE_HEAD = ["Δ accuracy", f"{LEVEL:.0%} interval (unadjusted)", "pairs", "p (t-test)", "p (Wilcoxon)",
                     "p (Holm)", "verdict", "seeds to plan"]  # fmt: skip


def _significance_rows(
    comps: list[stats.Comparison], table: list[dict[str, Any]], idle: set[str] = frozenset()
) -> list[list[str]]:
    """The rows of a table of comparisons; no seeds to plan (—) where either side learned nothing (`idle`: _idle)."""
    return [
        [c.schedule, f"{c.diff_mean:+.4f}" if not math.isnan(c.diff_mean) else "—",
         _interval(c),
         str(c.n), _p(c.p_ttest) + (" †" if c.no_spread else ""), _p(c.p_wilcoxon), _p(c.p_holm),
         (f"**{c.verdict}**" if c.decided else c.verdict) + _lost_seeds(c, table),
         "—" if {c.schedule, c.baseline} & idle else _seeds(c.seeds_needed)]
        for c in comps
    ]  # fmt: skip


def _idle(table: list[dict[str, Any]], floor: float | None) -> set[str]:
    """The schedules whose mean test accuracy is no better than always answering the commonest class (`floor`):
    they learned nothing on average, and more seeds would not tell them apart from anything worth knowing."""
    return {r["schedule"] for r in table if floor is not None and r["accuracy"].n and r["accuracy"].mean <= floor}


def _lost_seeds(c: stats.Comparison, table: list[dict[str, Any]]) -> str:
    """' (diverged on 5 of 10 seeds; standard diverged on 1 of 10 seeds)' after a verdict where the schedule or its
    baseline diverged: the test pairs only the seeds both finished, so a schedule that diverges on half its seeds
    can still be "better" over the rest."""
    rows = {row["schedule"]: row for row in table}
    lost = [f"{who} on {row['diverged']} of {row['n'] + row['diverged']} seeds"
            for who, name in (("diverged", c.schedule), (f"{c.baseline} diverged", c.baseline))
            if (row := rows.get(name)) and row["diverged"]]  # fmt: skip
    return f" ({'; '.join(lost)})" if lost and c.n else ""


def _neighbour_rows(
    neighbours: list[stats.Neighbour], ranks: dict[str, int], apart: list[tuple[str, str]]
) -> list[list[str]]:
    """The rows of the table of the tests behind the ranks, each saying what its test did to the rank; `apart`:
    the (better, worse) pairs other tests told apart, as rank_with_ties was given them."""
    rows = []
    for t in neighbours:
        if ranks[t.lower] == ranks[t.upper]:
            said = "the one above's" + (": ahead over these pairs" if t.p_holm <= ALPHA and t.diff_mean > 0 else "")
        elif t.apart(ALPHA):
            said = "one of its own: told apart"
        else:  # rank_with_ties: the rank above holds a schedule that another test told it apart from
            # (the better one of a verdict ranked above it: one that goes against the order separates nothing)
            told = [a for a, b in apart if b == t.lower and ranks.get(a) == ranks[t.upper]]
            said = f"one of its own: other tests told it apart from {_and(list(dict.fromkeys(told)))}"
        delta = "—" if math.isnan(t.diff_mean) else f"{t.diff_mean:+.4f}"
        rows.append([t.lower, t.upper, delta, str(t.n), _p(t.p_holm), said])
    return rows


def _difference_rows(
    comps: list[stats.Comparison], accuracy: dict[str, dict[int, float]]
) -> list[tuple[stats.Comparison, np.ndarray, str]]:
    """The rows of plots.plot_differences: each comparison's paired differences seed by seed, and its verdict
    with the p it rests on."""
    rows = []
    for c in comps:
        diffs = stats.differences(*stats.paired(accuracy[c.schedule], accuracy[c.baseline]))
        note = c.verdict if math.isnan(c.p_holm) else f"{c.verdict} (p Holm {_p(c.p_holm)})"
        rows.append((c, diffs, note))
    return rows


def _no_spread_note(comps: list[stats.Comparison]) -> str:
    """The † sentence for comparisons where every seed moved by the same amount, or an empty string."""
    floored = [c.schedule for c in comps if c.floored]
    same = [c.schedule for c in comps if c.no_spread and not c.floored]
    said = ""
    if floored:  # the report's comparisons of test accuracy, whose step is one test image (stats.spread_floor)
        said += (
            f" † {', '.join(floored)}: every seed moved by the same amount, so the seeds show no spread (p 0 and an "
            "interval of no width, as if the difference were certain): the t-test and its interval take instead the "
            "smallest spread a split of this size can show without every seed alike (one seed one test image "
            "apart), which puts an equal gain between gains one image apart. An approximation: where runs end at "
            "one of two outcomes, seeds agree by chance more often than this p says (2/2ⁿ of the time)."
        )
    if same:  # (a metric without a known step: the sign test)
        said += (
            f" † {', '.join(same)}: every seed moved by the same amount, so the t-test has no spread to measure (its "
            "interval would have no width and p would be 0, as if the difference were certain): no interval is "
            "shown, and the t-test's column shows the sign test's p instead."
        )
    return said


def _wilcoxon_floor(comps: list[stats.Comparison]) -> str:
    """A sentence for comparisons with too few pairs for the Wilcoxon test to reject at alpha on its own: with n
    pairs its smallest two-sided p is 2/2^n (0.25 with 3), which reads like a disagreement with the t-test."""
    few = sorted({c.n for c in comps if c.n >= 2 and 2 / 2**c.n > ALPHA})
    if not few:
        return ""
    k = few[0]
    return (f" With {k} pairs a two-sided Wilcoxon p cannot fall below {2 / 2**k:.3g} (2/2^{k}), so under "
            f"{math.ceil(math.log2(2 / ALPHA))} pairs its column cannot reject at α = {ALPHA} whatever the "
            "differences: read the t-test's.")  # fmt: skip


def _interval(c: stats.Comparison) -> str:
    """The interval cell; where every seed moved by the same amount, its zero width would read as certainty about
    the difference, when it only means that two or three seeds happened to agree: marked † instead, or with the
    test split's step (`floored`) the interval at the smallest spread the split can show, marked †."""
    if math.isnan(c.diff_ci_low):
        return "—"
    if c.no_spread and not c.floored:
        return "no spread †"
    # rounded outwards, so that an interval reaching past 0 by less than the last digit does not read as [0, ...]
    low, high = math.floor(round(c.diff_ci_low * 1e4, 9)) / 1e4, math.ceil(round(c.diff_ci_high * 1e4, 9)) / 1e4
    return f"[{low:+.4f}, {high:+.4f}]" + (" †" if c.floored else "")


def _seeds(n: float) -> str:
    return "—" if math.isnan(n) else f"> {stats.MAX_SEEDS}" if math.isinf(n) else f"{n:.0f}"


def _per_process(runs: list[Run], batch: int) -> str:
    """Where every run trained data-parallel on one number of processes (torchrun), what each process's
    BatchNorm saw; mixed numbers have a note of their own (results.mixed_processes)."""
    counts = {int(n) for r in runs for n in [r.config.get("processes") or 1, *r.config.get("processes_resumed", [])]}
    n = counts.pop() if len(counts) == 1 else 1
    return f" (data-parallel on {n} processes: {batch // n} images each)" if n > 1 else ""


def _document(
    cfg: dict[str, Any], runs: list[Run], table: list[dict[str, Any]], comps: list[stats.Comparison],
    ranks: dict[str, int], dyn: list[dict[str, Any]], baseline: str, stand_in: str | None, best: list[str],
    target: float, sweep: bool, dirs: list[Path], absent: list[str], notes: list[tuple[str, str]],
    peak_comps: list[stats.Comparison], neighbours: list[stats.Neighbour], apart: list[tuple[str, str]],
    cycled: dict[str, tuple[float, float, bool]],
) -> Doc:  # fmt: skip
    rc = runs[0].config
    data, model, m, t = rc["data"], rc.get("model", {}), cfg["model"], cfg["train"]
    seeds = sorted({r.seed for r in runs})
    floor = study_floor(runs)  # the commonest class's share of the test split: "learned nothing" at or under it
    idle = _idle(table, floor)
    doc = Doc()
    doc.h(1, f"lrlab study: {cfg['name']}")
    merged = f" Merged from {len(dirs)} study folders: {', '.join(f'`{d}`' for d in dirs)}." if len(dirs) > 1 else ""
    # (keys a config of an earlier version lacks are read with their defaults)
    init = "" if m.get("init", "auto") == "auto" else f", convs drawn by He's rule in {m['init']} mode"
    decayed = "" if t.get("decay_norm_bias", True) else " on conv and linear weights only"
    scheduled = "".join(f"; {n}'s scheduled from {lo:g} to {hi:g}{'' if ok else ' until it diverged'}"
                        for n, (lo, hi, ok) in cycled.items())  # fmt: skip
    doc.p(
        f"GoogLeNet ({model.get('stem', m['stem'])} stem, width {m['width']}, {model.get('parameters', 0):,} "
        f"parameters{init}) on **{data['name']}** (train {data['train']}, validation {data['val']}, test "
        f"{data['test']} images; test split: {data['test_source']}), {t['optimizer']} "
        f"(momentum {t['momentum']}{scheduled}, weight decay {t['weight_decay']}{decayed}) for {t['epochs']} "
        f"epoch{'s' * (t['epochs'] != 1)}, "
        f"batch {t['batch_size']}{_per_process(runs, t['batch_size'])}, seeds "
        f"{seeds}. For a seed, every schedule starts from the same initial weights and sees the same batches.{merged}"
    )
    # Holm's m: the comparisons with a p-value, per baseline (on an LR axis, one per peak LR)
    m = max((c.holm_m for c in comps), default=0)
    within = "each peak LR" if len({c.baseline for c in comps}) > 1 else ""
    most = max((row["accuracy"].n for row in table), default=0)  # a schedule's finished seeds, at most
    doc.h(2, "Results")
    doc.p(
        f"Test-split metrics. {MACRO} {stats.describe_method(TEST, m, LEVEL, ALPHA, within, most)} "
        f"{'± is the half-width of the interval; ' * (most > 1)}n is the number of finished seeds. Rank: by mean "
        "accuracy; a schedule not distinguishable from the one above (paired tests of neighbours, corrected together "
        "for multiple testing) shares its rank, unless another test of this report (against the baseline, or between "
        "the peak LRs of one schedule) told it apart from a schedule of that rank: it then starts a rank of its "
        "own. Ties chain, so a rank may hold schedules further apart than neighbours, and a rank below another "
        "does not say that the two differ."
    )
    if absent:
        doc.p(f"**Warning:** {_absent_warning(absent)}")
    for label, text in notes:  # (label, sentence): what the table does not show
        doc.p(f"**{label.capitalize()}:** {text}.")
    doc.table(["schedule", "accuracy", "precision", "recall", "f1", "n", "rank"], _results_rows(table, ranks))
    if tested := sum(math.isfinite(t.p) for t in neighbours):  # (a pair with under two seeds has no p)
        doc.p(
            f"The tests behind the ranks: each schedule against the one directly above it in the ranking's order, "
            f"paired by seed over the seeds the two share, {TEST} p Holm-adjusted over the {tested} of these "
            f"pairs with a p-value (α = {ALPHA})."
        )
        doc.table(["schedule", "above it", "Δ accuracy", "pairs", "p (Holm)", "its rank"],
                  _neighbour_rows(neighbours, ranks, apart))  # fmt: skip
    if comps:
        doc.h(2, f"Against the baseline ({baseline})")
        strictest = f"α/{m} (Holm's strictest step)" if m > 1 else "α"
        tested = (
            f"its {LEVEL:.0%} t-interval, the paired t-test and Wilcoxon signed-rank p-values, and "
            f"the {TEST} p-value Holm-adjusted over {m} comparison{'s' * (m != 1)}{' within ' + within if within else ''}; "  # noqa: E501
            f"the verdict uses that at α = {ALPHA}. Seeds to plan: the seeds a new study would need for the paired "
            f"t-test at {strictest} to reach {stats.POWER:.0%} power against a true difference "
            "equal to the one seen here, if the differences spread as they did here; a rough guide, since the "
            "spread of a few seeds is itself uncertain. The seeds vary the training (initial weights, batch order, "
            "augmentation, dropout), not the test images: a verdict is about this test split."
            + (
                " The interval is not adjusted for the number of comparisons (the verdict is): one that misses 0 "
                'beside "no clear difference" is a difference this many comparisons do not establish.'
                if m > 1
                else ""
            )
            + _wilcoxon_floor(comps)
            if m
            else "no interval or p-values: they need at least two seeds where both runs finished."
        )
        sign = _no_spread_note(comps)
        if untrained := sorted(idle & {n for c in comps for n in (c.schedule, c.baseline)}):
            their = "its" if len(untrained) == 1 else "their"
            sign += (f" No seeds to plan (—) where {_and(untrained)} learned nothing on average (no better than always "
                     f"answering the commonest class): more seeds would not fix that; {their} training "
                     "would.")  # fmt: skip
        unfinished = {row["schedule"] for row in table if not row["accuracy"].n}  # every run diverged
        gone = [c.schedule for c in comps if c.n == 0 and c.baseline not in unfinished]
        lost = list(dict.fromkeys(c.baseline for c in comps if c.baseline in unfinished))
        unpaired = (
            f" No pairs for {', '.join(gone)}: on no seed did both it and its baseline finish, so there is no "
            "difference, test or verdict."
            if gone
            else ""
        ) + (
            f" The baseline {_and(lost)} finished no seed (every run diverged), so nothing is compared with it; "
            "`lrlab report <folder> --baseline NAME` compares the others with another schedule."
            if lost
            else ""
        )
        doc.p(
            (f"**Note:** {stand_in}. " if stand_in else "")
            + f"Paired difference in test accuracy (schedule − {baseline}) over the seeds where both finished; "
            f"{tested}{sign}{unpaired}"
        )
        doc.table(["schedule", *SIGNIFICANCE_HEAD], _significance_rows(comps, table, idle))
        if any(c.n > 1 for c in comps):
            doc.img(
                "plots/differences.png",
                f"Paired difference in test accuracy from {baseline}: each seed a dot, the mean a diamond with its "
                f"{LEVEL:.0%} interval (unadjusted), coloured by verdict (blue better, orange worse, grey neither); a "
                "bar that crosses the dashed 0 line is a difference these seeds do not establish",
            )
        elif any(c.n for c in comps):  # one pair each: the dot is the difference, with no interval and no test
            doc.img("plots/differences.png", f"Difference in test accuracy from {baseline} on the one seed each "
                    "pair finished: no interval and no test")  # fmt: skip
    if peak_comps:
        doc.h(2, "Peak LR within each schedule")
        tested = any(c.holm_m for c in peak_comps)
        doc.p(
            "Which peak LR suits each schedule: each of its peaks against its peak with the highest mean test "
            "accuracy (over the seeds all its peaks finished), paired by seed over the seeds both finished. "
            + (
                "These same seeds picked the best peak, so the t-test's p is Holm-adjusted over every pair of the "
                f"schedule's peaks, not only the pairs shown; the verdict at α = {ALPHA}: **worse** where the seeds "
                "tell that peak from the best one; **better**, rarely, where a peak comes out ahead of the best over "
                "the seeds the two share, which can be more than the seeds the best was picked on. No correction is "
                "made across schedules. "
                if tested
                else "No p-values: they need at least two seeds where both runs finished. "
            )
            + "The comparisons against the baseline, one peak at a time, do not answer this."
            + _no_spread_note(peak_comps)
        )
        peak_rows = _significance_rows(peak_comps, table, idle)
        peak_rows = [[c.schedule, c.baseline, *row[1:]] for c, row in zip(peak_comps, peak_rows, strict=True)]
        doc.table(["peak", "best peak", *SIGNIFICANCE_HEAD], peak_rows)
    if best:
        # rank 1 beside the top: not told apart from it (in the table's order)
        alike = [n for n in (row["schedule"] for row in table) if ranks.get(n) == 1 and n not in best]
        it = "it" if len(best) == 1 else "them"
        said = f" The seeds do not tell {it} apart from {_and(alike)} (rank 1 too): a lead, not a win." if alike else ""
        if _one_seed_each(table):  # nothing was tested: not even "a lead"
            said = f" One seed each: {ONE_SEED}."
        top = f": **{best[0]}**" if len(best) == 1 else f", tied: {_and([f'**{b}**' for b in best])}"
        rows = {row["schedule"]: row for row in table}
        # (of the schedules tied with it too: one that finished a seed of three ranks on that seed alone)
        failed = [f"{b} diverged on {rows[b]['diverged']} of its {rows[b]['n'] + rows[b]['diverged']} seeds"
                  for b in [*best, *alike] if rows[b]["diverged"]]  # fmt: skip
        said += f" But {_and(failed)}: each mean is over the seeds that finished." if failed else ""
        # alone at rank 1: the tests of the ranking told it apart from the next (ranks are in rank order)
        nxt = next((n for n in ranks if n not in best and rows[n]["accuracy"].n), None)
        if len(best) == 1 and not alike and nxt:
            said += f" It ranks alone at 1: the paired tests tell it apart from the next, {nxt}."
        mean = rows[best[0]]["accuracy"].mean
        if floor is not None and mean <= floor:  # nothing learned: no answer, whatever the ranks
            doc.p(f"**No schedule can be recommended:** the highest mean accuracy, {_and(best)}'s {mean:.4f}, is "
                  f"no better than always answering the test split's commonest class ({floor:.4f}). Train longer, "
                  "or find the LRs that train (`lrlab find-lr`), before comparing schedules.")  # fmt: skip
        else:
            doc.p(f"Highest mean accuracy{top}.{said}")
    elif runs:  # no schedule finished a seed
        doc.p("**No schedule can be recommended:** every run diverged, so nothing was measured or compared. Lower "
              "the LRs (`lrlab find-lr` shows the LRs that train) and run the study again.")  # fmt: skip
    doc.h(2, "Plots")
    shown = best[0] + (f", the first of the {len(best)} tied" if len(best) > 1 else "") if best else ""
    band = "mean and min–max band over seeds" if most > 1 else "one seed each (no band)"
    for name, cap in [
        ("lr", "Learning rate against optimizer step"),
        ("val_accuracy", "Validation accuracy against epoch, " + band),
        ("train_loss", "Training loss against epoch, " + band),
        (
            "accuracy",
            "Final test accuracy per schedule: seeds as dots, each seed's runs joined by a grey line, broken where "
            "a schedule did not finish that seed (one seed's runs share initial weights and batch order: the "
            "pairing behind the comparisons), mean"
            + (f" and {LEVEL:.0%} interval" if most > 1 else " (at most one finished seed each: no interval)"),
        ),
        ("lr_sensitivity", "LR sensitivity: final test accuracy against the peak LR of each schedule"),
        ("confusion", f"Test confusion matrix of the schedule with the highest mean accuracy ({shown})"),
    ]:
        if (name != "lr_sensitivity" or sweep) and (name != "confusion" or best):
            doc.img(f"plots/{name}.png", cap)
    doc.h(2, "Training dynamics")
    whose = (
        "the study's target_accuracy"
        if cfg.get("target_accuracy")
        else f"{TARGET_OF_BEST:.0%} of the best validation accuracy of any run here, so it moves when runs are added"
    )
    reached = (
        f"reached {target:.4f} ({whose}; mean over the seeds that reached it; the seconds are wall-clock time, "
        "which the machine's other load sways, so the epochs are the figure to compare)"
        if math.isfinite(target)
        else "reached a target (none here: no run finished)"
    )
    doc.p(
        "Means over each schedule's finished seeds: validation accuracy at the best epoch (with that epoch's mean, "
        "so it can fall between two) and the last; epochs and seconds until validation accuracy first "
        f"{reached}; late loss jitter: how much the training loss "
        f"jumps between its logged values (steps.csv: each the mean over the steps since the last, at most 10, "
        f"within an epoch) over the last {LATE:.0%} of the steps (standard deviation of the changes over the mean "
        f"loss; lower is steadier; — where the last {LATE:.0%} of a run hold fewer than three values); and each "
        "schedule's LR budget (over its finished runs; where none finished, up to where they diverged, marked so)."
    )
    doc.table(
        ["schedule", "best val (epoch)", "final val", "reached", "epochs to target", "seconds to target",
         "late loss jitter", "peak LR", "final LR", "mean LR"],
        [[d["schedule"], f"{_fmt(d['best_val'])} ({_fmt(d['best_epoch'], 1)})", _fmt(d["final_val"]), d["reached"],
          _fmt(d["epochs_to_target"], 1), _fmt(d["seconds_to_target"], 1), _fmt(d["late_loss_jitter"], 3),
          *(f"{d[k]:.3g}" + (" (diverged)" if d["lr_cut"] else "") for k in ("peak_lr", "final_lr", "mean_lr"))]
         for d in dyn],
    )  # fmt: skip
    classes = data["classes"]
    if len(classes) <= 20:
        doc.h(2, "Per-class F1 (mean over seeds)")
        rows = []
        for row in table:
            ok = [r for r in runs if r.name == row["schedule"] and r.ok]
            f1 = [
                np.mean([r.result["test"]["per_class"][c]["f1-score"] for r in ok]) if ok else math.nan for c in classes
            ]
            rows.append(
                [row["schedule"], *["—" if c in absent else _fmt(v, 3) for c, v in zip(classes, f1, strict=True)]]
            )
        doc.table(["schedule", *classes], rows)
    doc.h(2, "Runs")
    doc.table(
        ["schedule", "seed", "status", "accuracy", "best val (epoch)", "peak LR", "seconds"],
        [[r.name, str(r.seed), r.result["status"] if r.ok else _diverged(r), _fmt(r.metric("accuracy")),
          f"{_fmt(r.result['best_val_accuracy'])} ({r.result['best_epoch']})" if r.result.get("best_epoch") else "—",
          f"{r.result['peak_lr']:.3g}", f"{float(r.result['seconds']):.1f}"] for r in runs],
    )  # fmt: skip
    prov = rc["provenance"]
    device = " ".join(filter(None, [prov["device"], prov.get("device_name")]))
    first = "The first run: " if mixed_provenance(runs) else ""  # (the note above says how the others differ)
    doc.p(
        f"{first}lrlab {prov['lrlab']} (commit {prov.get('git_commit') or 'n/a'}"
        f"{' with uncommitted changes' if prov.get('git_dirty') else ''}), torch {prov['torch']}, torchvision "
        f"{prov['torchvision']}, device {device}; "
        f"data sha256 {data['files_hash'][:16]}…. Each run folder `runs/<schedule>/seed-<k>/`"
        f"{' of the study folders named above' if len(dirs) > 1 else ''} holds its resolved config, per-epoch "
        "metrics, LR trace and test metrics."
    )
    return doc


def _absent_warning(absent: list[str]) -> str:
    """One line for classes of the training data that the test split lacks."""
    return (
        f"the test split has no images of {', '.join(absent)} (training has): per-class values are —; where a "
        "model predicts such a class, the macro averages count it with precision and recall 0, as scikit-learn does."
    )


def _diverged(r: Run) -> str:
    d = r.result.get("diverged") or {}
    return f"diverged at step {d.get('step')} (LR {d.get('lr', math.nan):.3g})" if d else r.result["status"]


# what a study of one seed per schedule can say (report.md's verdict and the console's note)
ONE_SEED = (
    "nothing could be tested, so the highest mean is one draw of initial weights and batch order, "
    "not a ranking (every schedule that finished ranks 1); rerun `lrlab study` with `--seeds 3` or more into the "
    "same folder (its finished runs are kept) to tell whether a difference is real"
)


def _one_seed_each(table: list[dict[str, Any]]) -> bool:
    """Whether no schedule finished more than one seed: then no test was made, and every finished schedule ranks 1."""
    return all(row["accuracy"].n <= 1 for row in table)


def _console(
    cfg: dict[str, Any], runs: list[Run], table: list[dict[str, Any]], comps: list[stats.Comparison],
    ranks: dict[str, int], baseline: str, stand_in: str | None, absent: list[str], notes: list[tuple[str, str]],
    peak_comps: list[stats.Comparison],
) -> str:  # fmt: skip
    rc = runs[0].config["data"]
    n = len({r.seed for r in runs})
    done = {row["accuracy"].n for row in table}  # finished seeds per schedule
    k = done.pop() if len(done) == 1 else 0
    over = f"{k} seed{'s' if k > 1 else ''}" if k else "each schedule's finished seeds"
    lines = [f"Test-split metrics (macro averages), mean over {over} — {rc['name']}, "
             f"{rc['test_source']}" + (f"; ± {LEVEL:.0%} t-interval" if n > 1 else "") + ":"]  # fmt: skip
    doc = Doc()
    verdict = {c.schedule: c.verdict + _lost_seeds(c, table) for c in comps}
    for r in runs:  # not in a comparison: the baseline itself (at each peak), else a schedule compared with nothing
        if r.name not in verdict:
            verdict[r.name] = "baseline" if baseline in (r.name, r.config.get("base_schedule")) else "not compared"
    head = ["schedule", *TABLE_METRICS, "seeds", "rank"] + ([f"vs {baseline}"] if comps and n > 1 else [])
    rows = [r + ([verdict[r[0]]] if comps and n > 1 else []) for r in _results_rows(table, ranks)]
    doc.table(head, rows)
    warning = f"\nwarning: {_absent_warning(absent)}" if absent else ""
    note = f"\nnote: {stand_in}" if stand_in and comps else ""
    note += "".join(f"\n{label}: {text}" for label, text in notes)
    if not any(r.ok for r in runs):  # (as report.md says it)
        note += "\nevery run diverged: no schedule can be recommended; lower the LRs (lrlab find-lr shows which train)"
    elif _one_seed_each(table):
        note += f"\none seed each: {ONE_SEED}"
    for best in dict.fromkeys(c.baseline for c in peak_comps):
        mine = [c for c in peak_comps if c.baseline == best]
        tested = any(c.n > 1 for c in mine)
        if not tested and not (n > 1 and all(c.n == 0 for c in mine)):  # (one seed: nothing was tested)
            continue
        told = "; ".join(
            f"{verdict} than it: {_and(names)}"
            for verdict in ("worse", "better")  # (better: over more seeds than the mean it was picked by)
            if (names := [c.schedule for c in mine if c.verdict == verdict])
        ) or ("no other peak is told apart from it" if tested else "")
        # (every other peak diverged on every seed: said, not left out)
        if alone := [c.schedule for c in mine if c.verdict == "no pairs"]:
            told += ("; " if told else "") + f"not compared (no seed where both finished): {_and(alone)}"
        note += f"\npeak LR: {best} has its schedule's highest mean (over the seeds all its peaks finished); {told}"
    return "\n".join(lines) + "\n" + doc.markdown().rstrip() + note + warning
