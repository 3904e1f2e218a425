"""Model builders: layer counts, output shapes and parameter counts worked out by hand."""

import math

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy

import keras_frelu
from keras_frelu import layers, models, registry
from keras_frelu.errors import UsageError

ACTIVATIONS = keras_frelu.available()
MNIST, CIFAR, DIGITS = (28, 28, 1), (32, 32, 3), (8, 8, 1)


def activation_params(name, channels, spatial):
    """Weights (trainable + batch-norm statistics) of one activation layer on ``channels`` channels."""
    batch_norm = 4 * channels  # gamma, beta, moving mean, moving variance
    name = {control: funnel for funnel, control in registry.controls().items()}.get(name, name)  # the same weights
    if name == "frelu":  # 3x3 depthwise kernel (1 per feature on rank 2) + bias + BN
        return (9 if spatial else 1) * channels + channels + batch_norm
    if name == "frelu_light":  # 1x3 and 3x1 kernels, no bias, a BN each; one scale + BN on rank 2
        return 2 * (3 * channels + batch_norm) if spatial else channels + batch_norm
    return {"prelu": channels, "srelu": 4 * channels, "pelu": 2, "flexrelu": 1}.get(name, 0)


def expected_reference_cnn_params(name, shape, classes):
    height, width, channels = shape
    filters = (32, 64, 128) if channels == 1 else (64, 128, 256)
    total, previous = 0, channels
    for count in filters:
        total += 5 * 5 * previous * count + count  # conv kernel + bias
        total += activation_params(name, count, spatial=True)
        total += 0 if name == "selu" else 4 * count
        previous = count
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    previous = height * width * previous
    for units in (16 * classes, 4 * classes):
        total += previous * units + units + activation_params(name, units, spatial=False)
        previous = units
    return total + previous * classes + classes


@pytest.mark.parametrize("shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_reference_cnn_structure(name, shape):
    model = models.reference_cnn(shape, 10, activation=name)
    assert model.output_shape == (None, 10)
    assert model.count_params() == expected_reference_cnn_params(name, shape, 10)
    per_conv_block = 3 if name == "selu" else 4  # conv, activation, [batch norm,] dropout
    assert len(model.layers) == 1 + 3 * per_conv_block + 1 + 2 * 2 + 1  # input ... flatten, 2x(dense, act), logits
    assert [layer.name for layer in models.activation_layers(model)] == [
        "act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2"]
    assert all(type(layer) is type(keras_frelu.get(name)) for layer in models.activation_layers(model))
    assert model.get_layer("logits").activation is keras.activations.linear
    assert model.get_layer("conv1").filters == (32 if shape[-1] == 1 else 64)
    assert model.get_layer("act_conv3").output.shape[1:3] == (math.ceil(shape[0] / 8), math.ceil(shape[1] / 8))


@pytest.mark.parametrize("name", ["relu", "selu", "frelu", "frelu_light", "srelu", "flexrelu"])
def test_reference_cnn_runs_on_8x8_digits(name):
    model = models.reference_cnn(DIGITS, 10, activation=name)
    assert model.count_params() == expected_reference_cnn_params(name, DIGITS, 10)
    logits = model(np.random.default_rng(0).random((4,) + DIGITS, dtype=np.float32), training=True)
    assert logits.shape == (4, 10) and np.isfinite(to_numpy(logits)).all()


def test_reference_cnn_passes_activation_kwargs():
    model = models.reference_cnn(MNIST, 10, activation="lrelu", negative_slope=0.1)
    assert {layer.negative_slope for layer in models.activation_layers(model)} == {0.1}


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28, 1), (28, 0, 1), (28, None, 1), "28x28", (28.5, 28, 1)])
def test_reference_cnn_rejects_bad_shapes(shape):
    with pytest.raises(UsageError, match="height, width, channels"):
        models.reference_cnn(shape, 10)


@pytest.mark.parametrize("channels", [2, 4])
def test_reference_cnn_refuses_channel_counts_the_original_does_not_define(channels):
    with pytest.raises(UsageError, match=f"got {channels} channels"):
        models.reference_cnn((32, 32, channels), 10)


