"""Funnel ReLU and its light variant against a NumPy depthwise convolution and batch norm."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy as to_numpy

from keras_frelu import layers, registry
from layer_checks import (CONTROLS, FUNNEL, assert_matches_central_differences, gradients, layer_class, layer_gradients,
                          sample_inputs, seeded_rng)

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


def np_funnel(x, branches, control=False):
    """Funnel ReLU in inference (the moving statistics); ``control``: its control, relu of the condition."""
    condition = sum(np_batch_norm(np_depthwise_same(x, b["kernel"]) + b["bias"], b["gamma"], b["beta"],
                                  b["mean"], b["variance"]) for b in branches)
    return np.maximum(condition, 0.0) if control else np.maximum(x, condition)


@pytest.mark.parametrize("name", FUNNEL)
@pytest.mark.parametrize("shape", [(3, 6), (3, 7, 5), (2, 6, 5, 5), (2, 4, 5, 3, 5)],
                         ids=["rank2", "rank3", "rank4", "rank5"])
def test_funnel_matches_numpy_depthwise_conv_and_batch_norm(name, shape, rng):
    cls = layer_class(name)
    x = rng.normal(0, 1, shape).astype(np.float32)
    layer = cls()
    layer.build(shape)
    spatial_rank = len(shape) - 2
    expected_windows = 1 if issubclass(cls, layers.FunnelReLU) or spatial_rank <= 1 else spatial_rank
    assert len(layer.kernels) == expected_windows
    branches = randomise_funnel(layer, shape[-1], rng)
    expected = np_funnel(x.astype(np.float64), branches, control=name in CONTROLS)
    if name not in CONTROLS:
        assert 0.05 < np.mean(expected > x) < 0.95  # both sides of the max are exercised
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_funnel_light_rank4_windows_are_1x3_and_3x1():
    layer = layers.FunnelReLULight()
    layer.build((None, 6, 6, 2))
    assert sorted(tuple(k.shape) for k in layer.kernels) == [(1, 3, 2, 1), (3, 1, 2, 1)]
    assert layer.biases == []


def test_funnel_batch_norm_uses_batch_statistics_in_training_and_updates_moving_statistics(rng):
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
    # The moving variance averages the unbiased batch variance (the official code's MegEngine BatchNorm).
    count = 4 * 6 * 6
    np.testing.assert_allclose(layer.moving_variances[0].numpy(),
                               0.9 * branch["variance"] + 0.1 * batch_variance * count / (count - 1),
                               rtol=1e-4, atol=1e-5)
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
    assert 0.008 < kernel.std() < 0.012 and abs(kernel.mean()) < 0.002  # stddev 0.01, shufflenet_v2.py's first
    np.testing.assert_array_equal(layer.biases[0].numpy(), 0.0)
    np.testing.assert_array_equal(layer.gammas[0].numpy(), 1.0)
    np.testing.assert_array_equal(layer.moving_variances[0].numpy(), 1.0)


def test_funnel_kernel_initializer_reproduces_official_resnet_initialisation():
    """resnet.py's msra_normal_(fan_out, relu) on MegEngine's (C, 1, 1, 3, 3) depthwise weight: fan-out 9 C,
    standard deviation sqrt(2 / (9 C)); Keras's fan-in of the (3, 3, C, 1) kernel is the same 9 C."""
    channels = 256
    layer = layers.FunnelReLU(
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=0))
    layer.build((None, 8, 8, channels))
    assert layer.kernels[0].numpy().std() == pytest.approx(np.sqrt(2.0 / (9 * channels)), rel=0.05)


def np_funnel_training(x, branches, control=False):
    """Funnel ReLU in training mode: batch norm with the batch's own (biased) statistics; ``control``: its
    control."""
    condition = 0.0
    for b in branches:
        z = np_depthwise_same(x, b["kernel"]) + b["bias"]
        axes = tuple(range(z.ndim - 1))
        condition = condition + np_batch_norm(z, b["gamma"], b["beta"], z.mean(axis=axes), z.var(axis=axes))
    return np.maximum(condition, 0.0) if control else np.maximum(x, condition)


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


