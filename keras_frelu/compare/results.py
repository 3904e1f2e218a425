"""Reading a comparison's run directories: each run's curves, its activation histograms at the last
monitored step, its test predictions and metrics.json; and the runs grouped per (dataset, activation).

What an older run directory lacks (validation/ events, predictions.npz, some tags) is listed in
``RunResult.missing``: the report says what it could not compute instead of failing.
"""

import contextlib
import dataclasses
import functools
import logging
import os
import re
import zipfile

import numpy as np

from keras_frelu import events
from keras_frelu.compare.plan import dataset_label
from keras_frelu.compare.state import read_state
from keras_frelu.rundir import PREDICTIONS, RunDir

SPLITS = ("train", "validation", "test", "activations")
# The monitor's per-layer statistics that the report draws and tabulates.
LAYER_STATISTICS = ("mean", "std", "dead_fraction", "negative_fraction")
_HISTOGRAM_TAG = re.compile(r"^activations/(.+)/values$")


@dataclasses.dataclass
class RunResult:
    """What one run directory says; curves are ``[(step, value), ...]`` sorted by step."""

    name: str
    dataset: str
    activation: str
    seed: int
    status: str
    message: str = None
    scalars: dict = dataclasses.field(default_factory=dict)  # split -> {tag: curve}
    histograms: dict = dataclasses.field(default_factory=dict)  # layer -> (step, (k, 3) [left, right, count])
    predictions: dict = None  # {"predicted": int array, "label": int array} over the test split
    metrics: dict = dataclasses.field(default_factory=dict)
    missing: list = dataclasses.field(default_factory=list)  # what the run directory lacks, in words

    @property
    def complete(self):
        return self.status == "complete"

    def curve(self, split, tag):
        return self.scalars.get(split, {}).get(tag, [])

    def final(self, split, tag):
        """The value at the last step of a curve, None without one."""
        curve = self.curve(split, tag)
        return curve[-1][1] if curve else None

    def tags(self, split, pattern):
        """``{match.groups(): tag}`` of the tags of ``split`` matching the regular expression ``pattern``."""
        return {match.groups(): tag for tag in self.scalars.get(split, {})
                if (match := re.fullmatch(pattern, tag))}

    @property
    def step(self):
        curve = self.curve("train", "loss")
        return curve[-1][0] if curve else None

    @property
    def images_per_s(self):
        """The median logging window, as metrics.json's images_per_s."""
        curve = self.curve("train", "images_per_s")
        return float(np.median([value for _, value in curve])) if curve else None

    @property
    def best_validation(self):
        """(step, accuracy) of the first best validation accuracy, None without validation events."""
        curve = self.curve("validation", "accuracy")
        return max(curve, key=lambda point: (point[1], -point[0])) if curve else None

    @property
    def correct(self):
        """Per test example, whether the final model classified it correctly (None without predictions)."""
        return None if self.predictions is None else self.predictions["predicted"] == self.predictions["label"]


def read_run(run_dir, status, message=None, identity=None):
    """The ``RunResult`` of ``run_dir``; ``identity`` (dataset, activation, seed) for a run that never
    started (no config.json). Histograms and predictions are read for complete runs only."""
    run = RunDir(run_dir)
    flags = run.flags()
    if flags:
        identity = (flags["dataset"], flags["activation"], flags["seed"])
    dataset, activation, seed = identity
    result = RunResult(run.name, dataset_label(dataset), activation, seed, status, message, metrics=run.metrics())
    for split in SPLITS:
        log_dir = run.events(split)
        if os.path.isdir(log_dir):
            with _quiet("tensorflow"):  # the event file reader's deprecation notice
                result.scalars[split] = events.read_scalars(log_dir)
        elif result.complete:
            result.missing.append(f"no {split}/ events")
    if result.complete:
        if "activations" in result.scalars:
            result.histograms = final_histograms(run.events("activations"))
        result.predictions = read_predictions(run.predictions_path, result.missing)
    return result