@pytest.mark.parametrize("classes", [1, 0, 2.0, True])
def test_builders_reject_bad_class_counts(classes):
    with pytest.raises(UsageError, match="num_classes"):
        models.reference_cnn(MNIST, classes)
    with pytest.raises(UsageError, match="num_classes"):
        models.cifar_resnet(20, classes)


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError, match="did you mean .*'selu'.*available: elu, "):
        models.reference_cnn(MNIST, 10, activation="sleu")


def expected_resnet(name, depth, classes, act_after_add, channels=3):
    """(parameter count, number of activation layers) of He et al.'s CIFAR ResNet with option-A shortcuts."""
    blocks = (depth - 2) // 6
    total = 3 * 3 * channels * 16 + 4 * 16 + activation_params(name, 16, True)  # stem conv + BN + act
    activations = 1
    previous = 16
    for filters in (16, 32, 64):
        for _ in range(blocks):
            total += 3 * 3 * previous * filters + 4 * filters + activation_params(name, filters, True)
            total += 3 * 3 * filters * filters + 4 * filters
            activations += 1
            if act_after_add:
                total += activation_params(name, filters, True)
                activations += 1
            previous = filters
    return total + 64 * classes + classes, activations


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_cifar_resnet20_structure(name):
    model = models.cifar_resnet(20, 10, activation=name)
    params, activations = expected_resnet(name, 20, 10, act_after_add=True)
    assert model.output_shape == (None, 10)
    assert model.count_params() == params
    found = models.activation_layers(model)
    assert len(found) == activations == 19
    assert all(layer.name.startswith("act_") for layer in found)


@pytest.mark.parametrize("depth", [32, 56])
def test_cifar_resnet_depths(depth):
    model = models.cifar_resnet(depth, 100, activation="relu")
    params, activations = expected_resnet("relu", depth, 100, act_after_add=True)
    assert model.count_params() == params and len(models.activation_layers(model)) == activations
    conv_and_dense = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(conv_and_dense) == depth  # the "depth" counts weighted layers


def test_cifar_resnet20_relu_has_the_papers_parameter_count():
    trainable = sum(int(np.prod(w.shape)) for w in models.cifar_resnet(20, 10).trainable_weights)
    assert round(trainable / 1e6, 2) == 0.27  # He et al. 2016, Table 6


@pytest.mark.parametrize("name", ["relu", "frelu"])
def test_cifar_resnet_without_activation_after_addition(name):
    model = models.cifar_resnet(20, 10, input_shape=MNIST, activation=name, act_after_add=False)
    params, activations = expected_resnet(name, 20, 10, act_after_add=False, channels=1)
    assert model.count_params() == params
    names = [layer.name for layer in models.activation_layers(model)]
    assert len(names) == activations == 10 and not any(n.endswith("_out") for n in names)
    add = model.get_layer("s3_b3_add")
    assert add.output is model.get_layer("pool").input  # the last addition feeds the pooling directly


def test_cifar_resnet_accepts_small_inputs():
    model = models.cifar_resnet(8, 10, input_shape=DIGITS, activation="frelu")
    logits = model(np.zeros((2,) + DIGITS, np.float32), training=False)
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("depth", [21, 2, 0, 20.0, "20"])
def test_cifar_resnet_rejects_bad_depth(depth):
    with pytest.raises(UsageError, match="6n \\+ 2"):
        models.cifar_resnet(depth, 10)


def test_cifar_resnet_rejects_bad_shape():
    with pytest.raises(UsageError, match="height, width, channels"):
        models.cifar_resnet(20, 10, input_shape=(32, 32))


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype(np.float32)
    y = to_numpy(layers.ZeroPadShortcut(filters=8, strides=2)(x))
    assert y.shape == (2, 3, 3, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0.0)


def test_activation_layers_finds_nested_models():
    inner = models.reference_cnn(DIGITS, 10, activation="prelu")
    outer = keras.Sequential([keras.Input(DIGITS), inner, keras_frelu.get("relu", name="act_top")])
    assert [layer.name for layer in models.activation_layers(outer)] == [
        "act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2", "act_top"]
