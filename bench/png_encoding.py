"""The monitor's PNG encoder against TensorFlow's and Pillow's, on the pictures the monitor writes.

``keras_frelu.monitor.summaries.png`` (rows unfiltered, zlib level 1) against ``tf.io.encode_png(...,
compression=1)`` (what the monitor used before: libpng with its adaptive row filters, one TensorFlow op per
picture) and Pillow's encoder at ``compress_level=1``: CPU time per picture (medians of interleaved
rounds) and size, for a histogram and a visualization panel of the figures and an activation image. Every
encoding is decoded back and compared with the picture first.

    python bench/png_encoding.py --rounds 15
"""

import io
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu.cli import ArgumentParser, run  # noqa: E402
from keras_frelu.errors import UsageError  # noqa: E402
from keras_frelu.monitor import figures, summaries  # noqa: E402
from keras_frelu.monitor.images import activation_image  # noqa: E402

CALLS = 20  # encodings timed together in one sample


def tensorflow_png(rgb):
    return tf.io.encode_png(rgb, compression=1).numpy()


def pillow_png(rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


ENCODERS = {"keras_frelu": summaries.png, "tf.io.encode_png": tensorflow_png, "Pillow": pillow_png}


def pictures():
    """``{name: uint8 RGB picture}``: the two panels and the activation image of a ReLU conv layer."""
    activations = np.maximum(np.random.default_rng(0).normal(size=(16, 8, 8, 32)), 0).astype(np.float32)
    visualization, histogram = figures.Panels().render("act_conv1", activations)
    return {"histogram panel": histogram, "visualization panel": visualization,
            "activation image": activation_image(activations, 1)[0]}


def thread_seconds(encode, picture):
    start = time.thread_time()
    for _ in range(CALLS):
        encode(picture)
    return (time.thread_time() - start) / CALLS


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise UsageError(f"--rounds must be at least 1, got {args.rounds}")
    print("| picture | " + " | ".join(f"{name} ms" for name in ENCODERS) + " | "
          + " | ".join(f"{name} bytes" for name in ENCODERS) + " |")
    print("|---|" + "---:|" * (2 * len(ENCODERS)))
    for title, picture in pictures().items():
        for name, encode in ENCODERS.items():
            decoded = np.asarray(Image.open(io.BytesIO(encode(picture))))
            if not np.array_equal(decoded, picture):
                raise AssertionError(f"{name} does not decode to the {title}")
        samples = {name: [] for name in ENCODERS}
        for round_index in range(args.rounds):
            order = list(ENCODERS.items())
            for name, encode in order if round_index % 2 == 0 else reversed(order):
                samples[name].append(thread_seconds(encode, picture))
        times = [f"{np.median(samples[name]) * 1e3:.3f}" for name in ENCODERS]
        sizes = [str(len(encode(picture))) for encode in ENCODERS.values()]
        print(f"| {title} {picture.shape[0]}x{picture.shape[1]} | " + " | ".join(times + sizes) + " |")


if __name__ == "__main__":
    run(main)
