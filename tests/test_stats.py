"""Statistics over seeds: summaries, seed-paired tests, Holm adjustment, verdicts and ranking, checked against
hand-worked numbers and against scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from lrlab import stats
from lrlab.stats import (
    Comparison,
    Summary,
    compare,
    compare_to_best,
    describe_method,
    differences,
    holm,
    order_conflicts,
    paired,
    rank_with_ties,
    ranking_means,
    ranking_seeds,
    seeds_for_power,
    summarize,
    t_interval,
)

BASE = {0: 0.80, 1: 0.81, 2: 0.79, 3: 0.80, 4: 0.82}


def shifted(shift: float, noise: list[float], base: dict[int, float] = BASE) -> dict[int, float]:
    return {s: v + shift + e for (s, v), e in zip(base.items(), noise, strict=True)}


# --- summarize / t_interval -------------------------------------------------------------------------------------


def test_summarize_by_hand():
    # mean = (0.80 + 0.82 + 0.84) / 3 = 0.82; s = sqrt((0.02² + 0 + 0.02²) / 2) = 0.02
    # t_{0.975, 2} = 4.302652729749464 (Student t table); half-width = 4.302652729749464 * 0.02 / sqrt(3) = 0.0496828
    s = summarize([0.80, 0.82, 0.84])
    half = 4.302652729749464 * 0.02 / math.sqrt(3)
    assert s.n == 3
    assert s.mean == pytest.approx(0.82)
    assert s.std == pytest.approx(0.02)
    assert half == pytest.approx(0.0496828, abs=1e-7)
    assert (s.ci_low, s.ci_high) == pytest.approx((0.82 - half, 0.82 + half))


def test_summarize_other_level():
    # t_{0.95, 2} = 2.919985580355516; half-width = 2.919985580355516 * 0.02 / sqrt(3)
    s = summarize([0.80, 0.82, 0.84], level=0.90)
    half = 2.919985580355516 * 0.02 / math.sqrt(3)
    assert (s.ci_low, s.ci_high) == pytest.approx((0.82 - half, 0.82 + half))


def test_summarize_ignores_nan():
    assert summarize([0.80, float("nan"), 0.82, 0.84, float("nan")]) == summarize([0.80, 0.82, 0.84])


def test_summarize_one_and_none():
    one = summarize([0.7, float("nan")])
    assert one.n == 1 and one.mean == 0.7
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    none = summarize([float("nan")])
    assert none.n == 0 and all(math.isnan(v) for v in (none.mean, none.std, none.ci_low, none.ci_high))
    assert summarize([]).n == 0
    assert isinstance(none, Summary)


@given(st.lists(st.sampled_from([0.1, 0.2, 0.7, 1 / 3, 0.9999]), min_size=2, max_size=12))
def test_the_interval_holds_the_mean(values):
    s = summarize(values)
    assert s.ci_low <= s.mean <= s.ci_high
    assert summarize([0.1] * 3) == Summary(3, 0.1, 0.0, 0.1, 0.1)  # np.mean gives 0.10000000000000002


def test_t_interval_small_and_bad_level():
    assert all(math.isnan(v) for v in t_interval([0.5]))
    assert t_interval([0.5, 0.5]) == (0.5, 0.5)
    with pytest.raises(ValueError, match="level"):
        t_interval([0.1, 0.2], level=1.5)


# --- paired ------------------------------------------------------------------------------------------------------


def test_paired_keeps_common_finite_seeds_sorted():
    a = {3: 0.3, 1: 0.1, 2: float("nan"), 5: 0.5}
    b = {1: 1.1, 2: 1.2, 3: 1.3, 4: 1.4, 5: float("nan")}
    assert paired(a, b) == ([0.1, 0.3], [1.1, 1.3])


# --- holm --------------------------------------------------------------------------------------------------------


def test_holm_hand_worked():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max -> 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_and_nan():
    # m = 2 (nan not counted): 0.3*2 = 0.6, 0.7*1 = 0.7
    out = holm([0.7, float("nan"), 0.3])
    assert out[0] == pytest.approx(0.7) and math.isnan(out[1]) and out[2] == pytest.approx(0.6)
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # 0.6*2 = 1.2 capped
    assert holm([]) == []
    assert holm([0.04]) == pytest.approx([0.04])


@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), max_size=30))
def test_holm_properties(ps):
    adj = holm(ps)
    assert len(adj) == len(ps)
    for p, a in zip(ps, adj, strict=True):
        assert math.isnan(a) == math.isnan(p)
        if not math.isnan(p):
            assert p <= a <= 1.0
    finite = [(p, a) for p, a in zip(ps, adj, strict=True) if not math.isnan(p)]
    for pi, ai in finite:
        for pj, aj in finite:
            if pi <= pj:
                assert ai <= aj


# --- compare -----------------------------------------------------------------------------------------------------

BETTER = shifted(0.05, [0.001, -0.002, 0.003, 0.0, -0.001])
SAME = shifted(0.0, [0.002, -0.003, 0.001, -0.001, 0.001])
WORSE = shifted(-0.04, [0.0, 0.002, -0.001, 0.001, -0.002])


def test_compare_p_values_match_scipy_and_hand():
    (c,) = compare({"base": BASE, "better": BETTER}, "base")
    x, y = paired(BETTER, BASE)
    assert c.n == 5
    assert c.p_ttest == pytest.approx(sps.ttest_rel(x, y).pvalue)
    assert c.p_wilcoxon == pytest.approx(sps.wilcoxon(x, y).pvalue)
    # Independent check: paired t-test = one-sample t on d, t = mean / (s / sqrt n), p = 2 * sf(|t|, n - 1)
    d = np.array(x) - np.array(y)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    assert c.p_ttest == pytest.approx(2 * sps.t.sf(abs(t), 4))
    # Exact signed-rank: all 5 differences positive is 1 of 2^5 sign patterns, two-sided p = 2/32
    assert c.p_wilcoxon == pytest.approx(2 / 32)
    assert c.diff_mean == pytest.approx(0.0502)
    assert (c.diff_ci_low, c.diff_ci_high) == pytest.approx(t_interval(d))
    assert c.p_holm == c.p_ttest  # a single comparison: Holm changes nothing


def test_compare_verdicts_with_holm():
    res = compare({"same": SAME, "base": BASE, "better": BETTER, "worse": WORSE}, "base")
    assert [c.schedule for c in res] == ["same", "better", "worse"]
    assert all(isinstance(c, Comparison) and c.baseline == "base" and c.test == "t-test" for c in res)
    assert [c.verdict for c in res] == ["no clear difference", "better", "worse"]
    assert [c.p_holm for c in res] == pytest.approx(holm([c.p_ttest for c in res]))


def test_a_p_value_at_alpha_decides_and_the_level_sets_the_interval():
    # the verdict rejects at p <= alpha (alpha set to the comparison's own p), and `level` reaches the interval
    (c,) = compare({"base": BASE, "better": BETTER}, "base")
    assert compare({"base": BASE, "better": BETTER}, "base", alpha=c.p_holm)[0].verdict == "better"
    assert compare({"base": BASE, "better": BETTER}, "base", alpha=c.p_holm * 0.999)[0].verdict == "no clear difference"
    (w,) = compare({"base": BASE, "better": BETTER}, "base", level=0.99)
    d = differences(*paired(BETTER, BASE))
    assert (w.diff_ci_low, w.diff_ci_high) == pytest.approx(t_interval(d, 0.99))
    assert w.diff_ci_high - w.diff_ci_low > c.diff_ci_high - c.diff_ci_low


def test_compare_wilcoxon_needs_more_seeds():
    # Five seeds can never give a two-sided signed-rank p below 2/32 > 0.05; eight can (2/256).
    assert compare({"b": BASE, "x": BETTER}, "b", test="wilcoxon")[0].verdict == "no clear difference"
    base = {s: 0.80 + 0.01 * (s % 3) for s in range(8)}
    better = {s: v + 0.05 + 0.001 * s for s, v in base.items()}
    (c,) = compare({"b": base, "x": better}, "b", test="wilcoxon")
    assert c.p_wilcoxon == pytest.approx(2 / 256) and c.p_holm == c.p_wilcoxon and c.verdict == "better"


def test_compare_drops_diverged_runs():
    nan = float("nan")
    better = {**BETTER, 2: nan}
    base = {**BASE, 4: nan}
    (c,) = compare({"base": base, "better": better}, "base")
    assert c.n == 3
    x, y = paired(better, base)
    assert c.p_ttest == pytest.approx(sps.ttest_rel(x, y).pvalue)
    assert c.diff_mean == pytest.approx(np.mean(np.array(x) - np.array(y)))


def test_compare_too_few_pairs():
    nan = float("nan")
    res = compare({"base": BASE, "one": {0: 0.9, 1: nan}, "none": {0: nan}}, "base")
    one, none = res
    assert one.n == 1 and one.diff_mean == pytest.approx(0.1)
    assert none.n == 0 and math.isnan(none.diff_mean)
    for c in res:
        assert all(math.isnan(v) for v in (c.diff_ci_low, c.p_ttest, c.p_wilcoxon, c.p_holm))
    assert one.verdict == "untested" and one.test == "none"  # one pair: a difference, too few for a test
    assert none.verdict == "no pairs"  # nothing was compared: no verdict either way


def test_compare_all_zero_differences():
    (c,) = compare({"base": BASE, "copy": dict(BASE)}, "base", test="wilcoxon")
    assert (c.p_ttest, c.p_wilcoxon, c.p_holm) == (1.0, 1.0, 1.0)
    assert c.diff_mean == 0.0 and c.verdict == "no clear difference"
    (c,) = compare({"base": BASE, "copy": dict(BASE)}, "base")  # the t-test: no † note (it gives nan, not p = 0)
    assert not c.no_spread and c.test == "t-test" and c.p_ttest == 1.0


def test_equal_gains_in_counts_are_equal_despite_float_noise():
    # accuracies are k/270; (k+3)/270 - k/270 differs from seed to seed in the last bits
    base = {0: 237 / 270, 1: 251 / 270}
    (c,) = compare({"base": base, "up": {s: v + 3 / 270 for s, v in base.items()}}, "base")
    # no spread: the t-test would say p = 0; the sign test's 2/2^2 is given instead, and no verdict
    assert c.p_ttest == c.p_wilcoxon == 0.5 and c.verdict == "no clear difference"
    assert c.test == "sign-test"  # comparisons.csv says which test the p-value is of
    assert c.seeds_needed == 6  # 2/2^6 <= 0.05 < 2/2^5 (was inf: the float noise read as a spread)
    seven = {s: 0.8 + 0.01 * s for s in range(7)}
    (c,) = compare({"base": seven, "up": {s: v + 3 / 270 for s, v in seven.items()}}, "base")
    assert c.p_ttest == pytest.approx(2 / 2**7) and c.verdict == "better" and c.test == "sign-test"
    (c,) = compare({"base": {0: 0.5, 1: 0.6}, "one": {0: 0.7, 1: math.nan}}, "base")
    assert c.n == 1 and c.test == "none" and math.isnan(c.p_holm)  # one pair: no test ran
    # tied |differences| share a rank: the exact two-sided p of signs (+,+,-,-,+) on equal sizes is 1
    a, k = [237, 244, 251, 248, 269], [1, 1, -1, -1, 1]
    x = {s: (a[s] + k[s]) / 270 for s in range(5)}
    y = {s: a[s] / 270 for s in range(5)}
    (c,) = compare({"base": y, "x": x}, "base")
    assert c.p_wilcoxon == pytest.approx(sps.wilcoxon(k).pvalue) == pytest.approx(1.0)
    (c,) = compare({"base": {0: 237 / 270, 1: 251 / 270}, "x": {0: 238 / 270, 1: 250 / 270}}, "base")
    assert c.diff_mean == 0 and math.isnan(c.seeds_needed)  # +1/270 and -1/270: a zero mean, cannot say


def test_with_the_metrics_step_equal_gains_count_as_much_as_gains_one_step_apart():
    """The sign test's fallback was not monotone: gains of 3, 3, 3 test images (of 270) were "no clear difference"
    (p 0.25) and 3, 3, 4 "better" (p 0.0099). With the step of the metric (one test image) the t-test takes the
    smallest spread the split can show, sd = step/√n, where the seeds show none."""
    n_img, base = 270, {s: (200 + 10 * s) / 270 for s in range(3)}

    def gains(*k, **kw):
        (c,) = compare({"b": base, "x": {s: base[s] + k[s] / n_img for s in base}}, "b", **kw)
        return c

    equal, near = gains(3, 3, 3, resolution=1 / n_img), gains(3, 3, 4, resolution=1 / n_img)
    t = 3 / (1 / math.sqrt(3) / math.sqrt(3))  # mean over (sd / √n) with sd = 1/√3 images: 9
    assert equal.p_ttest == pytest.approx(2 * sps.t.sf(t, 2)) == pytest.approx(0.0121, abs=1e-4)
    assert near.p_ttest == pytest.approx(sps.ttest_1samp([3, 3, 4], 0).pvalue)  # a real spread: the plain t-test
    assert equal.verdict == near.verdict == "better" and equal.floored and not near.floored
    assert equal.test == "t-test-floored" and near.test == "t-test" and equal.no_spread
    assert gains(4, 4, 4, resolution=1 / n_img).p_ttest < near.p_ttest < equal.p_ttest  # more gain, more evidence
    # the interval of that spread, which holds the mean; seeds to plan from it too
    half = sps.t.ppf(0.975, 2) * (1 / math.sqrt(3)) / math.sqrt(3) / n_img
    assert (equal.diff_ci_low, equal.diff_ci_high) == pytest.approx((3 / n_img - half, 3 / n_img + half))
    assert equal.seeds_needed == seeds_for_power([3 / n_img] * 3, 0.05, resolution=1 / n_img) == 3
    # each seed one image up, two seeds: the floor keeps it far from "better" (p 0.30), as the sign test did
    two = {0: 0.5, 1: 0.6}
    (one_up,) = compare({"b": two, "x": {s: v + 1 / n_img for s, v in two.items()}}, "b", resolution=1 / n_img)
    assert one_up.verdict == "no clear difference" and one_up.p_ttest == pytest.approx(0.2952, abs=1e-4)
    # without a step, as before: the sign test's 2/2^n
    assert gains(3, 3, 3).p_ttest == 0.25 and gains(3, 3, 3).test == "sign-test"
    # the ranks' neighbour tests take the same floor
    three = {"x": {s: base[s] + 3 / n_img for s in base}, "b": base}
    assert rank_with_ties(three, resolution=1 / n_img) == {"x": 1, "b": 2} and rank_with_ties(three) == {"x": 1, "b": 1}


def test_holm_counts_only_comparisons_with_a_p_value():
    nan = float("nan")
    res = compare({"base": BASE, "better": BETTER, "worse": WORSE, "gone": {s: nan for s in BASE}}, "base")
    assert [c.holm_m for c in res] == [2, 2, 2]
    assert res[0].p_holm == pytest.approx(min(1.0, 2 * min(r.p_ttest for r in res[:2])))


def test_compare_bad_input():
    with pytest.raises(ValueError, match=r"'nope'.*alpha, beta"):
        compare({"alpha": BASE, "beta": SAME}, "nope")
    with pytest.raises(ValueError, match="t-test"):
        compare({"alpha": BASE, "beta": SAME}, "alpha", test="mann-whitney")


# --- rank_with_ties ----------------------------------------------------------------------------------------------


def test_rank_clear_separation():
    res = {
        "low": BASE,
        "top": shifted(0.10, [0.001, -0.001, 0.002, 0.0, -0.002]),
        "mid": BETTER,
    }
    ranks = rank_with_ties(res)
    assert ranks == {"top": 1, "mid": 2, "low": 3}
    assert list(ranks) == ["top", "mid", "low"]


def test_rank_ties_and_diverged():
    twin = shifted(0.0, [0.001, -0.002, 0.001, -0.001, 0.0005], base=BETTER)  # mean 0.0001 below BETTER's
    nan = float("nan")
    res = {"dead": {0: nan, 1: nan}, "low": BASE, "twin": twin, "best": BETTER, "gone": {}}
    assert rank_with_ties(res) == {"best": 1, "twin": 1, "low": 3, "dead": 4, "gone": 4}


def test_rank_orders_by_the_seeds_every_schedule_finished():
    # annealing is below standard on every shared seed (by 2-3 test images in 270), but an extra lucky seed
    # lifts its own mean above standard's: ordered by its own mean it would rank above a schedule it lost to
    standard = {0: 0.90, 1: 0.80, 2: 0.85}
    annealing = {0: 0.90 - 2 / 270, 1: 0.80 - 3 / 270, 2: 0.85 - 2 / 270, 3: 0.99}
    res = {"annealing": annealing, "standard": standard}
    assert np.mean(list(annealing.values())) > np.mean(list(standard.values()))
    assert ranking_seeds(res) == [0, 1, 2]
    assert list(rank_with_ties(res)) == ["standard", "annealing"]
    assert ranking_seeds({"a": standard, "b": dict(standard)}) == []  # the same seeds: own means
    assert ranking_seeds({"a": standard, "b": {0: 0.5, 3: 0.6}}) == []  # one shared seed: too few to rank on
    assert ranking_seeds({"a": standard, "b": {**standard, 1: float("nan")}, "c": {}}) == [0, 2]


def test_rank_wilcoxon_and_bad_test():
    # With five seeds the signed-rank test cannot reject, so everything ties.
    assert set(rank_with_ties({"a": BASE, "b": BETTER}, test="wilcoxon").values()) == {1}
    with pytest.raises(ValueError):
        rank_with_ties({"a": BASE}, test="z")


# --- describe_method ---------------------------------------------------------------------------------------------


def test_describe_method():
    assert describe_method("t-test", 3) == (
        "Mean ± 95 % t-interval over seeds; differences against the baseline are paired by seed, tested with a "
        "two-sided paired t-test, Holm-adjusted over 3 comparisons, alpha 0.05."
    )
    text = describe_method("wilcoxon", 1, level=0.9, alpha=0.01)
    assert "90 %" in text and "Wilcoxon signed-rank" in text and "1 comparison," in text and "alpha 0.01" in text
    one = describe_method("t-test", 0, seeds=1)  # no interval to speak of
    assert "without an interval" in one and "±" not in one and "t-interval" not in one


def _with_effect(d: float) -> list[float]:
    """Two differences with mean 0.5 and sample sd 0.5 / d: a standardised effect of exactly d."""
    half = 0.5 / d / math.sqrt(2)
    return [0.5 + half, 0.5 - half]


def test_seeds_for_power_matches_the_textbook_sample_sizes():
    # one-sample (paired) two-sided t-test, alpha 0.05, power 0.8: n = 34, 15 and 10 for d = 0.5, 0.8, 1.0
    # (the values of G*Power and of Cohen's tables)
    assert [seeds_for_power(_with_effect(d), 0.05) for d in (0.5, 0.8, 1.0)] == [34, 15, 10]
    assert seeds_for_power(_with_effect(0.5), 0.01) > 34  # a stricter alpha needs more seeds
    assert seeds_for_power(_with_effect(0.5), 0.05, power=0.9) > 34  # so does more power
    assert math.isinf(seeds_for_power(_with_effect(0.01), 0.05))  # above MAX_SEEDS
    assert math.isnan(seeds_for_power([0.1], 0.05)) and math.isnan(seeds_for_power([0.1, -0.1], 0.05))
    assert seeds_for_power([0.02, 0.02, 0.02], 0.05) == 6  # no spread at all: the sign test's 2/2^6 <= 0.05


def test_seeds_for_power_survives_scipys_nan_tails():
    # the CIFAR-10 CPU study's cyclic - standard: scipy's nct.cdf is nan at n = 4 and 5 for these
    d = differences([0.436, 0.402, 0.356], [0.48, 0.452, 0.39])
    assert seeds_for_power(d, 0.05 / 5) == 4  # power 0.973 at n = 4, 0.569 at n = 3


def test_seeds_for_power_reaches_the_power_in_simulation():
    """Simulated paired studies with a true effect of 1.2 sd: at the planned number of seeds the t-test rejects
    in at least 80 % of them, with one seed fewer in under 80 % (the planned n is the smallest that works). The
    exact powers are 0.828 at n = 8 and 0.754 at 7; 40,000 studies give each within ±0.005."""
    n = int(seeds_for_power(_with_effect(1.2), 0.05))
    rng = np.random.default_rng(0)
    rate = {}
    for k in (n - 1, n):
        d = rng.normal(1.2, 1.0, size=(40_000, k))
        rate[k] = float(np.mean(sps.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05))
    assert n == 8 and rate[n] >= 0.81 and rate[n - 1] < 0.77, (n, rate)


def test_compare_plans_seeds_at_the_strictest_holm_level():
    others = {"a": shifted(0.01, [0.01, -0.01, 0.0, 0.02, -0.005]), "b": shifted(-0.005, [0, 0.01, -0.01, 0, 0.003])}
    res = compare({"base": BASE, **others}, "base")
    assert [c.schedule for c in res] == ["a", "b"]
    for c in res:
        x, y = paired(others[c.schedule], BASE)
        assert c.seeds_needed == seeds_for_power(np.array(x) - np.array(y), 0.05 / 2)  # two comparisons
        assert 2 <= c.seeds_needed < math.inf


def test_rank_never_contradicts_a_verdict_against_the_baseline():
    """The GPU study's case: neighbours tested in their own Holm family tie, while the comparisons against the
    baseline (their own family) call the second schedule worse; it must not share the baseline's rank."""
    base = {0: 0.5982, 1: 0.6016, 2: 0.6026}
    second = {0: 0.5782, 1: 0.5894, 2: 0.5908}  # worse by 0.015 ± 0.006: paired p 0.032
    third = {0: 0.5776, 1: 0.5790, 2: 0.5710}
    res = {"standard": base, "warmup": second, "cyclic": third}
    assert rank_with_ties(res) == {"standard": 1, "warmup": 1, "cyclic": 1}  # neighbours: no clear difference
    split = rank_with_ties(res, separated=[("standard", "warmup"), ("standard", "cyclic")])  # (better, worse)
    assert split == {"standard": 1, "warmup": 2, "cyclic": 2}
    # a separation further down a chain also breaks it: cyclic joins warmup's rank only if not apart from it
    assert rank_with_ties(res, separated=[("standard", "cyclic")]) == {"standard": 1, "warmup": 1, "cyclic": 3}


