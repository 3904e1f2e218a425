"""The comparison's statistics and learning-speed figures against scipy and NumPy called here, on hand-built
inputs whose answers are known."""

import warnings

import numpy as np
import pytest
import scipy.stats

from keras_frelu.compare import speed, statistics


def correctness(rng, size, accuracy):
    """A boolean array of ``size`` examples, ``accuracy`` of them True, in random places."""
    correct = np.zeros(size, dtype=bool)
    correct[rng.choice(size, round(accuracy * size), replace=False)] = True
    return correct


# ------------------------------------------------------------------------------------------------- Welch

def test_welch_matches_scipy_with_unequal_seed_counts():
    a, b = [0.981, 0.975, 0.986], [0.962, 0.970, 0.958, 0.966, 0.971]
    result = statistics.welch(a, b)
    reference = scipy.stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.available and result.test == "welch"
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b), abs=1e-15)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.interval == pytest.approx((interval.low, interval.high), rel=1e-12)
    assert result.details["seeds"] == [3, 5] and result.details["df"] == pytest.approx(reference.df)
    # The interval is the mean difference ± t quantile × Welch's standard error (independent formula).
    se = np.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 5)
    half = scipy.stats.t.ppf(0.975, reference.df) * se
    assert result.interval == pytest.approx((result.difference - half, result.difference + half), rel=1e-9)
    # In percentage points: the same test, the difference and interval times 100.
    points = result.scaled(100)
    assert points.p_value == result.p_value and points.difference == pytest.approx(100 * result.difference)
    assert points.interval == pytest.approx(tuple(100 * bound for bound in result.interval))


def test_welch_with_one_seed_or_no_spread_is_unavailable_and_says_why():
    one = statistics.welch([0.98], [0.97, 0.96])
    assert not one.available and one.p_value is None and "has 1 and 2" in one.reason
    flat = statistics.welch([0.98, 0.98], [0.97, 0.97])
    assert not flat.available and "no spread" in flat.reason and flat.difference == pytest.approx(0.01)
    # One side without spread is fine, and scipy's precision warning for that side stays out of the output.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        half = statistics.welch([0.98611, 0.98611], [0.98333, 0.97500])
    with pytest.warns(RuntimeWarning, match="Precision loss"):
        reference = scipy.stats.ttest_ind([0.98611, 0.98611], [0.98333, 0.97500], equal_var=False)
    assert half.p_value == pytest.approx(reference.pvalue, rel=1e-9)


# ------------------------------------------------------------------------------------- paired (McNemar)

def test_paired_exact_test_pools_discordant_examples_over_seed_pairs():
    rng = np.random.default_rng(0)
    pairs = [(correctness(rng, 360, 0.97), correctness(rng, 360, 0.93)) for _ in range(3)]
    result = statistics.paired(pairs)
    # Independent count: examples only a gets right, only b gets right, summed over the pairs.
    b = sum(int(np.count_nonzero(a_ok & ~b_ok)) for a_ok, b_ok in pairs)
    c = sum(int(np.count_nonzero(~a_ok & b_ok)) for a_ok, b_ok in pairs)
    reference = scipy.stats.binomtest(b, b + c, 0.5)
    assert (result.details["a_only"], result.details["b_only"]) == (b, c)
    assert result.details["pairs"] == 3 and result.details["examples"] == 360
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12) and result.p_value < 0.05
    # The difference equals the difference of the mean accuracies over the pairs.
    accuracy_a = np.mean([a_ok.mean() for a_ok, _ in pairs])
    accuracy_b = np.mean([b_ok.mean() for _, b_ok in pairs])
    assert result.difference == pytest.approx(accuracy_a - accuracy_b, abs=1e-12)
    share = reference.proportion_ci(0.95, method="exact")
    scale = (b + c) / (3 * 360)
    assert result.interval == pytest.approx((scale * (2 * share.low - 1), scale * (2 * share.high - 1)))
    assert result.interval[0] < result.difference < result.interval[1]


def test_paired_exact_test_with_one_seed_and_identical_predictions():
    rng = np.random.default_rng(1)
    a_ok, b_ok = correctness(rng, 100, 0.9), correctness(rng, 100, 0.8)
    one = statistics.paired([(a_ok, b_ok)])
    b, c = int(np.count_nonzero(a_ok & ~b_ok)), int(np.count_nonzero(~a_ok & b_ok))
    assert one.p_value == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)

    same = statistics.paired([(a_ok, a_ok.copy()), (b_ok, b_ok.copy())])
    assert same.p_value == 1.0 and same.difference == 0.0 and same.interval is None
    assert same.details["a_only"] == same.details["b_only"] == 0

    missing = statistics.paired([])
    assert not missing.available and missing.reason
    with pytest.raises(ValueError, match="differ in shape"):
        statistics.paired([(a_ok, b_ok[:50])])


# ------------------------------------------------------------------------------------------------- Holm

def test_holm_hand_worked_example():
    # m = 4; sorted p: 0.005, 0.01, 0.03, 0.04 -> times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04;
    # non-decreasing along the sorted order: 0.02, 0.03, 0.06, 0.06; back in the given order:
    assert statistics.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1; a single p-value is unchanged; ties keep their order.
    assert statistics.holm([0.5, 0.4]) == pytest.approx([0.8, 0.8])
    assert statistics.holm([0.7]) == pytest.approx([0.7])
    assert statistics.holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])
    assert statistics.holm([0.3, 0.9, 0.6]) == pytest.approx([0.9, 1.0, 1.0])