@pytest.mark.parametrize("name", CONTROLS)
def test_control_in_training_normalises_with_the_batch_updates_the_moving_statistics_and_has_its_gradients(
        name, rng):
    shape = (3, 5, 4, 3)
    x = rng.normal(1.0, 2.0, shape)
    layer = layer_class(name)()
    layer.build(shape)
    branches = randomise_funnel(layer, shape[-1], rng)
    before = [weights.numpy() for weights in layer.moving_means]
    np.testing.assert_allclose(to_numpy(layer(x.astype(np.float32), training=True)),
                               np_funnel_training(x, branches, control=True), rtol=1e-4, atol=1e-4)
    for index, branch in enumerate(branches):  # as the funnel's: the mean of the convolution with its bias
        z = np_depthwise_same(x, branch["kernel"]) + branch["bias"]
        np.testing.assert_allclose(layer.moving_means[index].numpy(),
                                   0.9 * before[index] + 0.1 * z.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    branches = randomise_funnel(layer, shape[-1], rng)
    cotangent = rng.normal(size=shape)
    weights = {"kernel": layer.kernels[0], "gamma": layer.gammas[0], "beta": layer.betas[0]}
    analytic = layer_gradients(layer, x, cotangent, weights, training=True)

    def perturbed(key, delta):
        if key == "x":
            return float(np.sum(np_funnel_training(x + delta, branches, control=True) * cotangent))
        changed = [{**branches[0], key: branches[0][key].astype(np.float64) + delta}] + branches[1:]
        return float(np.sum(np_funnel_training(x, changed, control=True) * cotangent))

    assert_matches_central_differences(analytic, perturbed, tolerance=2e-3, rng=rng)


def test_the_controls_bias_gets_an_exact_zero_gradient_in_training_as_the_funnels(rng):
    x = sample_inputs(rng, (8, 5, 5, 3))
    for name in ("frelu", "frelu_control"):
        layer = layer_class(name)(kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1))
        layer.build(x.shape)
        _, weight_grads = gradients(layer, x, rng, training=True)
        assert np.all(weight_grads["bias"] == 0.0), name


def test_controls_have_the_weights_of_their_funnels():
    for activation, control in registry.controls().items():
        funnel, matched = layer_class(activation)(), layer_class(control)()
        for layer in (funnel, matched):
            layer.build((None, 6, 6, 5))
        assert [(weight.path.split("/")[-1], tuple(weight.shape)) for weight in funnel.weights] == \
               [(weight.path.split("/")[-1], tuple(weight.shape)) for weight in matched.weights]


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


# --- several training steps against an independent NumPy Funnel ReLU ------------------------------------

