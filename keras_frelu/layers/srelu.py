"""S-shaped ReLU: three linear pieces with learnable per-channel thresholds and slopes."""

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, as_initializer


@keras.saving.register_keras_serializable(package="keras_frelu")
class SReLU(ActivationLayer):
    """S-shaped rectified linear unit with learnable per-channel thresholds and slopes.

    Formula, per channel c::

        f(x) = t_r + a_r * (x - t_r)   for x >= t_r
        f(x) = x                       for t_l < x < t_r
        f(x) = t_l + a_l * (x - t_l)   for x <= t_l

    Computed as ``x + (a_r - 1) * relu(x - t_r) + (1 - a_l) * relu(t_l - x)``: the identity bent at each
    threshold, equal to the three pieces while ``t_l <= t_r`` and 40% cheaper (forward and backward) than
    selecting among them (bench/RESULTS.md). Rounding errors scale with ``|x|`` rather than with ``f(x)``:
    where a slope is near 0 and ``|x|`` large (1000 at slope 0.002) most of ``x`` cancels, leaving a few
    ulps of ``|x|``. The paper assumes ``t_l < t_r`` but nothing in training keeps it so; if
    ``t_l`` passes ``t_r`` both bends apply between the thresholds and ``f`` stays continuous.

    Args:
        t_left_initializer, a_left_initializer, t_right_initializer, a_right_initializer: initial
            values (a number means a constant). Defaults 0, 0.2, 1, 1: the layer starts as a leaky ReLU
            of slope 0.2. The paper instead sets ``t_r`` from the data after a few epochs ("adaptive
            initialisation"); that data-dependent step is not reproduced here. Note that while
            ``a_r == 1`` the output does not depend on ``t_r``, so ``t_r`` starts learning once ``a_r``
            has moved.

    Weights: ``t_left``, ``a_left``, ``t_right``, ``a_right``, each of shape ``(channels,)``.

    Reference: Jin, Xu, Feng, Wei, Xiong & Yan, "Deep Learning with S-shaped Rectified Linear Activation
    Units", AAAI 2016, arXiv 1512.07030.
    """

    hyperparameters = ("t_left_initializer", "a_left_initializer", "t_right_initializer",
                       "a_right_initializer")

    def __init__(self, t_left_initializer=0.0, a_left_initializer=0.2, t_right_initializer=1.0,
                 a_right_initializer=1.0, **kwargs):
        super().__init__(**kwargs)
        self.t_left_initializer = as_initializer(t_left_initializer)
        self.a_left_initializer = as_initializer(a_left_initializer)
        self.t_right_initializer = as_initializer(t_right_initializer)
        self.a_right_initializer = as_initializer(a_right_initializer)

    def build(self, input_shape):
        for name in ("t_left", "a_left", "t_right", "a_right"):
            weight = self.add_activation_weight(name, input_shape, getattr(self, f"{name}_initializer"),
                                                per_channel=True)
            setattr(self, name, weight)

    def call(self, inputs):
        # Signs sit on the per-channel weights: TensorFlow's gradient of ``x - w`` and of ``u - v`` negates
        # the whole upstream tensor for w and v, one more pass over it each.
        right = ops.relu(inputs + (-self.t_right)) * (self.a_right - 1.0)
        left = ops.relu(self.t_left - inputs) * (1.0 - self.a_left)
        return inputs + right + left
