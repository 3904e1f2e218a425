"""Flexible ReLU: a ReLU with a learnable, layer-wide output bias."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, as_initializer
from keras_frelu.registry import register


@register("flexrelu", aliases=("flexible_relu",))
class FlexibleReLU(ActivationLayer):
    """Flexible rectified linear unit (FReLU of Qiu et al., not the Funnel ReLU).

    Formula: ``f(x) = max(x, 0) + b`` with ONE learnable scalar ``b`` for the whole layer.
    See docs/layers.md for why the bias is layer-wise and where its default comes from.

    Args:
        bias_initializer: initial value of ``b``; a number means a constant. Default -1 (the authors' code).
        bias_regularizer: regularizer of ``b`` (its penalty joins the layer's ``losses``). Default None.
        bias_constraint: constraint applied to ``b`` after each optimizer step. Default None.

    Weights: ``bias`` of shape ``()``.

    Example:

    >>> layer = keras_frelu.layers.FlexibleReLU(bias_initializer=-0.5)
    >>> keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0])))
    array([-0.5, -0.5,  1.5], dtype=float32)

    Reference: Qiu, Xu & Cai, "FReLU: Flexible Rectified Linear Units for Improving Convolutional Neural
    Networks", ICPR 2018, arXiv 1706.08098.
    """

    hyperparameters = ("bias_initializer", "bias_regularizer", "bias_constraint")

    def __init__(self, bias_initializer=-1.0, bias_regularizer=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.bias_initializer = as_initializer(bias_initializer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def build(self, input_shape):
        self.bias = self.add_activation_weight("bias", ())

    def call(self, inputs):
        return ops.relu(inputs) + self.bias
