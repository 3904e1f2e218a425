"""What the monitor's statistics pass costs, in training steps: one batch of the statistics sample through the
monitored layers in inference mode, with and without its reductions, against a training step, side by side
in one process (A B B A ...).

The pass runs over the whole statistics sample (512 images by default, in batches of 256) once every monitor
step (100 training steps), so ``pass / step`` training steps are spent on it every 100 steps: 1.0 is 1% of
training. Timed per batch of 256: the forward pass alone; forward and ``batch_reductions`` as the monitor runs
them (the histogram counted by the values' 16-bit prefixes); forward and the reductions with the histogram
counted by searching the bucket edges instead (``searchsorted`` + ``bincount``, the monitor's way before the
ninth session), to show what the prefix counting saves. TensorFlow backend, reference_cnn, random inputs.

    python bench/statistics_pass.py --shape 32 32 3 --activation relu
"""

import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu import models  # noqa: E402
from keras_frelu.cli import ArgumentParser, positive_int, run  # noqa: E402
from keras_frelu.monitor.statistics import HISTOGRAM_EDGES, batch_reductions  # noqa: E402
from timing import interleaved_times  # noqa: E402


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(32, 32, 3), metavar=("H", "W", "C"),
                        help="image shape (default 32 32 3; 28 28 1 is MNIST)")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="training batch (default 64)")
    parser.add_argument("--statistics_batch_size", type=positive_int, default=256,
                        help="images per statistics batch (default 256, the monitor's)")
    parser.add_argument("--rounds", type=positive_int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--calls", type=positive_int, default=5, help="calls per timing (default 5)")
    return parser.parse_args(argv)


def searched_reductions(outputs):
    """``batch_reductions`` with the histogram counted by searching the edges of each value's bucket."""
    import tensorflow as tf

    reductions = batch_reductions(outputs)
    del reductions["prefix_counts"]  # not an output, so the compiled function leaves out its ops
    edges = tf.constant(HISTOGRAM_EDGES, tf.float32)
    flat = tf.reshape(tf.cast(outputs, tf.float32), [-1])
    buckets = tf.clip_by_value(tf.searchsorted(edges, flat, side="right") - 1, 0, len(HISTOGRAM_EDGES) - 2)
    size = len(HISTOGRAM_EDGES) - 1
    counted = tf.where(tf.math.is_finite(flat), tf.cast(buckets, tf.int32), size)
    reductions["bucket_counts"] = tf.math.bincount(counted, minlength=size + 1, maxlength=size + 1)[:size]
    return reductions


def main(argv=None):
    import tensorflow as tf

    args = parse_args(argv)
    rng = np.random.default_rng(0)
    model = models.reference_cnn(tuple(args.shape), 10, args.activation)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = rng.random((args.batch_size, *args.shape), dtype=np.float32)
    labels = rng.integers(0, 10, args.batch_size)
    layers = models.activation_layers(model)
    outputs_model = keras.Model(model.input, [layer.output for layer in layers])
    batch = tf.constant(rng.random((args.statistics_batch_size, *args.shape), dtype=np.float32))

    forward = tf.function(lambda x: outputs_model(x, training=False))
    prefixes = tf.function(lambda x: [batch_reductions(y) for y in outputs_model(x, training=False)])
    searched = tf.function(lambda x: [searched_reductions(y) for y in outputs_model(x, training=False)])
    kinds = {"training step": lambda: model.train_on_batch(images, labels), "forward": lambda: forward(batch),
             "forward + reductions (prefixes)": lambda: prefixes(batch),
             "forward + reductions (edge search)": lambda: searched(batch)}
    for function in kinds.values():  # traced and warmed up off the clock
        function(), function()
    load_at_start = os.getloadavg()[0]
    medians, samples = interleaved_times(list(kinds.values()), args.rounds, args.calls)
    steps = samples[0]
    print(f"reference_cnn ({args.activation}), {'x'.join(map(str, args.shape))} images, statistics batch of "
          f"{args.statistics_batch_size}, training batch {args.batch_size}, {args.rounds} rounds of {args.calls} calls")
    for (name, _), median, times in zip(kinds.items(), medians, samples):
        in_steps = statistics.median(t / s for t, s in zip(times, steps))
        print(f"  {name:36s} {median * 1000:7.1f} ms  = {in_steps:5.2f} training steps (median of round ratios)")
    prefix_ratio = statistics.median(p / s for p, s in zip(samples[2], samples[3]))
    print(f"  prefix counting / edge search, forward included: {prefix_ratio:.2f}; load average "
          f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    run(main)