def test_the_tests_behind_the_ranks_are_shown_with_what_each_did():
    """The report's table of neighbour tests: each schedule against the one above it, Holm over those pairs, and
    why it shares a rank or has its own (its own test, or another test against a schedule of the rank above)."""
    from lrlab.report import _neighbour_rows
    from lrlab.stats import holm, neighbour_tests

    base = {0: 0.5982, 1: 0.6016, 2: 0.6026}
    res = {"standard": base, "warmup": {0: 0.5782, 1: 0.5894, 2: 0.5908}, "cyclic": {0: 0.5776, 1: 0.5790, 2: 0.5710},
           "low": {0: 0.30, 1: 0.31, 2: 0.29}}  # fmt: skip
    tests = neighbour_tests(res)
    assert [(t.upper, t.lower, t.n) for t in tests] == [("standard", "warmup", 3), ("warmup", "cyclic", 3),
                                                      ("cyclic", "low", 3)]  # fmt: skip
    assert tests[0].diff_mean == pytest.approx(np.mean([0.5782 - 0.5982, 0.5894 - 0.6016, 0.5908 - 0.6026]))
    assert [t.p_holm for t in tests] == pytest.approx(holm([t.p for t in tests]))
    assert [t.apart(0.05) for t in tests] == [False, False, True]
    apart = [("standard", "warmup")]
    ranks = rank_with_ties(res, separated=apart)
    assert ranks == {"standard": 1, "warmup": 2, "cyclic": 2, "low": 4}
    said = [row[-1] for row in _neighbour_rows(tests, ranks, apart)]
    assert said == ["one of its own: other tests told it apart from standard", "the one above's",
                    "one of its own: told apart"]  # fmt: skip
    # a verdict against the order (the lower-placed one the better) separated nothing: it is not named
    from lrlab.stats import Neighbour

    pairs = [Neighbour("a", "b", 3, -0.01, 0.5, 1.0), Neighbour("b", "c", 3, -0.01, 0.5, 1.0)]
    said = _neighbour_rows(pairs, {"a": 1, "b": 1, "c": 3}, [("b", "c"), ("c", "a")])[1][-1]
    assert said == "one of its own: other tests told it apart from b"  # was "from b and a"
    # a pair with one shared seed has no p: Holm is over the others alone
    one = neighbour_tests({**res, "low": {0: 0.30}})
    assert math.isnan(one[-1].p) and one[0].p_holm == pytest.approx(min(1, 2 * one[0].p))


