"""The matplotlib panels of the monitor, rendered to images with tensorflow-plot (``tfplot``).

All tfplot use of the package is here. Figures are ``matplotlib.figure.Figure`` objects (never pyplot,
which keeps global state and is not thread-safe) turned into RGB arrays with ``tfplot.figure.to_array``
where TensorFlow is loaded, elsewhere with the Agg canvas it wraps (tfplot imports TensorFlow): the
ActivationMonitor draws them in a process of its own without TensorFlow (``figure_process``);
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

One figure of each kind is built once and paints every layer in turn: building matplotlib figures and
axes costs about as much as drawing them. Its frame (legend, y label, colour bar gradient) is drawn once,
by tfplot; each picture then draws only what changes over a copy of the frame (``_Panel``). Even so
figures are the monitor's most expensive output; the monitor draws them in a child process of their own
(``keras_frelu.monitor.figure_process``) while training goes on. The figures are only ever touched by one
thread.
"""

import math
import sys
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import ScaledTranslation

from keras_frelu.monitor import summaries
from keras_frelu.monitor.images import COLORMAP, grid_shape

BINS = 50
NORMAL_PEAK = 1 / math.sqrt(2 * math.pi)  # the N(0, 1) density at 0
DPI = 72
PANEL_INCHES = (4.0, 3.2)  # (width, height) of one panel
SUMMARY_COLUMNS = 6  # layers per row of the summary
# Fixed margins: matplotlib's automatic layouts would double the drawing time. The visualization panel
# leaves room on the right for its colour bar's labels.
MARGINS = {"left": 0.17, "right": 0.96, "bottom": 0.16, "top": 0.91}
VISUALIZATION_MARGINS = {**MARGINS, "right": 0.82}
# Points between an axis and its label's near edge, clear of the tick labels (5 characters, such as
# "-0.25", on the y axes and the colour bar)
XLABEL_OFFSET, YLABEL_OFFSET, COLORBAR_LABEL_OFFSET = 20, 28, 36
TICKS = 5  # at most this many ticks per axis: text is most of the drawing time
POWER_LIMITS = (-2, 4)  # tick values outside 1e-2 ... 1e4 are written as multiples of a power of 10
TICK_LABEL_SIZE = "small"


class FigureSets:
    """Sets of figures: every layer's two panels and the summary, as summary values to write; ``panels``
    (a ``Panels``) may be shared with other sets, one at a time."""

    def __init__(self, layer_names, panels=None):
        self.layer_names = list(layer_names)
        self._panels = Panels() if panels is None else panels

    def prepare(self):
        """Build the figures and draw their frames, unless done: that costs about as much as a set, better
        spent while training runs than in the first set, which may be the last one, waited for at the end
        of training."""
        if not self._panels.built:
            self._panels.render("", np.zeros((1, 1), dtype=np.float32))

    def draw(self, arrays):
        """The summary values of one set, from ``arrays`` (one per layer, sample axis first)."""
        values, visualizations, histograms = [], [], []
        for name, activations in zip(self.layer_names, arrays):
            visualization, histogram = self._panels.render(name, activations)
            values += [_picture(f"activations/{name}/visualization", visualization),
                       _picture(f"activations/{name}/histogram", histogram)]
            visualizations.append(visualization)
            histograms.append(histogram)
        values.append(_picture("activations/summary", side_by_side(histograms, visualizations)))
        return values


def _picture(tag, rgb):
    return summaries.image(tag, [summaries.png(rgb)], *rgb.shape[:2])


class Panels:
    """The ``visualization`` and ``histogram`` panels: one figure of each kind paints every layer in turn
    (building figures costs as much as drawing them a few times)."""

    def __init__(self):
        self._visualization = self._histogram = None

    @property
    def built(self):
        return self._visualization is not None

    def render(self, layer_name, values):
        """``(visualization, histogram)`` uint8 RGB pictures of the layer's ``values`` (sample axis first)."""
        if not self.built:
            self._visualization, self._histogram = _VisualizationPanel(), _HistogramPanel()
        self._visualization.update(layer_name, values[0])
        self._histogram.update(layer_name, values)
        return self._visualization.to_rgb(), self._histogram.to_rgb()


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


