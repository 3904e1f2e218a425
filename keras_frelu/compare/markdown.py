"""comparison.md and the terminal summary, rendered from the summary that comparison.json holds."""

import shlex

from keras_frelu.compare import comparisons, observations

TESTS = comparisons.TESTS
DASH = "–"
HOW_SIGNIFICANCE = (
    "How: the difference is the activation's mean final test accuracy (final model) minus the baseline's, "
    "over complete seeds, in percentage points (pp). Welch's t-test compares the seeds (2 or more complete "
    "seeds on each side); the paired exact test (McNemar) compares the two on the same test examples, seed s "
    "with seed s, pooling the examples only one of them gets right over the seed pairs. Each test's p-values "
    "are Holm-corrected over the activations of the dataset. The verdict and the interval come from Welch's "
    "test when it is possible, else from the paired test; significant means corrected p < α = {alpha:g}. "
    "Detectable: the difference a t-test over these seeds finds with 80% power at level α/m (m comparisons, "
    "the level Holm's first step asks for), given the seed std pooled over the activations; seeds needed: "
    "the fewest seeds per activation with which the observed difference reaches that power.")
HOW_SPEED = (
    "How: steps to target is the step at which validation accuracy first reaches the target, the lowest "
    "best validation accuracy among the complete runs of the dataset (so every complete run reaches it), "
    "linearly interpolated between the evaluation below it and the one that reaches it. Mean training loss "
    "is the area under the training-loss curve (trapezoid rule) divided by the steps it spans: lower when "
    "the loss falls sooner. Best validation accuracy chooses the step; the test accuracy at that step is "
    "reported, never used to choose.")
HOW_OBSERVATIONS = (
    f"Rules: dead: {observations.DEAD_FRACTION:.0%} or more of a layer's units never positive at the end, in a "
    "layer that outputs no negative value (so they output 0 and pass no gradient); "
    f"self-normalising: mean within ±{observations.NORMALISED_MEAN:g} and std within "
    f"{observations.NORMALISED_STD[0]:g}–{observations.NORMALISED_STD[1]:g} in every seed from some step to the "
    "end, over at least the second half of training; bias positive: Flexible ReLU's bias, at or below zero at "
    f"first, became positive; gradient: a layer's final gradient norm {observations.GRADIENT_RATIO:g}× the "
    "baseline's or more, or a tenth or less. End values are the last monitored step, averaged over seeds.")
HOW_CONTROLS = (
    "A control has its activation's weights, parameters and FLOPs without the activation's own condition "
    "(Funnel ReLU's: ReLU(BN(depthwise conv(x))), no max with x), so it tells the condition from the extra "
    "convolution. Its tests are those above, Holm-corrected together with the comparisons with the baseline.")
HOW_COSTS = (
    "How: parameters (trainable, in the whole model and inside its activation layers) and forward FLOPs per "
    "image are counted from the model the runs' flags build (2 per multiply-add, 1 per bias, batch norm 2 and "
    "other activations 1 per element; Funnel ReLU 2 per tap plus 2 per element). Step time relative to the "
    "baseline: the median over seeds of each run's batch size over its median images/s, as the runs recorded "
    "it while they trained (side by side, sharing the machine: a rough price, not a benchmark; see bench/). "
    "Peak memory: the median over seeds of each training process's peak resident memory (and the GPU's peak "
    "allocation where the backend reports it).")
FIGURE_CAPTIONS = {
    "activations": "Activation statistics per layer (mean, std, dead fraction, negative fraction) over training",
    "histograms": "Histogram of each layer's activation values at the last monitored step, every activation "
                  "overlaid",
    "gradients": "Gradient norm per layer over training (log scale: vanishing or exploding gradients)",
    "parameters": "Learned activation parameters over training (scalars, or the L2 norm of a vector)",
}
FIGURE_ABSENT = {
    "activations": "no activations/ statistics in the complete runs",
    "histograms": "no activations/<layer>/values histograms in the complete runs",
    "gradients": "no gradient_norm/ events in the complete runs",
    "parameters": "no activation of this comparison learns parameters (or none were recorded)",
}


def number(value, digits):
    return DASH if value is None else f"{value:.{digits}f}"


def signed(value, digits=2):
    return DASH if value is None else f"{value:+.{digits}f}"


def p_value(value):
    return DASH if value is None else f"{value:.3g}"


def statistic(entry, digits):
    if entry is None:
        return DASH
    return f"{entry['mean']:.{digits}f}" + ("" if entry["std"] is None else f" ± {entry['std']:.{digits}f}")


def count(number_, noun):
    return f"{number_} {noun}{'' if number_ == 1 else 's'}"


def tally(counts):
    """``"3 complete, 1 failed"``."""
    return ", ".join(f"{number_} {status}" for status, number_ in sorted(counts.items()))


def seeds_cell(group):
    others = {status: number_ for status, number_ in group["statuses"].items() if status != "complete"}
    return str(group["complete"]) + (f" of {group['runs']} ({tally(others)})" if others else "")