def test_a_rank_never_goes_against_the_test_that_separates_it():
    """Schedules that finished different seeds: the order uses the seeds all finished (0-4), where b is a little
    ahead of a on each, while the paired test over the ten seeds a and b share finds b clearly worse. A separation
    in the order's direction needs a test that agrees with it: a and b share a rank, and the report is told."""
    a = {s: 0.80 + 0.01 * (s % 3) for s in range(10)}
    b = {s: a[s] + (0.001 * (s % 2 + 1) if s < 5 else -0.03 - 0.001 * (s % 2)) for s in range(10)}
    c = {s: 0.70 + 0.01 * (s % 3) if s < 5 else float("nan") for s in range(10)}
    res = {"a": a, "b": b, "c": c}
    assert ranking_seeds(res) == [0, 1, 2, 3, 4] and list(rank_with_ties(res))[:2] == ["b", "a"]
    (verdict,) = [v for v in compare(res, "a") if v.schedule == "b"]
    assert verdict.verdict == "worse" and verdict.apart == ("a", "b")
    ranks = rank_with_ties(res, separated=[verdict.apart])
    assert ranks["a"] == ranks["b"] == 1  # was b 1, a 2: ranked above the schedule it lost to
    assert order_conflicts(res, [verdict.apart]) == [("a", "b")]
    assert order_conflicts(res, [("b", "c")]) == []
    from lrlab.report import _conflicts

    said = _conflicts(res, [verdict.apart])
    assert said is not None and "over the seeds every schedule finished b is ahead of a, yet" in said
    assert _conflicts(res, []) is None
    # the adjacent test alone (no verdicts given) does not separate them against the order either
    assert rank_with_ties(res)["a"] == 1


