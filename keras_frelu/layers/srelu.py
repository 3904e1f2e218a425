"""S-shaped ReLU: three linear pieces with learnable per-channel thresholds and slopes."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, as_initializer, as_shared_axes
from keras_frelu.registry import register

WEIGHTS = ("t_left", "a_left", "t_right", "a_right")


@register("srelu")
class SReLU(ActivationLayer):
    """S-shaped rectified linear unit with learnable per-channel thresholds and slopes.

    Formula, per channel c::

        f(x) = t_r + a_r * (x - t_r)   for x >= t_r
        f(x) = x                       for t_l < x < t_r
        f(x) = t_l + a_l * (x - t_l)   for x <= t_l

    See docs/layers.md for how it is computed, its accuracy and the paper's adaptive initialisation.

    Args:
        t_left_initializer: initial ``t_l``; a number means a constant. Default 0.0.
        a_left_initializer: initial ``a_l``. Default 0.2 (with the other defaults: a leaky ReLU of slope 0.2).
        t_right_initializer: initial ``t_r``. Default 1.0.
        a_right_initializer: initial ``a_r``. Default 1.0.
        t_left_regularizer, a_left_regularizer, t_right_regularizer, a_right_regularizer: regularizers. Default None.
        t_left_constraint, a_left_constraint, t_right_constraint, a_right_constraint: constraints. Default None.
        shared_axes: input axes sharing the weights, as in ``keras.layers.PReLU``. Default None: one per channel.

    Weights: ``t_left``, ``a_left``, ``t_right``, ``a_right``, each of shape ``(channels,)`` or as
    ``shared_axes`` says.

    Example:

    >>> layer = keras_frelu.layers.SReLU(a_right_initializer=0.5)
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([[-1.0, 0.5, 3.0]]))), 4)
    array([[-0.2,  0.5,  2. ]], dtype=float32)

    Reference: Jin, Xu, Feng, Wei, Xiong & Yan, "Deep Learning with S-shaped Rectified Linear Activation
    Units", AAAI 2016, arXiv 1512.07030.
    """

    hyperparameters = tuple(f"{weight}_{kind}" for kind in ("initializer", "regularizer", "constraint")
                            for weight in WEIGHTS) + ("shared_axes",)

    def __init__(self, t_left_initializer=0.0, a_left_initializer=0.2, t_right_initializer=1.0,
                 a_right_initializer=1.0, t_left_regularizer=None, a_left_regularizer=None,
                 t_right_regularizer=None, a_right_regularizer=None, t_left_constraint=None, a_left_constraint=None,
                 t_right_constraint=None, a_right_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        arguments = locals()
        for weight in WEIGHTS:
            setattr(self, f"{weight}_initializer", as_initializer(arguments[f"{weight}_initializer"]))
            setattr(self, f"{weight}_regularizer", keras.regularizers.get(arguments[f"{weight}_regularizer"]))
            setattr(self, f"{weight}_constraint", keras.constraints.get(arguments[f"{weight}_constraint"]))
        self.shared_axes = as_shared_axes(shared_axes)

    def build(self, input_shape):
        shape = self.per_channel_shape(input_shape)
        for weight in WEIGHTS:
            setattr(self, weight, self.add_activation_weight(weight, shape))

    def call(self, inputs):
        # Signs sit on the weights: TensorFlow's gradient of ``x - w`` and of ``u - v`` negates the whole
        # upstream tensor for w and v, one more pass over it each.
        right = ops.relu(inputs + (-self.t_right)) * (self.a_right - 1.0)
        left = ops.relu(self.t_left - inputs) * (1.0 - self.a_left)
        return inputs + right + left
