"""The comparison report, read from the runs' event files only: comparison.md, comparison.png and the
terminal summary."""

import collections
import dataclasses
import functools
import os
import re
import shlex

import numpy as np
from matplotlib.figure import Figure

from keras_frelu import events, files, rundir
from keras_frelu.compare.plan import dataset_label
from keras_frelu.compare.state import read_state
from keras_frelu.compare.tensorboard import LOG_DIR
from keras_frelu.errors import UsageError
from keras_frelu.rundir import RunDir

REPORT_MARKDOWN = "comparison.md"
REPORT_FIGURE = "comparison.png"
PROGRESS_FRACTION = 0.95  # "steps to reach 95% of the best test accuracy"
PROGRESS_COLUMN = f"steps to {PROGRESS_FRACTION:.0%} of best"


@dataclasses.dataclass
class RunResult:
    """What the event files of one run directory say (curves as ``[(step, value), ...]``)."""

    name: str
    dataset: str
    activation: str
    seed: int
    status: str
    message: str = None
    test_accuracy: list = dataclasses.field(default_factory=list)
    test_loss: list = dataclasses.field(default_factory=list)
    step: int = None
    images_per_s: float = None
    activations: dict = dataclasses.field(default_factory=dict)  # layer -> [mean, std] at its last step

    @property
    def final_accuracy(self):
        return self.test_accuracy[-1][1] if self.test_accuracy else None

    @property
    def best_accuracy(self):
        return max(value for _, value in self.test_accuracy) if self.test_accuracy else None

    @property
    def steps_to_progress(self):
        """The first step whose test accuracy reaches PROGRESS_FRACTION of the best."""
        if not self.test_accuracy:
            return None
        return next(step for step, value in self.test_accuracy if value >= PROGRESS_FRACTION * self.best_accuracy)


_ACTIVATION_TAG = re.compile(r"^activations/(.+)/(mean|std)$")


def read_run(run_dir, status, message=None, identity=None):
    """The ``RunResult`` of ``run_dir`` from its event files; ``identity`` (dataset, activation, seed)
    for a run that never started (no config.json)."""
    run = RunDir(run_dir)
    flags = run.flags()
    if flags:
        identity = (flags["dataset"], flags["activation"], flags["seed"])
    dataset, activation, seed = identity
    result = RunResult(run.name, dataset_label(dataset), activation, seed, status, message)
    test = _scalars(run, "test")
    result.test_accuracy, result.test_loss = test.get("accuracy", []), test.get("loss", [])
    train = _scalars(run, "train")
    if train.get("loss"):
        result.step = train["loss"][-1][0]
        # The median logging window, as metrics.json's images_per_s.
        result.images_per_s = float(np.median([value for _, value in train["images_per_s"]]))
    for tag, curve in _scalars(run, "activations").items():
        match = _ACTIVATION_TAG.match(tag)
        if match and curve:
            layer, statistic = match.groups()
            result.activations.setdefault(layer, [None, None])[("mean", "std").index(statistic)] = curve[-1][1]
    return result


def _scalars(run, split):
    log_dir = run.events(split)
    return events.read_scalars(log_dir) if os.path.isdir(log_dir) else {}


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
    """The runs of one (dataset, activation); statistics are over the complete ones."""

    dataset: str
    activation: str
    runs: list

    @functools.cached_property
    def complete(self):
        return [run for run in self.runs if run.status == "complete"]

    def statistic(self, attribute):
        """(mean, sample std or None) of ``attribute`` over the complete runs, or None without any."""
        values = [getattr(run, attribute) for run in self.complete if getattr(run, attribute) is not None]
        if not values:
            return None
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None

    @functools.cached_property
    def final_activations(self):
        """``{layer: (mean over seeds of the final mean, of the final std)}``."""
        layers = dict.fromkeys(layer for run in self.complete for layer in run.activations)
        return {layer: tuple(float(np.mean([run.activations[layer][index] for run in self.complete
                                            if layer in run.activations])) for index in (0, 1))
                for layer in layers}


