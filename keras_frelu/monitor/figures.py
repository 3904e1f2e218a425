"""The matplotlib panels of the monitor, rendered to images with tensorflow-plot (``tfplot``).

All tfplot use of the package is here. Figures are ``matplotlib.figure.Figure`` objects (never pyplot,
which keeps global state and is not thread-safe) turned into RGB arrays with ``tfplot.figure.to_array``;
``tfplot.plot_many`` / ``tfplot.summary.plot_many``, which the original project used, fail under eager
execution. tfplot imports ``distutils``, which Python 3.12 dropped: the ``setuptools`` dependency brings
it back.

Panels, as in shaohua0116/Activation-Visualization-Histogram, with labelled axes:
- ``visualization``: one sample's activations of a layer laid out as a near-square 2-D grid (units in
  row-major order of the layer's output, NaN-padded), ``imshow`` with a colour bar;
- ``histogram``: the normalised histogram (density) of all the layer's finite values over the sample,
  with the mean and mean +- 1 standard deviation marked and the unit-normal density N(0, 1) drawn for
  reference (what SELU's self-normalisation aims at); one bin far taller than the rest (ReLU's exact
  zeros) is cut at the top and its height written on it, so it does not flatten the others;
- ``summary``: the histogram panels of every layer side by side, their visualization panels below.

Each layer's figures are built once and then updated in place: building matplotlib figures and axes costs
about as much as drawing them. Even so a set of figures takes about 0.1 s of CPU per monitored layer, the
monitor's most expensive output, so ``BackgroundFigures`` draws the sets in a thread of their own while
training goes on.
"""

import collections
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

with warnings.catch_warnings():  # tfplot 0.3.2 compares versions with distutils' deprecated LooseVersion
    warnings.simplefilter("ignore", DeprecationWarning)
    import tfplot.figure

from keras_frelu.monitor import summaries
from keras_frelu.monitor.images import COLORMAP, grid_shape

BINS = 50
NORMAL_PEAK = 1 / math.sqrt(2 * math.pi)  # the N(0, 1) density at 0
DPI = 72
PANEL_INCHES = (4.0, 3.2)  # (width, height) of one panel
SUMMARY_COLUMNS = 6  # layers per row of the summary
# Fixed margins: matplotlib's automatic layouts would double the drawing time. The visualization panel
# leaves room on the right for its colour bar's labels.
MARGINS = {"left": 0.15, "right": 0.96, "bottom": 0.14, "top": 0.91}
VISUALIZATION_MARGINS = {**MARGINS, "right": 0.86}
TICKS = 5  # at most this many ticks per axis: text is most of the drawing time


class BackgroundFigures:
    """Draws sets of figures (every layer's two panels and the summary) in one background thread.

    Matplotlib runs while TensorFlow trains: on a small network, where a training step leaves a core idle,
    the figures cost training little (bench/monitor_overhead.py). The panels are only ever touched by
    that thread, and sets are drawn in the order submitted, from the arrays handed over (not shared with
    training). ``finished`` hands back the drawn sets, as summary values, for the caller to write.
    """

    def __init__(self, layer_names):
        self._panels = {name: LayerPanels(name) for name in layer_names}
        self._pending = collections.deque()  # (step, future), oldest first
        self._executor = None
        self._prepared = False

    def prepare(self, output_shapes):
        """Build every layer's figures and draw them once, in the thread, from zeros of the layers' output
        shapes (batch axis first): building and the first drawing (font caches) cost about as much as two
        later sets, better spent while training runs than in the first real set, which may be the last
        one, waited for at the end of training. Layers with unknown dimensions are built later. Only the
        first call does anything."""
        if self._prepared:
            return
        self._prepared = True

        def build():
            for panels, shape in zip(self._panels.values(), output_shapes):
                if None not in shape[1:]:
                    panels.render(np.zeros((1, *shape[1:]), dtype=np.float32))

        self._start()
        self._executor.submit(build)

    def submit(self, step, arrays):
        """Queue the set of ``arrays`` (one per layer, sample axis first) for ``step``."""
        self._start()
        self._pending.append((step, self._executor.submit(self._draw, arrays)))

    def _start(self):
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="activation-figures")

    @property
    def pending(self):
        """Whether a submitted set has not been handed back by ``finished`` yet."""
        return bool(self._pending)

    def finished(self, wait=False):
        """``(step, summary values)`` of the sets drawn so far, oldest first; ``wait``: of every set
        submitted, after which the thread ends (a later ``submit`` starts a new one)."""
        while self._pending and (wait or self._pending[0][1].done()):
            step, future = self._pending.popleft()
            yield step, future.result()
        if wait and self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def _draw(self, arrays):
        values, visualizations, histograms = [], [], []
        for (name, panels), activations in zip(self._panels.items(), arrays):
            visualization, histogram = panels.render(activations)
            values += [_picture(f"activations/{name}/visualization", visualization),
                       _picture(f"activations/{name}/histogram", histogram)]
            visualizations.append(visualization)
            histograms.append(histogram)
        values.append(_picture("activations/summary", side_by_side(histograms, visualizations)))
        return values


