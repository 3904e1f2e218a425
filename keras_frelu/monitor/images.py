"""Activations as images for ``tf.summary.image``: feature-map grids and unit x sample heat maps.

Values are scaled to [0, 1] with the min and max of the whole picture (so maps of one layer are comparable
with each other) and coloured with matplotlib's viridis, whose lightness rises monotonically: brighter
means larger. One value is one pixel: TensorBoard scales images up to its cards without smoothing
(``image-rendering: pixelated``), so small pictures need no enlarging here.
"""

import functools
import math

import matplotlib
import numpy as np
import tensorflow as tf

COLORMAP = "viridis"
SEPARATOR_RGB = (255, 255, 255)  # lines between feature maps and empty grid cells


def grid_shape(count):
    """``(rows, columns)`` of the near-square grid that holds ``count`` cells, filled row by row:
    ``columns = ceil(sqrt(count))``, ``rows = ceil(count / columns)``."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def activation_image(activations, max_images):
    """A uint8 RGB batch ``(images, height, width, 3)`` showing a layer's activations.

    Rank-4 ``(N, H, W, C)`` activations with maps of more than one pixel: one picture per sample for the
    first ``max_images`` samples, each the C feature maps of that sample in a ``grid_shape(C)`` grid with
    one-pixel separators (size ``rows*(H+1)-1`` x ``columns*(W+1)-1``). Anything else (dense layers,
    1x1 maps, other ranks): one heat map with a row per unit (every non-batch element, in row-major order)
    and a column per sample.
    """
    values = tf.cast(activations, tf.float32)
    if values.shape.rank == 4 and values.shape[1] * values.shape[2] > 1:
        return _feature_map_grids(values[:max_images])
    return _unit_heatmap(values)


def _feature_map_grids(maps):
    images, height, width, channels = maps.shape
    rows, columns = grid_shape(channels)
    scaled = tf.transpose(_scale(maps), [0, 3, 1, 2])  # (N, C, H, W)
    # NaN marks separators and empty cells; the colouring turns it into SEPARATOR_RGB.
    cells = tf.pad(scaled, [[0, 0], [0, rows * columns - channels], [0, 1], [0, 1]], constant_values=np.nan)
    cells = tf.reshape(cells, [images, rows, columns, height + 1, width + 1])
    grid = tf.reshape(tf.transpose(cells, [0, 1, 3, 2, 4]), [images, rows * (height + 1), columns * (width + 1)])
    return _colour(grid[:, :-1, :-1])


def _unit_heatmap(values):
    samples = values.shape[0]
    units_by_samples = tf.transpose(tf.reshape(values, [samples, -1]))
    return _colour(_scale(units_by_samples)[tf.newaxis])


def _scale(values):
    """``values`` mapped linearly onto [0, 1] (a constant picture becomes 0.5)."""
    low, high = tf.reduce_min(values), tf.reduce_max(values)
    span = high - low
    return tf.where(span > 0, (values - low) / tf.where(span > 0, span, 1.0), 0.5)


@functools.cache
def _colour_table():
    """256 viridis colours, then the separator colour at index 256."""
    colours = matplotlib.colormaps[COLORMAP](np.linspace(0.0, 1.0, 256))[:, :3]
    table = np.vstack([np.round(colours * 255), np.array(SEPARATOR_RGB)[np.newaxis]])
    return table.astype(np.uint8)


def _colour(pictures):
    """uint8 RGB of ``(N, H, W)`` values in [0, 1] (NaN: separator)."""
    index = tf.cast(tf.round(tf.clip_by_value(pictures, 0.0, 1.0) * 255.0), tf.int32)
    index = tf.where(tf.math.is_nan(pictures), 256, index)
    return tf.gather(tf.constant(_colour_table()), index)
