"""The comparison report of a folder of runs, from their event files, predictions and metrics.json only:
comparison.json (``summary``), comparison.md and the terminal summary rendered from it (``markdown``),
comparison.png and each dataset's figures (``figures``).

``write_report(folder, baseline=None, alpha=0.05)`` writes them all; ``report_text(report)`` is what the
terminal shows. Reading is ``results``, the statistics ``comparisons`` and ``statistics``, learning speed
``speed``, the observations ``observations``.
"""

import dataclasses
import math
import os

from keras_frelu import files, rundir
from keras_frelu.compare import figures, markdown, results, summary
from keras_frelu.compare.state import read_state
from keras_frelu.compare.tensorboard import LOG_DIR
from keras_frelu.config import RESUMABLE_CHANGES
from keras_frelu.errors import UsageError

REPORT_MARKDOWN = "comparison.md"
REPORT_JSON = "comparison.json"
REPORT_FIGURE = "comparison.png"
DEFAULT_ALPHA = 0.05
count = markdown.count  # runner.py's phrasing of counts


@dataclasses.dataclass
class Report:
    folder: str
    results: list
    groups: dict  # dataset -> [Group, ...] in plan order
    summary: dict  # comparison.json
    markdown: str


def check_alpha(alpha):
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 < alpha < 1):
        raise UsageError(f"--alpha must be a number between 0 and 1 (exclusive), got {alpha}; e.g. --alpha 0.05")


# The flags in which the runs of one comparison differ, and those that do not change what a run learns.
PER_RUN_FLAGS = {"dataset", "activation", "seed", "prefix"}


def check_one_comparison(folder, runs):
    """A ``UsageError`` when the runs of ``folder`` were trained with different experiment flags (another
    learning rate, model, number of steps...): their differences would not be the activations'."""
    ignored = PER_RUN_FLAGS | (RESUMABLE_CHANGES - {"max_training_steps"})
    first = None
    for run in runs:
        flags = rundir.RunDir(os.path.join(folder, run.name)).flags()
        if not flags:
            continue
        experiment = {key: value for key, value in flags.items() if key not in ignored}
        if first is None:
            first = (run.name, experiment)
            continue
        differing = sorted(key for key in experiment.keys() | first[1].keys()
                           if experiment.get(key) != first[1].get(key))
        if differing:
            key = differing[0]
            raise UsageError(f"{folder} holds runs of different experiments: {first[0]} has --{key} "
                             f"{first[1].get(key)!r}, {run.name} has {experiment.get(key)!r}; a report compares "
                             "the runs of one comparison: give the folder script.py made for it, or move the others "
                             "out")


def build_report(folder, baseline=None, alpha=DEFAULT_ALPHA):
    """The report of ``folder`` (nothing written)."""
    check_alpha(alpha)
    if not os.path.isdir(folder):
        raise UsageError(f"{folder} is not a folder; give a comparison folder (e.g. train_dir/compare-digits)")
    runs = results.read_runs(folder)
    if not runs:
        raise UsageError(f"{folder} holds no run directories (folders with a {rundir.CONFIG} written by trainer.py)")
    check_one_comparison(folder, runs)
    trainer_args = (read_state(folder) or {}).get("trainer_args")
    content, groups = summary.summarise(folder, runs, baseline, alpha, trainer_args)
    return Report(folder, runs, groups, content, markdown.render(content, REPORT_FIGURE, LOG_DIR))


def write_report(folder, baseline=None, alpha=DEFAULT_ALPHA):
    """Write comparison.json, comparison.md, comparison.png and each dataset's figures into ``folder`` (each
    atomically); return the Report. ``baseline``: the activation the others are compared with (default relu
    when compared, else the first); ``alpha``: the significance level after Holm's correction."""
    report = build_report(folder, baseline, alpha)
    write_figures(report)
    files.write_json(os.path.join(folder, REPORT_JSON), report.summary)
    with files.atomic_write(os.path.join(folder, REPORT_MARKDOWN)) as handle:
        handle.write(report.markdown)
    return report


def write_figures(report):
    """comparison.png, then the figures each dataset's summary lists, one colour per activation throughout."""
    activations = list(dict.fromkeys(run.activation for run in report.results))  # the order of the plan
    palette = figures.colours(activations)
    targets = {dataset["name"]: dataset["target_validation_accuracy"] for dataset in report.summary["datasets"]}
    figures.save(figures.curves_figure(report.groups, targets, palette), os.path.join(report.folder, REPORT_FIGURE))
    for dataset in report.summary["datasets"]:
        for kind, plan in dataset["figures"].items():
            if plan:
                figure = draw(kind, dataset["name"], report.groups[dataset["name"]], plan, palette)
                figures.save(figure, os.path.join(report.folder, plan["file"]))


def draw(kind, dataset, groups, plan, palette):
    """The Figure of ``kind`` laid out as ``plan`` (a figure entry of comparison.json) says."""
    if kind == "parameters":
        return figures.parameters_figure(dataset, groups, plan["rows"], [tuple(series) for series in plan["columns"]],
                                         palette)
    draw_kind = {"activations": figures.statistics_figure, "histograms": figures.histograms_figure,
                 "gradients": figures.gradients_figure}[kind]
    return draw_kind(dataset, groups, plan["rows"], palette)


def report_text(report):
    """What the terminal shows: the verdicts, a table per dataset, the failures and where the report is."""
    paths = [os.path.join(report.folder, name) for name in (REPORT_MARKDOWN, REPORT_JSON, REPORT_FIGURE)]
    return markdown.terminal(report.summary, LOG_DIR, paths)
