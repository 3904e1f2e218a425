"""Every elementwise activation layer against an independent NumPy implementation of its paper's formula
(Funnel ReLU: test_funnel.py)."""

import inspect

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy
import tensorflow as tf
from scipy.special import erf

import keras_frelu
from keras_frelu import layers
from layer_checks import (ELEMENTWISE, assert_matches_central_differences, gradients, layer_class, layer_gradients,
                          sample_inputs, seeded_rng)

rng = pytest.fixture(seeded_rng, name="rng")

SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, eq. (14)
SELU_SCALE = 1.0507009873554804934193349852946


def np_sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def np_leaky(x, slope):
    return np.where(x >= 0, x, slope * x)


def np_ftswish(x, threshold):  # the paper's piecewise definition, not relu(x) * sigmoid(x)
    return np.where(x >= 0, x * np_sigmoid(x) + threshold, threshold)


def np_elu(x, alpha):
    with np.errstate(over="ignore"):
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


# name -> (constructor kwargs, NumPy formula f(x, weights)); weights drawn from WEIGHT_RANGES below.
REFERENCES = {
    "relu": ({}, lambda x, w: np.maximum(x, 0)),
    "lrelu": ({}, lambda x, w: np_leaky(x, 0.2)),
    "prelu": ({}, lambda x, w: np.where(x >= 0, x, w["alpha"] * x)),
    "elu": ({}, lambda x, w: np_elu(x, 1.0)),
    "selu": ({}, lambda x, w: SELU_SCALE * np_elu(x, SELU_ALPHA)),
    "pelu": ({}, lambda x, w: np.where(x >= 0, w["a"] / w["b"] * x, w["a"] * np.expm1(np.minimum(x, 0) / w["b"]))),
    "srelu": ({}, lambda x, w: np.where(
        x >= w["t_right"], w["t_right"] + w["a_right"] * (x - w["t_right"]),
        np.where(x <= w["t_left"], w["t_left"] + w["a_left"] * (x - w["t_left"]), x))),
    "sigmoid": ({}, lambda x, w: np_sigmoid(x)),
    "tanh": ({}, lambda x, w: np.tanh(x)),
    "swish": ({}, lambda x, w: x * np_sigmoid(x)),
    "gelu": ({}, lambda x, w: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))),
    "mish": ({}, lambda x, w: x * np.tanh(np.logaddexp(0.0, x))),
    "flexrelu": ({}, lambda x, w: np.maximum(x, 0) + w["bias"]),
    "ftswish": ({}, lambda x, w: np_ftswish(x, -0.2)),
    "ftswishplus": ({}, lambda x, w: np_ftswish(x, -0.25) + 0.1),
    "trelu": ({}, lambda x, w: np.maximum(x, 0) - 0.25 + 0.03),
    "lisht": ({}, lambda x, w: x * np.tanh(x)),
    "lishtplus": ({}, lambda x, w: np.minimum(x * np.tanh(x) - 0.6, 6.0)),
    "grelu": ({}, lambda x, w: np.minimum(np_leaky(x, 0.1) - 0.4, 6.0)),
}
# Non-default arguments, to show they reach the formula.
VARIANTS = [
    ("lrelu", {"negative_slope": 0.05}, lambda x, w: np_leaky(x, 0.05)),
    ("elu", {"alpha": 0.5}, lambda x, w: np_elu(x, 0.5)),
    ("gelu", {"approximate": True},
     lambda x, w: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    ("ftswish", {"threshold": -0.3, "mean_shift": 0.2, "maxv": 1.5},
     lambda x, w: np.minimum(np_ftswish(x, -0.3) - 0.2, 1.5)),
    ("trelu", {"threshold": -0.1, "mean_shift": 0.0, "maxv": 2.0},
     lambda x, w: np.minimum(np.maximum(x, 0) - 0.1, 2.0)),
    ("grelu", {"leak": 0.0, "sub": 0.0, "maxv": None}, lambda x, w: np.maximum(x, 0)),
    ("lishtplus", {"mean_shift": 0.0, "maxv": None}, lambda x, w: x * np.tanh(x)),
    ("prelu", {"shared_axes": [1]}, REFERENCES["prelu"][1]),  # one slope per (column, channel)
    ("prelu", {"shared_axes": []}, REFERENCES["prelu"][1]),  # one slope per element
    ("srelu", {"shared_axes": [1, 2]}, REFERENCES["srelu"][1]),  # four weights for the whole layer
]

CHANNELS = 4
WEIGHT_RANGES = {  # uniform ranges of random weights away from the initial ones: the tests see the weights' roles
    "prelu": {"alpha": (0.0, 1.0)},
    "flexrelu": {"bias": (-2.0, 1.0)},
    "pelu": {"a": (0.2, 1.9), "b": (0.2, 2.0)},
    "srelu": {"t_left": (-2.0, -0.5), "a_left": (0.0, 1.0), "t_right": (0.5, 2.0), "a_right": (0.5, 2.0)},
}


def make_layer(name, rng, kwargs=None, x=None, **extra):
    """A layer for ``name`` built for ``x`` with random weights from WEIGHT_RANGES; returns (layer, weights dict)."""
    layer = keras_frelu.get(name, **(kwargs or {}), **extra)
    layer.build((None,) + x.shape[1:])
    weights = {}
    for key, (low, high) in WEIGHT_RANGES.get(name, {}).items():
        weights[key] = rng.uniform(low, high, getattr(layer, key).shape).astype(np.float32)
        getattr(layer, key).assign(weights[key])
    return layer, weights


def test_every_elementwise_activation_has_a_numpy_reference():
    assert sorted(REFERENCES) == ELEMENTWISE


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_learnable_weight_gets_random_values(name):
    layer = keras_frelu.get(name)
    layer.build((None, 5, CHANNELS))
    assert sorted(weight.path.rsplit("/", 1)[-1] for weight in layer.trainable_weights) == \
        sorted(WEIGHT_RANGES.get(name, {}))


def assert_matches_formula(name, outputs, expected, x):
    # SReLU bends the identity (x plus multiples of relu(x - t)): its rounding errors scale with |x|, up
    # to a few float32 ulps of |x| where a slope near 0 cancels most of x (see the layer's docstring).
    scale = np.maximum(1.0, np.abs(x)) if name == "srelu" else 1.0
    np.testing.assert_allclose(to_numpy(outputs) / scale, expected / scale, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_layer_matches_numpy_formula(name, rng):
    kwargs, formula = REFERENCES[name]
    x = sample_inputs(rng)
    layer, weights = make_layer(name, rng, kwargs, x)
    assert_matches_formula(name, layer(x), formula(x.astype(np.float64), weights), x)


@pytest.mark.parametrize("name, kwargs, formula", VARIANTS, ids=[f"{v[0]}-{i}" for i, v in enumerate(VARIANTS)])
def test_layer_arguments_reach_the_formula(name, kwargs, formula, rng):
    x = sample_inputs(rng)
    layer, weights = make_layer(name, rng, kwargs, x)
    assert_matches_formula(name, layer(x), formula(x.astype(np.float64), weights), x)


@pytest.mark.parametrize("name", keras_frelu.available())
def test_gradients_are_finite_and_reach_every_learnable_weight(name, rng):
    x = sample_inputs(rng, (8, 5, 5, CHANNELS))
    layer, _ = make_layer(name, rng, REFERENCES.get(name, ({},))[0], x)
    input_grad, weight_grads = gradients(layer, x, rng, training=True)
    assert np.isfinite(input_grad).all()
    assert np.abs(input_grad).max() > 0
    for path, grad in weight_grads.items():
        assert np.isfinite(grad).all(), path
        if path.rsplit("/", 1)[-1].startswith("bias") and name in ("frelu", "frelu_control"):
            # Batch norm in training mode subtracts the batch mean, so the conv bias cancels exactly
            # (as in the official code): its gradient is exactly 0; it only acts through the moving mean.
            np.testing.assert_array_equal(grad, 0.0, err_msg=path)
        else:
            assert np.abs(grad).max() > 1e-6, f"{path} receives no gradient"


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_gradients_match_numpy_finite_differences(name, rng):
    """The gradients for x and every weight against central differences of the NumPy formula (float64),
    along random directions; random inputs, which lie on no kink."""
    kwargs, formula = REFERENCES[name]
    assert_gradients_match_formula(name, kwargs, formula, rng.normal(0.0, 3.0, (6, 5, CHANNELS)), rng)


SHARED_AXES = [name for name in ELEMENTWISE if "shared_axes" in inspect.signature(layer_class(name)).parameters]


@pytest.mark.parametrize("shared_axes", [[], [1], [2, 3], [1, 2], [3], [1, 2, 3]])
@pytest.mark.parametrize("name", SHARED_AXES)
def test_gradients_with_shared_axes_match_numpy_finite_differences(name, shared_axes, rng):
    """Weights shared along some axes get the gradient summed over them (PReLU's written-out gradient too)."""
    kwargs, formula = REFERENCES[name]
    assert_gradients_match_formula(name, {**kwargs, "shared_axes": shared_axes}, formula,
                                   rng.normal(0.0, 3.0, (6, 5, 3, CHANNELS)), rng)


def assert_gradients_match_formula(name, kwargs, formula, x, rng):
    x = x.astype(np.float32)
    layer, weights = make_layer(name, rng, kwargs, x)
    cotangent = rng.normal(size=x.shape)
    x32 = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x32)
        loss = tf.reduce_sum(layer(x32) * cotangent.astype(np.float32))
    keys = sorted(weights)
    grads = tape.gradient(loss, [x32] + [getattr(layer, key).value for key in keys])
    analytic = {key: to_numpy(grad).astype(np.float64) for key, grad in zip(["x"] + keys, grads)}
    assert all(analytic[key].shape == weights[key].shape for key in keys)
    point = {"x": x.astype(np.float64), **{key: value.astype(np.float64) for key, value in weights.items()}}

    def perturbed(key, delta):
        values = {**point, key: point[key] + delta}
        return np.sum(formula(values.pop("x"), values) * cotangent)

    assert_matches_central_differences(analytic, perturbed, tolerance=1e-4, rng=rng)


@pytest.mark.parametrize("shared_axes", [None, [], [1], [2], [1, 2], [1, 2, 3]])
def test_prelu_shared_axes_follow_keras_prelu(shared_axes, rng):
    """The weight's shape and the outputs of keras.layers.PReLU with the same shared_axes (None: ours is
    per channel, the same as sharing every axis but the last)."""
    x = rng.normal(0.0, 3.0, (2, 5, 3, CHANNELS)).astype(np.float32)
    ours = layers.PReLU(shared_axes=shared_axes)
    theirs = keras.layers.PReLU(shared_axes=[1, 2] if shared_axes is None else shared_axes)
    ours.build(x.shape)
    theirs.build(x.shape)
    expected_shape = (CHANNELS,) if shared_axes is None else tuple(theirs.alpha.shape)
    assert tuple(ours.alpha.shape) == expected_shape
    alphas = rng.uniform(0.0, 1.0, theirs.alpha.shape).astype(np.float32)
    theirs.alpha.assign(alphas)
    ours.alpha.assign(alphas.reshape(expected_shape))
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(theirs(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shared_axes, message", [
    ([0], r"shared_axes must be distinct input axes >= 1 \(axis 0 is the batch\), got \[0\]"),
    ([-1], r"got \[-1\]"), ([1, 1], r"got \[1, 1\]"), (["1"], r"got \['1'\]"), (1.0, "got 1.0"),
])
@pytest.mark.parametrize("name", SHARED_AXES)
def test_bad_shared_axes_are_refused(name, shared_axes, message):
    with pytest.raises(ValueError, match=message):
        keras_frelu.get(name, shared_axes=shared_axes)


@pytest.mark.parametrize("name", SHARED_AXES)
def test_shared_axes_beyond_the_input_or_unknown_sizes_are_refused(name):
    cls = layer_class(name).__name__
    with pytest.raises(ValueError, match=rf"{cls}: shared_axes \[1, 3\] name axes beyond the input's last axis 2"):
        keras_frelu.get(name, shared_axes=[1, 3]).build((None, 5, CHANNELS))
    with pytest.raises(ValueError, match=r"known size on axes \[2\].*got input shape \(None, 5, None\)"):
        keras_frelu.get(name).build((None, 5, None))
    with pytest.raises(ValueError, match=r"known size on axes \[1, 2\].*got input shape \(None, None, 4\)"):
        keras_frelu.get(name, shared_axes=[]).build((None, None, CHANNELS))


@pytest.mark.parametrize("name", SHARED_AXES)
def test_shared_axes_layers_check_their_inputs_shape(name):
    layer = keras_frelu.get(name, shared_axes=[1])
    layer(np.zeros((2, 5, CHANNELS), np.float32))
    layer(np.zeros((3, 7, CHANNELS), np.float32))  # any size along the shared axis
    with pytest.raises(ValueError, match="expected axis"):
        layer(np.zeros((2, 5, CHANNELS + 1), np.float32))
    with pytest.raises(ValueError, match="expected ndim=3"):
        layer(np.zeros((2, 5, 1, CHANNELS), np.float32))


def test_leaky_relu_negative_slope_must_be_a_number_at_least_0():
    assert layers.LeakyReLU(negative_slope=0).negative_slope == 0.0
    for value in (-0.1, None, "0.1", True):
        with pytest.raises(ValueError, match=f"negative_slope must be a number >= 0, got {value!r}"):
            layers.LeakyReLU(negative_slope=value)


def test_leaky_relu_still_reads_alpha_with_a_warning():
    with pytest.warns(DeprecationWarning, match="`alpha` is now `negative_slope`"):
        layer = layers.LeakyReLU(alpha=0.05)
    assert layer.negative_slope == 0.05 and "alpha" not in layer.get_config()


def test_selu_saturates_at_minus_scale_times_alpha_to_the_last_bit():
    saturation = to_numpy(layers.SELU()(np.array([-1e3], np.float32)))[0]
    assert abs(saturation - np.float32(-SELU_SCALE * SELU_ALPHA)) <= np.spacing(np.float32(1.76))


def test_mish_gradient_matches_the_papers_derivative(rng):
    # The layer writes its derivative out; the paper's form: tanh(sp(x)) + x sech^2(sp(x)) sigmoid(x)
    x = sample_inputs(rng)
    t = np.tanh(np.logaddexp(0.0, x.astype(np.float64)))
    sigmoid = 0.5 * (1.0 + np.tanh(x.astype(np.float64) / 2))
    expected = t + x * (1.0 - t ** 2) * sigmoid
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layers.Mish()(x)
    np.testing.assert_allclose(to_numpy(tape.gradient(outputs, x)), expected, rtol=1e-5, atol=1e-6)


def np_mish_and_derivative(x):
    """Mish and its derivative in float64, the paper's form."""
    x = x.astype(np.float64)
    t = np.tanh(np.logaddexp(0.0, x))
    return x * t, t + x * (1.0 - t ** 2) * 0.5 * (1.0 + np.tanh(x / 2))


def mish_and_gradient(x, dtype):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layers.Mish(dtype=dtype)(x)
    return to_numpy(outputs), to_numpy(tape.gradient(outputs, x))


def test_mish_in_mixed_float16_is_right_for_every_finite_float16():
    """Every finite float16 (up to 65504): the output and its gradient within float16 rounding of the float64
    values, never above x, and a gradient of exactly 1 for large x."""
    x = np.arange(2 ** 16, dtype=np.uint16).view(np.float16)
    x = x[np.isfinite(x)]
    outputs, gradient = mish_and_gradient(x, "mixed_float16")
    assert outputs.dtype == gradient.dtype == np.float16
    expected, derivative = np_mish_and_derivative(x)
    half_ulp, smallest = 2.0 ** -11, 2.0 ** -24  # float16's relative rounding and its smallest subnormal
    np.testing.assert_allclose(outputs, expected, rtol=half_ulp * 1.01, atol=smallest)
    np.testing.assert_allclose(gradient, derivative, rtol=half_ulp * 1.01, atol=1e-6)
    positive = x >= 0
    assert np.all(outputs[positive] <= x[positive])
    assert np.all(gradient[x >= 10] == 1.0) and np.all(outputs[x >= 10] == x[x >= 10])


def test_mish_in_float32_stays_at_most_x_with_gradient_1_up_to_the_largest_float():
    x = np.concatenate([np.linspace(-30.0, 60.0, 90001), np.geomspace(60.0, 3e38, 2000)]).astype(np.float32)
    outputs, gradient = mish_and_gradient(x, "float32")
    expected, derivative = np_mish_and_derivative(x)
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(gradient, derivative, rtol=1e-6, atol=1e-7)
    positive = x >= 0
    assert np.all(outputs[positive] <= x[positive])
    assert np.all(gradient[x >= 20] == 1.0) and np.all(outputs[x >= 20] == x[x >= 20])


def test_srelu_default_starts_as_leaky_relu(rng):
    x = sample_inputs(rng)
    layer = layers.SReLU()
    np.testing.assert_allclose(to_numpy(layer(x)), np_leaky(x, 0.2), rtol=1e-6)


def test_srelu_stays_continuous_when_its_thresholds_cross():
    # Past the right threshold the right piece, before the left one the left piece, both bends between.
    layer = layers.SReLU(t_left_initializer=1.0, a_left_initializer=0.5, t_right_initializer=-1.0,
                         a_right_initializer=2.0)
    x = np.linspace(-3.0, 3.0, 601).astype(np.float32)[:, np.newaxis]
    got = to_numpy(layer(x))[:, 0]
    x = x[:, 0].astype(np.float64)
    expected = np.where(x >= 1.0, -1.0 + 2.0 * (x + 1.0),
                        np.where(x <= -1.0, 1.0 + 0.5 * (x - 1.0), x + (x + 1.0) + 0.5 * (1.0 - x)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert np.abs(np.diff(got)).max() < 0.03  # slopes of at most 2 on a 0.01 grid: no jump


def test_pelu_parameters_are_clipped_after_updates():
    layer = layers.PELU()
    layer.build((None, 3))
    layer.a.assign(5.0)
    layer.b.assign(-1.0)
    for weight in (layer.a, layer.b):
        weight.assign(weight.constraint(weight))
    assert float(layer.a.numpy()) == pytest.approx(2.0)
    assert float(layer.b.numpy()) == pytest.approx(0.1)


def test_pelu_clips_can_be_replaced_or_removed():
    layer = layers.PELU(a_constraint=None, b_constraint=keras.constraints.NonNeg())
    layer.build((None, 3))
    assert layer.a.constraint is None and isinstance(layer.b.constraint, keras.constraints.NonNeg)


# --- mixed precision ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", keras_frelu.available())
def test_mixed_float16_computes_in_half_precision_with_float32_weights(name, rng):
    x = rng.normal(0.0, 3.0, (4, 5, 5, CHANNELS)).astype(np.float32)
    kwargs = REFERENCES.get(name, ({},))[0]
    reference, _ = make_layer(name, rng, kwargs, x)
    layer, _ = make_layer(name, rng, kwargs, x, dtype="mixed_float16")
    layer.set_weights(reference.get_weights())
    output = layer(x, training=False)
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    assert all(str(weight.dtype) == "float32" for weight in layer.weights)
    np.testing.assert_allclose(to_numpy(output).astype(np.float32), to_numpy(reference(x, training=False)),
                               rtol=1e-2, atol=2e-2)
    weights = {weight.path: weight for weight in layer.trainable_weights}
    found = layer_gradients(layer, x, rng.normal(size=x.shape), weights, training=True)
    assert all(np.isfinite(gradient).all() for gradient in found.values())
    assert np.abs(found["x"]).max() > 0
