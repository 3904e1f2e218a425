"""Funnel ReLU: max(x, T(x)) with a spatial condition T = BatchNorm(depthwise conv of x)."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, as_initializer, channel_sum
from keras_frelu.registry import register


def depthwise_conv(inputs, kernel):
    """Stride-1 'same' depthwise convolution of a channels-last tensor of rank 2 to 5.

    ``kernel`` has shape ``window + (channels, 1)`` (the Keras depthwise layout); on rank 2 (no spatial
    axes) it has shape ``(channels,)`` and the "convolution" is a per-feature scale.
    """
    spatial_rank = len(inputs.shape) - 2
    if spatial_rank == 0:
        return inputs * kernel
    if spatial_rank <= 2:
        return ops.depthwise_conv(inputs, kernel, strides=1, padding="same")
    # keras.ops has no 3-D depthwise conv; a grouped conv with one group per channel is the same thing.
    # window + (C, 1) -> window + (1, C) keeps the element order, so a reshape suffices.
    grouped_kernel = ops.reshape(kernel, tuple(kernel.shape[:-2]) + (1, kernel.shape[-2]))
    return ops.conv(inputs, grouped_kernel, strides=1, padding="same")


@ops.custom_gradient
def funnel_max(x, biases, means, inv_stds, scales, shifts, *branches):
    """Training-mode Funnel ReLU after the depthwise convolutions: ``max(x, T)`` with the condition
    ``T = sum_i z_i * scale_i + shift_i``, the batch norms of the branches ``z_i + bias_i``, and a backward
    pass written out for the whole.

    ``biases`` (``(branches, channels)``, zeros for convolutions without one): a batch norm on batch
    statistics subtracts the batch mean, which absorbs a per-channel bias exactly (``BN(z + b) = BN(z)``),
    so the biases take no part here and their gradient is exactly 0; they are inputs only so that the
    optimizer gets that gradient. Adding them to the tensors would cost two tensor-sized passes and give
    a gradient of rounding noise instead.

    ``means``, ``inv_stds = 1 / sqrt(variance + epsilon)``, ``scales = gamma * inv_std`` and ``shifts = beta -
    mean * scale`` are ``(branches, channels)`` float32: the batch statistics of each ``z_i`` over every
    axis but the last, computed by the caller without gradient, and the per-channel factors. The gradient
    of each ``z_i`` includes the statistics' dependence on ``z_i`` analytically (as fused batch-norm kernels
    do), which takes far fewer tensor-sized operations than differentiating through the moments, and the
    max's routing is one select shared by the branches; ``gamma`` and ``beta`` get theirs through
    ``scales`` and ``shifts``. ``x`` and the ``z_i`` may be float16.
    """
    condition = None
    for index, z in enumerate(branches):
        normalized = z * ops.cast(scales[index], z.dtype) + ops.cast(shifts[index], z.dtype)
        condition = normalized if condition is None else condition + normalized
    outputs = ops.maximum(x, condition)

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        to_condition = ops.where(x >= condition, ops.zeros((), upstream.dtype), upstream)  # x wins ties
        count = ops.cast(ops.size(x) // x.shape[-1], "float32")
        to_condition32 = ops.cast(to_condition, "float32")  # cast once, shared by the branches' sums
        grad_shift = channel_sum(to_condition32)
        grad_scales, grad_branches = [], []
        for index, z in enumerate(branches):
            mean, inv_std, scale = means[index], inv_stds[index], scales[index]
            grad_scale = channel_sum(to_condition32, z)
            mean_g_z_hat = inv_std * (grad_scale - mean * grad_shift) / count  # z_hat = (z - mean) * inv_std
            # dz = scale * (g - mean(g) - z_hat * mean(g * z_hat)) = g * scale + z * b + c
            b = -scale * inv_std * mean_g_z_hat
            c = -scale * grad_shift / count - b * mean
            grad_branches.append(to_condition * ops.cast(scale, z.dtype)
                                 + (z * ops.cast(b, z.dtype) + ops.cast(c, z.dtype)))
            grad_scales.append(grad_scale)
        grad_shifts = ops.broadcast_to(grad_shift, ops.shape(shifts))
        return (upstream - to_condition, ops.zeros_like(biases), ops.zeros_like(means), ops.zeros_like(inv_stds),
                ops.stack(grad_scales), grad_shifts, *grad_branches)

    return outputs, grad


class FunnelCondition(ActivationLayer):
    """Shared by FunnelReLU and FunnelReLULight: ``max(x, sum over windows w of BN_w(dwconv_w(x) + b_w))``.

    Subclasses choose the windows (``windows(spatial_rank)``) and whether the convolutions have a bias.
    Arguments as ``FunnelReLU``; see docs/layers.md for how the batch norm is implemented.
    """

    hyperparameters = ("kernel_size", "kernel_initializer", "momentum", "epsilon", "kernel_regularizer",
                       "kernel_constraint", "gamma_regularizer", "gamma_constraint", "beta_regularizer",
                       "beta_constraint")
    use_bias = True

    def __init__(self, kernel_size=3, kernel_initializer=None, momentum=0.9, epsilon=1e-5, kernel_regularizer=None,
                 kernel_constraint=None, gamma_regularizer=None, gamma_constraint=None, beta_regularizer=None,
                 beta_constraint=None, bias_regularizer=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1 \
                or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer (the window is centred on each "
                             f"pixel), got {kernel_size!r}")
        self.kernel_size = kernel_size
        if kernel_initializer is None:  # official shufflenet_v2.py's first layer (see FunnelReLU)
            kernel_initializer = keras.initializers.RandomNormal(mean=0.0, stddev=0.01)
        self.kernel_initializer = as_initializer(kernel_initializer)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        if not self.use_bias and (bias_regularizer is not None or bias_constraint is not None):
            raise ValueError(f"{type(self).__name__} has no convolution bias, got bias_regularizer="
                             f"{bias_regularizer!r}, bias_constraint={bias_constraint!r}")
        for weight, regularizer, constraint in (("kernel", kernel_regularizer, kernel_constraint),
                                                ("gamma", gamma_regularizer, gamma_constraint),
                                                ("beta", beta_regularizer, beta_constraint),
                                                ("bias", bias_regularizer, bias_constraint)):
            setattr(self, f"{weight}_regularizer", keras.regularizers.get(regularizer))
            setattr(self, f"{weight}_constraint", keras.constraints.get(constraint))

    def windows(self, spatial_rank):
        raise NotImplementedError

    def build(self, input_shape):
        rank = len(input_shape)
        if rank not in (2, 3, 4, 5) or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} takes (batch, [spatial axes,] channels) inputs of rank 2 "
                             f"to 5 with a known channel count, got shape {tuple(input_shape)}")
        channels = input_shape[-1]
        self.input_spec = keras.layers.InputSpec(ndim=rank, axes={-1: channels})
        windows = self.windows(rank - 2) if rank > 2 else [()]
        self.kernels, self.biases = [], []
        self.gammas, self.betas, self.moving_means, self.moving_variances = [], [], [], []
        for index, window in enumerate(windows):
            suffix = "" if len(windows) == 1 else f"_{index}"
            self.kernels.append(self.add_weight(
                name=f"kernel{suffix}", shape=tuple(window) + ((channels, 1) if window else (channels,)),
                initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint))
            if self.use_bias:
                self.biases.append(self.add_weight(name=f"bias{suffix}", shape=(channels,), initializer="zeros",
                                                   regularizer=self.bias_regularizer,
                                                   constraint=self.bias_constraint))
            # The batch-norm weights stay float32 under mixed precision, as in Keras's BatchNormalization.
            for weights, name, initializer, trainable in (
                    (self.gammas, "gamma", "ones", True), (self.betas, "beta", "zeros", True),
                    (self.moving_means, "moving_mean", "zeros", False),
                    (self.moving_variances, "moving_variance", "ones", False)):
                weights.append(self.add_weight(
                    name=f"{name}{suffix}", shape=(channels,), initializer=initializer, trainable=trainable,
                    autocast=False, regularizer=getattr(self, f"{name}_regularizer", None),
                    constraint=getattr(self, f"{name}_constraint", None)))

    def call(self, inputs, training=None):
        if not (bool(training) and self.trainable):
            return ops.maximum(inputs, self.inference_condition(inputs))
        branches = [depthwise_conv(inputs, kernel) for kernel in self.kernels]  # no bias: see funnel_max
        statistics = [self.batch_statistics(funnel, index) for index, funnel in enumerate(branches)]
        biases = (ops.stack([bias.value for bias in self.biases]) if self.use_bias
                  else ops.zeros((len(branches), inputs.shape[-1])))
        return funnel_max(inputs, biases, *map(ops.stack, zip(*statistics)), *branches)

    def inference_condition(self, inputs):
        """``T(x)`` with the moving statistics, through the folded kernels."""
        kernels, bias = self.folded_condition(len(inputs.shape) - 2)
        condition = ops.cast(bias, inputs.dtype)
        for kernel in kernels:
            condition = condition + depthwise_conv(inputs, ops.cast(kernel, inputs.dtype))
        return condition

    def folded_condition(self, spatial_rank):
        """The inference condition as depthwise kernels and one bias: ``(kernels, bias)``, float32.

        With the moving statistics each branch is affine in x: ``BN(dwconv(x, k) + b) = dwconv(x, k * s) +
        (b * s + beta - moving_mean * s)``, ``s = gamma / sqrt(moving_variance + epsilon)``, so batch norm
        costs nothing in inference. On up to two spatial axes the light variant's lines, each centred in
        the k x k window, also add up to one kernel: one depthwise conv over the window costs less than
        one per line. On three axes they stay separate lines: there the convolution is a grouped one
        whose cost grows with the taps, k^3 for the summed window against 3k for the lines.
        """
        kernels, bias = [], 0.0
        for index, kernel in enumerate(self.kernels):
            scale = self.gammas[index] * ops.rsqrt(self.moving_variances[index] + self.epsilon)
            bias = bias + self.betas[index] - self.moving_means[index] * scale
            if self.use_bias:
                bias = bias + ops.cast(self.biases[index], "float32") * scale
            kernels.append(ops.cast(kernel, "float32") * (ops.expand_dims(scale, -1) if spatial_rank else scale))
        if 1 <= spatial_rank <= 2 and len(kernels) > 1:
            window = self.kernel_size
            kernels = [sum(ops.pad(kernel, [((window - size) // 2,) * 2 for size in kernel.shape[:-2]]
                                   + [(0, 0), (0, 0)]) for kernel in kernels)]
        return kernels, bias

    def batch_statistics(self, z, index):
        """Training-mode batch norm of branch ``index`` up to its multiply-add: the batch statistics of the
        convolution ``z`` without its bias (float32, no gradient), the moving-average update (of the
        statistics with the bias, which inference uses), and ``(mean, inv_std, scale, shift)`` for
        ``funnel_max``.

        The batch is normalised with its biased variance (mean of squared deviations), but the moving
        variance averages the unbiased one, ``n / (n - 1)`` times it for ``n`` values per channel, as the
        official code's MegEngine BatchNorm (and PyTorch's) does; Keras's BatchNormalization averages the
        biased one. A batch of one value per channel has variance 0 either way and contributes 0.
        """
        gamma, beta = self.gammas[index], self.betas[index]
        axes = tuple(range(len(z.shape) - 1))
        mean, variance = ops.moments(ops.cast(ops.stop_gradient(z), "float32"), axes=axes)
        biased_mean = mean + ops.cast(self.biases[index], "float32") if self.use_bias else mean
        self.update_moving_statistics(index, biased_mean, variance, z)
        inv_std = ops.rsqrt(variance + self.epsilon)
        scale = gamma * inv_std
        return mean, inv_std, scale, beta - mean * scale

    def update_moving_statistics(self, index, mean, variance, z):
        """Branch ``index``'s moving averages after a training batch whose convolution ``z`` (with its bias)
        has per-channel ``mean`` and biased ``variance``; the unbiased variance is averaged (see above)."""
        moving_mean, moving_variance = self.moving_means[index], self.moving_variances[index]
        moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        count = ops.cast(ops.size(z) // z.shape[-1], "float32")
        unbiased_variance = variance * (count / ops.maximum(count - 1.0, 1.0))
        moving_variance.assign(moving_variance * self.momentum + unbiased_variance * (1.0 - self.momentum))


@register("frelu", aliases=("funnel_relu",))
class FunnelReLU(FunnelCondition):
    """Funnel ReLU (FReLU of Ma et al.): a ReLU whose condition looks at the pixel's neighbourhood.

    Formula: ``f(x) = max(x, T(x))``, ``T(x) = BN(depthwise_conv_kxk(x) + b)``: a k x k window per channel,
    stride 1, 'same' padding, with a bias, then batch normalisation -- as the official FunnelAct
    ``resnet/frelu.py``. Inputs are channels-last: rank 4 ``(N, H, W, C)`` (the paper), rank 3
    ``(N, L, C)`` (k-tap 1-D window) and rank 5 ``(N, D, H, W, C)`` (k x k x k window) work the same way.
    On rank-2 inputs ``(N, C)`` (after a Dense layer) there is no spatial neighbourhood, so the window
    shrinks to one element and the condition is a per-feature scale and bias plus batch norm:
    ``T(x) = BN(w * x + b)``. The batch norm uses batch statistics in training and moving averages in
    inference or when frozen. See docs/layers.md for its conventions and the official code's initialisers.

    Args:
        kernel_size: window size k, odd. Default 3.
        kernel_initializer: initial depthwise kernel (the bias starts at 0). Default ``RandomNormal(stddev=0.01)``.
        momentum: batch-norm moving-average momentum, as in Keras. Default 0.9 (MegEngine's BatchNorm default).
        epsilon: batch-norm epsilon, default 1e-5.
        kernel_regularizer, bias_regularizer, gamma_regularizer, beta_regularizer: regularizers. Default None.
        kernel_constraint, bias_constraint, gamma_constraint, beta_constraint: constraints. Default None.

    Weights: ``kernel`` (``(k,)*s + (C, 1)``, or ``(C,)`` on rank 2), ``bias``, ``gamma``, ``beta`` and the
    non-trainable ``moving_mean``, ``moving_variance``, each ``(C,)``.

    Example: with a kernel of ones, a pixel's condition is the (normalised) sum of its window, so a
    neighbour raises it.

    >>> layer = keras_frelu.layers.FunnelReLU(kernel_initializer="ones")
    >>> x = np.array([[[-1.0], [0.0], [2.0]]])  # (batch, length, channels)
    >>> np.round(keras.ops.convert_to_numpy(layer(x)), 4).ravel()
    array([-1.,  1.,  2.], dtype=float32)

    Reference: Ma, Zhang & Sun, "Funnel Activation for Visual Recognition", ECCV 2020, arXiv 2007.11824;
    https://github.com/megvii-model/FunnelAct.
    """

    hyperparameters = FunnelCondition.hyperparameters + ("bias_regularizer", "bias_constraint")

    def __init__(self, kernel_size=3, kernel_initializer=None, momentum=0.9, epsilon=1e-5, kernel_regularizer=None,
                 kernel_constraint=None, bias_regularizer=None, bias_constraint=None, gamma_regularizer=None,
                 gamma_constraint=None, beta_regularizer=None, beta_constraint=None, **kwargs):
        super().__init__(kernel_size=kernel_size, kernel_initializer=kernel_initializer, momentum=momentum,
                         epsilon=epsilon, kernel_regularizer=kernel_regularizer, kernel_constraint=kernel_constraint,
                         bias_regularizer=bias_regularizer, bias_constraint=bias_constraint,
                         gamma_regularizer=gamma_regularizer, gamma_constraint=gamma_constraint,
                         beta_regularizer=beta_regularizer, beta_constraint=beta_constraint, **kwargs)

    def windows(self, spatial_rank):
        return [(self.kernel_size,) * spatial_rank]


@register("frelu_light", aliases=("funnel_relu_light",))
class FunnelReLULight(FunnelCondition):
    """Light Funnel ReLU: the funnel window split into one k-tap line per spatial axis.

    Formula (rank 4, the official ShuffleNetV2 variant of FunnelAct):
    ``f(x) = max(x, BN_1(dwconv_1xk(x)) + BN_2(dwconv_kx1(x)))``, no convolution bias. In general one
    depthwise line along each spatial axis (k x 1 x 1, 1 x k x 1, 1 x 1 x k on rank 5; a single k-tap
    line on rank 3), each with its own batch norm, summed. On rank 2 it is ``max(x, BN(w * x))``
    (per-feature scale, no bias). Same training/inference behaviour as ``FunnelReLU``.

    Args:
        kernel_size: line length k, odd. Default 3.
        kernel_initializer: default ``RandomNormal(mean=0, stddev=0.01)`` (see ``FunnelReLU``).
        momentum: batch-norm momentum, default 0.9.
        epsilon: batch-norm epsilon, default 1e-5.
        kernel_regularizer, gamma_regularizer, beta_regularizer: regularizers of each line. Default None.
        kernel_constraint, gamma_constraint, beta_constraint: constraints of each line. Default None.

    Weights: per spatial axis ``i`` a ``kernel_i`` and batch-norm ``gamma_i``, ``beta_i``, ``moving_mean_i``,
    ``moving_variance_i`` (no suffix on rank 2 and 3, which have one line).

    Example: with kernels of ones, each pixel's condition sums a horizontal and a vertical line through
    it (each normalised), a cross-shaped neighbourhood.

    >>> layer = keras_frelu.layers.FunnelReLULight(kernel_initializer="ones")
    >>> x = np.zeros((1, 3, 3, 1))
    >>> x[0, 1, 1, 0] = 1.0
    >>> np.round(keras.ops.convert_to_numpy(layer(x)), 4)[0, :, :, 0]
    array([[0., 1., 0.],
           [1., 2., 1.],
           [0., 1., 0.]], dtype=float32)

    Reference: Ma, Zhang & Sun, "Funnel Activation for Visual Recognition", ECCV 2020, arXiv 2007.11824;
    https://github.com/megvii-model/FunnelAct (``shufflenetv2``).
    """

    use_bias = False

    def __init__(self, kernel_size=3, kernel_initializer=None, momentum=0.9, epsilon=1e-5, kernel_regularizer=None,
                 kernel_constraint=None, gamma_regularizer=None, gamma_constraint=None, beta_regularizer=None,
                 beta_constraint=None, **kwargs):
        super().__init__(kernel_size=kernel_size, kernel_initializer=kernel_initializer, momentum=momentum,
                         epsilon=epsilon, kernel_regularizer=kernel_regularizer, kernel_constraint=kernel_constraint,
                         gamma_regularizer=gamma_regularizer, gamma_constraint=gamma_constraint,
                         beta_regularizer=beta_regularizer, beta_constraint=beta_constraint, **kwargs)

    def windows(self, spatial_rank):
        return [tuple(self.kernel_size if axis == line else 1 for axis in range(spatial_rank))
                for line in range(spatial_rank)]