def table(header, rows):
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def verdict_lines(summary):
    lines = []
    for dataset in summary["datasets"]:
        headline, winner = dataset["headline"], dataset["winner"]
        if winner:  # the winner in bold where the headline first names it
            headline = headline.replace(winner, f"**{winner}**", 1)
        lines.append(f"- **{dataset['name']}:** {headline}")
    return lines or ["No run is complete yet."]


def _verdict_cell(entry):
    if not entry["test_used"]:
        return "not tested"
    if not entry["significant"]:
        return f"no significant difference ({TESTS[entry['test_used']]})"
    return f"{'better' if entry['test_difference_pp'] > 0 else 'worse'} ({TESTS[entry['test_used']]})"


def _test_cell(entry, name):
    test = entry["tests"].get(name)
    if not test or not test["available"]:
        return DASH
    return f"{p_value(test['p_value'])} ({p_value(test['p_corrected'])})"


def _interval(interval):
    return DASH if interval is None else f"{signed(interval[0])} to {signed(interval[1])}"


def significance_section(dataset, alpha):
    groups = {group["activation"]: group for group in dataset["groups"]}
    baseline = dataset["baseline"]
    base = groups[baseline]
    rows = [[f"{baseline} (baseline)", seeds_cell(base), statistic(base["final_test_accuracy"], 4),
             *[DASH] * 4, "baseline", DASH, DASH]]
    for entry in dataset["comparisons"]:
        group = groups[entry["activation"]]
        rows.append([entry["activation"], seeds_cell(group), statistic(group["final_test_accuracy"], 4),
                     signed(entry["difference_pp"]), _interval(entry["interval_pp"]), _test_cell(entry, "welch"),
                     _test_cell(entry, "paired"), _verdict_cell(entry), number(entry["detectable_pp"], 2),
                     DASH if entry["seeds_needed"] is None else entry["seeds_needed"]])
    header = ["activation", "seeds", "final test accuracy", f"difference vs {baseline} (pp)", "95% CI (pp)",
              "Welch p (Holm)", "paired p (Holm)", "verdict", "detectable (pp)", "seeds needed"]
    lines = [f"### Final test accuracy against the baseline, {baseline}", "", *table(header, rows), ""]
    unavailable = [f"- {entry['activation']}: {TESTS[name]} unavailable: {test['reason']}"
                   for entry in dataset["comparisons"] for name, test in entry["tests"].items()
                   if not test["available"]]
    unavailable += [f"- {entry['activation']}: not compared: {entry['reason']}"
                    for entry in dataset["comparisons"] if entry["reason"]]
    return lines + (unavailable + [""] if unavailable else []) + [HOW_SIGNIFICANCE.format(alpha=alpha), ""]


def controls_section(dataset):
    if not dataset["controls"]:
        return []
    header = ["activation", "control", "seeds", "difference (pp)", "95% CI (pp)", "Welch p (Holm)",
              "paired p (Holm)", "verdict"]
    rows = [[entry["activation"], entry["baseline"], f"{entry['seeds'][0]} / {entry['seeds'][1]}",
             signed(entry["difference_pp"]), _interval(entry["interval_pp"]), _test_cell(entry, "welch"),
             _test_cell(entry, "paired"), _verdict_cell(entry)] for entry in dataset["controls"]]
    return ["### Each activation against its compute-matched control", "", *table(header, rows), "",
            *(f"- {entry['finding']}" for entry in dataset["controls"]), "", HOW_CONTROLS, ""]


def cost_section(dataset):
    costs = dataset["costs"]
    device = any(row["peak_device_memory_mb"] is not None for row in costs)
    header = ["activation", "seeds", "trainable parameters", "in activation layers", "forward MFLOPs / image",
              f"step time vs {dataset['baseline']}", "peak memory (MB)", *(["peak GPU memory (MB)"] if device else [])]
    rows = [[row["activation"], row["seeds"], number(row["parameters"], 0), number(row["activation_parameters"], 0),
             DASH if row["flops_per_image"] is None else f"{row['flops_per_image'] / 1e6:.3f}",
             DASH if row["step_time_ratio"] is None else f"{row['step_time_ratio']:.2f}x",
             number(row["peak_memory_mb"], 0), *([number(row["peak_device_memory_mb"], 0)] if device else [])]
            for row in costs]
    notes = [f"- {row['activation']}: {row['cost_note']}" for row in costs if row["cost_note"]]
    return ["### What each activation costs", "", *table(header, rows), "", *notes, *([""] if notes else []),
            HOW_COSTS, ""]


def speed_section(dataset):
    target = dataset["target_validation_accuracy"]
    header = ["activation", "seeds",
              "steps to target" if target is None else f"steps to validation accuracy {target:.4f}",
              "mean training loss", "best validation accuracy", "test accuracy at best validation", "images/s"]
    rows = [[group["activation"], seeds_cell(group), statistic(group["steps_to_target"], 0),
             statistic(group["mean_training_loss"], 4), statistic(group["best_validation_accuracy"], 4),
             statistic(group["test_accuracy_at_best_validation"], 4), statistic(group["images_per_s"], 0)]
            for group in dataset["groups"]]
    return ["### Learning speed (mean ± std over complete seeds)", "", *table(header, rows), "", HOW_SPEED, ""]


