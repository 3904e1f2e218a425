"""Funnel ReLU in inference: batch norm folded into the depthwise convolution, against the plain formula.

Before/after of ``FunnelCondition.folded_condition`` (keras_frelu/layers/funnel.py), side by side in one
process. "plain" is the inference path the layers had before folding: per branch a depthwise conv, the
bias, then batch norm with the moving statistics as a per-channel multiply-add, the branches summed;
"folded" is the layers' own ``call(training=False)``: one depthwise conv (batch norm and the light
variant's two lines folded into one 3x3 kernel) and one add. Both are checked to agree before timing.

1. the layer alone on a [64, 16, 16, 64] tensor, relative to ReLU;
2. reference_cnn inference (``predict_on_batch``, batch 256, CIFAR-shaped), relative to the ReLU network.

    python bench/funnel_inference.py --rounds 15
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu import layers, models  # noqa: E402
from keras_frelu.cli import ArgumentParser, run  # noqa: E402
from keras_frelu.layers.funnel import FunnelCondition, depthwise_conv  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import interleaved_times  # noqa: E402

TENSOR_SHAPE = (64, 16, 16, 64)
IMAGE_SHAPE, CLASSES, BATCH = (32, 32, 3), 10, 256


def plain_inference(layer, inputs):
    """The unfolded inference formula: per branch BN(dwconv(x, k) + b) with the moving statistics."""
    condition = 0.0
    for index, kernel in enumerate(layer.kernels):
        funnel = depthwise_conv(inputs, kernel)
        if layer.use_bias:
            funnel = funnel + layer.biases[index]
        scale = layer.gammas[index] * ops.rsqrt(layer.moving_variances[index] + layer.epsilon)
        condition = condition + funnel * scale + (layer.betas[index] - layer.moving_means[index] * scale)
    return ops.maximum(inputs, condition)


class PlainFunnelReLU(layers.FunnelReLU):
    def call(self, inputs, training=None):
        return plain_inference(self, inputs)


class PlainFunnelReLULight(layers.FunnelReLULight):
    def call(self, inputs, training=None):
        return plain_inference(self, inputs)


def randomised(layer, shape):
    """Build ``layer`` and give its batch norms non-trivial statistics, so folding has work to do."""
    layer.build(shape)
    rng = np.random.default_rng(0)
    for weights, low, high in ((layer.gammas, 0.5, 2.0), (layer.betas, -0.5, 0.5),
                               (layer.moving_means, -0.5, 0.5), (layer.moving_variances, 0.3, 2.0)):
        for weight in weights:
            weight.assign(rng.uniform(low, high, weight.shape).astype(np.float32))
    return layer


def layer_functions(name, folded_class):
    x = tf.constant(np.random.default_rng(1).normal(size=TENSOR_SHAPE).astype(np.float32))
    layer = randomised(folded_class(), TENSOR_SHAPE)
    folded = tf.function(lambda: layer(x, training=False))
    plain = tf.function(lambda: plain_inference(layer, x))
    np.testing.assert_allclose(folded(), plain(), rtol=1e-4, atol=1e-4)
    return {f"{name} plain": plain, f"{name} folded": folded}


def network_function(activation, plain_class=None):
    keras.utils.set_random_seed(0)
    model = models.reference_cnn(IMAGE_SHAPE, CLASSES, activation=activation)
    if plain_class is not None:
        for layer in model.layers:
            if isinstance(layer, FunnelCondition):
                layer.__class__ = plain_class  # same weights, the unfolded inference formula
    images = np.random.default_rng(2).random((BATCH,) + IMAGE_SHAPE, dtype=np.float32)
    model.predict_on_batch(images)
    return lambda: model.predict_on_batch(images)


def report(title, functions, rounds, calls, baseline):
    medians, _ = interleaved_times(list(functions.values()), rounds, calls)
    times = dict(zip(functions, medians))
    print(f"\n{title}\n\n| variant | ms | relative to {baseline} |\n|---|---:|---:|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds * 1e3:.2f} | {seconds / times[baseline]:.2f} |")


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    x = tf.constant(np.random.default_rng(1).normal(size=TENSOR_SHAPE).astype(np.float32))
    functions = {"relu": tf.function(lambda: ops.relu(x))}
    functions.update(layer_functions("frelu", layers.FunnelReLU))
    functions.update(layer_functions("frelu_light", layers.FunnelReLULight))
    report(f"Layer alone, inference, {list(TENSOR_SHAPE)}; medians of {args.rounds} interleaved rounds of 10 calls",
           functions, args.rounds, 10, "relu")
    networks = {"relu": network_function("relu"),
                "frelu plain": network_function("frelu", PlainFunnelReLU),
                "frelu folded": network_function("frelu"),
                "frelu_light plain": network_function("frelu_light", PlainFunnelReLULight),
                "frelu_light folded": network_function("frelu_light")}
    report(f"reference_cnn {IMAGE_SHAPE} predict_on_batch, batch {BATCH}; medians of {args.rounds} interleaved "
           "rounds", networks, args.rounds, 1, "relu")
    print(f"\nload average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    run(main)
