"""The comparison's figures (matplotlib ``Figure``, never pyplot), one colour per activation in all of them.

- ``curves_figure`` (comparison.png): per dataset, training loss, validation accuracy (with the
  learning-speed target dashed) and test accuracy against step;
- ``statistics_figure``: one row per activation layer; its output's mean, std, dead fraction and negative
  fraction over training;
- ``histograms_figure``: one row per activation layer; the histogram of its output values at the last
  monitored step, every activation (and seed) overlaid, as densities on a log scale;
- ``gradients_figure``: one row per layer with weights; its gradient norm over training on a log scale;
- ``parameters_figure``: one row per activation layer, one column per learned activation parameter (a
  scalar, or the L2 norm of a vector) over training.

Lines are the mean over the complete seeds of an activation, bands their min-max.
"""

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from keras_frelu import files
from keras_frelu.compare.results import LAYER_STATISTICS

DPI = 100
PANEL = (3.4, 2.3)  # inches (width, height) of one small-multiple panel
WIDE_PANEL = (9.0, 2.3)  # inches of a panel alone in its row
HISTOGRAM_DECADES = 5  # densities this far below the peak are a handful of values: cut for the rest to show
SYMLOG_BEYOND = 10.0  # histogram values beyond this: a symmetric-log value axis
MIN_WIDTH = 8.0  # inches: room for the title and the legend of a figure with one or two columns


def colours(activations):
    """``{activation: colour}`` by its place in the plan: tab10, or tab20 for more than ten."""
    palette = matplotlib.colormaps["tab10" if len(activations) <= 10 else "tab20"]
    return {activation: matplotlib.colors.to_hex(palette(index % palette.N))
            for index, activation in enumerate(activations)}


def save(figure, path):
    """Write ``figure`` as a PNG at ``path``, atomically."""
    with files.atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)


def _grid(rows, columns, panel, title, sharex="col"):
    figure = Figure(figsize=(max(panel[0] * columns, MIN_WIDTH), panel[1] * rows + 0.8), layout="constrained")
    figure.suptitle(title)
    return figure, figure.subplots(rows, columns, squeeze=False, sharex=sharex)


def _band(ax, curve, colour, label):
    """The seed mean as a line, the seeds' min-max as a band; nothing for a missing curve."""
    if curve is None:
        return
    steps, mean, low, high = curve
    ax.plot(steps, mean, color=colour, label=label, linewidth=1.5)
    ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)


def _legend(figure, groups, palette, seeds=True):
    """One legend for the whole figure: the activations in plan order, with their complete seeds."""
    labels = {group.activation: f"{group.activation} ({_seeds(len(group.complete))})" if seeds else group.activation
              for group in groups}
    handles = [matplotlib.lines.Line2D([], [], color=palette[activation], linewidth=2) for activation in labels]
    figure.legend(handles, list(labels.values()), loc="outside lower center", ncols=min(len(labels), 6),
                  frameon=False)


def _seeds(number):
    return f"{number} seed{'' if number == 1 else 's'}"


def _log_scale(ax, decades=None):
    """A log y axis with at most six labelled decades (showing at most ``decades`` below the top), or
    matplotlib's labelled minor ticks when the data span less than a decade."""
    ax.set_yscale("log")
    if not ax.has_data():
        return
    low, high = ax.get_ylim()
    if decades and high / low > 10 ** decades:
        ax.set_ylim(high / 10 ** decades, high)
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(numticks=6))
    if high / low >= 10:
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _finish(ax, title, ylabel, bottom):
    ax.set_title(title, fontsize="medium")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if bottom:
        ax.set_xlabel("step")
    if not ax.has_data():
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")


def curves_figure(groups_by_dataset, targets, palette):
    """comparison.png: one row per dataset; training loss, validation accuracy, test accuracy."""
    panels = (("train", "loss", "training loss"), ("validation", "accuracy", "validation accuracy"),
              ("test", "accuracy", "test accuracy"))
    figure, axes = _grid(len(groups_by_dataset), len(panels), (4.2, 3.2), "Learning curves (band: min-max over seeds)")
    for row, (dataset, groups) in enumerate(groups_by_dataset.items()):
        for column, (split, tag, label) in enumerate(panels):
            ax = axes[row, column]
            for group in groups:
                _band(ax, group.seed_curve(split, tag), palette[group.activation], group.activation)
            if split == "validation" and targets.get(dataset) is not None:
                ax.axhline(targets[dataset], color="black", linestyle="--", linewidth=0.8,
                           label=f"target {targets[dataset]:.4f}")
                ax.legend(loc="lower right", fontsize="small")
            _finish(ax, f"{dataset}: {label}", label, bottom=True)
    _legend(figure, [group for groups in groups_by_dataset.values() for group in groups], palette, seeds=False)
    return figure


