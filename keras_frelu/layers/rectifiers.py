"""Piecewise-linear rectifiers: ReLU, Leaky ReLU, PReLU."""

import numbers
import warnings

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, as_initializer, as_shared_axes, sum_to_shape
from keras_frelu.registry import register


@register("relu")
class ReLU(ActivationLayer):
    """Rectified linear unit.

    Formula: ``f(x) = max(x, 0)``.

    No arguments besides the base layer keyword arguments (``name``, ``dtype``, ...).

    Example:

    >>> layer = keras_frelu.layers.ReLU()
    >>> keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0])))
    array([0., 0., 2.], dtype=float32)

    Reference: Nair & Hinton, "Rectified Linear Units Improve Restricted Boltzmann Machines", ICML 2010.
    """

    def call(self, inputs):
        return ops.relu(inputs)


@register("lrelu", aliases=("leaky_relu", "leakyrelu"))
class LeakyReLU(ActivationLayer):
    """Leaky rectified linear unit.

    Formula: ``f(x) = x`` for ``x >= 0``, ``negative_slope * x`` otherwise.
    See docs/layers.md for the default's origin and the ``alpha`` alias.

    Args:
        negative_slope: slope for negative inputs, a number >= 0 (formerly ``alpha``). Default 0.2.

    Example:

    >>> layer = keras_frelu.layers.LeakyReLU(negative_slope=0.1)
    >>> keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0])))
    array([-0.1,  0. ,  2. ], dtype=float32)

    Reference: Maas, Hannun & Ng, "Rectifier Nonlinearities Improve Neural Network Acoustic Models",
    ICML 2013 workshop; Xu et al., "Empirical Evaluation of Rectified Activations in Convolutional
    Network", arXiv 1505.00853.
    """

    hyperparameters = ("negative_slope",)

    def __init__(self, negative_slope=0.2, **kwargs):
        if "alpha" in kwargs:  # configs saved before the rename still load
            negative_slope = kwargs.pop("alpha")
            warnings.warn("LeakyReLU's argument `alpha` is now `negative_slope` (as keras.layers.LeakyReLU)",
                          DeprecationWarning, stacklevel=2)
        super().__init__(**kwargs)
        if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool) or negative_slope < 0:
            raise ValueError(f"negative_slope must be a number >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)


@register("prelu")
class PReLU(ActivationLayer):
    """Parametric ReLU with learnable slopes, by default one per channel (last axis).

    Formula: ``f(x) = max(x, 0) + alpha * min(x, 0)``, ``alpha`` broadcast against ``x``.
    See docs/layers.md for ``shared_axes`` in detail.

    Args:
        alpha_initializer: initial slopes; a number means a constant. Default 0.25, as in the paper.
        alpha_regularizer: regularizer of ``alpha`` (its penalty joins the layer's ``losses``). Default None.
        alpha_constraint: constraint applied to ``alpha`` after each optimizer step. Default None.
        shared_axes: input axes sharing ``alpha``, as in ``keras.layers.PReLU``. Default None: one per channel.

    Weights: ``alpha``, of shape ``(channels,)`` or as ``shared_axes`` says.

    Example:

    >>> layer = keras_frelu.layers.PReLU(alpha_initializer=0.1)
    >>> keras.ops.convert_to_numpy(layer(np.array([[-1.0, 0.0, 2.0]])))
    array([[-0.1,  0. ,  2. ]], dtype=float32)
    >>> tuple(layer.alpha.shape)
    (3,)

    Reference: He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet
    Classification", ICCV 2015, arXiv 1502.01852.
    """

    hyperparameters = ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes")

    def __init__(self, alpha_initializer=0.25, alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = as_initializer(alpha_initializer)
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)
        self.shared_axes = as_shared_axes(shared_axes)

    def build(self, input_shape):
        self.alpha = self.add_activation_weight("alpha", self.per_channel_shape(input_shape))

    def call(self, inputs):
        return prelu(inputs, ops.cast(self.alpha, inputs.dtype))


@ops.custom_gradient
def prelu(x, alpha):
    """``relu(x) + alpha * min(x, 0)`` for an ``alpha`` broadcast against ``x``, with its gradient written out:
    one select for ``x``'s slope and one product (summed to ``alpha``'s shape) for ``alpha``'s, where
    autodiff of the two terms takes a comparison, zeros and a select for each."""
    negative = ops.minimum(x, 0.0)

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        grad_x = upstream * ops.where(x < 0.0, alpha, ops.ones((), x.dtype))
        return grad_x, ops.cast(sum_to_shape(tuple(alpha.shape), upstream, negative), alpha.dtype)

    return ops.relu(x) + alpha * negative, grad