def _picture(tag, rgb):
    return summaries.image(tag, [summaries.png(rgb)], *rgb.shape[:2])


class LayerPanels:
    """The ``visualization`` and ``histogram`` panels of one layer."""

    def __init__(self, layer_name):
        self.layer_name = layer_name
        self._visualization = self._histogram = None

    def render(self, values):
        """``(visualization, histogram)`` uint8 RGB pictures of ``values`` (sample axis first)."""
        if self._visualization is None:
            self._visualization = _VisualizationPanel(self.layer_name, values[0])
            self._histogram = _HistogramPanel(self.layer_name)
        self._visualization.update(values[0])
        self._histogram.update(values)
        return to_rgb(self._visualization.figure), to_rgb(self._histogram.figure)


def side_by_side(top_row, bottom_row):
    """One picture of two rows of equally sized RGB panels (the ``summary``), wrapped after
    ``SUMMARY_COLUMNS`` panels; composed from the rendered panels, so it costs no extra drawing."""
    height, width, _ = top_row[0].shape
    columns = min(len(top_row), SUMMARY_COLUMNS)
    bands = math.ceil(len(top_row) / columns)
    picture = np.full((2 * bands * height, columns * width, 3), 255, dtype=np.uint8)
    for index, (top, bottom) in enumerate(zip(top_row, bottom_row)):
        band, column = divmod(index, columns)
        left = column * width
        picture[2 * band * height:(2 * band + 1) * height, left:left + width] = top
        picture[(2 * band + 1) * height:(2 * band + 2) * height, left:left + width] = bottom
    return picture


def to_rgb(figure):
    """The rendered figure as a uint8 ``(height, width, 3)`` array."""
    return tfplot.figure.to_array(figure)[..., :3]


def _panel(margins):
    figure = Figure(figsize=PANEL_INCHES, dpi=DPI)
    figure.subplots_adjust(**margins)
    axes = figure.add_subplot()
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(MaxNLocator(TICKS))
    return figure, axes


class _VisualizationPanel:
    def __init__(self, layer_name, sample_values):
        self.figure, axes = _panel(VISUALIZATION_MARGINS)
        self.size = int(np.size(sample_values))
        self.rows, self.columns = grid_shape(self.size)
        self.image = axes.imshow(np.zeros((self.rows, self.columns)), cmap=COLORMAP, interpolation="nearest")
        self.figure.colorbar(self.image, ax=axes, label="activation", ticks=MaxNLocator(TICKS))
        axes.set_title(f"{layer_name}: sample 0, {_shape_text(np.shape(sample_values))}", fontsize="medium")
        axes.set_xlabel(f"unit mod {self.columns}")
        axes.set_ylabel(f"unit // {self.columns}")

    def update(self, sample_values):
        grid = np.full(self.rows * self.columns, np.nan, dtype=np.float32)
        grid[:self.size] = np.ravel(sample_values)
        self.image.set_data(grid.reshape(self.rows, self.columns))
        finite = grid[np.isfinite(grid)]
        self.image.set_clim(*((finite.min(), finite.max()) if finite.size else (0.0, 1.0)))


