"""Statistics of one layer's activations over the statistics sample, streamed batch by batch.

The sample is run through the model in batches; ``batch_reductions`` (``keras.ops``, inside the monitor's
compiled graph on every backend) reduces each batch's layer output to a few numbers and a per-unit mask, and
``StreamingStatistics`` (NumPy) adds them up. Every statistic is over all values of the whole sample:

- ``mean``, ``std`` (population standard deviation, as ``numpy.std``), ``min``, ``max``;
- ``zero_fraction``: fraction of values exactly zero (ReLU sparsity);
- ``negative_fraction``: fraction of values below zero (what ELU/SELU/FReLU add over ReLU);
- ``dead_fraction``: fraction of units never positive for any image of the sample, a unit being one
  output element (a feature-map position and channel, or a dense unit);
- ``dead_channel_fraction`` (outputs with spatial axes only): fraction of channels never positive at any
  position for any image.

``values`` histograms use ``HISTOGRAM_EDGES``, the same edges for every layer and step, so TensorBoard's
offset view and the comparison report's overlays line up: 1/32 wide on [-4, 4], then four per octave
(ratio 2^(1/4)) to +-8192; values beyond fall in the outermost buckets, non-finite ones in none. A bucket
holds ``left <= v < right`` above zero and ``left < v <= right`` below it: the bucket of a value is that of
its magnitude, mirrored (zero of either sign is in ``[0, 1/32)``, as are the negative subnormals above
-2^-133, which share -0's leading bits). The graph counts the values by the 16 leading bits of their float32
bits (65,536 counts, one pass); every edge is such a prefix, so the floats of each prefix lie in one bucket
and ``StreamingStatistics`` maps the counts to buckets exactly (``PREFIX_BUCKETS``), with no search of the
edges for every value. ``histogram_buckets`` makes the equal-width histograms of the activation parameters.
"""

import numpy as np

STATISTICS = ("mean", "std", "min", "max", "zero_fraction", "negative_fraction", "dead_fraction")
SPATIAL_STATISTICS = ("dead_channel_fraction",)
HISTOGRAM_BUCKETS = 30  # tf.summary.histogram's default, for the parameters
PREFIX_BITS = 16  # the bits of a float32 that pick its bucket: sign, exponent and 7 of the mantissa


def _activation_edges(linear_limit=4.0, linear_width=1 / 32, outer_octaves=11, per_octave=4):
    linear = np.linspace(-linear_limit, linear_limit, int(round(2 * linear_limit / linear_width)) + 1)
    outer = _prefix_round(linear_limit * 2.0 ** (np.arange(1, outer_octaves * per_octave + 1) / per_octave))
    return np.concatenate([-outer[::-1], linear, outer])


def _prefix_round(values):
    """``values`` rounded to the nearest float32 whose bits below the ``PREFIX_BITS`` leading ones are 0."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    low = 32 - PREFIX_BITS
    rounded = (bits + np.uint32(1 << (low - 1))) >> np.uint32(low) << np.uint32(low)
    return rounded.view(np.float32).astype(np.float64)


HISTOGRAM_EDGES = _activation_edges()


def _prefix_buckets(edges):
    """The bucket of every float32 with each of the 2^PREFIX_BITS bit prefixes (``len(edges) - 1``, out of
    range, for the non-finite ones). Exact because every edge is such a prefix: the floats of a prefix ``p``
    lie in ``[p, next)`` for ``p >= 0`` and in ``(next, p]`` below zero."""
    prefixes = np.arange(1 << PREFIX_BITS, dtype=np.uint32) << np.uint32(32 - PREFIX_BITS)
    with np.errstate(invalid="ignore"):  # the NaN prefixes
        values = prefixes.view(np.float32).astype(np.float64)
        buckets = np.where(values < 0, np.searchsorted(edges, values, side="left"),
                           np.searchsorted(edges, values, side="right")) - 1
    buckets = np.clip(buckets, 0, len(edges) - 2)
    buckets[~np.isfinite(values)] = len(edges) - 1
    return buckets


PREFIX_BUCKETS = _prefix_buckets(HISTOGRAM_EDGES)


def batch_reductions(outputs):
    """What ``StreamingStatistics`` adds up of one batch's layer output (batch axis first), as ``keras.ops``
    tensors that every backend can compile: count, mean, sum of squared deviations from that mean (no
    cancellation, unlike a sum of squares), min, max, zero and negative counts, the per-unit "positive
    somewhere in the batch" mask, and how many values have each 16-bit prefix (``PREFIX_BUCKETS``)."""
    from keras import ops

    wide = _wide_float()
    values = ops.cast(outputs, "float32")
    flat = ops.reshape(values, (-1,))
    shift = 32 - PREFIX_BITS
    prefixes = ops.bitwise_and(ops.right_shift(ops.view(flat, "int32"), shift), (1 << PREFIX_BITS) - 1)
    accurate = ops.cast(flat, wide)
    positive = ops.cast(values > 0, "float32")  # a max over it is faster than an any over booleans
    mean = ops.mean(accurate)
    return {
        "count": ops.size(flat),
        "mean": mean,
        "squared_deviations": ops.sum(ops.square(accurate - mean)),
        "min": ops.min(flat),
        "max": ops.max(flat),
        "zeros": ops.sum(ops.cast(flat == 0, "int32")),
        "negatives": ops.sum(ops.cast(flat < 0, "int32")),
        "positive_units": ops.max(positive, axis=0) > 0,
        "prefix_counts": _prefix_counts(prefixes),
    }