class NumpyFunnel:
    """Funnel ReLU in float64 NumPy, written from the definition: per branch a depthwise 'same' convolution
    with bias, a batch norm (training: the batch's mean and biased variance; moving averages of the mean and
    of the unbiased variance, as MegEngine's and PyTorch's BatchNorm), then the max. The backward pass is the
    textbook one (batch-norm gradient through its statistics, convolution gradient as a correlation)."""

    def __init__(self, branches, momentum, epsilon):
        self.params = [{key: np.array(value, np.float64) for key, value in branch.items()} for branch in branches]
        self.momentum, self.epsilon = momentum, epsilon

    @staticmethod
    def conv(x, kernel):
        return np_depthwise_same(x, kernel)

    @staticmethod
    def conv_backward(x, kernel, grad_z):
        """(d x, d kernel) of sum(grad_z * conv(x, kernel))."""
        if x.ndim == 2:
            return grad_z * kernel, np.sum(grad_z * x, axis=0)
        window = kernel.shape[:-2]
        pads = [((k - 1) // 2, (k - 1) // 2) for k in window]
        padded = np.pad(x, [(0, 0)] + pads + [(0, 0)])
        grad_padded = np.zeros_like(padded)
        grad_kernel = np.zeros_like(kernel)
        for offset in np.ndindex(*window):
            region = (slice(None),) + tuple(slice(o, o + n) for o, n in zip(offset, x.shape[1:-1])) + (slice(None),)
            grad_kernel[offset + (slice(None), 0)] = np.sum(grad_z * padded[region], axis=tuple(range(x.ndim - 1)))
            grad_padded[region] += grad_z * kernel[offset][:, 0]
        inner = (slice(None),) + tuple(slice(p, p + n) for (p, _), n in zip(pads, x.shape[1:-1])) + (slice(None),)
        return grad_padded[inner], grad_kernel

    def train_step(self, x, cotangent):
        """Outputs and gradients of sum(cotangent * f(x)); updates the moving statistics."""
        axes = tuple(range(x.ndim - 1))
        count = x.size // x.shape[-1]
        cache, condition = [], 0.0
        for p in self.params:
            z = self.conv(x, p["kernel"]) + p["bias"]
            mean, variance = z.mean(axis=axes), z.var(axis=axes)
            z_hat = (z - mean) / np.sqrt(variance + self.epsilon)
            condition = condition + p["gamma"] * z_hat + p["beta"]
            cache.append((z_hat, variance))
            p["mean"] = self.momentum * p["mean"] + (1 - self.momentum) * mean
            p["variance"] = self.momentum * p["variance"] + (1 - self.momentum) * variance * count / (count - 1)
        outputs = np.maximum(x, condition)
        x_wins = x >= condition
        grad_x = np.where(x_wins, cotangent, 0.0)
        grad_condition = np.where(x_wins, 0.0, cotangent)
        grads = []
        for p, (z_hat, variance) in zip(self.params, cache):
            grad_z_hat = grad_condition * p["gamma"]
            grad_z = (grad_z_hat - grad_z_hat.mean(axis=axes) - z_hat * (grad_z_hat * z_hat).mean(axis=axes)) \
                / np.sqrt(variance + self.epsilon)
            grad_input, grad_kernel = self.conv_backward(x, p["kernel"], grad_z)
            grad_x = grad_x + grad_input
            grads.append({"kernel": grad_kernel, "bias": grad_z.sum(axis=axes),
                          "gamma": np.sum(grad_condition * z_hat, axis=axes),
                          "beta": np.sum(grad_condition, axis=axes)})
        return outputs, grad_x, grads

    def sgd(self, grads, learning_rate):
        for p, g in zip(self.params, grads):
            for key, value in g.items():
                if key != "bias" or np.ndim(p["bias"]):
                    p[key] = p[key] - learning_rate * value

    def inference(self, x):
        return np_funnel(x, self.params)


@pytest.mark.parametrize("cls, shape, momentum", [
    (layers.FunnelReLU, (4, 6, 5, 3), 0.9), (layers.FunnelReLULight, (4, 6, 5, 3), 0.9),
    (layers.FunnelReLU, (8, 3), 0.8), (layers.FunnelReLU, (3, 7, 2), 0.7),
], ids=["frelu-rank4", "frelu_light-rank4", "frelu-rank2", "frelu-rank3"])
def test_funnel_training_steps_match_an_independent_numpy_funnel(cls, shape, momentum, rng):
    """Four SGD steps on fresh batches: per step the outputs, the gradients of the input, kernels, biases,
    gammas and betas, the moving means and variances; then the inference output."""
    layer = cls(momentum=momentum)
    layer.build(shape)
    reference = NumpyFunnel(randomise_funnel(layer, shape[-1], rng), momentum, layer.epsilon)
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    names = {"kernel": layer.kernels, "bias": layer.biases, "gamma": layer.gammas, "beta": layer.betas}
    for step in range(4):
        x = rng.normal(0.5, 1.5, shape)
        cotangent = rng.normal(size=shape)
        expected, expected_grad_x, expected_grads = reference.train_step(x, cotangent)
        x32 = tf.constant(x.astype(np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x32)
            outputs = layer(x32, training=True)
            loss = tf.reduce_sum(outputs * cotangent.astype(np.float32))
        variables = [weight for weights in names.values() for weight in weights]
        grad_x, *grads = tape.gradient(loss, [x32] + [weight.value for weight in variables])
        message = f"step {step}"
        np.testing.assert_allclose(to_numpy(outputs), expected, rtol=1e-4, atol=1e-4, err_msg=message)
        np.testing.assert_allclose(to_numpy(grad_x), expected_grad_x, rtol=1e-3, atol=1e-3, err_msg=message)
        got = iter(grads)
        for key, weights in names.items():
            for index, _ in enumerate(weights):
                grad = to_numpy(next(got))
                if key == "bias":  # the batch mean absorbs the bias: 0 exactly, NumPy's to rounding
                    np.testing.assert_array_equal(grad, 0.0)
                    np.testing.assert_allclose(expected_grads[index]["bias"], 0.0, atol=1e-9)
                else:
                    np.testing.assert_allclose(grad, expected_grads[index][key], rtol=1e-3, atol=1e-3,
                                               err_msg=f"{message}: {key}_{index}")
        for index, params in enumerate(reference.params):
            np.testing.assert_allclose(layer.moving_means[index].numpy(), params["mean"], rtol=1e-5, atol=1e-5,
                                       err_msg=message)
            np.testing.assert_allclose(layer.moving_variances[index].numpy(), params["variance"], rtol=1e-5,
                                       atol=1e-5, err_msg=message)
        optimizer.apply(grads, variables)
        reference.sgd(expected_grads, 0.05)
        for key, weights in names.items():
            for index, weight in enumerate(weights):
                np.testing.assert_allclose(weight.numpy(), reference.params[index][key], rtol=1e-4, atol=1e-4)
    x = rng.normal(0.5, 1.5, shape)
    np.testing.assert_allclose(to_numpy(layer(x.astype(np.float32), training=False)), reference.inference(x),
                               rtol=1e-4, atol=1e-4)


def test_funnel_batch_of_one_value_per_channel_keeps_the_moving_variance_finite():
    layer = layers.FunnelReLU()
    layer.build((1, 3))
    layer(np.array([[1.0, -2.0, 0.5]], np.float32), training=True)
    np.testing.assert_allclose(layer.moving_variances[0].numpy(), 0.9)  # 0.9 * 1 + 0.1 * 0
