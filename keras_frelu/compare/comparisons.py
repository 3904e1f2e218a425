"""Per dataset, every activation against the baseline on final test accuracy, and the verdict.

The rules (docs/comparison_json.md says the same):

- the difference is the activation's mean final test accuracy minus the baseline's, over their complete
  seeds, in percentage points (pp);
- two tests (``statistics``): Welch's t-test over seeds, and the paired exact (McNemar) test on the shared
  test set with seed s of the activation paired with seed s of the baseline;
- Holm's correction over the dataset's comparisons (every activation against the baseline, and each activation
  against its compute-matched control where both were trained), for each test separately;
- the test used for the verdict is Welch's when it is possible (2 or more complete seeds on each side, some
  spread), else the paired test; a comparison is significant when that test's corrected p is below alpha;
- the detectable difference is the one the t-test finds with 80% power at level alpha / m (m comparisons:
  the level Holm's first step requires) given the seed std pooled over the dataset's activations; "seeds
  needed" is the fewest seeds per activation with which the observed difference reaches that power.
"""

from keras_frelu.compare import statistics
from keras_frelu.compare.cost_table import cost_phrase
from keras_frelu.errors import UsageError

POINTS = 100  # accuracies are fractions; differences are reported in percentage points
TESTS = {"welch": "Welch's t-test", "paired": "paired exact test"}
DEFAULT_BASELINE = "relu"


def choose_baseline(activations, requested=None):
    """``requested`` if it is one of ``activations`` (by registry name or alias), else a UsageError; without
    a request, relu when compared, else the first activation."""
    if requested is None:
        return DEFAULT_BASELINE if DEFAULT_BASELINE in activations else activations[0]
    if requested in activations:
        return requested
    from keras_frelu.activations import canonical_name  # loads the layers: only for an alias

    try:
        canonical = canonical_name(requested)
    except ValueError:
        canonical = None
    if canonical not in activations:
        raise UsageError(f"--baseline {requested} is not an activation of this comparison; choose one of "
                         f"{', '.join(activations)}")
    return canonical


def final_accuracies(group):
    """The final test accuracy of each complete run of ``group`` that has one, in pp."""
    return [POINTS * run.final("test", "accuracy") for run in group.complete if run.curve("test", "accuracy")]


def seed_pairs(group, baseline):
    """([(correct, baseline correct), ...] for the seeds complete with predictions on both sides, why not)."""
    runs = {run.seed: run for run in group.complete}
    base = {run.seed: run for run in baseline.complete}
    common = sorted(set(runs) & set(base))
    if not common:
        return [], "no seed is complete on both sides"
    lacking = [run.name for seed in common for run in (runs[seed], base[seed]) if run.predictions is None]
    if lacking:
        return [], f"no predictions.npz in {', '.join(lacking)}"
    for seed in common:
        if not _same_examples(runs[seed].predictions["label"], base[seed].predictions["label"]):
            return [], f"seed {seed}'s runs were tested on different examples (their labels disagree)"
    return [(runs[seed].correct, base[seed].correct) for seed in common], None


def _same_examples(labels, other):
    return labels.shape == other.shape and bool((labels == other).all())


def compare(group, baseline):
    """The comparison of ``group`` with the ``baseline`` group, before Holm's correction."""
    accuracies, base_accuracies = final_accuracies(group), final_accuracies(baseline)
    entry = {"activation": group.activation, "baseline": baseline.activation,
             "seeds": [len(accuracies), len(base_accuracies)], "difference_pp": None, "reason": None, "tests": {}}
    if not accuracies or not base_accuracies:
        side = group.activation if not accuracies else f"the baseline {baseline.activation}"
        entry["reason"] = f"{side} has no complete run with a final test accuracy"
        return entry
    entry["difference_pp"] = sum(accuracies) / len(accuracies) - sum(base_accuracies) / len(base_accuracies)
    pairs, why_not = seed_pairs(group, baseline)
    results = {"welch": statistics.welch(accuracies, base_accuracies),
               "paired": statistics.paired(pairs).scaled(POINTS) if pairs else
               statistics.TestResult("paired", reason=why_not)}
    entry["tests"] = {name: _test_entry(result) for name, result in results.items()}
    return entry


def _test_entry(result):
    return {"available": result.available, "reason": result.reason, "difference_pp": result.difference,
            "interval_pp": None if result.interval is None else list(result.interval), "p_value": result.p_value,
            "p_corrected": None, **result.details}


