"""The time between a ``model.fit`` call's last training step and its return, per activation, measured side by
side in one process (fits alternate A B B A); the load average is printed with the result.

Each fit is ``fit(x, y, epochs=1)`` over ``--batches`` batches of 64 CIFAR-shaped images (NumPy arrays,
or a tf.data pipeline with ``--tf_data``) on reference_cnn, after one untimed fit that traces the step.
A callback stamps the end of the last batch; the stall is the rest of the call.

    python bench/fit_stall.py --activations relu frelu --fits 9
"""

import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_frelu import models  # noqa: E402
from keras_frelu.training.network import compile_model  # noqa: E402
from keras_frelu.config import TrainConfig  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import alternating  # noqa: E402

IMAGE_SHAPE, CLASSES, BATCH = (32, 32, 3), 10, 64


class LastStep(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.at = time.perf_counter()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", nargs="+", default=["relu", "frelu"])
    parser.add_argument("--fits", type=int, default=9, help="timed fits per activation (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=8, help="batches per fit (default: %(default)s)")
    parser.add_argument("--tf_data", action="store_true", help="a tf.data pipeline instead of NumPy arrays")
    parser.add_argument("--gc", choices=("on", "off"), default="on", help="Python's cyclic garbage collector")
    args = parser.parse_args()
    if args.gc == "off":
        gc.disable()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batches * BATCH, *IMAGE_SHAPE)).astype(np.float32)
    y = rng.integers(0, CLASSES, args.batches * BATCH)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH) if args.tf_data else None
    fitted = {}
    for activation in args.activations:
        keras.utils.set_random_seed(0)
        model = models.reference_cnn(IMAGE_SHAPE, CLASSES, activation=activation)
        compile_model(model, TrainConfig(activation=activation))

        def fit(model=model, stamp=LastStep()):
            if data is None:
                model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[stamp])
            else:
                model.fit(data, epochs=1, verbose=0, callbacks=[stamp])
            return time.perf_counter() - stamp.at

        fit()  # traces the step
        fitted[activation] = fit
    stalls = {activation: [] for activation in args.activations}
    for activation in alternating(args.activations, args.fits):
        stalls[activation].append(fitted[activation]())
    print(f"load average {os.getloadavg()[0]:.2f}; {args.fits} fits each, {args.batches} batches, "
          f"{'tf.data' if args.tf_data else 'NumPy'} input, gc {args.gc}")
    print("| activation | median stall (s) | max stall (s) | fits with a stall > 0.1 s |")
    print("|---|---|---|---|")
    for activation, values in stalls.items():
        print(f"| {activation} | {statistics.median(values):.3f} | {max(values):.3f} | "
              f"{sum(value > 0.1 for value in values)} of {len(values)} |")


if __name__ == "__main__":
    main()