def test_peak_comparisons_ask_which_peak_suits_each_schedule():
    """On an LR axis each schedule's peaks are compared with its own best peak (paired by seed, Holm within the
    schedule), which the comparisons against the baseline at one peak do not do; without an axis there are none."""
    from pathlib import Path

    from lrlab.results import Run, peak_comparisons

    def run(base: str, peak: float | None, seed: int, acc: float) -> Run:
        name = base if peak is None else f"{base}@{peak:g}"
        axis = {} if peak is None else {"peak_lr_axis": peak, "base_schedule": base}
        return Run(Path(name), {"schedule": name, "seed": seed, "status": "ok", "test": {"accuracy": acc}}, axis)

    noise = [0.004, -0.003, 0.002, -0.001, 0.0]
    accs = {  # oc: 0.1 is best, 1.0 clearly worse, 0.01 within noise; cy: 1.0 best, 0.1 a little worse
        ("oc", 0.01): shifted(-0.001, noise), ("oc", 0.1): shifted(0.0, [0.0] * 5), ("oc", 1.0): shifted(-0.06, noise),
        ("cy", 0.1): shifted(-0.002, noise), ("cy", 1.0): shifted(0.01, [0.001, 0.0, -0.001, 0.002, 0.0]),
    }  # fmt: skip
    groups = {f"{b}@{p:g}": [run(b, p, s, a) for s, a in v.items()] for (b, p), v in accs.items()}
    comps = {c.schedule: c for c in peak_comparisons(groups)}
    assert set(comps) == {"oc@0.01", "oc@1", "cy@0.1"}  # each schedule's best peak is the reference, not compared
    assert {c.baseline for c in comps.values()} == {"oc@0.1", "cy@1"}
    assert comps["oc@1"].verdict == "worse" and comps["oc@1"].diff_mean == pytest.approx(-0.06, abs=1e-3)
    assert comps["oc@0.01"].verdict == "no clear difference"
    # Holm over every pair of a schedule's peaks (3 for oc's three), not only those against the best one, which
    # these same seeds picked; within each schedule
    assert comps["oc@1"].holm_m == 3 and comps["cy@0.1"].holm_m == 1
    pairs = [(0.01, 0.1), (0.01, 1.0), (0.1, 1.0)]
    pair_ps = [compare({"p": accs[("oc", x)], "q": accs[("oc", y)]}, "q")[0].p_ttest for x, y in pairs]
    assert comps["oc@0.01"].p_holm == pytest.approx(holm(pair_ps)[0])
    # with two entries, against the best is the one comparison there is: as compare gives it
    two = {"a": accs[("cy", 0.1)], "b": accs[("cy", 1.0)]}
    assert compare_to_best(two) == compare(two, "b")
    plain = {"a": [run("a", None, s, 0.8) for s in range(3)], "b": [run("b", None, s, 0.7) for s in range(3)]}
    assert peak_comparisons(plain) == []


