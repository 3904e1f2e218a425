"""What tf.data's autotuning cost at the end of every ``fit``: the pipeline before and after turning it off.

reference_cnn trains on digits-shaped data (8x8x1, 1,437 images, batch 64) through
``keras_frelu.data.make_dataset``, as trainer.py does, once with tf.data's autotuning switched back on (the
pipeline before this change: ``prefetch``/``map`` with ``tf.data.AUTOTUNE``) and once as the pipeline is
now (autotuning off, fixed parallelism), runs interleaved. Each run reports its ``fit`` wall time and the
time from the end of the last step (``on_train_end``) to ``fit`` returning: Keras deletes the data
iterator there, and with autotuning on that waits for the autotuning thread's current sleep (periods
doubling from 10 ms up to a minute) to end.

    python bench/tf_data_autotune.py --steps 500 3000 --rounds 2
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

SHAPE, COUNT, CLASSES, BATCH = (8, 8, 1), 1437, 10, 64


class EndTime(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter()


def timed_fit(dataset, steps):
    """``(fit wall seconds, seconds from on_train_end to fit returning)``."""
    keras.utils.set_random_seed(0)
    model = models.reference_cnn(SHAPE, CLASSES)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    end = EndTime()
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, callbacks=[end], verbose=0, shuffle=False)
    done = time.perf_counter()
    return done - start, done - end.seconds


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 3000], help="fit lengths (default 500 3000)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each kind per length (default 2)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (COUNT, *SHAPE), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, COUNT).astype(np.int32)
    now = make_dataset(images, labels, BATCH, repeat=True, drop_remainder=True)
    options = tf.data.Options()
    options.autotune.enabled = True
    before = now.with_options(options)  # later options win: autotuning back on, as before the change
    timed_fit(now, 20)  # warm-up
    load_at_start = os.getloadavg()[0]
    print("| fit steps | pipeline | fit wall s (median) | last step to fit returning, s (each run) |")
    print("|---:|---|---:|---|")
    for steps in args.steps:
        runs = {"autotuning on (before)": [], "autotuning off (now)": []}
        for _ in range(args.rounds):
            for name, dataset in zip(runs, (before, now)):
                runs[name].append(timed_fit(dataset, steps))
        for name, times in runs.items():
            stalls = ", ".join(f"{stall:.2f}" for _, stall in times)
            print(f"| {steps} | {name} | {statistics.median(wall for wall, _ in times):.2f} | {stalls} |", flush=True)
    print(f"\nload average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    run(main)
