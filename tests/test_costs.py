"""keras_frelu.costs against hand counts: trainable parameters and forward FLOPs per image."""

import pytest

from keras_frelu import costs, models

DIGITS = (8, 8, 1)


def reference_cnn_by_hand(activation_flops, dense_activation_flops, activation_parameters):
    """The reference CNN on 8x8x1 images, 10 classes, layer by layer (5x5 convs, stride 2, 'same')."""
    flops, parameters = 0, 0
    size, channels = 8, 1
    for filters in (32, 64, 128):
        size = (size + 1) // 2
        outputs = size * size * filters
        flops += outputs * (2 * 25 * channels + 1)  # conv: multiply-adds and bias
        flops += activation_flops * outputs  # act_convI
        flops += 2 * outputs  # batch norm
        parameters += 25 * channels * filters + filters + 2 * filters + activation_parameters(filters, spatial=True)
        channels = filters
    width = size * size * channels
    for units in (160, 40, 10):  # fc1, fc2, logits
        flops += units * (2 * width + 1)
        parameters += width * units + units
        if units != 10:
            flops += dense_activation_flops * units
            parameters += activation_parameters(units, spatial=False)
        width = units
    return parameters, flops


def no_parameters(channels, spatial):
    return 0


def funnel_parameters(channels, spatial):
    """A 3x3 depthwise kernel (one weight per feature on dense outputs), a bias, gamma and beta."""
    return (9 if spatial else 1) * channels + 3 * channels


@pytest.mark.parametrize("activation", ["relu", "frelu", "frelu_control"])
def test_reference_cnn_parameters_and_flops_equal_hand_counts(activation):
    model = models.reference_cnn(DIGITS, 10, activation=activation)
    if activation == "relu":
        parameters, flops = reference_cnn_by_hand(1, 1, no_parameters)
        activation_parameters = 0
    else:  # per element: 2 per tap (9, or 1 on dense outputs), the folded bias, the max or the ReLU
        parameters, flops = reference_cnn_by_hand(2 * 9 + 2, 2 * 1 + 2, funnel_parameters)
        activation_parameters = sum(funnel_parameters(c, True) for c in (32, 64, 128)) + \
            sum(funnel_parameters(c, False) for c in (160, 40))
    assert costs.trainable_parameters(model) == (parameters, activation_parameters)
    assert costs.forward_flops(model) == flops
    if activation == "relu":
        assert (parameters, flops) == (284962, 903354)  # the sums above, written out once


def test_cifar_resnet20_with_relu_equals_a_hand_count():
    flops, parameters = 0, 0

    def conv_bn(size, channels, filters):  # 3x3, no bias, then batch norm (gamma and beta trainable)
        nonlocal flops, parameters
        flops += size * size * filters * (2 * 9 * channels) + 2 * size * size * filters
        parameters += 9 * channels * filters + 2 * filters

    conv_bn(32, 3, 16)
    flops += 32 * 32 * 16  # act_stem
    size, channels = 32, 16
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage and not block else 1
            in_channels, size = channels, size // stride
            conv_bn(size, in_channels, filters)
            flops += size * size * filters  # act_1
            conv_bn(size, filters, filters)
            flops += 2 * size * size * filters  # the addition and act_out
            channels = filters
    flops += size * size * channels  # global average pooling
    flops += 10 * (2 * 64 + 1)
    parameters += 64 * 10 + 10
    model = models.cifar_resnet(20, 10, activation="relu")
    assert costs.trainable_parameters(model) == (parameters, 0)
    assert costs.forward_flops(model) == flops


def test_a_layer_without_a_rule_is_refused_not_guessed():
    import keras

    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.LayerNormalization(name="norm")(inputs))
    with pytest.raises(ValueError, match="no FLOP count for layer 'norm' \\(LayerNormalization\\)"):
        costs.forward_flops(model)
