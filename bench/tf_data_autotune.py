"""What tf.data's autotuning cost at the end of every ``fit``: the pipeline before and after turning it off.

reference_cnn trains on digits-shaped data (8x8x1, 1,437 images, batch 64) through
``keras_frelu.data.make_dataset`` as trainer.py does: one ``fit`` of ``--epochs`` epochs, the test split
(360 images) evaluated at the end of each; once with tf.data's autotuning switched back on (the pipeline
before this change: ``prefetch``/``map`` with ``tf.data.AUTOTUNE``) and once as the pipeline is now
(autotuning off, fixed parallelism), runs interleaved. Each run reports its ``fit`` wall time, the time
spent in the evaluations, and the time from the end of the last step (``on_train_end``) to ``fit``
returning: Keras deletes the data iterator there (and at the end of each ``evaluate``), and with
autotuning on that waits for the autotuning thread's current sleep to end, which comes at irregular
times.

    python bench/tf_data_autotune.py --steps 4000 --rounds 3
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu import models  # noqa: E402
from keras_frelu.cli import ArgumentParser, run  # noqa: E402
from keras_frelu.data import make_dataset  # noqa: E402

SHAPE, COUNT, TEST_COUNT, CLASSES, BATCH = (8, 8, 1), 1437, 360, 10, 64


class Timings(keras.callbacks.Callback):
    """Evaluates the test split after every epoch (as trainer.py at its test steps) and times it."""

    def __init__(self, test):
        super().__init__()
        self.test = test
        self.evaluating = 0.0

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        self.model.evaluate(self.test, verbose=0)
        self.evaluating += time.perf_counter() - start

    def on_train_end(self, logs=None):
        self.end = time.perf_counter()


def timed_fit(train, test, steps, epochs):
    """``(fit wall s, evaluations s, s from on_train_end to fit returning)``."""
    keras.utils.set_random_seed(0)
    model = models.reference_cnn(SHAPE, CLASSES)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timings = Timings(test)
    start = time.perf_counter()
    model.fit(train, epochs=epochs, steps_per_epoch=steps // epochs, callbacks=[timings], verbose=0,
              shuffle=False)
    done = time.perf_counter()
    return done - start, timings.evaluating, done - timings.end


def with_autotuning(dataset):
    options = tf.data.Options()
    options.autotune.enabled = True
    return dataset.with_options(options)  # later options win: autotuning back on, as before the change


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[4000], help="fit lengths (default 4000)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit, one evaluation each (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind per length (default 3)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (COUNT + TEST_COUNT, *SHAPE), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, COUNT + TEST_COUNT).astype(np.int32)
    now = (make_dataset(images[:COUNT], labels[:COUNT], BATCH, repeat=True, drop_remainder=True),
           make_dataset(images[COUNT:], labels[COUNT:], BATCH, shuffle=False))
    pipelines = {"autotuning on (before)": tuple(map(with_autotuning, now)), "autotuning off (now)": now}
    timed_fit(*now, 40, 2)  # warm-up
    load_at_start = os.getloadavg()[0]
    print(f"| fit steps | pipeline | fit wall s (median) | {args.epochs} evaluations s (median) | "
          "last step to fit returning, s (each run) |")
    print("|---:|---|---:|---:|---|")
    for steps in args.steps:
        runs = {name: [] for name in pipelines}
        for _ in range(args.rounds):
            for name, (train, test) in pipelines.items():
                runs[name].append(timed_fit(train, test, steps, args.epochs))
        for name, times in runs.items():
            stalls = ", ".join(f"{stall:.2f}" for _, _, stall in times)
            print(f"| {steps} | {name} | {statistics.median(wall for wall, _, _ in times):.2f} | "
                  f"{statistics.median(evaluating for _, evaluating, _ in times):.2f} | {stalls} |", flush=True)
    print(f"\nload average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    run(main)