def group_runs(results):
    """Groups per dataset (first-seen order), best mean final test accuracy first."""
    groups = {}
    for result in results:
        groups.setdefault((result.dataset, result.activation), []).append(result)
    groups = [Group(dataset, activation, runs) for (dataset, activation), runs in groups.items()]
    datasets = list(dict.fromkeys(group.dataset for group in groups))

    def rank(group):
        accuracy = group.statistic("final_accuracy")
        return datasets.index(group.dataset), -accuracy[0] if accuracy else 1.0  # no complete run: last

    return sorted(groups, key=rank)


def _mean_std(statistic, digits):
    if statistic is None:
        return "–"
    mean, std = statistic
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def _number(value, digits):
    return "–" if value is None else f"{value:.{digits}f}"


def _tally(statuses):
    """``"3 complete, 1 failed"``."""
    return ", ".join(f"{count} {status}" for status, count in sorted(collections.Counter(statuses).items()))


def _seeds_cell(group):
    others = [run.status for run in group.runs if run.status != "complete"]
    return str(len(group.complete)) + (f" of {len(group.runs)} ({_tally(others)})" if others else "")


def count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def summary_table(groups):
    lines = [f"| dataset | activation | seeds | final test accuracy | best test accuracy | {PROGRESS_COLUMN} "
             "| images/s |", "|---|---|---|---|---|---|---|"]
    for group in groups:
        lines.append(f"| {group.dataset} | {group.activation} | {_seeds_cell(group)} "
                     f"| {_mean_std(group.statistic('final_accuracy'), 4)} "
                     f"| {_mean_std(group.statistic('best_accuracy'), 4)} "
                     f"| {_mean_std(group.statistic('steps_to_progress'), 0)} "
                     f"| {_mean_std(group.statistic('images_per_s'), 0)} |")
    return lines


def winners(groups):
    lines = []
    for dataset in dict.fromkeys(group.dataset for group in groups):
        ranked = [group for group in groups if group.dataset == dataset and group.statistic("final_accuracy")]
        if ranked:
            best = ranked[0]
            lines.append(f"**{dataset}: {best.activation}** has the best final test accuracy, "
                         f"{_mean_std(best.statistic('final_accuracy'), 4)} over {count(len(best.complete), 'seed')}.")
    return lines or ["No run is complete yet."]