def _prefix_counts(prefixes):
    """How many of ``prefixes`` have each value: TensorFlow's bincount (faster than its segment_sum on CPU),
    elsewhere a segment_sum (a bincount's output size is not static, so JAX cannot compile it)."""
    import keras
    from keras import ops

    size = 1 << PREFIX_BITS
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.math.bincount(prefixes, minlength=size, maxlength=size)
    return ops.segment_sum(ops.ones_like(prefixes), prefixes, num_segments=size)


def _wide_float():
    """float64 for the sums where the backend computes in it (JAX only with ``jax_enable_x64``)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            return "float32"
    return "float64"


class StreamingStatistics:
    """One layer's statistics over batches: ``add`` each batch's reductions, then ``result`` and
    ``histogram``."""

    def __init__(self):
        self.count = self.zeros = self.negatives = 0
        self.mean = self.squared_deviations = 0.0
        self.min, self.max = np.inf, -np.inf
        self.positive_units = None
        self.prefix_counts = np.zeros(1 << PREFIX_BITS)

    def add(self, reductions):
        """Add one batch: the NumPy values of ``batch_reductions`` (means and squared deviations pooled as
        in Chan et al.'s parallel variance)."""
        count = int(reductions["count"])
        total = self.count + count
        delta = float(reductions["mean"]) - self.mean
        self.squared_deviations += float(reductions["squared_deviations"]) + delta * delta * self.count * count / total
        self.mean += delta * count / total
        self.count = total
        self.min = min(self.min, float(reductions["min"]))
        self.max = max(self.max, float(reductions["max"]))
        self.zeros += int(reductions["zeros"])
        self.negatives += int(reductions["negatives"])
        positive = np.asarray(reductions["positive_units"], dtype=bool)
        self.positive_units = positive if self.positive_units is None else self.positive_units | positive
        self.prefix_counts += np.asarray(reductions["prefix_counts"], dtype=np.float64)

    def result(self):
        """``{name: float}`` for ``STATISTICS`` and, for outputs with spatial axes, ``SPATIAL_STATISTICS``."""
        statistics = {
            "mean": self.mean,
            "std": float(np.sqrt(self.squared_deviations / self.count)),
            "min": self.min,
            "max": self.max,
            "zero_fraction": self.zeros / self.count,
            "negative_fraction": self.negatives / self.count,
            "dead_fraction": float(1.0 - self.positive_units.mean()),
        }
        if self.positive_units.ndim >= 2:  # (positions..., channels)
            live_channels = self.positive_units.reshape(-1, self.positive_units.shape[-1]).any(axis=0)
            statistics["dead_channel_fraction"] = float(1.0 - live_channels.mean())
        return statistics

    def histogram(self):
        """TensorBoard's histogram tensor: float64 rows ``[left edge, right edge, count]``."""
        size = len(HISTOGRAM_EDGES) - 1
        counts = np.bincount(PREFIX_BUCKETS, weights=self.prefix_counts, minlength=size + 1)[:size]
        return np.stack([HISTOGRAM_EDGES[:-1], HISTOGRAM_EDGES[1:], counts], axis=1)


def histogram_buckets(values, bucket_count=HISTOGRAM_BUCKETS):
    """TensorBoard's histogram tensor of the finite ``values``: float64 ``(bucket_count, 3)`` rows
    ``[left edge, right edge, count]`` of equal-width buckets from the minimum to the maximum (the maximum
    falls in the last bucket; a single distinct value gets buckets spanning value +- 0.5)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(finite, bins=bucket_count, range=(low, high))
    return np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
