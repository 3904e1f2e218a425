"""Exponential linear units: ELU, SELU and the parametric PELU."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, Clip, as_initializer


@keras.saving.register_keras_serializable(package="keras_frelu")
class ELU(ActivationLayer):
    """Exponential linear unit.

    Formula: ``f(x) = x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: saturation value for negative inputs. Default 1.0, as in the paper.

    Reference: Clevert, Unterthiner & Hochreiter, "Fast and Accurate Deep Network Learning by
    Exponential Linear Units (ELUs)", ICLR 2016, arXiv 1511.07289.
    """

    hyperparameters = ("alpha",)

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return ops.elu(inputs, alpha=self.alpha)


@keras.saving.register_keras_serializable(package="keras_frelu")
class SELU(ActivationLayer):
    """Scaled exponential linear unit.

    Formula: ``f(x) = scale * x`` for ``x > 0``, ``scale * alpha * (exp(x) - 1)`` otherwise, with the
    fixed constants ``alpha = 1.6732632423543772848170429916717`` and
    ``scale = 1.0507009873554804934193349852946`` that make zero mean / unit variance a fixed point.
    Use it without batch normalisation and with LeCun-normal weights to get self-normalisation.

    No arguments besides the base layer keyword arguments.

    Reference: Klambauer, Unterthiner, Mayr & Hochreiter, "Self-Normalizing Neural Networks",
    NeurIPS 2017, arXiv 1706.02515.
    """

    def call(self, inputs):
        # keras.ops.selu has these constants built in and maps to one fused kernel (tf.nn.selu on
        # TensorFlow): forward + backward in a third of the time of scale * elu(x, alpha) (bench/RESULTS.md).
        return ops.selu(inputs)


@keras.saving.register_keras_serializable(package="keras_frelu")
class PELU(ActivationLayer):
    """Parametric exponential linear unit with learnable, layer-wise ``a`` and ``b``.

    Formula: ``f(x) = (a / b) * x`` for ``x >= 0``, ``a * (exp(x / b) - 1)`` otherwise, with ``a, b > 0``
    so the function stays differentiable at 0. As in the authors' Torch code (ltrottier/pelu.resnet.torch,
    ``models/PELU/PELU.lua``) there is one ``a`` and one ``b`` per layer, both start at 1 (= ELU) and are
    clipped after each update: ``a`` to [0.1, 2], ``b`` to [0.1, inf).

    Args:
        a_initializer: initial ``a``; a number means a constant. Default 1.0.
        b_initializer: initial ``b``; a number means a constant. Default 1.0.

    Weights: ``a`` and ``b``, each of shape ``()``.

    Reference: Trottier, Giguère & Chaib-draa, "Parametric Exponential Linear Unit for Deep Convolutional
    Neural Networks", ICMLA 2017, arXiv 1605.09332.
    """

    hyperparameters = ("a_initializer", "b_initializer")

    def __init__(self, a_initializer=1.0, b_initializer=1.0, **kwargs):
        super().__init__(**kwargs)
        self.a_initializer = as_initializer(a_initializer)
        self.b_initializer = as_initializer(b_initializer)

    def build(self, input_shape):
        self.a = self.add_activation_weight("a", input_shape, self.a_initializer, per_channel=False,
                                            constraint=Clip(0.1, 2.0))
        self.b = self.add_activation_weight("b", input_shape, self.b_initializer, per_channel=False,
                                            constraint=Clip(0.1, None))

    def call(self, inputs):
        # a * elu(x / b) is (a / b) x for x >= 0 and a (exp(x / b) - 1) below: both branches at once.
        # Multiplying by 1 / b (a scalar) rather than dividing the tensor by b saves the division's
        # tensor-sized gradient terms: forward + backward 8 - 18% faster (bench/RESULTS.md).
        return ops.elu(inputs * (1.0 / self.b)) * self.a
