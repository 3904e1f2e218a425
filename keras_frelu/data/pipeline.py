"""tf.data input pipelines: batches of (float32 images scaled to [0, 1], int32 labels).

Arrays that fit in memory become tensors: each step gathers one batch by index (one vectorised op, no
per-example work), so the pipeline keeps far ahead of training. Larger data, ``HDF5Images`` streamed from
disk or NumPy arrays too big to place in a tf.data graph, are read in runs of consecutive examples and
shuffled within windows of several runs.

Shuffling is seeded and exactly reproducible. With ``repeat=True`` the order of epoch ``e`` depends only on
``(seed, e)``, so ``start_batch=N`` resumes the stream at batch N without replaying the batches before it.

tf.data's autotuning is off, with fixed parallelism and prefetching instead: its background thread sleeps
for doubling periods, and deleting an iterator (Keras does at the end of every ``fit``, ``evaluate`` and
``predict``) waits for the current sleep to end, a stall as long as the call itself. This pipeline's
work per batch is one gather or one cast, so fixed settings lose nothing.
"""

import contextlib
import itertools

import numpy as np
import tensorflow as tf

from keras_frelu.data.hdf5 import HDF5Images, open_hdf5
from keras_frelu.errors import UsageError

IN_GRAPH_LIMIT = 1 << 30  # bytes: tf.data embeds in-memory tensors in its graph, and graphs stop at 2 GB
WINDOW_BYTES = 64 << 20  # streamed data are shuffled within windows of this size ...
RUNS_PER_WINDOW = 8  # ... made of this many runs of consecutive examples from random places
PARALLEL_CALLS = 2  # batches prepared at once; each is one vectorised op
PREFETCH_BATCHES = 2  # batches ready ahead of training


def scale_images(images):
    """NumPy images as float32 in [0, 1]: uint8 is divided by 255, float images are already in [0, 1]."""
    images = np.asarray(images)
    return images.astype(np.float32) / 255 if images.dtype == np.uint8 else images.astype(np.float32)


def _scale_batch(images, labels):
    images = tf.cast(images, tf.float32) / 255 if images.dtype == tf.uint8 else tf.cast(images, tf.float32)
    return images, labels


def make_dataset(images, labels, batch_size, shuffle=True, seed=0, repeat=False, drop_remainder=False,
                 start_batch=0):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches: float32 images in [0, 1], int32 labels.

    Args:
        images: uint8 (0..255) or float32 (0..1) NHWC array, or ``HDF5Images`` (streamed from disk).
        labels: class indices, one per image.
        batch_size: examples per batch.
        shuffle: a new seeded order every epoch (every iteration when ``repeat`` is False).
        seed: shuffling seed.
        repeat: an endless stream of epochs; batches run across epoch boundaries.
        drop_remainder: drop a last batch smaller than ``batch_size``.
        start_batch: skip this many batches (``repeat=True``: resume a run at its global step).
    """
    labels = np.asarray(labels, dtype=np.int32)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    if labels.ndim != 1 or len(images) != len(labels) or len(labels) == 0:
        raise UsageError(f"make_dataset needs one class index per image, got {len(images)} images and labels of "
                         f"shape {labels.shape}")
    if start_batch < 0:
        raise UsageError(f"start_batch must be >= 0, got {start_batch}")
    if isinstance(images, np.ndarray) and images.nbytes <= IN_GRAPH_LIMIT:
        dataset = _in_memory(images, labels, batch_size, shuffle, seed, repeat, drop_remainder, start_batch)
    else:
        dataset = _streamed(images, labels, batch_size, shuffle, seed, repeat, drop_remainder, start_batch)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


def _in_memory(images, labels, batch_size, shuffle, seed, repeat, drop_remainder, start_batch):
    count = len(labels)
    skip = start_batch * batch_size
    with tf.device("/cpu:0"):  # tf.data runs on the CPU; keep the arrays there, not on a GPU
        images, labels = tf.constant(images), tf.constant(labels)
    if shuffle and repeat:
        first_epoch, skip = divmod(skip, count)
        seed = tf.constant(seed, tf.int64)

        def epoch_order(epoch):
            return tf.data.Dataset.from_tensor_slices(
                tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), tf.stack([seed, epoch])))

        indices = tf.data.Dataset.counter(first_epoch).flat_map(epoch_order)
    else:
        indices = tf.data.Dataset.range(count)
        if shuffle:
            indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            indices, skip = indices.repeat(), skip % count
    indices = indices.skip(skip).batch(batch_size, drop_remainder=drop_remainder)
    return indices.map(lambda batch: _scale_batch(tf.gather(images, batch), tf.gather(labels, batch)),
                       num_parallel_calls=PARALLEL_CALLS, deterministic=True)


def _windows(count, run, epoch, seed, shuffle):
    """One epoch as windows: lists of runs ``(start, stop)`` of consecutive positions, the runs in a seeded
    random order when shuffling."""
    runs = [(start, min(start + run, count)) for start in range(0, count, run)]
    if shuffle:
        runs = [runs[index] for index in np.random.default_rng([seed, epoch]).permutation(len(runs))]
    return [runs[first:first + RUNS_PER_WINDOW] for first in range(0, len(runs), RUNS_PER_WINDOW)]


def _streamed(images, labels, batch_size, shuffle, seed, repeat, drop_remainder, start_batch):
    count = len(labels)
    example_bytes = int(np.prod(images.shape[1:])) * np.dtype(images.dtype).itemsize
    run = max(1, WINDOW_BYTES // RUNS_PER_WINDOW // example_bytes)
    first_epoch, skip = divmod(start_batch * batch_size, count) if repeat else (0, start_batch * batch_size)
    passes = itertools.count()  # without repeat every iteration is a new pass, shuffled anew

    def read(handle, start, stop):
        if isinstance(images, HDF5Images):
            return images.read_rows(images.rows[start:stop], handle)
        return images[start:stop]

    def windows():
        epochs = itertools.count(first_epoch) if repeat else [next(passes)]
        to_skip = skip
        with open_hdf5(images.path) if isinstance(images, HDF5Images) else contextlib.nullcontext() as handle:
            for epoch in epochs:
                for index, runs in enumerate(_windows(count, run, epoch, seed, shuffle)):
                    size = sum(stop - start for start, stop in runs)
                    if to_skip >= size:
                        to_skip -= size
                        continue
                    window_images = np.concatenate([read(handle, start, stop) for start, stop in runs])
                    window_labels = np.concatenate([labels[start:stop] for start, stop in runs])
                    if shuffle:  # each window's order depends only on (seed, epoch, window)
                        order = np.random.default_rng([seed, epoch, index]).permutation(size)
                        window_images, window_labels = window_images[order], window_labels[order]
                    yield window_images[to_skip:], window_labels[to_skip:]
                    to_skip = 0

    signature = (tf.TensorSpec((None, *images.shape[1:]), tf.as_dtype(np.dtype(images.dtype))),
                 tf.TensorSpec((None,), tf.int32))
    dataset = tf.data.Dataset.from_generator(windows, output_signature=signature).prefetch(1)
    return dataset.unbatch().batch(batch_size, drop_remainder=drop_remainder).map(
        _scale_batch, num_parallel_calls=PARALLEL_CALLS, deterministic=True)