def test_holm_rejects_what_the_step_down_procedure_rejects():
    rng = np.random.default_rng(2)
    alpha = 0.05
    for _ in range(200):
        p = rng.uniform(0, 0.08, size=rng.integers(1, 7))
        adjusted = np.array(statistics.holm(p))
        # The procedure itself: walk up the sorted p-values while p_(i) <= alpha / (m - i).
        rejected = np.zeros(len(p), dtype=bool)
        for rank, index in enumerate(np.argsort(p)):
            if p[index] > alpha / (len(p) - rank):
                break
            rejected[index] = True
        assert np.array_equal(adjusted <= alpha, rejected)
        assert np.all(adjusted >= p) and np.all(adjusted <= np.minimum(1, len(p) * p) + 1e-15)


# ----------------------------------------------------------------------------------------------- power

def test_power_against_scipy_simulation_of_the_t_test():
    std, n, alpha = 0.3, 4, 0.05
    detectable = statistics.minimum_detectable_difference(std, n, n, alpha)
    rng = np.random.default_rng(3)
    simulated = scipy.stats.power(
        scipy.stats.ttest_ind, (lambda size: rng.normal(detectable, std, size), lambda size: rng.normal(0, std, size)),
        (n, n), significance=alpha, n_resamples=40000).power
    assert simulated == pytest.approx(0.8, abs=0.015)
    # The noncentral t directly: power 0.8 at the detectable difference (the lower tail is negligible here).
    df, noncentrality = 2 * n - 2, detectable / (std * np.sqrt(2 / n))
    critical = scipy.stats.t.ppf(1 - alpha / 2, df)
    assert scipy.stats.nct.sf(critical, df, noncentrality) == pytest.approx(0.8, abs=1e-6)
    assert statistics.minimum_detectable_difference(std, 1, 1, alpha) is None
    assert statistics.minimum_detectable_difference(0.0, 3, 3, alpha) is None


def test_seeds_needed_is_the_fewest_with_enough_power():
    std, alpha, difference = 0.4, 0.025, 0.25

    def t_power(n):  # independent of the module: scipy's noncentral t for n seeds per side, upper tail
        df, noncentrality = 2 * n - 2, difference / (std * np.sqrt(2 / n))
        return scipy.stats.nct.sf(scipy.stats.t.ppf(1 - alpha / 2, df), df, noncentrality)

    n = statistics.seeds_needed(difference, std, alpha)
    assert n > 2 and t_power(n) >= 0.8 - 1e-6 and t_power(n - 1) < 0.8
    # Power where nct.cdf's lower tail is NaN in scipy: still a number, and close to 1 far out.
    rng = np.random.default_rng(4)
    simulated = scipy.stats.power(scipy.stats.ttest_ind, (lambda size: rng.normal(5.0, 0.5893, size),
                                                          lambda size: rng.normal(0.0, 0.5893, size)),
                                  (2, 2), significance=0.025, n_resamples=40000).power
    assert statistics.power(5.0, 0.5893, 2, 2, 0.025) == pytest.approx(simulated, abs=0.015)
    assert statistics.seeds_needed(-difference, std, alpha) == n  # either sign
    assert statistics.seeds_needed(0.0, std, alpha) is None
    assert statistics.seeds_needed(1e-4, std, alpha) is None  # beyond SEEDS_LIMIT


def test_pooled_std_over_samples_with_two_or_more_values():
    samples = [[1.0, 2.0, 4.0], [3.0, 3.5], [7.0]]
    std, df = statistics.pooled_std(samples)
    # Independent: one-way ANOVA's within-group mean square, from scipy's F statistic and the totals.
    used = samples[:2]
    f = scipy.stats.f_oneway(*used).statistic
    grand = np.mean(np.concatenate(used))
    between = sum(len(s) * (np.mean(s) - grand) ** 2 for s in used) / (len(used) - 1)
    assert df == 3 and std ** 2 == pytest.approx(between / f)
    assert statistics.pooled_std([[1.0], [2.0]]) is None


# ---------------------------------------------------------------------------------------- learning speed

def test_steps_to_reach_interpolates_between_evaluations():
    curve = [(100, 0.5), (200, 0.8), (300, 0.9), (400, 0.88)]
    assert speed.steps_to_reach(curve, 0.85) == pytest.approx(200 + (0.85 - 0.8) / (0.9 - 0.8) * 100)
    assert speed.steps_to_reach(curve, 0.8) == 200.0
    assert speed.steps_to_reach(curve, 0.4) == 100.0  # the first evaluation already reaches it
    assert speed.steps_to_reach(curve, 0.95) is None
    # Curves that differ between evaluations get different steps, not the same evaluation step.
    other = [(100, 0.5), (200, 0.82), (300, 0.9)]
    assert speed.steps_to_reach(other, 0.85) != speed.steps_to_reach(curve, 0.85)
    assert speed.common_target([0.9, None, 0.85, 0.97]) == 0.85 and speed.common_target([None]) is None


def test_mean_loss_is_the_area_per_step():
    steps = np.array([50, 100, 150, 250])
    loss = np.array([2.0, 1.0, 0.6, 0.2])
    assert speed.mean_loss(list(zip(steps, loss))) == pytest.approx(np.trapezoid(loss, steps) / 200)
    # Hand-worked: trapezoids 75 + 40 + 40 = 155 over 200 steps.
    assert speed.mean_loss(list(zip(steps, loss))) == pytest.approx(155 / 200)
    assert speed.mean_loss([(50, 1.0)]) is None
