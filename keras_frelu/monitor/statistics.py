"""Summary statistics of one layer's activations over the monitor sample, in TensorFlow.

Every statistic is taken over all values of the batch (samples x units), in float32:

- ``mean``, ``std`` (population standard deviation, as ``numpy.std``), ``min``, ``max``;
- ``zero_fraction``: fraction of values that are exactly zero (ReLU sparsity);
- ``dead_fraction``: fraction of units (one output element of a sample: a feature-map position and channel,
  or a dense unit) that are exactly zero for *every* sample, i.e. units no sample switches on;
- ``negative_fraction``: fraction of values below zero (what ELU/SELU/FReLU add over ReLU).

``histogram_buckets`` is the tensor TensorBoard's histogram dashboard reads. ``tf.summary.histogram``
computes the same with nested ``tf.cond`` branches whose graph building cost seconds per monitored
layer inside the monitor's ``tf.function``; this is one ``tf.histogram_fixed_width``.
"""

import tensorflow as tf

HISTOGRAM_BUCKETS = 30  # tf.summary.histogram's default
STATISTICS = ("mean", "std", "min", "max", "zero_fraction", "dead_fraction", "negative_fraction")


def activation_statistics(activations):
    """``{name: float32 scalar tensor}`` for the names in ``STATISTICS``; ``activations`` has the batch
    axis first."""
    values = tf.cast(activations, tf.float32)
    is_zero = tf.equal(values, 0.0)
    return {
        "mean": tf.reduce_mean(values),
        "std": tf.math.reduce_std(values),
        "min": tf.reduce_min(values),
        "max": tf.reduce_max(values),
        "zero_fraction": _fraction(is_zero),
        "dead_fraction": _fraction(tf.reduce_all(is_zero, axis=0)),
        "negative_fraction": _fraction(values < 0.0),
    }


def _fraction(condition):
    return tf.reduce_mean(tf.cast(condition, tf.float32))


def histogram_buckets(values, bucket_count=HISTOGRAM_BUCKETS):
    """TensorBoard's histogram tensor of the finite ``values``: float64 ``(bucket_count, 3)`` rows
    ``[left edge, right edge, count]`` of equal-width buckets from the minimum to the maximum (the maximum
    falls in the last bucket; a single distinct value gets buckets spanning value +- 0.5)."""
    flat = tf.reshape(tf.cast(values, tf.float64), [-1])
    finite = tf.boolean_mask(flat, tf.math.is_finite(flat))
    has_data = tf.size(finite) > 0
    low = tf.where(has_data, tf.reduce_min(finite), 0.0)
    high = tf.where(has_data, tf.reduce_max(finite), 0.0)
    constant = high <= low
    low = tf.where(constant, low - 0.5, low)
    high = tf.where(constant, high + 0.5, high)
    counts = tf.histogram_fixed_width(finite, tf.stack([low, high]), nbins=bucket_count)
    edges = tf.linspace(low, high, bucket_count + 1)
    return tf.stack([edges[:-1], edges[1:], tf.cast(counts, tf.float64)], axis=1)