def activation_tables(groups):
    lines = []
    for dataset in dict.fromkeys(group.dataset for group in groups):
        columns = [group for group in groups if group.dataset == dataset and group.final_activations]
        if not columns:
            continue
        layers = list(dict.fromkeys(layer for group in columns for layer in group.final_activations))
        lines += ["", f"### {dataset}", "", "| layer | " + " | ".join(group.activation for group in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for layer in layers:
            cells = []
            for group in columns:
                statistics = group.final_activations.get(layer)
                cells.append("–" if statistics is None else f"{statistics[0]:.4g} / {statistics[1]:.4g}")
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return lines


def runs_table(results):
    lines = [f"| run | status | step | final test accuracy | best test accuracy | {PROGRESS_COLUMN} | images/s |",
             "|---|---|---|---|---|---|---|"]
    for run in results:
        lines.append(f"| {run.name} | {run.status} | {_number(run.step, 0)} "
                     f"| {_number(run.final_accuracy, 4)} | {_number(run.best_accuracy, 4)} "
                     f"| {_number(run.steps_to_progress, 0)} | {_number(run.images_per_s, 0)} |")
    return lines


def failure_lines(results):
    return [f"- {run.name}: {run.status}: {run.message or 'no output'} (log: {LOG_DIR}/{run.name}.log)"
            for run in results if run.status == "failed"]


@dataclasses.dataclass
class Report:
    folder: str
    results: list
    groups: list
    markdown: str


def build_report(folder):
    """The report of ``folder`` (nothing written)."""
    if not os.path.isdir(folder):
        raise UsageError(f"{folder} is not a folder; give a comparison folder (e.g. train_dir/compare-digits)")
    results = read_runs(folder)
    if not results:
        raise UsageError(f"{folder} holds no run directories (folders with a {rundir.CONFIG} written by trainer.py)")
    groups = group_runs(results)
    state = read_state(folder) or {}
    lines = ["# Activation comparison", "", f"{len(results)} runs: {_tally(run.status for run in results)}."]
    if state.get("trainer_args") is not None:
        lines.append(f"Trainer flags shared by every run: `{shlex.join(state['trainer_args']) or '(defaults)'}`.")
    lines += ["", *winners(groups), "", "## Test accuracy (mean ± std over seeds)", "", *summary_table(groups), "",
              f"![test accuracy and loss]({REPORT_FIGURE})", ""]
    activation_lines = activation_tables(groups)
    if activation_lines:
        lines += ["## Activations at the end of training", "",
                  "Mean / std of each activation layer's output on the monitor sample at the last step "
                  "(averaged over seeds).", *activation_lines, ""]
    lines += ["## Runs", "", *runs_table(results), ""]
    failed = failure_lines(results)
    if failed:
        lines += ["Failed runs:", "", *failed, ""]
    return Report(folder, results, groups, "\n".join(lines))


def write_report(folder):
    """Write ``comparison.md`` and ``comparison.png`` into ``folder`` (each atomically); return the Report."""
    report = build_report(folder)
    with files.atomic_write(os.path.join(folder, REPORT_MARKDOWN)) as handle:
        handle.write(report.markdown)
    activations = list(dict.fromkeys(run.activation for run in report.results))  # the order of the plan
    with files.atomic_write(os.path.join(folder, REPORT_FIGURE), "wb") as handle:
        curves_figure(report.groups, activations).savefig(handle, format="png", dpi=100)
    return report


def report_text(report):
    """What the terminal shows: the winners, the summary table, the failures and where the report is."""
    lines = ["", *winners(report.groups), "", *summary_table(report.groups)]
    failed = failure_lines(report.results)
    if failed:
        lines += ["", "Failed runs:", *failed]
    lines += ["", f"report: {os.path.join(report.folder, REPORT_MARKDOWN)}, "
                  f"{os.path.join(report.folder, REPORT_FIGURE)}"]
    return "\n".join(lines)


def mean_curve(runs, attribute):
    """(steps, mean, std) over the steps that every run has; std is zero for a single run."""
    curves = [dict(getattr(run, attribute)) for run in runs]
    steps = sorted(set.intersection(*(set(curve) for curve in curves)))
    values = np.array([[curve[step] for step in steps] for curve in curves])
    std = values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(steps))
    return np.array(steps), values.mean(axis=0), std


def curves_figure(groups, activations):
    """Test accuracy and loss against step, one row per dataset, one colour per activation (its place in
    ``activations``), ± std across seeds shaded."""
    datasets = list(dict.fromkeys(group.dataset for group in groups))
    figure = Figure(figsize=(11, 3.8 * len(datasets)), layout="constrained")
    axes = figure.subplots(len(datasets), 2, squeeze=False)
    for row, dataset in enumerate(datasets):
        for column, (attribute, label) in enumerate((("test_accuracy", "test accuracy"), ("test_loss", "test loss"))):
            ax = axes[row, column]
            for group in groups:
                runs = [run for run in group.complete if getattr(run, attribute)]
                if group.dataset != dataset or not runs:
                    continue
                steps, mean, std = mean_curve(runs, attribute)
                color = f"C{activations.index(group.activation) % 10}"
                ax.plot(steps, mean, color=color, marker=".",
                        label=f"{group.activation} ({count(len(runs), 'seed')})")
                ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
            ax.set(title=f"{dataset}: {label}", xlabel="step", ylabel=label)
            ax.grid(alpha=0.3)
            if ax.has_data():
                ax.legend()
            else:
                ax.text(0.5, 0.5, "no complete run", ha="center", va="center", transform=ax.transAxes)
    return figure
