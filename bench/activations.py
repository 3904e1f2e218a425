"""Cost of each activation relative to ReLU, measured side by side in one process.

1. forward + backward of the activation alone on a [64, 16, 16, 64] tensor, relative to keras.ops.relu;
2. one training step (Adam, batch 64) of reference_cnn on CIFAR-10-shaped inputs, relative to the same
   network with ReLU.

Each ratio is the median over interleaved pairs (ReLU, activation, activation, ReLU, ...), so slow
drifts of a shared machine hit both sides alike. ``--jit`` chooses plain TensorFlow graphs, XLA
(``jit_compile=True``, Keras's "auto" choice on TensorFlow) or both. Prints a markdown table;
``--append`` adds it, with the command, to bench/RESULTS.md.

    python bench/activations.py --append                                  # every activation, no XLA
    python bench/activations.py --activations relu frelu frelu_light flexrelu --jit both --append
"""

import argparse
import os
import platform
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_frelu  # noqa: E402
from keras_frelu import models  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import append_results, interleaved  # noqa: E402

TENSOR_SHAPE = (64, 16, 16, 64)
IMAGE_SHAPE, CLASSES, BATCH = (32, 32, 3), 10, 64


def activation_step(activation, jit, shape=TENSOR_SHAPE):
    """A compiled forward + backward of one activation (a layer in training mode, or keras.ops.relu) on a
    tensor of ``shape``."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape).astype(np.float32))
    upstream = tf.constant(rng.normal(size=shape).astype(np.float32))
    if activation is None:
        apply, weights = keras.ops.relu, []
    else:
        layer = keras_frelu.get(activation)
        layer.build(shape)
        weights = [w.value for w in layer.trainable_weights]

        def apply(inputs):
            return layer(inputs, training=True)

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = apply(x)
        return tape.gradient(y, [x] + weights, output_gradients=upstream)

    step()  # trace and compile outside the timing
    return step


def training_step(activation, jit, image_shape=IMAGE_SHAPE, batch=BATCH):
    """One Adam step of reference_cnn on a fixed batch (CIFAR-shaped by default), via Keras's own train
    function."""
    keras.utils.set_random_seed(0)
    model = models.reference_cnn(image_shape, CLASSES, activation=activation)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    rng = np.random.default_rng(0)
    images = rng.random((batch,) + tuple(image_shape), dtype=np.float32)
    labels = rng.integers(0, CLASSES, batch).astype(np.int32)
    for _ in range(3):  # compile, then let caches and the allocator settle
        model.train_on_batch(images, labels)

    def step():
        return model.train_on_batch(images, labels)

    return step


def run(activations, modes, pairs, calls, step_pairs):
    rows = {name: {} for name in activations}
    for jit in modes:
        tag = "XLA" if jit else "no XLA"
        relu_op = activation_step(None, jit)
        relu_net = training_step("relu", jit)
        for name in activations:
            ratio, base, own = interleaved(relu_op, activation_step(name, jit), pairs, calls)
            rows[name][("op", jit)] = (ratio, own * 1e3)
            step_ratio, step_base, step_own = interleaved(relu_net, training_step(name, jit), step_pairs, 1)
            rows[name][("step", jit)] = (step_ratio, step_own * 1e3)
            print(f"[{tag}] {name:12s} op {ratio:5.2f}x ({own * 1e3:6.2f} ms vs relu {base * 1e3:5.2f} ms)  "
                  f"step {step_ratio:5.2f}x ({step_own * 1e3:6.1f} ms vs relu {step_base * 1e3:6.1f} ms)",
                  file=sys.stderr, flush=True)
    return rows


def table(rows, modes):
    header = ["activation"]
    for jit in modes:
        tag = "XLA" if jit else "no XLA"
        header += [f"fwd+bwd / relu ({tag})", f"ms ({tag})", f"train step / relu ({tag})", f"ms ({tag})"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, cells in rows.items():
        row = [name]
        for jit in modes:
            (op_ratio, op_ms), (step_ratio, step_ms) = cells[("op", jit)], cells[("step", jit)]
            row += [f"{op_ratio:.2f}", f"{op_ms:.2f}", f"{step_ratio:.2f}", f"{step_ms:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activations", nargs="+", default=keras_frelu.available(),
                        help="registry names (default: all)")
    parser.add_argument("--jit", choices=("off", "on", "both"), default="off",
                        help="XLA compilation of the measured functions (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=15, help="interleaved pairs per activation-alone ratio")
    parser.add_argument("--calls", type=int, default=10, help="calls timed together in one activation-alone sample")
    parser.add_argument("--step-pairs", type=int, default=15, help="interleaved pairs per training-step ratio")
    parser.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args(argv)
    activations = [keras_frelu.activations.canonical_name(name) for name in args.activations]
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.jit]

    load_before = os.getloadavg()[0]
    rows = run(activations, modes, args.pairs, args.calls, args.step_pairs)
    load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    markdown = table(rows, modes)
    print(markdown)
    print(load)
    if args.append:
        command = "python bench/activations.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        append_results(
            "Activation cost relative to ReLU", command,
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}. fwd+bwd: the activation alone on {list(TENSOR_SHAPE)}; train step: "
            f"reference_cnn {IMAGE_SHAPE}, batch {BATCH}, Adam, `train_on_batch`. Ratios are medians over "
            f"interleaved pairs with ReLU ({args.pairs} and {args.step_pairs}); ms are medians per call; "
            f"{load}.\n\n"
            f"{markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