@contextlib.contextmanager
def _quiet(logger_name):
    """Only errors from ``logger_name`` within the block: its readers' warnings (deprecation, the steps a
    resumed run replaced) say nothing to the report's reader."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def final_histograms(log_dir):
    """``{layer: (step, buckets)}``: each ``activations/<layer>/values`` histogram at its last step, with the
    steps a restart replaced dropped (TensorBoard's own reader, keeping one event per tag: the last)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    with _quiet("tensorboard"):
        accumulator = EventAccumulator(log_dir, size_guidance={"tensors": 1}).Reload()
    histograms = {}
    for tag in accumulator.Tags()["tensors"]:
        match = _HISTOGRAM_TAG.match(tag)
        if match and accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "histograms":
            last = accumulator.Tensors(tag)[-1]
            buckets = np.asarray(make_ndarray(last.tensor_proto), dtype=np.float64)
            if buckets.ndim == 2 and buckets.shape[1] == 3:
                histograms[match.group(1)] = (last.step, buckets)
    return histograms


def read_predictions(path, missing):
    """predictions.npz's ``predicted`` and ``label``; None (and a note in ``missing``) if absent or unusable."""
    try:
        with np.load(path) as archive:
            predictions = {key: np.asarray(archive[key]).ravel() for key in ("predicted", "label")}
    except FileNotFoundError:
        missing.append(f"no {PREDICTIONS}")
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        missing.append(f"{PREDICTIONS} unreadable ({error})")
        return None
    if predictions["predicted"].shape != predictions["label"].shape:
        missing.append(f"{PREDICTIONS} unreadable (predicted and label differ in length)")
        return None
    return predictions


def read_runs(folder):
    """Every run of ``folder``: those in runs.json (with their recorded status), then every other
    directory with a config.json (complete if its metrics.json says so)."""
    state = read_state(folder) or {"runs": {}}
    results = []
    for name, run in state["runs"].items():
        results.append(read_run(os.path.join(folder, name), run["status"], run.get("message"),
                                (run["dataset"], run["activation"], run["seed"])))
    for name in sorted(os.listdir(folder)):
        run = RunDir(os.path.join(folder, name))
        if name not in state["runs"] and run.is_run():
            results.append(read_run(run.path, "complete" if run.is_complete() else "incomplete"))
    return results


@dataclasses.dataclass
class Group:
    """The runs of one (dataset, activation); curves and figures are over the complete ones."""

    dataset: str
    activation: str
    runs: list

    @functools.cached_property
    def complete(self):
        return [run for run in self.runs if run.complete]

    def seed_curve(self, split, tag):
        """(steps, mean, min, max) over the complete runs that have the curve, on the steps they all have;
        None without any."""
        curves = [dict(run.curve(split, tag)) for run in self.complete if run.curve(split, tag)]
        if not curves:
            return None
        steps = sorted(set.intersection(*(set(curve) for curve in curves)))
        if not steps:
            return None
        values = np.array([[curve[step] for step in steps] for curve in curves])
        return np.array(steps), values.mean(axis=0), values.min(axis=0), values.max(axis=0)

    def final_mean(self, split, tag):
        """The mean over the complete runs of the curve's last value; None without any."""
        values = [run.final(split, tag) for run in self.complete if run.curve(split, tag)]
        return float(np.mean(values)) if values else None


def group_runs(results):
    """Groups in the order of the plan (first seen), datasets first."""
    groups = {}
    for result in results:
        groups.setdefault((result.dataset, result.activation), []).append(result)
    datasets = list(dict.fromkeys(dataset for dataset, _ in groups))
    ordered = sorted(groups.items(), key=lambda item: datasets.index(item[0][0]))  # stable: plan order within
    return [Group(dataset, activation, runs) for (dataset, activation), runs in ordered]


def layer_names(groups, pattern, split="activations"):
    """The first group of ``pattern`` over the tags of ``split`` in the complete runs of ``groups``, each
    once, in order of first appearance (the model's order, in which the monitor writes them)."""
    names = {}
    for group in groups:
        for run in group.complete:
            for (name, *_rest) in run.tags(split, pattern):
                names.setdefault(name)
    return list(names)