class _HistogramPanel:
    def __init__(self, layer_name):
        self.layer_name = layer_name
        self.figure, self.axes = _panel(MARGINS)
        axes = self.axes
        self.bars = axes.stairs(np.zeros(BINS), np.arange(BINS + 1.0), fill=True, alpha=0.6, label="activations")
        self.spread = axes.axvspan(-1.0, 1.0, color="tab:orange", alpha=0.15, label="mean \u00b1 1 std")
        self.mean = axes.axvline(0.0, color="tab:orange", linewidth=1.5, label="mean")
        (self.normal,) = axes.plot([], [], color="black", linestyle="--", linewidth=1.0, label="N(0, 1) density")
        self.legend = axes.legend(fontsize="x-small", loc="upper right")
        self.cut_bin = axes.text(0.0, 0.97, "", transform=axes.get_xaxis_transform(), ha="left", va="top",
                                 fontsize="small")
        self.no_data = axes.text(0.5, 0.5, "no finite values", transform=axes.transAxes, ha="center",
                                 va="center")
        axes.set_xlabel("activation value")
        axes.set_ylabel("density")

    def update(self, values):
        flat = np.asarray(values, dtype=np.float64).ravel()
        flat = flat[np.isfinite(flat)]
        self._show(bool(flat.size))
        if not flat.size:  # a diverged model: say so instead of failing
            self.axes.set_title(self.layer_name, fontsize="medium")
            return
        mean, std = flat.mean(), flat.std()
        low, high = flat.min(), flat.max()
        if high <= low:  # a constant layer: give the single bin some width
            low, high = low - 0.5, high + 0.5
        density, edges = np.histogram(flat, bins=BINS, range=(low, high), density=True)
        self.bars.set_data(density, edges)
        self.spread.set_x(mean - std)
        self.spread.set_width(2 * std)
        self.mean.set_xdata([mean, mean])
        self.legend.get_texts()[2].set_text(f"mean {mean:.3g}, std {std:.3g}")
        x = np.linspace(low, high, 200)
        self.normal.set_data(x, NORMAL_PEAK * np.exp(-0.5 * x ** 2))
        self.axes.set_xlim(low, high)
        self.axes.set_ylim(0.0, self._top(density, edges))
        self.axes.set_title(f"{self.layer_name}: {np.mean(flat == 0):.0%} zero, {np.mean(flat < 0):.0%} negative",
                            fontsize="medium")

    def _top(self, density, edges):
        """The y limit; a bin more than twice as tall as everything else is cut and labelled."""
        ceiling = max(np.partition(density, -2)[-2], NORMAL_PEAK) * 1.15
        tallest = int(np.argmax(density))
        cut = density[tallest] > 2 * ceiling
        self.cut_bin.set_visible(cut)
        if not cut:
            return max(density[tallest], NORMAL_PEAK) * 1.05
        self.cut_bin.set_x(edges[tallest])
        self.cut_bin.set_text(f"\u2191 {density[tallest]:.3g}")
        return ceiling

    def _show(self, has_data):
        for artist in (self.bars, self.spread, self.mean, self.normal, self.legend):
            artist.set_visible(has_data)
        self.no_data.set_visible(not has_data)
        if not has_data:
            self.cut_bin.set_visible(False)


def _shape_text(shape):
    return "\u00d7".join(map(str, shape)) + (f" = {math.prod(shape)} units" if len(shape) > 1 else " units")
