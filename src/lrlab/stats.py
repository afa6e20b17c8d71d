"""Statistics over seeds: per-schedule summaries, seed-paired comparisons against a baseline with Holm-adjusted
p-values and verdicts, and a ranking with statistical ties. Pure functions; distributions and tests are scipy.stats."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

TESTS = ("t-test", "wilcoxon")
POWER = 0.8  # the chance of detecting a real difference that seeds_for_power plans for (Cohen's convention)
MAX_SEEDS = 1000  # seeds_for_power's search limit
_TEST_NAMES = {"t-test": "two-sided paired t-test", "wilcoxon": "two-sided Wilcoxon signed-rank test"}
NAN = float("nan")


@dataclass(frozen=True)
class Summary:
    """One schedule, one metric, over seeds."""

    n: int  # finite values only; diverged runs (nan) are not counted
    mean: float
    std: float  # sample std (ddof=1); nan when n < 2
    ci_low: float  # `level` t-interval of the mean; nan when n < 2
    ci_high: float


@dataclass(frozen=True)
class Comparison:
    """One schedule against the baseline, one metric, paired by seed."""

    schedule: str
    baseline: str
    n: int  # seeds where both runs finished
    diff_mean: float  # mean of (schedule - baseline) over pairs
    diff_ci_low: float
    diff_ci_high: float
    p_ttest: float
    p_wilcoxon: float
    p_holm: float  # Holm-adjusted p of `test` across all comparisons of this metric
    holm_m: int  # how many comparisons (those with a p-value) the Holm adjustment was over
    # the test behind p_holm: the one asked for; for the t-test without spread "t-test-floored" (with the metric's
    # step: spread_floor) or "sign-test" (without); "none" under two pairs
    test: str
    verdict: str  # "better", "worse", "no clear difference", "untested" (one pair), "no pairs" (none)
    seeds_needed: float = NAN  # seeds_for_power at alpha / holm_m; nan: cannot say, inf: above MAX_SEEDS
    floored: bool = False  # every pair moved alike, and the t-test took the resolution's spread (_pvalues)

    @property
    def decided(self) -> bool:
        """The test told the schedule and its baseline apart ("better" or "worse")."""
        return self.verdict in ("better", "worse")

    @property
    def apart(self) -> tuple[str, str]:
        """(better, worse) of the two, as the verdict has it (decided comparisons only)."""
        pair = (self.schedule, self.baseline)
        return pair if self.verdict == "better" else pair[::-1]

    @property
    def no_spread(self) -> bool:
        """Every pair differed by the same amount, not zero: the t-test's p is then the sign test's, or with the
        metric's resolution that of the smallest spread it can show (see _pvalues; where no pair differed at all,
        both are 1)."""
        return self.n >= 2 and self.diff_mean != 0 and (self.floored or self.diff_ci_low == self.diff_ci_high)


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def _check(test: str | None = None, level: float | None = None, alpha: float | None = None) -> None:
    if test is not None and test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    for name, value in (("level", level), ("alpha", alpha)):
        if value is not None and not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")


def t_interval(values: Sequence[float], level: float = 0.95, resolution: float | None = None) -> tuple[float, float]:
    """Student t confidence interval of the mean: mean ± t_{(1+level)/2, n-1} · s/√n (Student 1908), over the
    finite values; (nan, nan) when fewer than two, since s is undefined. With `resolution` (the step of the
    values' lattice: 1/N of accuracy on N images), s is at least spread_floor's (equal values: that spread)."""
    _check(level=level)
    x = _finite(values)
    n = x.size
    if n < 2:
        return NAN, NAN
    alike = bool(np.all(x == x[0]))
    if alike and resolution is None:  # no spread: exactly zero width (the float mean and std of equal values may not)
        return float(x[0]), float(x[0])
    mean = float(x[0]) if alike else float(x.mean())
    sd = max(0.0 if alike else float(x.std(ddof=1)), spread_floor(n, resolution))
    half = float(sps.t.ppf((1.0 + level) / 2.0, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def spread_floor(n: int, resolution: float | None) -> float:
    """The smallest sample sd that n values on a lattice of step `resolution` can show without all being equal:
    n - 1 of them alike and one a step away, sd = resolution/√n. Equal values (every seed gained the same number
    of test images) are tested as if their spread were this, which places them between their neighbours on the
    lattice (gains of 2, 2, 3 and 3, 3, 4 images of 270 give p 0.020 and 0.0099; 3, 3, 3 now 0.012), so that the
    verdict grows with the evidence; the sign test's 2/2^n made 3, 3, 3 "no clear difference" (p 0.25) beside a
    "better" for 3, 3, 4. An approximation, not an exact test: where runs end at one of two outcomes, equal
    differences arise by chance with probability 2/2^n, above the p this gives (Holm's error bound then holds
    only approximately; in simulations of realistic binomial noise the family-wise rate stayed at or under 0.052,
    at most 0.010 above the sign test's). 0 without a resolution."""
    return 0.0 if resolution is None or n < 2 else resolution / math.sqrt(n)


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    """Mean, sample std and t-interval over seeds; nan values (diverged runs) are ignored and not counted."""
    _check(level=level)
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        return Summary(0, NAN, NAN, NAN, NAN)
    low, high = t_interval(x, level)
    if np.all(x == x[0]):  # their own value and no spread, as the interval has it: the float mean of 3 × 0.1
        # is not 0.1 (and a mean outside its own interval broke the plots' error bars), nor their std 0
        return Summary(n, float(x[0]), 0.0 if n >= 2 else NAN, low, high)
    return Summary(n, float(x.mean()), float(x.std(ddof=1)), low, high)


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[list[float], list[float]]:
    """Values of `a` and `b` at the seeds where both are finite, sorted by seed. Pairing by seed is what makes the
    comparison fair: for one seed both runs share initial weights and batch order, so that variance cancels."""
    seeds = sorted(s for s in a.keys() & b.keys() if math.isfinite(a[s]) and math.isfinite(b[s]))
    return [float(a[s]) for s in seeds], [float(b[s]) for s in seeds]


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (Holm 1979): with the m finite p sorted ascending,
    adj_(i) = max_{j<=i} min(1, (m-j+1)·p_(j)). Rejecting where adj <= alpha controls the family-wise error rate at
    alpha under any dependence. Monotone in p, capped at 1; nan inputs stay nan and are not counted in m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m:
        # Stable sort so that equal p keep input order; the running max then gives them equal adjusted values.
        order = idx[np.argsort(p[idx], kind="stable")]
        scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(scaled)
    return out.tolist()


def differences(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """x - y, rounded to 12 decimals. Metrics are ratios of counts (k/270), and their float differences carry
    noise in the last digits: two seeds that both gained 3/270 differ by 1e-17, which made the spread look
    nonzero (seeds to plan: inf) and split Wilcoxon's tied ranks (p 0.44 where the exact p is 1)."""
    return np.round(np.asarray(x, dtype=float) - np.asarray(y, dtype=float), 12)


def _pvalues(
    x: Sequence[float], y: Sequence[float], tests: Sequence[str] = TESTS, resolution: float | None = None
) -> tuple[float, float]:
    """Two-sided paired p-values (t-test, Wilcoxon) for x - y; nan with fewer than two pairs, and for a test not
    in `tests` (not computed: scipy's tests take a millisecond or two each, and compare_to_best asks for one test
    of every pair of entries). With `resolution`, the t-test's spread is at least spread_floor's."""
    if len(x) < 2:
        return NAN, NAN
    d = differences(x, y)
    if not np.any(d):
        # All differences zero: no evidence of a difference. scipy gives nan (0/0) for the t-test, so say it here.
        return 1.0, 1.0
    alike = bool(np.all(d == d[0]))
    # Signed-rank test (Wilcoxon 1945), scipy defaults: zero differences dropped, exact null distribution for
    # small n. With n pairs its smallest two-sided p is 2/2^n, so 5 seeds can never reach 0.05.
    p_w = float(sps.wilcoxon(d).pvalue) if (alike and resolution is None) or "wilcoxon" in tests else NAN
    floor = spread_floor(d.size, resolution)
    if "t-test" in tests and floor and (alike or float(d.std(ddof=1)) < floor):
        t = (float(d[0]) if alike else float(d.mean())) / (floor / math.sqrt(d.size))
        return float(2 * sps.t.sf(abs(t), d.size - 1)), p_w
    if alike:
        # Every seed moved by the same amount: the t-test sees no spread and gives p = 0 (t infinite). With
        # accuracy on a few hundred images, two seeds that both gain one image do that by chance; the
        # signed-rank p (the sign test's 2/2^n here) is the honest figure, so the t-test reports it too.
        return p_w, p_w
    if "t-test" not in tests:
        return NAN, p_w
    with warnings.catch_warnings():
        # Near-constant differences make scipy warn about precision loss; t -> ±inf and p -> 0 is the right limit.
        warnings.simplefilter("ignore", RuntimeWarning)
        p_t = float(sps.ttest_1samp(d, 0.0).pvalue)  # paired: Student t on the differences, n-1 df
    return p_t, p_w


def seeds_for_power(
    diffs: Sequence[float], alpha: float, power: float = POWER, max_n: int = MAX_SEEDS, resolution: float | None = None
) -> float:
    """Seeds a new study needs for a two-sided paired t-test at `alpha` to detect, with probability `power`, a
    true mean difference equal to the observed one when the differences spread as observed: the smallest n with
    P(|T| > t_{1-alpha/2, n-1}) >= power, T noncentral t with n-1 degrees of freedom and noncentrality
    mean/sd·√n (the standard sample-size computation, Cohen 1988 ch. 2). A planning figure from a pilot, not
    evidence about the pilot itself; with few seeds the sample sd is itself uncertain. nan with under two
    differences or a zero mean, inf when more than `max_n` seeds would be needed. With `resolution`, the spread is
    at least spread_floor's (as _pvalues tests it)."""
    _check(alpha=alpha)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie strictly between 0 and 1, got {power}")
    d = _finite(diffs)
    if d.size < 2 or not d.mean():
        return NAN
    sd = max(float(d.std(ddof=1)), spread_floor(d.size, resolution))
    if sd <= 1e-9 * abs(float(d.mean())):  # every seed moved the same way by the same amount (up to float
        # rounding in the mean): the test is then the sign test (see _pvalues), 2/2^n <= alpha
        return float(max(2, math.ceil(math.log2(2 / alpha))))
    n = np.arange(2, max_n + 1)
    crit = sps.t.ppf(1 - alpha / 2, n - 1)
    nc = abs(float(d.mean())) / sd * np.sqrt(n)
    with np.errstate(all="ignore"):
        upper, lower = sps.nct.sf(crit, n - 1, nc), sps.nct.cdf(-crit, n - 1, nc)
    # scipy's noncentral t gives nan for some far tails (scipy 1.17: cdf(-4.6, 3, 10.6)); the lower tail is
    # then negligible, and the upper one is taken from the normal approximation (Johnson & Welch 1940)
    lower = np.nan_to_num(lower, nan=0.0)
    upper = np.where(np.isnan(upper), sps.norm.cdf((nc - crit) / np.sqrt(1 + crit**2 / (2 * (n - 1)))), upper)
    achieved = upper + lower
    hit = np.flatnonzero(achieved >= power)
    return float(n[hit[0]]) if hit.size else math.inf


def _verdict(n: int, diff_mean: float, p: float, alpha: float) -> str:
    # Metrics are higher-is-better; a nan p (too few pairs) can never reject.
    if n == 0:  # the schedule or the baseline diverged on every seed: not "no difference", no comparison
        return "no pairs"
    if n == 1:  # one pair has no spread to test against: saying "no clear difference" would suggest a test ran
        return "untested"
    if not p <= alpha:
        return "no clear difference"
    return "better" if diff_mean > 0 else "worse" if diff_mean < 0 else "no clear difference"


def compare(
    results: Mapping[str, Mapping[int, float]],
    baseline: str,
    test: str = "t-test",
    alpha: float = 0.05,
    level: float = 0.95,
    resolution: float | None = None,
) -> list[Comparison]:
    """Every schedule other than `baseline` (in mapping order) against it, for one metric, paired by seed.

    `results` maps schedule -> {seed: value}, nan for a diverged run; seeds where either run diverged are dropped.
    The p-value of `test` is Holm-adjusted across these comparisons, and the verdict is "better"/"worse" when the
    adjusted p <= alpha (by the sign of the mean difference), "no pairs" when no seed has both runs finished,
    "untested" with one pair, otherwise "no clear difference". `seeds_needed` plans a follow-up: seeds_for_power
    at alpha / holm_m (Bonferroni, Holm's strictest step). `resolution`: the metric's step (1/N of accuracy on N
    test images), which floors the t-test's spread (spread_floor); None: equal differences take the sign test."""
    _check(test, level, alpha)
    if baseline not in results:
        raise ValueError(f"unknown baseline {baseline!r}; schedules are: {', '.join(map(str, results))}")
    rows = _against(results, baseline, level, resolution)
    raw = [_of(test, r[5:7]) for r in rows]
    m = sum(not math.isnan(p) for p in raw)  # holm's m: comparisons without a p-value are not counted
    return _assembled(rows, holm(raw), m, baseline, test, alpha, resolution)


def compare_to_best(
    results: Mapping[str, Mapping[int, float]],
    test: str = "t-test",
    alpha: float = 0.05,
    level: float = 0.95,
    resolution: float | None = None,
) -> list[Comparison]:
    """Every entry against the one with the highest mean (ranking_means), paired by seed, as `compare` does. The
    best was picked by these same seeds, which favours it when there are more than two entries; so the p-values
    are Holm-adjusted over every pair among the entries (k(k−1)/2 of them), a family whose error rate holds
    whichever pairs are shown. [] with fewer than two entries or none with a finite value."""
    _check(test, level, alpha)
    means = ranking_means(results)
    if len(results) < 2 or not means:
        return []
    best = max(means, key=means.__getitem__)
    pairs = list(itertools.combinations(results, 2))
    raw = [_of(test, _pvalues(*paired(results[a], results[b]), [test], resolution)) for a, b in pairs]  # two-sided
    adjusted = dict(zip(pairs, holm(raw), strict=True))
    rows = _against(results, best, level, resolution)
    mine = [adjusted.get((r[0], best), adjusted.get((best, r[0]), NAN)) for r in rows]
    return _assembled(rows, mine, sum(not math.isnan(p) for p in raw), best, test, alpha, resolution)


def _of(test: str, pvalues: Sequence[float]) -> float:
    """`test`'s p-value of a (t-test, Wilcoxon) pair, as _pvalues gives them."""
    return pvalues[0] if test == "t-test" else pvalues[1]


def _against(
    results: Mapping[str, Mapping[int, float]], baseline: str, level: float, resolution: float | None = None
) -> list[tuple]:
    """Per entry other than `baseline`: name, pairs, mean difference, its interval, t-test and Wilcoxon p, and the
    differences."""
    rows = []
    for name, values in results.items():
        if name == baseline:
            continue
        x, y = paired(values, results[baseline])
        d = differences(x, y)
        low, high = t_interval(d, level, resolution)
        # where every pair differs alike, that difference (as summarize does): the float mean of three 0.05s is
        # 0.05000000000000001, outside its own interval [0.05, 0.05] in comparisons.csv
        mean = NAN if not d.size else float(d[0]) if np.all(d == d[0]) else float(d.mean())
        rows.append((name, len(d), mean, low, high, *_pvalues(x, y, TESTS, resolution), d))
    return rows


def _assembled(
    rows: list[tuple],
    adjusted: Sequence[float],
    m: int,
    baseline: str,
    test: str,
    alpha: float,
    resolution: float | None = None,
) -> list[Comparison]:
    """Comparisons from `_against`'s rows and their adjusted p-values, Holm over `m` comparisons."""
    out = []
    for (name, n, dm, lo, hi, pt, pw, d), ph in zip(rows, adjusted, strict=True):
        floored = bool(resolution is not None and n >= 2 and np.all(d == d[0]))  # (all zero too: its interval)
        out.append(Comparison(name, baseline, n, dm, lo, hi, pt, pw, ph, m, _test_used(test, n, lo, hi, floored),
                              _verdict(n, dm, ph, alpha), seeds_for_power(d, alpha / max(m, 1), resolution=resolution),
                              floored))  # fmt: skip
    return out


def _test_used(test: str, n: int, low: float, high: float, floored: bool = False) -> str:
    """What a comparison's p-value comes from, for readers of the CSV: none under two pairs; for the t-test on
    equal nonzero differences (a zero-width interval away from 0) the sign test's p, or with the metric's
    resolution the t-test at the smallest spread it can show (`floored`; see _pvalues)."""
    if n < 2:
        return "none"
    if test == "t-test" and floored:
        return "t-test-floored"
    return "sign-test" if test == "t-test" and low == high != 0 else test


@dataclass(frozen=True)
class Neighbour:
    """The test behind a rank: a schedule against the one directly above it in the ranking order."""

    upper: str
    lower: str
    n: int  # seeds where both finished
    diff_mean: float  # mean of (lower - upper) over the pairs; above 0: the lower-placed one is ahead over them
    p: float  # two-sided, of the ranking's test; nan with under two pairs
    p_holm: float  # Holm-adjusted over every neighbour pair of the ranking

    def apart(self, alpha: float) -> bool:
        """Told apart, in the order's direction (a test that finds the lower-placed one the better separates
        nothing)."""
        return self.p_holm <= alpha and not self.diff_mean > 0


def neighbour_tests(
    results: Mapping[str, Mapping[int, float]], test: str = "t-test", resolution: float | None = None
) -> list[Neighbour]:
    """Each schedule with a finite value against the one directly above it in the ranking order (`_order`), paired
    by seed over every seed the two share, Holm-adjusted together: the tests rank_with_ties ranks by."""
    _check(test)
    alive = _order(results)
    pairs = []
    for hi, lo in itertools.pairwise(alive):
        x, y = paired(results[lo], results[hi])
        p = _of(test, _pvalues(x, y, [test], resolution))
        pairs.append((hi, lo, len(x), float(differences(x, y).mean()) if x else NAN, p))
    adjusted = holm([p for *_, p in pairs])
    return [Neighbour(*row, q) for row, q in zip(pairs, adjusted, strict=True)]


def rank_with_ties(
    results: Mapping[str, Mapping[int, float]],
    alpha: float = 0.05,
    test: str = "t-test",
    separated: Collection[tuple[str, str]] = (),
    resolution: float | None = None,
) -> dict[str, int]:
    """Rank schedules by mean, higher is better, with statistical ties.

    Rule: sort by mean (equal means keep mapping order): over `ranking_seeds` (the seeds every schedule finished,
    where at least two are, so that a schedule's extra seed or another's diverged ones do not reorder it), else
    over each schedule's own finite values. Each schedule is tested against the one directly above it (paired by
    seed over every seed the two share, two-sided `test`), and the p-values of these adjacent pairs are
    Holm-adjusted together. A schedule whose adjusted p is > alpha (or nan, with under two pairs) is not
    distinguishable from the next better schedule and shares its rank. Ranks are competition style (1, 1, 3,
    ...); ties chain, so A~B and B~C put all three at A's rank even if A and C differ. `separated` lists
    (better, worse) pairs that another test already told apart (the verdicts against a baseline, tested in their
    own Holm family): a schedule does not join a rank that holds one of its separated partners, so that a rank
    never contradicts those verdicts. Where the order's seeds are fewer than a test's pairs, the two can point
    opposite ways; a test, adjacent or in `separated`, that finds the lower-placed schedule the better separates
    nothing (order_conflicts names the separated ones). Schedules with no finite values rank last together (no
    rank where no schedule has one). `resolution`: as compare's.
    Returns schedule -> rank, in rank order."""
    _check(test, alpha=alpha)
    alive = _order(results)
    dead = [s for s in results if s not in alive]
    tests = neighbour_tests(results, test, resolution)
    place = {name: i for i, name in enumerate(alive)}
    apart = {frozenset(p) for p in separated if place.get(p[0], math.inf) < place.get(p[1], -math.inf)}
    ranks: dict[str, int] = {}
    for i, name in enumerate(alive):
        tied = i > 0 and not tests[i - 1].apart(alpha)
        if tied:
            group = [m for m in alive[:i] if ranks[m] == ranks[alive[i - 1]]]
            tied = not any(frozenset((m, name)) in apart for m in group)
        ranks[name] = ranks[alive[i - 1]] if tied else i + 1
    if alive:  # (where none finished, none has a rank)
        ranks.update(dict.fromkeys(dead, len(alive) + 1))
    return ranks


def order_conflicts(
    results: Mapping[str, Mapping[int, float]], separated: Collection[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The (better, worse) pairs of `separated` that rank_with_ties's order puts the other way round: the verdict
    pairs every seed the two share, the order only the seeds every schedule finished (ranking_seeds)."""
    place = {name: i for i, name in enumerate(_order(results))}
    return [(a, b) for a, b in separated if a in place and b in place and place[a] > place[b]]


def _order(results: Mapping[str, Mapping[int, float]]) -> list[str]:
    """The schedules with a finite value, best first by ranking_means (equal means keep mapping order)."""
    key = ranking_means(results)
    return sorted(key, key=lambda s: -key[s])


def ranking_seeds(results: Mapping[str, Mapping[int, float]]) -> list[int]:
    """The seeds with a finite value in every schedule that has any, when at least two are and some schedule has
    others (a diverged or unfinished run elsewhere): rank_with_ties orders by the means over these. Else []."""
    alive = [{k for k, v in r.items() if math.isfinite(v)} for r in results.values()]
    alive = [seeds for seeds in alive if seeds]
    common = set.intersection(*alive) if alive else set()
    return sorted(common) if len(common) >= 2 and any(seeds != common for seeds in alive) else []


def ranking_means(results: Mapping[str, Mapping[int, float]]) -> dict[str, float]:
    """The mean each schedule with a finite value is ranked by (rank_with_ties): over `ranking_seeds` where
    there are such, else over its own finite values."""
    common = ranking_seeds(results)
    means = {name: _finite([v[k] for k in common] if common else list(v.values())) for name, v in results.items()}
    return {name: float(x.mean()) for name, x in means.items() if x.size}


def describe_method(
    test: str, comparisons: int, level: float = 0.95, alpha: float = 0.05, within: str = "", seeds: int = 2
) -> str:
    """One sentence for reports saying how the numbers were made; `within` names the groups Holm adjusts in
    separately ("each peak LR"), 0 comparisons leaves the testing out, and `seeds`, the most finished seeds of a
    schedule, 1 says that there is no interval."""
    _check(test, level, alpha)
    if seeds <= 1:
        return "At most one finished seed per schedule: its value, without an interval (one seed has none), untested."
    plural = "comparison" if comparisons == 1 else "comparisons"
    scope = f" within {within}" if within else ""
    tested = (
        f"; differences against the baseline are paired by seed, tested with a {_TEST_NAMES[test]}, "
        f"Holm-adjusted over {comparisons} {plural}{scope}, alpha {alpha:g}"
        if comparisons
        else ""
    )
    return f"Mean ± {level * 100:g} % t-interval over seeds{tested}."
