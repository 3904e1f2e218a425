"""Flexible ReLU: a ReLU with a learnable, layer-wide output bias."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, as_initializer


@keras.saving.register_keras_serializable(package="keras_frelu")
class FlexibleReLU(ActivationLayer):
    """Flexible rectified linear unit (FReLU of Qiu et al., not the Funnel ReLU).

    Formula: ``f(x) = max(x, 0) + b`` with ONE learnable scalar ``b`` for the whole layer. The authors
    use layer-wise rather than channel-wise biases on purpose ("channel-wise biases ... may make the
    training harder"), so the negative part of the output is learned while the rectifier stays fixed.

    Args:
        bias_initializer: initial value of ``b``; a number means a constant. Default -1, as the original
            Torch implementation ``models/frelu/PosSReLU.lua``.

    Weights: ``bias`` of shape ``()``.

    Reference: Qiu, Xu & Cai, "FReLU: Flexible Rectified Linear Units for Improving Convolutional Neural
    Networks", ICPR 2018, arXiv 1706.08098.
    """

    hyperparameters = ("bias_initializer",)

    def __init__(self, bias_initializer=-1.0, **kwargs):
        super().__init__(**kwargs)
        self.bias_initializer = as_initializer(bias_initializer)

    def build(self, input_shape):
        self.bias = self.add_activation_weight("bias", input_shape, self.bias_initializer, per_channel=False)

    def call(self, inputs):
        return ops.relu(inputs) + self.bias