def statistics_figure(dataset, groups, layers, palette):
    """Rows: ``layers``; columns: mean, std, dead fraction, negative fraction of the layer's output."""
    figure, axes = _grid(len(layers), len(LAYER_STATISTICS), PANEL,
                         f"{dataset}: activation statistics per layer over training (band: min-max over seeds)")
    for row, layer in enumerate(layers):
        for column, statistic in enumerate(LAYER_STATISTICS):
            ax, label = axes[row, column], statistic.replace("_", " ")
            for group in groups:
                _band(ax, group.seed_curve("activations", f"activations/{layer}/{statistic}"),
                      palette[group.activation], group.activation)
            _finish(ax, f"{layer}: {label}", label, bottom=row == len(layers) - 1)
    _legend(figure, groups, palette)
    return figure


def histograms_figure(dataset, groups, layers, palette):
    """One row per layer: every complete run's final histogram of the layer's output as a density."""
    figure, axes = _grid(len(layers), 1, WIDE_PANEL,
                         f"{dataset}: activation values at the last monitored step (one line per seed)",
                         sharex=False)  # each layer has its own range of values
    for row, layer in enumerate(layers):
        ax = axes[row, 0]
        drawn = []
        for group in groups:
            for run in group.complete:
                if layer in run.histograms:
                    step, buckets = run.histograms[layer]
                    ax.stairs(_density(buckets), np.append(buckets[:, 0], buckets[-1, 1]),
                              color=palette[group.activation], linewidth=1.2)
                    drawn.append(buckets)
        _value_axis(ax, drawn)
        _log_scale(ax, decades=HISTOGRAM_DECADES)
        ax.set_xlabel("activation value")
        _finish(ax, layer, "density (log)", bottom=False)
    _legend(figure, groups, palette)
    return figure


def _value_axis(ax, histograms):
    """The x axis over the buckets that hold values; symmetric-log when they reach far out (the monitor's
    fixed edges run to ±8192), linear within ±1."""
    occupied = np.concatenate([buckets[buckets[:, 2] > 0, :2].ravel() for buckets in histograms] or [[]])
    if occupied.size:
        ax.set_xlim(occupied.min(), occupied.max())
        if np.abs(occupied).max() > SYMLOG_BEYOND:
            ax.set_xscale("symlog", linthresh=1.0)


def _density(buckets):
    """Counts per unit of value over the total count, so histograms of different bucket widths compare."""
    widths = buckets[:, 1] - buckets[:, 0]
    total = buckets[:, 2].sum()
    density = buckets[:, 2] / (total * np.where(widths > 0, widths, 1.0)) if total else buckets[:, 2]
    return np.where(density > 0, density, np.nan)  # log scale: empty buckets drawn as gaps


def gradients_figure(dataset, groups, layers, palette):
    """One row per layer with weights: its gradient norm over training, log scale."""
    figure, axes = _grid(len(layers), 1, (WIDE_PANEL[0], 1.8),  # many layers: lower rows
                         f"{dataset}: gradient norm per layer over training (band: min-max over seeds)")
    for row, layer in enumerate(layers):
        ax = axes[row, 0]
        for group in groups:
            _band(ax, group.seed_curve("activations", f"gradient_norm/{layer}"), palette[group.activation],
                  group.activation)
        _log_scale(ax)
        _finish(ax, layer, "gradient norm (log)", bottom=row == len(layers) - 1)
    _legend(figure, groups, palette)
    return figure


def parameters_figure(dataset, groups, layers, series, palette):
    """Rows: ``layers``; columns: ``series`` of (activation, weight tag), e.g. ("flexrelu", "bias") or
    ("srelu", "t_left_norm")."""
    figure, axes = _grid(len(layers), len(series), PANEL,
                         f"{dataset}: learned activation parameters over training (band: min-max over seeds)")
    by_name = {group.activation: group for group in groups}
    for row, layer in enumerate(layers):
        for column, (activation, weight) in enumerate(series):
            ax = axes[row, column]
            _band(ax, by_name[activation].seed_curve("activations", f"parameters/{layer}/{weight}"),
                  palette[activation], activation)
            _finish(ax, f"{layer}: {activation} {weight}", weight, bottom=row == len(layers) - 1)
    _legend(figure, [by_name[activation] for activation in dict.fromkeys(name for name, _ in series)], palette)
    return figure