def correct(comparisons, alpha):
    """Holm's correction for each test over the comparisons where it was possible; the verdict of each."""
    for name in TESTS:
        family = [entry["tests"][name] for entry in comparisons if entry["tests"].get(name, {}).get("available")]
        for test, corrected in zip(family, statistics.holm([test["p_value"] for test in family])):
            test["p_corrected"] = corrected
    for entry in comparisons:
        used = next((name for name in TESTS if entry["tests"].get(name, {}).get("available")), None)
        test = entry["tests"][used] if used else {}
        entry.update(test_used=used, test_difference_pp=test.get("difference_pp"), interval_pp=test.get("interval_pp"),
                     p_value=test.get("p_value"), p_corrected=test.get("p_corrected"),
                     significant=bool(used) and test["p_corrected"] < alpha)


def add_power(comparisons, pooled, alpha):
    """Each comparison's detectable difference and the seeds its observed difference would need."""
    level = alpha / max(1, sum(entry["difference_pp"] is not None for entry in comparisons))
    for entry in comparisons:
        n_a, n_b = entry["seeds"]
        std = pooled[0] if pooled else None
        entry["power_level"] = level
        entry["detectable_pp"] = statistics.minimum_detectable_difference(std, n_a, n_b, level) \
            if std and min(n_a, n_b) else None
        entry["seeds_needed"] = statistics.seeds_needed(entry["difference_pp"], std, level) \
            if std and entry["difference_pp"] is not None else None


def compare_dataset(groups, baseline, alpha, controls=None, costs=None):
    """Every group of one dataset against the ``baseline`` activation's group, and each activation against its
    compute-matched control where both were trained (``controls``: {activation: control}); Holm's correction
    runs over all of these comparisons. The dataset's comparisons, control comparisons, pooled seed std and
    verdict, with each activation's cost (``costs``: cost_table's rows) beside its gain."""
    costs = {row["activation"]: row for row in costs or []}
    by_activation = {group.activation: group for group in groups}
    base = by_activation[baseline]
    comparisons = [compare(group, base) for group in groups if group is not base]
    # A pair that holds the baseline is already one of the baseline comparisons: not tested twice.
    matched = [compare(by_activation[activation], by_activation[control])
               for activation, control in (controls or {}).items()
               if activation in by_activation and control in by_activation and baseline not in (activation, control)]
    correct(comparisons + matched, alpha)
    pooled = statistics.pooled_std([final_accuracies(group) for group in groups])
    add_power(comparisons + matched, pooled, alpha)
    for entry in comparisons + matched:
        entry["cost"] = cost_phrase(costs.get(entry["activation"]), costs.get(entry["baseline"]))
    winner, headline = verdict(comparisons, baseline, alpha, pooled)
    return {"baseline": baseline, "comparisons": comparisons, "winner": winner, "headline": headline,
            "controls": [{**entry, "finding": control_finding(entry, pooled)} for entry in matched],
            "pooled_seed_std_pp": pooled[0] if pooled else None, "pooled_seed_std_df": pooled[1] if pooled else None}


def control_finding(entry, pooled):
    """What an activation against its compute-matched control shows, in one sentence."""
    activation, control = entry["activation"], entry["baseline"]
    if not entry["test_used"]:
        return f"{activation} and its control {control} could not be compared: {entry['reason'] or _reasons(entry)}."
    if entry["significant"] and entry["test_difference_pp"] > 0:
        return (f"{activation} beats its control {control} by {_evidence(entry)}: the gain is {activation}'s own "
                "condition (the max with x), not the extra convolution and batch norm, which the control has too.")
    if entry["significant"]:
        return (f"{activation} is worse than its control {control}: {_evidence(entry)}: here the extra convolution "
                f"and batch norm help without {activation}'s max with x.")
    if entry["detectable_pp"] is not None:
        detectable = f"; these seeds could detect about {entry['detectable_pp']:.2f} pp"
    elif min(entry["seeds"]) < 2:
        detectable = "; with one seed on a side the spread between seeds is unknown: run --seeds 3 or more"
    else:
        detectable = "; the seeds show no spread to judge power by"
    return (f"{activation} and its control {control} cannot be told apart ({entry['difference_pp']:+.2f} pp, "
            f"{TESTS[entry['test_used']]} Holm-corrected p = {entry['p_corrected']:.2g}; {entry['seeds'][0]} and "
            f"{entry['seeds'][1]} seeds{detectable}): these runs cannot say whether {activation}'s difference "
            "comes from its condition or from the extra convolution and batch norm.")


