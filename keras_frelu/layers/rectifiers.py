"""Piecewise-linear rectifiers: ReLU, Leaky ReLU, PReLU."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, as_initializer, channel_sum


@keras.saving.register_keras_serializable(package="keras_frelu")
class ReLU(ActivationLayer):
    """Rectified linear unit.

    Formula: ``f(x) = max(x, 0)``.

    No arguments besides the base layer keyword arguments (``name``, ``dtype``, ...).

    Reference: Nair & Hinton, "Rectified Linear Units Improve Restricted Boltzmann Machines", ICML 2010.
    """

    def call(self, inputs):
        return ops.relu(inputs)


@keras.saving.register_keras_serializable(package="keras_frelu")
class LeakyReLU(ActivationLayer):
    """Leaky rectified linear unit.

    Formula: ``f(x) = x`` for ``x >= 0``, ``alpha * x`` otherwise.

    Args:
        alpha: slope for negative inputs. Default 0.2, as the ``lrelu`` of the original
            activation-visualisation project (shaohua0116/Activation-Visualization-Histogram).

    Reference: Maas, Hannun & Ng, "Rectifier Nonlinearities Improve Neural Network Acoustic Models",
    ICML 2013 workshop; Xu et al., "Empirical Evaluation of Rectified Activations in Convolutional
    Network", arXiv 1505.00853.
    """

    hyperparameters = ("alpha",)

    def __init__(self, alpha=0.2, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return ops.leaky_relu(inputs, negative_slope=self.alpha)


@keras.saving.register_keras_serializable(package="keras_frelu")
class PReLU(ActivationLayer):
    """Parametric ReLU with one learnable slope per channel (last axis).

    Formula: ``f(x_c) = max(x_c, 0) + alpha_c * min(x_c, 0)``.

    Args:
        alpha_initializer: initial slopes; a number means a constant. Default 0.25, as in the paper.

    Weights: ``alpha`` of shape ``(channels,)``.

    Reference: He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet
    Classification", ICCV 2015, arXiv 1502.01852.
    """

    hyperparameters = ("alpha_initializer",)

    def __init__(self, alpha_initializer=0.25, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = as_initializer(alpha_initializer)

    def build(self, input_shape):
        self.alpha = self.add_activation_weight("alpha", input_shape, self.alpha_initializer, per_channel=True)

    def call(self, inputs):
        return prelu(inputs, ops.cast(self.alpha, inputs.dtype))


@ops.custom_gradient
def prelu(x, alpha):
    """``relu(x) + alpha * min(x, 0)`` for per-channel ``alpha``, with its gradient written out: one select
    for ``x``'s slope and one product for ``alpha``'s, where autodiff of the two terms takes a comparison,
    zeros and a select for each term; forward + backward 40% faster (bench/RESULTS.md)."""
    negative = ops.minimum(x, 0.0)

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        grad_x = upstream * ops.where(x < 0.0, alpha, ops.ones((), x.dtype))
        return grad_x, ops.cast(channel_sum(upstream, negative), alpha.dtype)

    return ops.relu(x) + alpha * negative, grad
