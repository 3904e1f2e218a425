"""Funnel ReLU's compute-matched controls: ReLU(BN(depthwise conv(x))), the funnel's condition without the max."""

from keras import ops

from keras_frelu.layers.funnel import FunnelReLU, FunnelReLULight, depthwise_conv
from keras_frelu.registry import register


class FunnelControl:
    """What both controls share: the condition ``T(x)`` of their Funnel ReLU, then a ReLU instead of
    ``max(x, T(x))``. Same weights, parameters and FLOPs; only the max with ``x`` is missing, so a comparison
    of the two tells the funnel condition from the extra convolution."""

    def call(self, inputs, training=None):
        if not (bool(training) and self.trainable):
            return ops.relu(self.inference_condition(inputs))
        condition = 0.0
        for index, kernel in enumerate(self.kernels):
            z = ops.cast(depthwise_conv(inputs, kernel), "float32")
            mean, variance = ops.moments(z, axes=tuple(range(len(z.shape) - 1)))
            beta = self.betas[index]
            moving_mean = ops.stop_gradient(mean)
            if self.use_bias:  # the batch mean absorbs the bias exactly, as in funnel_max: its gradient is 0
                bias = ops.cast(self.biases[index], "float32")
                moving_mean, beta = moving_mean + bias, beta + 0.0 * bias
            self.update_moving_statistics(index, moving_mean, ops.stop_gradient(variance), z)
            condition = condition + (z - mean) * ops.rsqrt(variance + self.epsilon) * self.gammas[index] + beta
        return ops.relu(ops.cast(condition, inputs.dtype))


@register("frelu_control", aliases=("funnel_relu_control",), control_of="frelu")
class FunnelReLUControl(FunnelControl, FunnelReLU):
    """Funnel ReLU's compute-matched control: a ReLU of Funnel ReLU's condition, without the max with x.

    Formula: ``f(x) = relu(T(x))``, ``T(x) = BN(depthwise_conv_kxk(x) + b)`` exactly as in ``FunnelReLU``
    (same weights, initialisers, batch norm in training and in inference, folded in inference), so the two
    differ only in ``max(x, T(x))``: if Funnel ReLU beats this control, the gain is the funnel condition, not
    the extra convolution and batch norm it adds.

    Args: as ``FunnelReLU`` (kernel_size, kernel_initializer, momentum, epsilon, and the regularizers and
    constraints of kernel, bias, gamma and beta).

    Example: with a kernel of ones the output is the rectified, normalised sum of each pixel's window;
    unlike Funnel ReLU's, it need not equal x where x is larger.

    >>> layer = keras_frelu.layers.FunnelReLUControl(kernel_initializer="ones")
    >>> x = np.array([[[-1.0], [0.0], [2.0]]])  # (batch, length, channels)
    >>> np.round(keras.ops.convert_to_numpy(layer(x)), 4).ravel()
    array([0., 1., 2.], dtype=float32)

    Reference: the ablation asked of Ma, Zhang & Sun, "Funnel Activation for Visual Recognition", ECCV 2020
    (https://github.com/megvii-model/FunnelAct, issue 6).
    """


@register("frelu_light_control", aliases=("funnel_relu_light_control",), control_of="frelu_light")
class FunnelReLULightControl(FunnelControl, FunnelReLULight):
    """Light Funnel ReLU's compute-matched control: ``relu(BN_1(dwconv_1xk(x)) + BN_2(dwconv_kx1(x)))``.

    Formula: ``f(x) = relu(T(x))`` with ``FunnelReLULight``'s condition ``T`` (one k-tap line per spatial
    axis, each with its own batch norm, summed); the same weights and FLOPs, without the max with x.

    Args: as ``FunnelReLULight`` (kernel_size, kernel_initializer, momentum, epsilon, and the regularizers and
    constraints of kernel, gamma and beta).

    Example: with kernels of ones, the negative corner, which ``FunnelReLULight`` passes through (it is x, and
    x wins the max there), is rectified away.

    >>> layer = keras_frelu.layers.FunnelReLULightControl(kernel_initializer="ones")
    >>> x = np.zeros((1, 3, 3, 1))
    >>> x[0, 1, 1, 0], x[0, 0, 0, 0] = 1.0, -2.0
    >>> np.round(keras.ops.convert_to_numpy(layer(x)), 4)[0, :, :, 0]
    array([[0., 0., 0.],
           [0., 2., 1.],
           [0., 1., 0.]], dtype=float32)

    Reference: the control of ``FunnelReLULight`` (Ma, Zhang & Sun 2020, ``shufflenetv2``).
    """