def why_section(dataset):
    lines = ["### Why: the activations side by side", ""]
    for kind, caption in FIGURE_CAPTIONS.items():
        figure = dataset["figures"][kind]
        lines += [f"{caption}:", "", f"![{caption}]({figure['file']})" if figure else f"({FIGURE_ABSENT[kind]})", ""]
    lines += ["#### Observations", ""]
    lines += [f"- {entry['text']} ([{entry['figure']}]({entry['figure']}))" for entry in dataset["observations"]] \
        or ["- None of the rules below applies."]
    return lines + ["", HOW_OBSERVATIONS, ""]


def final_activations_section(dataset):
    columns = [group for group in dataset["groups"] if group["final_activations"]]
    if not columns:
        return []
    layers = list(dict.fromkeys(layer for group in columns for layer in group["final_activations"]))
    rows = []
    for layer in layers:
        cells = []
        for group in columns:
            values = group["final_activations"].get(layer)
            cells.append(DASH if not values or values["mean"] is None else
                         f"{values['mean']:.4g} / {values['std']:.4g}")
        rows.append([layer, *cells])
    return ["### Activations at the end of training", "",
            "Mean / std of each activation layer's output on the monitor sample at the last step (averaged over "
            "seeds).", "", *table(["layer", *(group["activation"] for group in columns)], rows), ""]


def runs_section(summary):
    header = ["run", "status", "step", "final test accuracy", "best validation accuracy",
              "test accuracy at best validation", "steps to target", "mean training loss", "images/s", "missing"]
    rows = [[run["name"], run["status"], number(run["step"], 0), number(run["final_test_accuracy"], 4),
             number(run["best_validation_accuracy"], 4), number(run["test_accuracy_at_best_validation"], 4),
             number(run["steps_to_target"], 0), number(run["mean_training_loss"], 4), number(run["images_per_s"], 0),
             ", ".join(run["missing"]) or DASH] for run in summary["runs"]]
    return ["## Runs", "", *table(header, rows), ""]


def failure_lines(summary, log_dir):
    return [f"- {run['name']}: {run['status']}: {run['message'] or 'no output'} (log: {log_dir}/{run['name']}.log)"
            for run in summary["runs"] if run["status"] == "failed"]


def render(summary, figure, log_dir):
    """comparison.md; ``figure`` is comparison.png's name, ``log_dir`` the runs' log folder."""
    lines = ["# Activation comparison", "",
             f"{count(len(summary['runs']), 'run')}: {tally(summary['tally'])}. "
             "Every number below is also in comparison.json."]
    if summary["trainer_args"] is not None:
        lines.append(f"Trainer flags shared by every run: `{shlex.join(summary['trainer_args']) or '(defaults)'}`.")
    lines += ["", f"## Verdict (final test accuracy, α = {summary['alpha']:g}, Holm-corrected)", "",
              *verdict_lines(summary), "", f"![learning curves]({figure})", ""]
    for dataset in summary["datasets"]:
        lines += [f"## {dataset['name']}", "", *significance_section(dataset, summary["alpha"]),
                  *controls_section(dataset), *cost_section(dataset), *speed_section(dataset),
                  *why_section(dataset), *final_activations_section(dataset)]
        if dataset["notes"]:
            lines += ["Missing:", "", *(f"- {note}" for note in dataset["notes"]), ""]
    lines += runs_section(summary)
    failed = failure_lines(summary, log_dir)
    if failed:
        lines += ["Failed runs:", "", *failed, ""]
    return "\n".join(lines)


def terminal(summary, log_dir, paths):
    """What script.py prints: the verdicts, a short table per dataset, the failures and the report's files."""
    lines = ["", *verdict_lines(summary)]
    for dataset in summary["datasets"]:
        groups = {group["activation"]: group for group in dataset["groups"]}
        by_activation = {entry["activation"]: entry for entry in dataset["comparisons"]}
        rows = []
        for activation, group in groups.items():
            entry = by_activation.get(activation)
            rows.append([dataset["name"], activation, seeds_cell(group), statistic(group["final_test_accuracy"], 4),
                         signed(entry["difference_pp"]) if entry else "baseline",
                         p_value(entry["p_corrected"]) if entry else DASH,
                         _verdict_cell(entry) if entry else DASH, statistic(group["steps_to_target"], 0)])
        lines += ["", *table(["dataset", "activation", "seeds", "final test accuracy",
                              f"vs {dataset['baseline']} (pp)", "p (Holm)", "verdict", "steps to target"], rows)]
        lines += [f"- {entry['finding']}" for entry in dataset["controls"]]
    failed = failure_lines(summary, log_dir)
    if failed:
        lines += ["", "Failed runs:", *failed]
    lines += ["", "report: " + ", ".join(paths)]
    return "\n".join(lines)