class _Panel:
    """A one-axes figure drawn in two layers (matplotlib's blitting): ``tfplot.figure.to_array`` renders
    the frame once in full, everything but the artists registered with ``changing``; then each
    ``to_rgb`` copies that frame into an Agg canvas and draws only the changing artists over it, in the
    order registered. ``keep_on_top`` names frame artists (a legend) that changing ones must not cover:
    their pixels are copied back from the frame last. The frame must not change after the first
    ``to_rgb``.

    Title and axis labels sit at fixed positions: matplotlib would otherwise measure every tick label at
    each drawing to place them, a quarter of the drawing time.
    """

    def __init__(self, margins, tick_locators):
        self.figure = Figure(figsize=PANEL_INCHES, dpi=DPI)
        self.figure.subplots_adjust(**margins)
        self.axes = self.figure.add_subplot()
        self.axes.tick_params(labelsize=TICK_LABEL_SIZE)
        # Tick labels of at most 5 characters (the labels' offsets assume it): a common factor such as
        # 1e-4 goes to the end of the axis
        self.axes.ticklabel_format(style="sci", scilimits=POWER_LIMITS)
        self.axes.xaxis.set_major_locator(tick_locators[0])
        self.axes.yaxis.set_major_locator(tick_locators[1])
        _place_label(self.axes.xaxis, 0.5, 0.0, 0, -XLABEL_OFFSET)
        _place_label(self.axes.yaxis, 0.0, 0.5, -YLABEL_OFFSET, 0)
        self._changing, self._kept = [], []
        self._frame = self._canvas = None

    def set_title(self, text):
        self.axes.set_title(text, fontsize="medium", y=1.0)

    def changing(self, *artists):
        """Register artists redrawn at every ``to_rgb`` (drawn in this order, after the frame)."""
        for artist in artists:
            artist.set_animated(True)
        self._changing += artists

    def keep_on_top(self, *artists):
        self._kept += artists

    def to_rgb(self):
        """The figure as it is now, a uint8 ``(height, width, 3)`` array."""
        if self._frame is None:
            self._frame = _to_array(self.figure)
            self._canvas = FigureCanvasAgg(self.figure)
            renderer = self._canvas.get_renderer()
            self._kept_boxes = [_pixel_slices(artist.get_window_extent(renderer), self._frame.shape[0])
                                for artist in self._kept]
        renderer = self._canvas.get_renderer()
        pixels = np.asarray(renderer.buffer_rgba())
        pixels[...] = self._frame
        for artist in self._changing:
            artist.draw(renderer)
        for box in self._kept_boxes:
            pixels[box] = self._frame[box]
        return pixels[..., :3].copy()


def _to_array(figure):
    """The figure drawn in full as an RGBA array: by tfplot where TensorFlow is loaded; elsewhere by an Agg
    canvas directly, as ``tfplot.figure.to_array`` does, since tfplot imports TensorFlow."""
    if "tensorflow" in sys.modules:
        with warnings.catch_warnings():  # tfplot 0.3.2 compares versions with distutils' deprecated LooseVersion
            warnings.simplefilter("ignore", DeprecationWarning)
            import tfplot.figure
        return tfplot.figure.to_array(figure)
    previous = figure.canvas
    try:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()
    finally:
        figure.set_canvas(previous)


def _place_label(axis, x, y, right, up):
    """Put the axis label at ``(x, y)`` in axes coordinates moved by ``(right, up)`` points."""
    axes = axis.axes
    axis.set_label_coords(x, y, axes.transAxes + ScaledTranslation(right / 72, up / 72,
                                                                     axes.figure.dpi_scale_trans))


def _pixel_slices(box, height):
    """Row and column slices of the pixels covered by a display-space box (origin bottom left)."""
    rows = slice(max(int(height - box.y1) - 1, 0), int(math.ceil(height - box.y0)) + 1)
    return rows, slice(max(int(box.x0) - 1, 0), int(math.ceil(box.x1)) + 1)


class _VisualizationPanel(_Panel):
    def __init__(self):
        super().__init__(VISUALIZATION_MARGINS, [MaxNLocator(TICKS, integer=True) for _ in range(2)])
        axes = self.axes
        self.image = axes.imshow(np.zeros((1, 1)), cmap=COLORMAP, interpolation="nearest")
        colorbar = self.figure.colorbar(self.image, ax=axes, label="activation", ticks=MaxNLocator(TICKS))
        colorbar.ax.tick_params(labelsize=TICK_LABEL_SIZE)
        colorbar.formatter.set_powerlimits(POWER_LIMITS)
        _place_label(colorbar.ax.yaxis, 1.0, 0.5, COLORBAR_LABEL_OFFSET, 0)
        # The grid's shape sets the image axes' box (square cells) and ticks; the colour bar's gradient
        # and outline do not change with its limits, only its ticks. The image covers half of the spines.
        self.changing(self.image, *axes.spines.values(), axes.xaxis, axes.yaxis, axes.title,
                      colorbar.ax.yaxis)

    def update(self, layer_name, sample_values):
        size = int(np.size(sample_values))
        rows, columns = grid_shape(size)
        grid = np.full(rows * columns, np.nan, dtype=np.float32)  # NaN cells are left blank
        grid[:size] = np.ravel(sample_values)
        self.image.set_data(grid.reshape(rows, columns))
        self.image.set_extent((-0.5, columns - 0.5, rows - 0.5, -0.5))
        self.axes.set_xlim(-0.5, columns - 0.5)
        self.axes.set_ylim(rows - 0.5, -0.5)
        self.axes.apply_aspect()
        finite = grid[np.isfinite(grid)]
        self.image.set_clim(*((finite.min(), finite.max()) if finite.size else (0.0, 1.0)))
        self.set_title(f"{layer_name}: sample 0, {_shape_text(np.shape(sample_values))}")
        self.axes.set_xlabel(f"unit mod {columns}")
        self.axes.set_ylabel(f"unit // {columns}")


