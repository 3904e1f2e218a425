"""The statistics of a comparison: pure functions of per-seed accuracies and per-example correctness.

Differences are always "a minus b", in the units of the inputs (the report scales them to percentage
points with ``TestResult.scaled``).

- ``welch``: Welch's t-test over seeds (``scipy.stats.ttest_ind(equal_var=False)``) and its confidence
  interval for the difference of the means; it needs two or more seeds on each side.
- ``paired``: the exact McNemar test on a shared test set, pooled over seed pairs. Seed pair i (seed s of
  a with seed s of b) contributes ``b_i`` examples that a classifies correctly and b does not, and ``c_i``
  the reverse; under the null hypothesis each discordant example is equally likely to fall either way, so
  ``b = sum b_i`` is Binomial(``b + c``, 1/2) and the p-value is ``scipy.stats.binomtest``'s two-sided one.
  The accuracy difference is ``(b - c) / (pairs x examples)``; its interval is the Clopper-Pearson
  interval of ``b / (b + c)`` (``binomtest(...).proportion_ci``) mapped onto that difference, conditional
  on the number of discordant examples. Identical predictions give p = 1.
- ``holm``: Holm's step-down adjustment of a family of p-values (scipy offers Benjamini-Hochberg and
  Benjamini-Yekutieli in ``false_discovery_control``, not Holm).
- ``pooled_std``, ``power``, ``minimum_detectable_difference``, ``seeds_needed``: the seed-to-seed spread
  and the power of the two-sided two-sample t-test at that spread, from the noncentral t distribution
  (``scipy.stats.nct``).
"""

import dataclasses
import warnings

import numpy as np
import scipy.optimize
import scipy.stats

DEFAULT_POWER = 0.8
SEEDS_LIMIT = 1000  # seeds_needed looks no further: beyond this the difference is practically undetectable


@dataclasses.dataclass(frozen=True)
class TestResult:
    """One test of a minus b: ``p_value`` None means it was not possible, ``reason`` says why."""

    test: str  # "welch" or "paired"
    difference: float = None
    interval: tuple = None  # (low, high) of the difference
    p_value: float = None
    reason: str = None
    details: dict = dataclasses.field(default_factory=dict)

    @property
    def available(self):
        return self.p_value is not None

    def scaled(self, factor):
        """The same result with the difference and its interval multiplied by ``factor`` (p unchanged)."""
        return dataclasses.replace(
            self, difference=None if self.difference is None else self.difference * factor,
            interval=None if self.interval is None else tuple(bound * factor for bound in self.interval))


def welch(a, b, confidence=0.95):
    """Welch's t-test of mean(a) - mean(b) with its ``confidence`` interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    seeds = {"seeds": [len(a), len(b)]}
    if min(len(a), len(b)) < 2:
        return TestResult("welch", reason=f"needs 2 or more complete seeds on each side, has {len(a)} and {len(b)}",
                          details=seeds)
    difference = float(a.mean() - b.mean())
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return TestResult("welch", difference, reason="every seed has the same accuracy on both sides: no spread "
                                                      "between seeds to test against", details=seeds)
    with warnings.catch_warnings():
        # scipy warns of precision loss when one side's seeds are all equal; its variance is then exactly 0.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = scipy.stats.ttest_ind(a, b, equal_var=False)
        interval = result.confidence_interval(confidence)
    return TestResult("welch", difference, (float(interval.low), float(interval.high)), float(result.pvalue),
                      details={**seeds, "t": float(result.statistic), "df": float(result.df)})


def paired(pairs, confidence=0.95):
    """The exact McNemar test pooled over ``pairs`` of boolean per-example correctness arrays (a, b)."""
    if not pairs:
        return TestResult("paired", reason="no seed has predictions on both sides")
    a_only = b_only = examples = 0
    for correct_a, correct_b in pairs:
        correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
        if correct_a.shape != correct_b.shape:
            raise ValueError(f"paired correctness arrays differ in shape: {correct_a.shape} and {correct_b.shape}")
        a_only += int(np.sum(correct_a & ~correct_b))
        b_only += int(np.sum(~correct_a & correct_b))
        examples += correct_a.size
    details = {"a_only": a_only, "b_only": b_only, "pairs": len(pairs), "examples": examples // len(pairs)}
    difference = (a_only - b_only) / examples
    discordant = a_only + b_only
    if discordant == 0:  # binomtest needs one trial; no example speaks for either side
        return TestResult("paired", difference, None, 1.0, details=details)
    test = scipy.stats.binomtest(a_only, discordant, 0.5)
    share = test.proportion_ci(confidence)
    scale = discordant / examples
    return TestResult("paired", difference, (scale * (2 * share.low - 1), scale * (2 * share.high - 1)),
                      float(test.pvalue), details=details)


def holm(p_values):
    """Holm's adjusted p-values, in the order given: the i-th smallest (from 0) times ``m - i``, made
    non-decreasing along the sorted order and capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted.tolist()


def pooled_std(samples):
    """(std, degrees of freedom) of the within-sample spread pooled over the samples with two or more
    values, or None if there is none."""
    used = [np.asarray(sample, dtype=np.float64) for sample in samples if len(sample) >= 2]
    df = sum(len(sample) - 1 for sample in used)
    if not df:
        return None
    variance = sum((len(sample) - 1) * np.var(sample, ddof=1) for sample in used) / df
    return float(np.sqrt(variance)), df


def power(difference, std, n_a, n_b, alpha):
    """The power of the two-sided two-sample t-test at level ``alpha`` for a true ``difference`` of the
    means, seeds spread by ``std``, ``n_a`` and ``n_b`` seeds (arrays broadcast)."""
    df = np.asarray(n_a) + np.asarray(n_b) - 2
    noncentrality = np.abs(difference) / (std * np.sqrt(1 / np.asarray(n_a) + 1 / np.asarray(n_b)))
    critical = scipy.stats.t.isf(alpha / 2, df)
    # The lower tail as the upper tail at -noncentrality: nct.cdf returns NaN far in the tail.
    return scipy.stats.nct.sf(critical, df, noncentrality) + scipy.stats.nct.sf(critical, df, -noncentrality)


def minimum_detectable_difference(std, n_a, n_b, alpha, target=DEFAULT_POWER):
    """The difference that the t-test finds with probability ``target``; None with fewer than 3 seeds in
    all or no spread."""
    if n_a + n_b < 3 or not std > 0:
        return None
    high = std
    while power(high, std, n_a, n_b, alpha) < target:
        high *= 2
    return float(scipy.optimize.brentq(lambda d: power(d, std, n_a, n_b, alpha) - target, 0.0, high, xtol=1e-12 * high))


def seeds_needed(difference, std, alpha, target=DEFAULT_POWER, limit=SEEDS_LIMIT):
    """The fewest seeds per side with which the t-test finds ``difference`` with probability ``target``;
    None if more than ``limit`` would be needed (or there is no spread or no difference)."""
    if not std > 0 or difference == 0:
        return None
    seeds = np.arange(2, limit + 1)
    enough = np.flatnonzero(power(difference, std, seeds, seeds, alpha) >= target)
    return int(seeds[enough[0]]) if enough.size else None
