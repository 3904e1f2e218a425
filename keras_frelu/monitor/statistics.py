"""Summary statistics of one layer's activations over the monitor sample, in NumPy.

Every statistic is taken over all values of the batch (samples x units):

- ``mean``, ``std`` (population standard deviation, as ``numpy.std``), ``min``, ``max``;
- ``zero_fraction``: fraction of values that are exactly zero (ReLU sparsity);
- ``dead_fraction``: fraction of units (one output element of a sample: a feature-map position and channel,
  or a dense unit) that are exactly zero for *every* sample, i.e. units no sample switches on;
- ``negative_fraction``: fraction of values below zero (what ELU/SELU/FReLU add over ReLU).

``histogram_buckets`` is the tensor TensorBoard's histogram dashboard reads. The monitor sample is small
(16 images by default), so NumPy does this in milliseconds; in the monitor's TensorFlow graph the same
operations cost more to trace than all the monitor steps of a short run take to compute them.
"""

import numpy as np

HISTOGRAM_BUCKETS = 30  # tf.summary.histogram's default
STATISTICS = ("mean", "std", "min", "max", "zero_fraction", "dead_fraction", "negative_fraction")


def activation_statistics(activations):
    """``{name: float}`` for the names in ``STATISTICS``; ``activations`` has the batch axis first.
    Sums are taken in float64."""
    values = np.asarray(activations)
    is_zero = values == 0
    return {
        "mean": float(values.mean(dtype=np.float64)),
        "std": float(values.std(dtype=np.float64)),
        "min": float(values.min()),
        "max": float(values.max()),
        "zero_fraction": float(is_zero.mean()),
        "dead_fraction": float(is_zero.all(axis=0).mean()),
        "negative_fraction": float((values < 0).mean()),
    }


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
