"""Activations as images for TensorBoard's image dashboard: feature-map grids and unit x sample heat maps.

Values are scaled to [0, 1] with the min and max of the whole picture (so maps of one layer are comparable
with each other) and coloured with matplotlib's viridis, whose lightness rises monotonically: brighter
means larger. One value is one pixel: TensorBoard scales images up to its cards without smoothing
(``image-rendering: pixelated``), so small pictures need no enlarging here.
"""

import functools
import math

import matplotlib
import numpy as np

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
    values = np.asarray(activations, dtype=np.float32)
    if values.ndim == 4 and values.shape[1] * values.shape[2] > 1:
        return _feature_map_grids(values[:max_images])
    return _unit_heatmap(values)


def _feature_map_grids(maps):
    images, height, width, channels = maps.shape
    rows, columns = grid_shape(channels)
    scaled = _scale(maps).transpose(0, 3, 1, 2)  # (N, C, H, W)
    # NaN marks separators and empty cells; the colouring turns it into SEPARATOR_RGB.
    cells = np.pad(scaled, [(0, 0), (0, rows * columns - channels), (0, 1), (0, 1)], constant_values=np.nan)
    cells = cells.reshape(images, rows, columns, height + 1, width + 1)
    grid = cells.transpose(0, 1, 3, 2, 4).reshape(images, rows * (height + 1), columns * (width + 1))
    return _colour(grid[:, :-1, :-1])


def _unit_heatmap(values):
    units_by_samples = values.reshape(len(values), -1).T
    return _colour(_scale(units_by_samples)[np.newaxis])


def _scale(values):
    """``values`` mapped linearly onto [0, 1] (a constant picture becomes 0.5)."""
    low, high = values.min(), values.max()
    if not high > low:
        return np.full_like(values, 0.5)
    return (values - low) / (high - low)


@functools.cache
def _colour_table():
    """256 viridis colours, then the separator colour at index 256."""
    colours = matplotlib.colormaps[COLORMAP](np.linspace(0.0, 1.0, 256))[:, :3]
    table = np.vstack([np.round(colours * 255), np.array(SEPARATOR_RGB)[np.newaxis]])
    return table.astype(np.uint8)


def _colour(pictures):
    """uint8 RGB of ``(N, H, W)`` values in [0, 1] (NaN: separator)."""
    index = np.round(np.clip(np.nan_to_num(pictures, nan=0.0), 0.0, 1.0) * 255.0).astype(np.int64)
    index[np.isnan(pictures)] = 256
    return _colour_table()[index]