def test_comparing_with_the_best_keeps_the_family_error_rate(monkeypatch):
    """Among equal peaks, picking the best by the seeds and testing the others against it with Holm over those
    k − 1 tests calls some peak different too often (5 peaks, 3 seeds: 7.4 % of 2,000 simulated schedules);
    compare_to_best's Holm over all pairs stays under α (2.5 % there). A fixed draw of 400 schedules here."""
    monkeypatch.setattr(stats, "seeds_for_power", lambda *a, **k: math.nan)  # half the time, and no verdict's
    rng = np.random.default_rng(0)
    hits = {"shown only": 0, "all pairs": 0}
    for _ in range(400):
        seed_effect = rng.normal(0, 1, 3)  # shared by a seed's runs, as initial weights and batches are
        peaks = {f"p{i}": {s: float(seed_effect[s] + rng.normal(0, 1)) for s in range(3)} for i in range(5)}
        means = ranking_means(peaks)
        hits["shown only"] += any(c.decided for c in compare(peaks, max(means, key=means.__getitem__)))
        hits["all pairs"] += any(c.decided for c in compare_to_best(peaks))
    assert hits["all pairs"] / 400 <= 0.05 < hits["shown only"] / 400


def test_shown_p_values_and_intervals_never_look_more_significant_than_they_are():
    """4 seeds of k/270: +2, +2, +4, +7 images. Holm's p is 0.0503, "no clear difference" at 0.05; shown to 3
    decimals it read 0.050 (rejected, by its look), and the interval's low end -0.00002 read -0.0000."""
    from lrlab.report import _interval, _p

    base = {s: 0.8 + s / 270 for s in range(4)}
    better = {s: base[s] + k / 270 for s, k in enumerate((2, 2, 4, 7))}
    (c,) = compare({"a": base, "b": better}, "a")
    assert c.verdict == "no clear difference" and 0.05 < c.p_holm < 0.0505 and -1e-4 < c.diff_ci_low < 0
    assert _p(c.p_holm) == "0.051" and _interval(c).startswith("[-0.0001, ")
    assert [_p(p) for p in (0.05, 0.0499, 0.2, 1.0, 0.0009, float("nan"))] == ["0.050", "0.050", "0.200", "1.000",
                                                                                "<0.001", "—"]  # fmt: skip


def test_a_difference_without_spread_lies_inside_its_interval():
    (c,) = compare({"a": {0: 0.80, 1: 0.85, 2: 0.90}, "b": {0: 0.85, 1: 0.90, 2: 0.95}}, "a")
    assert c.no_spread and c.diff_ci_low <= c.diff_mean <= c.diff_ci_high  # was 0.05000000000000001 > 0.05


@pytest.mark.parametrize("d", [[0.02, -0.01, 0.03, 0.05], [0.01, 0.01, 0.01], [0.0, 0.0], [0.04]])
def test_one_tests_p_value_is_the_one_both_give(d):
    """compare_to_best and neighbour_tests ask for one test's p-value of each pair and leave the other uncomputed:
    the asked one is what computing both gives (also where equal differences make the t-test take Wilcoxon's)."""
    y = [0.5] * len(d)
    x = [a + b for a, b in zip(y, d, strict=True)]
    both = stats._pvalues(x, y)
    for k, test in enumerate(stats.TESTS):
        alone = stats._pvalues(x, y, tests=[test])
        assert alone[k] == both[k] or (math.isnan(alone[k]) and math.isnan(both[k])), test
