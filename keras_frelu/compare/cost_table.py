"""The price of each activation beside its gain: per dataset, one row per activation.

- trainable parameters of the whole model and inside its activation layers, and forward FLOPs per image,
  counted from the model the runs' flags build (``keras_frelu.costs``);
- training step time relative to the baseline: the median over the activation's complete seeds of each
  run's own step time (its batch size over its median images/s, from metrics.json), divided by the
  baseline's; runs that trained side by side shared the machine, so this is what the comparison itself
  measured, not a benchmark (bench/activations.py is);
- peak memory of training: the median over seeds of each run's peak resident memory (CPU) and, where the
  backend reports it, the GPU's peak allocation, as trainer.py recorded them in metrics.json.

Nothing is re-measured here: the report reads the runs' files.
"""

import os
import statistics

from keras_frelu.rundir import RunDir


def cost_rows(folder, groups, baseline):
    """One row per group of the dataset, in plan order (the baseline's step-time ratio is 1)."""
    step_times = {group.activation: _median(_step_time(folder, run) for run in group.complete) for group in groups}
    base_time = step_times.get(baseline)
    rows = []
    for group in groups:
        row = {"activation": group.activation, **_model_costs(folder, group)}
        time = step_times[group.activation]
        row["step_time_s"] = time
        row["step_time_ratio"] = time / base_time if time is not None and base_time else None
        for key in ("peak_memory_mb", "peak_device_memory_mb"):
            row[key] = _median(run.metrics.get(key) for run in group.complete)
        row["seeds"] = len(group.complete)
        rows.append(row)
    return rows


def _model_costs(folder, group):
    """Parameters and FLOPs of the model the group's first complete run's flags build; None when unknown."""
    empty = {"parameters": None, "activation_parameters": None, "flops_per_image": None, "cost_note": None}
    run = next(iter(group.complete), None)
    config = RunDir(os.path.join(folder, run.name)).config() if run else {}
    flags, dataset = config.get("flags", {}), config.get("dataset", {})
    if not (flags.get("model") and dataset.get("image_shape") and dataset.get("num_classes")):
        return {**empty, "cost_note": "no complete run with config.json to build the model from"}
    from keras_frelu import costs  # deferred: Keras, for the report only
    from keras_frelu.config import TrainConfig
    from keras_frelu.training.network import build_model

    model = build_model(TrainConfig(model=flags["model"], activation=flags.get("activation", group.activation)),
                        tuple(dataset["image_shape"]), dataset["num_classes"])
    parameters, activation_parameters = costs.trainable_parameters(model)
    try:
        flops = costs.forward_flops(model)
    except ValueError as error:
        return {**empty, "parameters": parameters, "activation_parameters": activation_parameters,
                "cost_note": str(error)}
    return {**empty, "parameters": parameters, "activation_parameters": activation_parameters,
            "flops_per_image": flops}


def _step_time(folder, run):
    """Seconds per training step of ``run``: its batch size over its median images/s."""
    images_per_s = run.metrics.get("images_per_s")
    batch_size = RunDir(os.path.join(folder, run.name)).flags().get("batch_size")
    return batch_size / images_per_s if images_per_s and batch_size else None


def _median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def cost_phrase(row, baseline_row):
    """"at 1.31x the step time and +1.2% parameters", both against ``baseline_row`` (the side compared with),
    for a verdict line; "" when the costs are unknown."""
    parts = []
    if row and baseline_row and row.get("step_time_s") and baseline_row.get("step_time_s"):
        parts.append(f"{row['step_time_s'] / baseline_row['step_time_s']:.2f}x the step time")
    if row and baseline_row and row.get("parameters") and baseline_row.get("parameters"):
        parts.append(f"{100 * (row['parameters'] / baseline_row['parameters'] - 1):+.1f}% parameters")
    return f"at {' and '.join(parts)}" if parts else ""
