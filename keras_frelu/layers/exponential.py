"""Exponential linear units: ELU, SELU and the parametric PELU."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, Clip, as_initializer
from keras_frelu.registry import register


@register("elu")
class ELU(ActivationLayer):
    """Exponential linear unit.

    Formula: ``f(x) = x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: saturation value for negative inputs. Default 1.0, as in the paper.

    Example:

    >>> layer = keras_frelu.layers.ELU()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-10.0, -1.0, 0.0, 2.0]))), 4)
    array([-1.    , -0.6321,  0.    ,  2.    ], dtype=float32)

    Reference: Clevert, Unterthiner & Hochreiter, "Fast and Accurate Deep Network Learning by
    Exponential Linear Units (ELUs)", ICLR 2016, arXiv 1511.07289.
    """

    hyperparameters = ("alpha",)

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return ops.elu(inputs, alpha=self.alpha)


@register("selu")
class SELU(ActivationLayer):
    """Scaled exponential linear unit.

    Formula: ``f(x) = scale * x`` for ``x > 0``, ``scale * alpha * (exp(x) - 1)`` otherwise, with the
    fixed constants ``alpha = 1.6732632423543772848170429916717`` and
    ``scale = 1.0507009873554804934193349852946`` that make zero mean / unit variance a fixed point.
    Use it without batch normalisation and with LeCun-normal weights to get self-normalisation.

    No arguments besides the base layer keyword arguments.

    Example:

    >>> layer = keras_frelu.layers.SELU()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-100.0, 0.0, 1.0]))), 4)
    array([-1.7581,  0.    ,  1.0507], dtype=float32)

    Reference: Klambauer, Unterthiner, Mayr & Hochreiter, "Self-Normalizing Neural Networks",
    NeurIPS 2017, arXiv 1706.02515.
    """

    def call(self, inputs):
        # keras.ops.selu has these constants built in and maps to one fused kernel (tf.nn.selu on
        # TensorFlow), cheaper than scale * elu(x, alpha).
        return ops.selu(inputs)


@register("pelu")
class PELU(ActivationLayer):
    """Parametric exponential linear unit with learnable, layer-wise ``a`` and ``b``.

    Formula: ``f(x) = (a / b) * x`` for ``x >= 0``, ``a * (exp(x / b) - 1)`` otherwise, with ``a, b > 0``.
    See docs/layers.md for the authors' Torch code and its clipping.

    Args:
        a_initializer: initial ``a``; a number means a constant. Default 1.0 (with ``b = 1``: ELU).
        b_initializer: initial ``b``; a number means a constant. Default 1.0.
        a_regularizer, b_regularizer: regularizers of ``a`` and ``b``. Default None.
        a_constraint: constraint applied to ``a`` after each optimizer step. Default ``Clip(0.1, 2.0)``.
        b_constraint: the same for ``b``. Default ``Clip(0.1, None)``.

    Weights: ``a`` and ``b``, each of shape ``()``.

    Example:

    >>> layer = keras_frelu.layers.PELU(a_initializer=2.0, b_initializer=0.5)
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 1.0]))), 4)
    array([-1.7293,  0.    ,  4.    ], dtype=float32)

    Reference: Trottier, Giguère & Chaib-draa, "Parametric Exponential Linear Unit for Deep Convolutional
    Neural Networks", ICMLA 2017, arXiv 1605.09332.
    """

    hyperparameters = ("a_initializer", "b_initializer", "a_regularizer", "b_regularizer", "a_constraint",
                       "b_constraint")

    def __init__(self, a_initializer=1.0, b_initializer=1.0, a_regularizer=None, b_regularizer=None,
                 a_constraint=Clip(0.1, 2.0), b_constraint=Clip(0.1, None), **kwargs):
        super().__init__(**kwargs)
        self.a_initializer = as_initializer(a_initializer)
        self.b_initializer = as_initializer(b_initializer)
        self.a_regularizer = keras.regularizers.get(a_regularizer)
        self.b_regularizer = keras.regularizers.get(b_regularizer)
        self.a_constraint = keras.constraints.get(a_constraint)
        self.b_constraint = keras.constraints.get(b_constraint)

    def build(self, input_shape):
        self.a = self.add_activation_weight("a", ())
        self.b = self.add_activation_weight("b", ())

    def call(self, inputs):
        # a * elu(x / b) is (a / b) x for x >= 0 and a (exp(x / b) - 1) below: both branches at once.
        # Multiplying by the scalar 1 / b rather than dividing the tensor by b spares the division's
        # tensor-sized gradient terms.
        return ops.elu(inputs * (1.0 / self.b)) * self.a
