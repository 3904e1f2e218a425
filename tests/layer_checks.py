"""Helpers shared by the layer tests: a seeded generator per test, the registry's classes, gradients and the
central-difference check."""

import zlib

import numpy as np
import tensorflow as tf
from keras.ops import convert_to_numpy as to_numpy

import keras_frelu
from keras_frelu.layers.funnel import FunnelCondition


def seeded_rng(request):
    """A generator of the test's own, seeded from its name (with parameters), so each test draws the same
    numbers however the tests are ordered or distributed; a test module makes it its ``rng`` fixture with
    ``rng = pytest.fixture(seeded_rng, name="rng")``."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


SPECIAL = np.array([-1e3, -50.0, -10.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 10.0, 50.0, 1e3], dtype=np.float32)


def sample_inputs(rng, shape=(6, 5, 4)):
    """Random N(0, 3) values with the SPECIAL ones (large, tiny, zero, both signs) written over the first."""
    x = rng.normal(0.0, 3.0, size=shape).astype(np.float32)
    x.flat[:SPECIAL.size] = SPECIAL
    return x


def layer_class(name):
    """The class registered as ``name``."""
    return type(keras_frelu.get(name))


# The registry split the way the tests need it: Funnel ReLU's condition looks at a neighbourhood (NumPy
# reference in test_funnel.py); every other activation is elementwise (NumPy references in test_layers.py).
FUNNEL = [name for name in keras_frelu.available() if issubclass(layer_class(name), FunnelCondition)]
ELEMENTWISE = [name for name in keras_frelu.available() if name not in FUNNEL]


def gradients(layer, x, rng, training=None):
    """d(sum(cotangent * layer(x))) with respect to x and to every trainable weight, for a random cotangent;
    returns ``(input gradient, {weight path without the layer name: gradient})``."""
    x = tf.constant(x)
    cotangent = tf.constant(rng.normal(size=x.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.cast(layer(x, training=training), tf.float32) * cotangent)
    weights = layer.trainable_weights
    grads = tape.gradient(loss, [x] + [weight.value for weight in weights])
    by_path = {weight.path.split("/", 1)[1]: to_numpy(grad) for weight, grad in zip(weights, grads[1:])}
    return to_numpy(grads[0]), by_path


def assert_matches_central_differences(analytic, perturbed, tolerance, rng):
    """Each gradient of ``analytic`` (``{key: array}``) along a random direction equals the central
    difference of ``perturbed(key, delta)``, the objective with ``key`` moved by ``delta``."""
    step = 1e-6
    for key, grad in analytic.items():
        direction = rng.normal(size=grad.shape)
        numeric = (perturbed(key, step * direction) - perturbed(key, -step * direction)) / (2 * step)
        np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=tolerance, atol=tolerance, err_msg=key)