def verdict(comparisons, baseline, alpha, pooled):
    """(winner or None, headline): a winner only when significantly better than the baseline."""
    if not comparisons:
        return None, f"only {baseline} was trained; nothing to compare it with."
    tested = [entry for entry in comparisons if entry["test_used"]]
    # The direction is the test's own: the paired test's difference is over the paired seeds only.
    better = sorted((entry for entry in tested if entry["significant"] and entry["test_difference_pp"] > 0),
                    key=lambda entry: -entry["test_difference_pp"])
    worse = [entry for entry in tested if entry["significant"] and entry["test_difference_pp"] < 0]
    untested = [f"{entry['activation']} ({entry['reason'] or _reasons(entry)})"
                for entry in comparisons if not entry["test_used"]]
    if not tested:
        return None, f"nothing could be tested against the baseline {baseline}: {'; '.join(untested)}."
    tail = (f" Significantly worse than {baseline}: {_list(worse)}." if worse and better else "") + \
           (f" Not tested: {'; '.join(untested)}." if untested else "")
    if better:
        best = better[0]
        also = f" Also significantly better: {_list(better[1:])}." if len(better) > 1 else ""
        return best["activation"], (f"{best['activation']} is significantly better than the baseline {baseline}: "
                                    f"{_evidence(best)}.{also}{tail}")
    if worse and len(worse) == len(comparisons):
        return baseline, (f"the baseline {baseline} is significantly better than every other activation: "
                          f"{_list(worse)}.")
    if worse:
        opening = f"no activation is significantly better than the baseline {baseline}; significantly worse: " \
                  f"{_list(worse)}."
    else:
        opening = f"no activation differs significantly from the baseline {baseline} (α = {alpha:g}, Holm-corrected)."
    return None, opening + _power_sentence(comparisons, pooled) + tail


def _evidence(entry):
    low, high = entry["interval_pp"] or (None, None)
    interval = f"95% CI {low:+.2f} to {high:+.2f} pp; " if low is not None else ""
    cost = f", {entry['cost']}" if entry.get("cost") else ""
    return (f"{entry['test_difference_pp']:+.2f} pp final test accuracy ({interval}{TESTS[entry['test_used']]} "
            f"p = {entry['p_value']:.2g}, Holm-corrected {entry['p_corrected']:.2g}; "
            f"{entry['seeds'][0]} and {entry['seeds'][1]} seeds){cost}")


def _list(entries):
    return ", ".join(f"{entry['activation']} ({entry['test_difference_pp']:+.2f} pp"
                     f"{', ' + entry['cost'] if entry.get('cost') else ''})" for entry in entries)


def _reasons(entry):
    return "; ".join(f"{TESTS[name]}: {test['reason']}" for name, test in entry["tests"].items())


def _power_sentence(comparisons, pooled):
    """What these seeds could detect, for the largest observed difference that is not significant."""
    candidates = [entry for entry in comparisons if entry["difference_pp"] is not None and not entry["significant"]]
    if not candidates:
        return ""
    entry = max(candidates, key=lambda entry: abs(entry["difference_pp"]))
    activation, difference = entry["activation"], entry["difference_pp"]
    if pooled is None:
        return (" With one complete seed per activation the spread between seeds is unknown: run --seeds 3 or "
                "more to learn what these runs can detect.")
    if pooled[0] == 0:
        return " Every seed of every activation has the same final test accuracy: no spread to judge power by."
    if entry["detectable_pp"] is None:
        return f" {activation} and {entry['baseline']} have one complete seed each: too few for a t-test."
    sentence = (f" With {entry['seeds'][0]} and {entry['seeds'][1]} seeds ({activation} and {entry['baseline']}) "
                f"these runs could detect a difference of about {entry['detectable_pp']:.2f} pp (80% power at level "
                f"{entry['power_level']:.3g}, seed std {pooled[0]:.2f} pp pooled over the activations)")
    if difference == 0:
        return sentence + f"; {activation}'s observed difference is 0."
    if entry["seeds_needed"] is None:
        return sentence + (f"; {activation}'s observed {difference:+.2f} pp would need more than "
                           f"{statistics.SEEDS_LIMIT} seeds per activation.")
    return sentence + (f"; {activation}'s observed {difference:+.2f} pp would need about {entry['seeds_needed']} "
                       "seeds per activation.")
