"""Every activation layer against an independent NumPy implementation of its paper's formula."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy
import tensorflow as tf
from scipy.special import erf

import keras_frelu
from keras_frelu import layers

RNG = np.random.default_rng(0)
SPECIAL = np.array([-1e3, -50.0, -10.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 10.0, 50.0, 1e3], dtype=np.float32)
SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, eq. (14)
SELU_SCALE = 1.0507009873554804934193349852946


def sample_inputs(shape=(6, 5, 4)):
    """Random N(0, 3) values with the SPECIAL ones (large, tiny, zero, both signs) written over the first."""
    x = RNG.normal(0.0, 3.0, size=shape).astype(np.float32)
    x.flat[:SPECIAL.size] = SPECIAL
    return x


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


# name -> (constructor kwargs, NumPy formula f(x, weights)); weights as set by KNOWN_WEIGHTS below.
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
    ("lrelu", {"alpha": 0.05}, lambda x, w: np_leaky(x, 0.05)),
    ("elu", {"alpha": 0.5}, lambda x, w: np_elu(x, 0.5)),
    ("gelu", {"approximate": True},
     lambda x, w: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    ("ftswish", {"threshold": -0.3, "mean_shift": 0.2, "maxv": 1.5},
     lambda x, w: np.minimum(np_ftswish(x, -0.3) - 0.2, 1.5)),
    ("trelu", {"threshold": -0.1, "mean_shift": 0.0, "maxv": 2.0},
     lambda x, w: np.minimum(np.maximum(x, 0) - 0.1, 2.0)),
    ("grelu", {"leak": 0.0, "sub": 0.0, "maxv": None}, lambda x, w: np.maximum(x, 0)),
    ("lishtplus", {"mean_shift": 0.0, "maxv": None}, lambda x, w: x * np.tanh(x)),
]

CHANNELS = 4
KNOWN_WEIGHTS = {  # random values away from the initial ones, so the test sees the weights' roles
    "prelu": {"alpha": RNG.uniform(0.0, 1.0, CHANNELS)},
    "flexrelu": {"bias": RNG.uniform(-2.0, 1.0)},
    "pelu": {"a": RNG.uniform(0.2, 1.9), "b": RNG.uniform(0.2, 2.0)},
    "srelu": {"t_left": RNG.uniform(-2.0, -0.5, CHANNELS), "a_left": RNG.uniform(0.0, 1.0, CHANNELS),
              "t_right": RNG.uniform(0.5, 2.0, CHANNELS), "a_right": RNG.uniform(0.5, 2.0, CHANNELS)},
}
ELEMENTWISE = sorted(REFERENCES)


def make_layer(name, kwargs=None, x=None, **extra):
    """A built layer for ``name`` with the KNOWN_WEIGHTS assigned; returns (layer, weights dict)."""
    layer = keras_frelu.get(name, **(kwargs or {}), **extra)
    layer.build((None,) + (x.shape[1:] if x is not None else (5, CHANNELS)))
    weights = {key: np.asarray(value, np.float32) for key, value in KNOWN_WEIGHTS.get(name, {}).items()}
    for key, value in weights.items():
        getattr(layer, key).assign(value)
    return layer, weights


def test_every_registry_name_has_a_numpy_reference():
    assert set(REFERENCES) | {"frelu", "frelu_light"} == set(keras_frelu.available())


def assert_matches_formula(name, outputs, expected, x):
    # SReLU bends the identity (x plus multiples of relu(x - t)): its rounding errors scale with |x|, up
    # to a few float32 ulps of |x| where a slope near 0 cancels most of x (see the layer's docstring).
    scale = np.maximum(1.0, np.abs(x)) if name == "srelu" else 1.0
    np.testing.assert_allclose(to_numpy(outputs) / scale, expected / scale, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_layer_matches_numpy_formula(name):
    kwargs, formula = REFERENCES[name]
    x = sample_inputs()
    layer, weights = make_layer(name, kwargs, x)
    assert_matches_formula(name, layer(x), formula(x.astype(np.float64), weights), x)


@pytest.mark.parametrize("name, kwargs, formula", VARIANTS, ids=[f"{v[0]}-{i}" for i, v in enumerate(VARIANTS)])
def test_layer_arguments_reach_the_formula(name, kwargs, formula):
    x = sample_inputs()
    layer, weights = make_layer(name, kwargs, x)
    assert_matches_formula(name, layer(x), formula(x.astype(np.float64), weights), x)


def gradients(layer, x, training=None):
    """d(sum(cotangent * layer(x))) with respect to x and to every trainable weight."""
    x = tf.constant(x)
    cotangent = tf.constant(RNG.normal(size=x.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.cast(layer(x, training=training), tf.float32) * cotangent)
    weights = layer.trainable_weights
    grads = tape.gradient(loss, [x] + [weight.value for weight in weights])
    by_path = {weight.path.split("/", 1)[1]: to_numpy(grad) for weight, grad in zip(weights, grads[1:])}
    return to_numpy(grads[0]), by_path


@pytest.mark.parametrize("name", keras_frelu.available())
def test_gradients_are_finite_and_reach_every_learnable_weight(name):
    x = sample_inputs((8, 5, 5, CHANNELS))
    layer, _ = make_layer(name, REFERENCES.get(name, ({},))[0], x)
    input_grad, weight_grads = gradients(layer, x, training=True)
    assert np.isfinite(input_grad).all()
    assert np.abs(input_grad).max() > 0
    for path, grad in weight_grads.items():
        assert np.isfinite(grad).all(), path
        if path.rsplit("/", 1)[-1].startswith("bias") and name == "frelu":
            # Batch norm in training mode subtracts the batch mean, so the conv bias cancels exactly
            # (as in the official code): its gradient is exactly 0; it only acts through the moving mean.
            np.testing.assert_array_equal(grad, 0.0, err_msg=path)
        else:
            assert np.abs(grad).max() > 1e-6, f"{path} receives no gradient"


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_gradients_match_numpy_finite_differences(name):
    """The gradients for x and every weight against central differences of the NumPy formula (float64),
    along random directions; random inputs, which lie on no kink."""
    kwargs, formula = REFERENCES[name]
    x = RNG.normal(0.0, 3.0, (6, 5, CHANNELS)).astype(np.float32)
    layer, weights = make_layer(name, kwargs, x)
    cotangent = RNG.normal(size=x.shape)
    x32 = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x32)
        loss = tf.reduce_sum(layer(x32) * cotangent.astype(np.float32))
    keys = sorted(weights)
    grads = tape.gradient(loss, [x32] + [getattr(layer, key).value for key in keys])
    analytic = {key: to_numpy(grad).astype(np.float64) for key, grad in zip(["x"] + keys, grads)}
    point = {"x": x.astype(np.float64), **{key: value.astype(np.float64) for key, value in weights.items()}}

    def perturbed(key, delta):
        values = {**point, key: point[key] + delta}
        return np.sum(formula(values.pop("x"), values) * cotangent)

    assert_matches_central_differences(analytic, perturbed, tolerance=1e-4)


def assert_matches_central_differences(analytic, perturbed, tolerance):
    """Each gradient of ``analytic`` (``{key: array}``) along a random direction equals the central
    difference of ``perturbed(key, delta)``, the objective with ``key`` moved by ``delta``."""
    step = 1e-6
    for key, grad in analytic.items():
        direction = RNG.normal(size=grad.shape)
        numeric = (perturbed(key, step * direction) - perturbed(key, -step * direction)) / (2 * step)
        np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=tolerance, atol=tolerance, err_msg=key)


def test_funnel_bias_receives_gradient_in_inference_mode():
    x = sample_inputs((8, 5, 5, CHANNELS))
    layer = layers.FunnelReLU(kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1))
    layer.build(x.shape)
    _, weight_grads = gradients(layer, x, training=False)
    assert np.abs(weight_grads["bias"]).max() > 1e-6


def test_selu_saturates_at_minus_scale_times_alpha_to_the_last_bit():
    saturation = to_numpy(layers.SELU()(np.array([-1e3], np.float32)))[0]
    assert abs(saturation - np.float32(-SELU_SCALE * SELU_ALPHA)) <= np.spacing(np.float32(1.76))


def test_mish_gradient_matches_the_papers_derivative():
    # The layer writes its derivative out; the paper's form: tanh(sp(x)) + x sech^2(sp(x)) sigmoid(x)
    x = sample_inputs()
    t = np.tanh(np.logaddexp(0.0, x.astype(np.float64)))
    sigmoid = 0.5 * (1.0 + np.tanh(x.astype(np.float64) / 2))
    expected = t + x * (1.0 - t ** 2) * sigmoid
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layers.Mish()(x)
    np.testing.assert_allclose(to_numpy(tape.gradient(outputs, x)), expected, rtol=1e-5, atol=1e-6)


def test_srelu_default_starts_as_leaky_relu():
    x = sample_inputs()
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


# --- Funnel ReLU --------------------------------------------------------------------------------------

def np_depthwise_same(x, kernel):
    """Stride-1, zero-padded 'same' cross-correlation of each channel with its own window."""
    if x.ndim == 2:
        return x * kernel
    window = kernel.shape[:-2]
    padded = np.pad(x, [(0, 0)] + [((k - 1) // 2, (k - 1) // 2) for k in window] + [(0, 0)])
    out = np.zeros_like(x, dtype=np.float64)
    for offset in np.ndindex(*window):
        region = (slice(None),) + tuple(slice(o, o + n) for o, n in zip(offset, x.shape[1:-1])) + (slice(None),)
        out += padded[region] * kernel[offset][:, 0]
    return out


def np_batch_norm(z, gamma, beta, mean, variance, epsilon=1e-5):
    return gamma * (z - mean) / np.sqrt(variance + epsilon) + beta


def randomise_funnel(layer, channels):
    """Known random kernels, biases and batch-norm statistics; returns them as NumPy arrays."""
    branches = []
    for index, kernel in enumerate(layer.kernels):
        branch = {"kernel": RNG.normal(0, 0.5, kernel.shape),
                  "bias": RNG.normal(0, 0.5, channels) if layer.use_bias else 0.0,
                  "gamma": RNG.uniform(0.5, 2, channels), "beta": RNG.normal(0, 0.5, channels),
                  "mean": RNG.normal(0, 0.5, channels), "variance": RNG.uniform(0.3, 2, channels)}
        weights = {"kernel": kernel, "bias": layer.biases[index] if layer.use_bias else None,
                   "gamma": layer.gammas[index], "beta": layer.betas[index],
                   "mean": layer.moving_means[index], "variance": layer.moving_variances[index]}
        for key, weight in weights.items():
            if weight is not None:
                branch[key] = branch[key].astype(np.float32)
                weight.assign(branch[key])
        branches.append(branch)
    return branches


def np_funnel(x, branches):
    condition = sum(np_batch_norm(np_depthwise_same(x, b["kernel"]) + b["bias"], b["gamma"], b["beta"],
                                  b["mean"], b["variance"]) for b in branches)
    return np.maximum(x, condition)


@pytest.mark.parametrize("cls", [layers.FunnelReLU, layers.FunnelReLULight], ids=["frelu", "frelu_light"])
@pytest.mark.parametrize("shape", [(3, 6), (3, 7, 5), (2, 6, 5, 5), (2, 4, 5, 3, 5)],
                         ids=["rank2", "rank3", "rank4", "rank5"])
def test_funnel_matches_numpy_depthwise_conv_and_batch_norm(cls, shape):
    x = RNG.normal(0, 1, shape).astype(np.float32)
    layer = cls()
    layer.build(shape)
    spatial_rank = len(shape) - 2
    expected_windows = 1 if cls is layers.FunnelReLU or spatial_rank <= 1 else spatial_rank
    assert len(layer.kernels) == expected_windows
    branches = randomise_funnel(layer, shape[-1])
    expected = np_funnel(x.astype(np.float64), branches)
    assert 0.05 < np.mean(expected > x) < 0.95  # both sides of the max are exercised
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_funnel_light_rank4_windows_are_1x3_and_3x1():
    layer = layers.FunnelReLULight()
    layer.build((None, 6, 6, 2))
    assert sorted(tuple(k.shape) for k in layer.kernels) == [(1, 3, 2, 1), (3, 1, 2, 1)]
    assert layer.biases == []


def test_funnel_batch_norm_uses_batch_statistics_in_training_and_updates_moving_mean():
    shape = (4, 6, 6, 3)
    x = RNG.normal(1.0, 2.0, shape).astype(np.float32)
    layer = layers.FunnelReLU()
    layer.build(shape)
    (branch,) = randomise_funnel(layer, shape[-1])
    z = np_depthwise_same(x.astype(np.float64), branch["kernel"]) + branch["bias"]
    batch_mean, batch_variance = z.mean(axis=(0, 1, 2)), z.var(axis=(0, 1, 2))
    expected = np.maximum(x, np_batch_norm(z, branch["gamma"], branch["beta"], batch_mean, batch_variance))
    np.testing.assert_allclose(to_numpy(layer(x, training=True)), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_means[0].numpy(), 0.9 * branch["mean"] + 0.1 * batch_mean,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_variances[0].numpy(),
                               0.9 * branch["variance"] + 0.1 * batch_variance, rtol=1e-4, atol=1e-5)
    # Inference, and training of a frozen layer (Keras's BatchNormalization convention), use and keep the
    # moving statistics.
    before = [layer.moving_means[0].numpy(), layer.moving_variances[0].numpy()]
    inference = to_numpy(layer(x, training=False))
    layer.trainable = False
    np.testing.assert_array_equal(to_numpy(layer(x, training=True)), inference)
    np.testing.assert_array_equal(layer.moving_means[0].numpy(), before[0])
    np.testing.assert_array_equal(layer.moving_variances[0].numpy(), before[1])


def test_funnel_defaults_follow_the_official_code():
    layer = layers.FunnelReLU()
    layer.build((None, 16, 16, 64))
    assert (layer.kernel_size, layer.momentum, layer.epsilon) == (3, 0.9, 1e-5)
    kernel = layer.kernels[0].numpy()
    assert kernel.shape == (3, 3, 64, 1)
    assert 0.008 < kernel.std() < 0.012 and abs(kernel.mean()) < 0.002  # N(0, 0.01): stddev 0.01
    np.testing.assert_array_equal(layer.biases[0].numpy(), 0.0)
    np.testing.assert_array_equal(layer.gammas[0].numpy(), 1.0)
    np.testing.assert_array_equal(layer.moving_variances[0].numpy(), 1.0)


def np_funnel_training(x, branches):
    """Funnel ReLU in training mode: batch norm with the batch's own (biased) statistics."""
    condition = 0.0
    for b in branches:
        z = np_depthwise_same(x, b["kernel"]) + b["bias"]
        axes = tuple(range(z.ndim - 1))
        condition = condition + np_batch_norm(z, b["gamma"], b["beta"], z.mean(axis=axes), z.var(axis=axes))
    return np.maximum(x, condition)


