"""Every learnable weight of every activation takes a ``*_regularizer`` and a ``*_constraint`` argument, as
Keras's own layers: regularizers add their penalty to the layer's losses, the optimizer applies constraints."""

import inspect
import re

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy

import keras_frelu
from keras_frelu import layers
from layer_checks import layer_class, seeded_rng

rng = pytest.fixture(seeded_rng, name="rng")

SHAPE = (2, 5, 5, 3)


def learnable_weights(name, **kwargs):
    """A layer built for SHAPE and its trainable weights grouped by argument prefix (``kernel_0`` -> ``kernel``)."""
    layer = keras_frelu.get(name, **kwargs)
    layer.build(SHAPE)
    groups = {}
    for weight in layer.trainable_weights:
        groups.setdefault(re.sub(r"_\d+$", "", weight.path.rsplit("/", 1)[-1]), []).append(weight)
    return layer, groups


LEARNABLE = [name for name in keras_frelu.available() if learnable_weights(name)[1]]


def test_the_learnable_activations():
    assert LEARNABLE == ["flexrelu", "frelu", "frelu_control", "frelu_light", "frelu_light_control", "pelu", "prelu",
                         "srelu"]


@pytest.mark.parametrize("name", LEARNABLE)
def test_every_learnable_weight_has_regularizer_and_constraint_arguments(name):
    parameters = inspect.signature(layer_class(name)).parameters
    for prefix in learnable_weights(name)[1]:
        assert {f"{prefix}_regularizer", f"{prefix}_constraint"} <= set(parameters), prefix
    for parameter in parameters:  # and no argument for a weight the layer does not have
        if parameter.endswith(("_regularizer", "_constraint")):
            assert parameter.rsplit("_", 1)[0] in learnable_weights(name)[1], parameter


@pytest.mark.parametrize("name", LEARNABLE)
def test_regularizers_add_their_penalty_to_the_layer_losses(name, rng):
    prefixes = sorted(learnable_weights(name)[1])
    factors = {prefix: (rng.uniform(0.01, 0.1), rng.uniform(0.01, 0.1)) for prefix in prefixes}
    regularizers = {f"{prefix}_regularizer": keras.regularizers.L1L2(l1=l1, l2=l2)
                    for prefix, (l1, l2) in factors.items()}
    layer, groups = learnable_weights(name, **regularizers)
    expected = []
    for prefix, weights in groups.items():
        l1, l2 = (np.float32(factor) for factor in factors[prefix])
        for weight in weights:
            value = rng.normal(0.0, 1.0, weight.shape).astype(np.float32)
            weight.assign(value)
            value = value.astype(np.float64)
            expected.append(l1 * np.abs(value).sum() + l2 * np.square(value).sum())
    assert len(layer.losses) == len(expected) == len(layer.trainable_weights)
    np.testing.assert_allclose(sorted(float(to_numpy(loss)) for loss in layer.losses), sorted(expected), rtol=1e-5)
    # ... and a model trained with the layer minimises them with its loss
    inputs = keras.Input(SHAPE[1:])
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_allclose(sum(float(to_numpy(loss)) for loss in model.losses), sum(expected), rtol=1e-5)


def test_without_regularizers_there_are_no_losses():
    for name in keras_frelu.available():
        layer = keras_frelu.get(name)
        layer(np.ones(SHAPE, np.float32))
        assert layer.losses == [], name


@pytest.mark.parametrize("name", LEARNABLE)
def test_the_optimizer_applies_the_constraints(name, rng):
    prefixes = sorted(learnable_weights(name)[1])
    bounds = {prefix: (-0.1 - index, 0.1 + index) for index, prefix in enumerate(prefixes)}
    constraints = {f"{prefix}_constraint": layers.Clip(*bound) for prefix, bound in bounds.items()}
    layer, groups = learnable_weights(name, **constraints)
    for prefix, weights in groups.items():
        assert all(weight.constraint is getattr(layer, f"{prefix}_constraint") for weight in weights)
    x = rng.normal(0.0, 3.0, SHAPE).astype(np.float32)
    variables = layer.trainable_variables
    grads = [np.full(variable.shape, -1e3 if index % 2 else 1e3, np.float32)  # far past each bound
             for index, variable in enumerate(variables)]
    keras.optimizers.SGD(learning_rate=1.0).apply(grads, variables)
    for prefix, weights in groups.items():
        low, high = bounds[prefix]
        for weight in weights:
            value = weight.numpy()
            assert np.all((value == np.float32(low)) | (value == np.float32(high))), weight.path
    assert np.isfinite(to_numpy(layer(x, training=True))).all()
