"""Funnel ReLU and its light variant against a NumPy depthwise convolution and batch norm."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy as to_numpy

from keras_frelu import layers
from layer_checks import FUNNEL, assert_matches_central_differences, gradients, layer_class, sample_inputs, seeded_rng

rng = pytest.fixture(seeded_rng, name="rng")

CHANNELS = 4


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


def randomise_funnel(layer, channels, rng):
    """Known random kernels, biases and batch-norm statistics; returns them as NumPy arrays."""
    branches = []
    for index, kernel in enumerate(layer.kernels):
        branch = {"kernel": rng.normal(0, 0.5, kernel.shape),
                  "bias": rng.normal(0, 0.5, channels) if layer.use_bias else 0.0,
                  "gamma": rng.uniform(0.5, 2, channels), "beta": rng.normal(0, 0.5, channels),
                  "mean": rng.normal(0, 0.5, channels), "variance": rng.uniform(0.3, 2, channels)}
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


@pytest.mark.parametrize("name", FUNNEL)
@pytest.mark.parametrize("shape", [(3, 6), (3, 7, 5), (2, 6, 5, 5), (2, 4, 5, 3, 5)],
                         ids=["rank2", "rank3", "rank4", "rank5"])
def test_funnel_matches_numpy_depthwise_conv_and_batch_norm(name, shape, rng):
    cls = layer_class(name)
    x = rng.normal(0, 1, shape).astype(np.float32)
    layer = cls()
    layer.build(shape)
    spatial_rank = len(shape) - 2
    expected_windows = 1 if cls is layers.FunnelReLU or spatial_rank <= 1 else spatial_rank
    assert len(layer.kernels) == expected_windows
    branches = randomise_funnel(layer, shape[-1], rng)
    expected = np_funnel(x.astype(np.float64), branches)
    assert 0.05 < np.mean(expected > x) < 0.95  # both sides of the max are exercised
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_funnel_light_rank4_windows_are_1x3_and_3x1():
    layer = layers.FunnelReLULight()
    layer.build((None, 6, 6, 2))
    assert sorted(tuple(k.shape) for k in layer.kernels) == [(1, 3, 2, 1), (3, 1, 2, 1)]
    assert layer.biases == []


def test_funnel_batch_norm_uses_batch_statistics_in_training_and_updates_moving_mean(rng):
    shape = (4, 6, 6, 3)
    x = rng.normal(1.0, 2.0, shape).astype(np.float32)
    layer = layers.FunnelReLU()
    layer.build(shape)
    (branch,) = randomise_funnel(layer, shape[-1], rng)
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
def test_funnel_training_gradients_match_numpy_finite_differences(cls, shape, rng):
    """The closed-form batch-norm backward pass against central differences of a float64 NumPy model."""
    x = rng.normal(0, 1, shape)
    layer = cls()
    layer.build(shape)
    branches = randomise_funnel(layer, shape[-1], rng)
    x32 = tf.constant(x.astype(np.float32))
    cotangent = rng.normal(size=shape)
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

    assert_matches_central_differences(dict(zip(["x"] + list(trainable), analytic)), perturbed, tolerance=2e-3,
                                       rng=rng)


def test_funnel_bias_receives_gradient_in_inference_mode(rng):
    x = sample_inputs(rng, (8, 5, 5, CHANNELS))
    layer = layers.FunnelReLU(kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1))
    layer.build(x.shape)
    _, weight_grads = gradients(layer, x, rng, training=False)
    assert np.abs(weight_grads["bias"]).max() > 1e-6


@pytest.mark.parametrize("kernel_size", [2, 0, 3.0])
def test_funnel_rejects_even_or_non_integer_kernel_size(kernel_size):
    with pytest.raises(ValueError, match="odd integer"):
        layers.FunnelReLU(kernel_size=kernel_size)


def test_funnel_rejects_unsupported_rank():
    with pytest.raises(ValueError, match="rank 2 to 5"):
        layers.FunnelReLU().build((None, 2, 3, 4, 5, 6))


def test_funnel_light_has_no_bias_to_regularize_or_constrain():
    with pytest.raises(ValueError, match="FunnelReLULight has no convolution bias, got bias_regularizer='l2'"):
        layers.FunnelReLULight(bias_regularizer="l2")