@pytest.mark.parametrize("cls, shape", [(layers.FunnelReLU, (3, 5, 4, 3)), (layers.FunnelReLULight, (3, 5, 4, 3)),
                                        (layers.FunnelReLU, (6, 3)), (layers.FunnelReLU, (2, 3, 3, 3, 2))],
                         ids=["frelu-rank4", "frelu_light-rank4", "frelu-rank2", "frelu-rank5"])
def test_funnel_training_gradients_match_numpy_finite_differences(cls, shape):
    """The closed-form batch-norm backward pass against central differences of a float64 NumPy model."""
    x = RNG.normal(0, 1, shape)
    layer = cls()
    layer.build(shape)
    branches = randomise_funnel(layer, shape[-1])
    x32 = tf.constant(x.astype(np.float32))
    cotangent = RNG.normal(size=shape)
    with tf.GradientTape() as tape:
        tape.watch(x32)
        loss = tf.reduce_sum(layer(x32, training=True) * cotangent.astype(np.float32))
    trainable = {"kernel": layer.kernels, "gamma": layer.gammas, "beta": layer.betas}
    variables = [x32] + [weights[0].value for weights in trainable.values()]
    analytic = [to_numpy(g).astype(np.float64) for g in tape.gradient(loss, variables)]

    def objective(x_value, first_branch_overrides):
        changed = [{**branches[0], **first_branch_overrides}] + branches[1:]
        return float(np.sum(np_funnel_training(x_value, changed) * cotangent))

    def perturbed(key, delta):
        if key == "x":
            return objective(x + delta, {})
        return objective(x, {key: branches[0][key].astype(np.float64) + delta})

    assert_matches_central_differences(dict(zip(["x"] + list(trainable), analytic)), perturbed, tolerance=2e-3)


