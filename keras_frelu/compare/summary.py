"""comparison.json: everything the report says, machine-readable (schema: docs/comparison_json.md).

``summarise`` turns the runs that ``results`` read into that summary; comparison.md and the terminal
summary are rendered from it (``markdown``) and the figures it lists are drawn from the same groups
(``report``).
"""

import collections
import math
import re

import numpy as np

from keras_frelu.compare import comparisons, observations, speed
from keras_frelu.compare.cost_table import cost_rows
from keras_frelu.compare.results import LAYER_STATISTICS, group_runs, layer_names

SCHEMA_VERSION = 1
# Per-run figures that each group summarises as mean ± std over its complete runs.
GROUP_FIGURES = ("final_test_accuracy", "final_test_loss", "best_validation_accuracy",
                 "test_accuracy_at_best_validation", "steps_to_target", "mean_training_loss", "images_per_s")


def summarise(folder, results, baseline=None, alpha=0.05, trainer_args=None):
    """(the summary as a JSON-ready dict, ``{dataset: [Group, ...]}`` in plan order)."""
    by_dataset = {}
    for group in group_runs(results):
        by_dataset.setdefault(group.dataset, []).append(group)
    datasets, runs = [], {}
    for dataset, groups in by_dataset.items():
        entry, dataset_runs = dataset_summary(folder, dataset, groups, baseline, alpha)
        datasets.append(entry)
        runs.update(dataset_runs)
    summary = {"schema_version": SCHEMA_VERSION, "folder": folder, "trainer_args": trainer_args, "alpha": alpha,
               "tally": dict(collections.Counter(run.status for run in results)),
               "runs": [runs[run.name] for run in results], "datasets": datasets}
    return json_ready(summary), by_dataset


def dataset_summary(folder, dataset, groups, baseline, alpha):
    """(the dataset's entry, ``{run name: run entry}``)."""
    from keras_frelu import activations  # deferred: the layers, whose registration names the controls

    base = comparisons.choose_baseline([group.activation for group in groups], baseline)
    costs = cost_rows(folder, groups, base)
    target = speed.common_target(run.best_validation[1] for group in groups for run in group.complete
                                 if run.best_validation)
    runs = {run.name: run_entry(run, target) for group in groups for run in group.runs}
    figures = figure_plan(dataset, groups)
    entry = {"name": dataset, "alpha": alpha, "target_validation_accuracy": target,
             **comparisons.compare_dataset(groups, base, alpha, activations.controls(), costs), "costs": costs,
             "groups": [group_entry(group, runs) for group in groups], "figures": figures,
             "observations": observations.observe(groups, base, {kind: figure and figure["file"]
                                                                for kind, figure in figures.items()}),
             "notes": notes(groups, target)}
    return entry, runs


def run_entry(run, target):
    best = run.best_validation
    return {"name": run.name, "dataset": run.dataset, "activation": run.activation, "seed": run.seed,
            "status": run.status, "message": run.message, "step": run.step,
            "final_test_accuracy": run.final("test", "accuracy"), "final_test_loss": run.final("test", "loss"),
            "final_validation_accuracy": run.final("validation", "accuracy"),
            "best_validation_accuracy": best[1] if best else None, "best_validation_step": best[0] if best else None,
            "test_accuracy_at_best_validation": run.metrics.get("test_accuracy_at_best_validation"),
            "steps_to_target": None if target is None else
            speed.steps_to_reach(run.curve("validation", "accuracy"), target),
            "mean_training_loss": speed.mean_loss(run.curve("train", "loss")), "images_per_s": run.images_per_s,
            "predictions": run.predictions is not None, "missing": list(run.missing)}


def statistic(values):
    """{"mean", "std" (sample std, None for one value), "n"}, or None without values."""
    if not values:
        return None
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values)}


def group_entry(group, runs):
    complete = [runs[run.name] for run in group.complete]
    entry = {"activation": group.activation, "runs": len(group.runs), "complete": len(complete),
             "statuses": dict(collections.Counter(run.status for run in group.runs))}
    for key in GROUP_FIGURES:
        entry[key] = statistic([run[key] for run in complete if run[key] is not None])
    layers = layer_names([group], r"activations/(.+)/mean")
    entry["final_activations"] = {layer: {name: group.final_mean("activations", f"activations/{layer}/{name}")
                                          for name in LAYER_STATISTICS} for layer in layers}
    return entry


def figure_file(dataset, kind):
    return f"comparison-{re.sub(r'[^A-Za-z0-9_.+-]', '_', dataset)}-{kind}.png"


def figure_plan(dataset, groups):
    """``{kind: {"file", "rows", "columns"} or None}``: each figure of the dataset and its layout, None when
    there is nothing to draw. Rows are layers; columns are statistics, or for parameters [activation, weight]."""
    layers = layer_names(groups, r"activations/(.+)/mean")
    histogram_layers = [layer for layer in layers
                        if any(layer in run.histograms for group in groups for run in group.complete)]
    parameters = {}  # (activation, weight) -> None, layers -> None, in order of appearance
    parameter_layers = {}
    for group in groups:
        for run in group.complete:
            for layer, weight in run.tags("activations", r"parameters/([^/]+)/(.+)"):
                parameters.setdefault((group.activation, weight))
                parameter_layers.setdefault(layer)
    plan = {"activations": (layers, list(LAYER_STATISTICS)),
            "histograms": (histogram_layers, ["values"]),
            "gradients": (layer_names(groups, r"gradient_norm/(.+)"), ["gradient_norm"]),
            "parameters": (list(parameter_layers), [list(series) for series in parameters])}
    return {kind: {"file": figure_file(dataset, kind), "rows": rows, "columns": columns} if rows else None
            for kind, (rows, columns) in plan.items()}


def notes(groups, target):
    """What the report could not compute, and why."""
    found = [f"{run.name}: {', '.join(run.missing)}" for group in groups for run in group.complete if run.missing]
    if target is None and any(group.complete for group in groups):
        found.append("learning speed (steps to target) unavailable: no complete run has validation/ events")
    return found


def json_ready(value):
    """``value`` with NumPy numbers as Python ones, tuples as lists, and NaN or infinity as None."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