class _HistogramPanel(_Panel):
    def __init__(self):
        super().__init__(MARGINS, [MaxNLocator(TICKS) for _ in range(2)])
        axes = self.axes
        self.spread = axes.axvspan(-1.0, 1.0, color="tab:orange", alpha=0.15, label="mean \u00b1 1 std")
        self.bars = axes.stairs(np.zeros(BINS), np.arange(BINS + 1.0), fill=True, alpha=0.6, label="activations")
        self.mean = axes.axvline(0.0, color="tab:orange", linewidth=1.5, label="mean")
        (self.normal,) = axes.plot([], [], color="black", linestyle="--", linewidth=1.0, label="N(0, 1) density")
        legend = axes.legend(handles=[self.bars, self.spread, self.mean, self.normal], fontsize="x-small",
                             loc="upper right")
        self.cut_bin = axes.text(0.0, 0.97, "", transform=axes.get_xaxis_transform(), ha="left", va="top",
                                 fontsize="small")
        self.no_data = axes.text(0.5, 0.5, "no finite values", transform=axes.transAxes, ha="center",
                                 va="center")
        axes.set_ylabel("density")
        # Drawn in matplotlib's usual order: patches, ticks, lines, spines, texts; the legend stays on top.
        self.changing(self.spread, self.bars, axes.xaxis, axes.yaxis, self.mean, self.normal,
                      *axes.spines.values(), axes.title, self.cut_bin, self.no_data)
        self.keep_on_top(legend)

    def update(self, layer_name, values):
        flat = np.asarray(values, dtype=np.float64).ravel()
        flat = flat[np.isfinite(flat)]
        self._show(bool(flat.size))
        if not flat.size:  # a diverged model: say so instead of failing
            self.set_title(layer_name)
            self.axes.set_xlabel("activation value")
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
        x = np.linspace(low, high, 200)
        self.normal.set_data(x, NORMAL_PEAK * np.exp(-0.5 * x ** 2))
        self.axes.set_xlim(low, high)
        self.axes.set_ylim(0.0, self._top(density, edges))
        self.axes.set_xlabel(f"activation value (mean {_number(mean)}, std {_number(std)})")
        self.set_title(f"{layer_name}: {np.mean(flat == 0):.0%} zero, {np.mean(flat < 0):.0%} negative")

    def _top(self, density, edges):
        """The y limit, set by the histogram alone (the N(0, 1) curve runs off the top when the layer's
        values are spread far wider); a bin more than twice as tall as all others (ReLU's exact zeros) is
        cut and labelled."""
        ceiling = np.partition(density, -2)[-2] * 1.15
        tallest = int(np.argmax(density))
        cut = 0 < 2 * ceiling < density[tallest]
        self.cut_bin.set_visible(cut)
        if not cut:
            return density[tallest] * 1.05
        self.cut_bin.set_x(edges[tallest])
        self.cut_bin.set_text(f"\u2191 {_number(density[tallest])}")
        return ceiling

    def _show(self, has_data):
        for artist in (self.bars, self.spread, self.mean, self.normal):
            artist.set_visible(has_data)
        self.no_data.set_visible(not has_data)
        if not has_data:
            self.cut_bin.set_visible(False)


def _shape_text(shape):
    """``8\u00d78\u00d732`` for maps, ``256 units`` for a vector: short enough for the panel's title."""
    return "\u00d7".join(map(str, shape)) if len(shape) > 1 else f"{shape[0]} units"


def _number(value):
    """Three significant digits, exponents without padding: ``-0.00156``, ``1.98e5``."""
    return f"{value:.3g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