@pytest.mark.parametrize("kernel_size", [2, 0, 3.0])
def test_funnel_rejects_even_or_non_integer_kernel_size(kernel_size):
    with pytest.raises(ValueError, match="odd integer"):
        layers.FunnelReLU(kernel_size=kernel_size)


def test_funnel_rejects_unsupported_rank():
    with pytest.raises(ValueError, match="rank 2 to 5"):
        layers.FunnelReLU().build((None, 2, 3, 4, 5, 6))


# --- mixed precision ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", keras_frelu.available())
def test_mixed_float16_computes_in_half_precision_with_float32_weights(name):
    x = RNG.normal(0.0, 3.0, (4, 5, 5, CHANNELS)).astype(np.float32)
    kwargs = REFERENCES.get(name, ({},))[0]
    reference, _ = make_layer(name, kwargs, x)
    layer, _ = make_layer(name, kwargs, x, dtype="mixed_float16")
    layer.set_weights(reference.get_weights())
    output = layer(x, training=False)
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    assert all(str(w.dtype) == "float32" for w in layer.weights)
    np.testing.assert_allclose(to_numpy(output).astype(np.float32), to_numpy(reference(x, training=False)),
                               rtol=1e-2, atol=2e-2)
    input_grad, weight_grads = gradients(layer, x, training=True)
    assert np.isfinite(input_grad).all() and all(np.isfinite(g).all() for g in weight_grads.values())
