"""Helpers shared by the layer tests: a seeded generator per test, the registry's classes, gradients and the
central-difference check."""

import zlib

import keras
import numpy as np
import tensorflow as tf

import keras_frelu
from keras_frelu import registry
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
# reference in test_funnel.py, for the funnels and their controls); every other activation is elementwise
# (NumPy references in test_layers.py).
FUNNEL = [name for name in keras_frelu.available() if issubclass(layer_class(name), FunnelCondition)]
CONTROLS = sorted(registry.controls().values())
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


def to_numpy(tensor):
    """NumPy of a backend tensor (PyTorch's own conversion: Keras's warns under NumPy 2)."""
    return tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else keras.ops.convert_to_numpy(tensor)


def autodiff(function, arrays):
    """The gradients of the scalar ``function(*tensors)`` with respect to each tensor, at ``arrays``, by the
    running backend's automatic differentiation; NumPy float64."""
    if keras.backend.backend() == "tensorflow":
        tensors = [tf.constant(array) for array in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = function(*tensors)
        gradients = tape.gradient(value, tensors)
    elif keras.backend.backend() == "jax":
        import jax

        gradients = jax.grad(lambda tensors: function(*tensors))([jax.numpy.asarray(array) for array in arrays])
    else:
        import torch

        tensors = [torch.tensor(array, requires_grad=True) for array in arrays]
        gradients = torch.autograd.grad(function(*tensors), tensors)
    return [to_numpy(gradient).astype(np.float64) for gradient in gradients]


def layer_gradients(layer, x, cotangent, weights, training=None):
    """``{"x": d/dx, name: d/d weight}`` of ``sum(cotangent * layer(x))``, the weights given as tensors
    through a StatelessScope (how Keras's JAX trainer differentiates a layer)."""
    variables = [weights[name] for name in weights]
    cotangent = keras.ops.convert_to_tensor(cotangent.astype(np.float32))

    def objective(x_tensor, *values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            outputs = layer(x_tensor, training=training)
        return keras.ops.sum(keras.ops.cast(outputs, "float32") * cotangent)

    arrays = [x.astype(np.float32)] + [to_numpy(variable.value) for variable in variables]
    return dict(zip(["x", *weights], autodiff(objective, arrays)))
