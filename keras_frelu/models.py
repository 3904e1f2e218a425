"""Model builders: the reference CNN of the activation-visualisation project and He et al.'s CIFAR ResNets.

Every activation comes from ``keras_frelu.get`` and has a stable ``act_*`` name, so monitors can find
them (``activation_layers``).
"""

import keras

from keras_frelu import activations
from keras_frelu.errors import UsageError
from keras_frelu.layers import ActivationLayer, ZeroPadShortcut


def _check_image_shape(input_shape, builder):
    """``input_shape`` as a tuple of three positive ints (height, width, channels), or UsageError."""
    try:
        shape = tuple(int(size) for size in input_shape)
    except (TypeError, ValueError):
        shape = None
    if shape is None or len(shape) != 3 or min(shape) < 1 or shape != tuple(input_shape):
        raise UsageError(f"{builder} takes an image shape (height, width, channels) of three positive "
                         f"integers, got {input_shape!r}; give e.g. (28, 28, 1) or (32, 32, 3)")
    return shape


def _check_num_classes(num_classes, builder):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise UsageError(f"{builder} needs num_classes as an integer >= 2, got {num_classes!r}")


def reference_cnn(input_shape, num_classes, activation="relu", **activation_kwargs):
    """The 3-conv + 3-dense network of shaohua0116/Activation-Visualization-Histogram (``model.py``).

    Per conv block: 5x5 conv, stride 2, 'same' padding, bias, truncated-normal(0.02) kernel (as the
    original ``ops.conv2d``) -> activation ``act_convI`` -> batch norm (momentum 0.9, epsilon 1e-3, the
    original's ``tf.contrib`` defaults; left out for SELU, which normalises itself) -> dropout 0.5.
    Filters 32/64/128 for 1-channel inputs, 64/128/256 for 3-channel inputs (the original's MNIST vs
    SVHN/CIFAR configurations; it defines none for other channel counts, so they are refused). Then
    flatten -> dense 16n -> ``act_fc1`` -> dense 4n -> ``act_fc2`` -> dense n named ``logits``
    (n = num_classes). As the original, the dense layers have no batch norm. Deliberate
    deviation: the last dense layer returns logits (no activation); train with ``from_logits=True``.

    Any image size works (8x8 digits, 28x28 MNIST, 32x32 CIFAR): each conv halves it, rounding up.
    ``activation_kwargs`` go to every activation layer. Raises UsageError for a bad shape or class count
    and ValueError (naming the choices) for an unknown activation.
    """
    height, width, channels = _check_image_shape(input_shape, "reference_cnn")
    _check_num_classes(num_classes, "reference_cnn")
    batch_norm = activations.canonical_name(activation) != "selu"
    if channels not in (1, 3):
        raise UsageError(f"reference_cnn is defined for 1-channel (grayscale) or 3-channel (colour) images, "
                         f"got {channels} channels; convert the images to one of those")
    filters = (32, 64, 128) if channels == 1 else (64, 128, 256)

    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = inputs
    for index, units in enumerate(filters, start=1):
        x = keras.layers.Conv2D(units, 5, strides=2, padding="same", name=f"conv{index}",
                                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))(x)
        x = activations.get(activation, name=f"act_conv{index}", **activation_kwargs)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name=f"bn{index}")(x)
        x = keras.layers.Dropout(0.5, name=f"dropout{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate((16 * num_classes, 4 * num_classes), start=1):
        x = keras.layers.Dense(units, name=f"fc{index}")(x)
        x = activations.get(activation, name=f"act_fc{index}", **activation_kwargs)(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=f"reference_cnn_{activations.canonical_name(activation)}")


def cifar_resnet(depth, num_classes, input_shape=(32, 32, 3), activation="relu", act_after_add=True,
                 **activation_kwargs):
    """He et al.'s CIFAR ResNet (depth 6n + 2: 20, 32, 44, 56, 110, ...).

    3x3 conv (16) -> BN -> ``act_stem``; three stages of n basic blocks with 16, 32, 64 filters (the first
    block of stages 2 and 3 has stride 2); global average pooling; dense ``logits``. Block ``b`` of stage
    ``s``: conv3x3 -> BN -> ``act_s{s}_b{b}_1`` -> conv3x3 -> BN -> add the shortcut (identity, or the
    parameter-free zero-padded "option A" when the shape changes) -> ``act_s{s}_b{b}_out``.
    Convolutions have no bias (BN follows) and He-normal kernels; BN uses momentum 0.9, epsilon 1e-5.

    ``act_after_add=False`` drops the activation after the addition (the FReLU paper's "w/o ACT after
    addition" ResNet; the original Flexible ReLU ``elu-resnet-possrelu`` model). The paper's 1e-4 weight
    decay is left to the training loop. Raises UsageError for a depth that is not 6n + 2, a bad shape or
    class count.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise UsageError(f"cifar_resnet depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth!r}")
    height, width, channels = _check_image_shape(input_shape, "cifar_resnet")
    _check_num_classes(num_classes, "cifar_resnet")
    blocks_per_stage = (depth - 2) // 6

    def conv_bn(x, filters, strides, name):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                                kernel_initializer="he_normal", name=f"{name}_conv")(x)
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)

    def act(x, name):
        return activations.get(activation, name=f"act_{name}", **activation_kwargs)(x)

    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = act(conv_bn(inputs, 16, 1, "stem"), "stem")
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, blocks_per_stage + 1):
            name = f"s{stage}_b{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            shortcut = x
            if strides != 1 or x.shape[-1] != filters:
                shortcut = ZeroPadShortcut(filters, strides, name=f"{name}_shortcut")(x)
            y = act(conv_bn(x, filters, strides, f"{name}_1"), f"{name}_1")
            y = conv_bn(y, filters, 1, f"{name}_2")
            x = keras.layers.Add(name=f"{name}_add")([shortcut, y])
            if act_after_add:
                x = act(x, f"{name}_out")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    suffix = "" if act_after_add else "_noactadd"
    return keras.Model(inputs, logits, name=f"cifar_resnet{depth}_{activations.canonical_name(activation)}{suffix}")


def activation_layers(model):
    """Every activation layer (a layer made by the registry) of ``model``, nested models included, in
    model order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, ActivationLayer):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(activation_layers(layer))
    return found
