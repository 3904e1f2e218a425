"""Thresholded, mean-shifted rectifiers from the fast.ai forum comparison: FTSwish, FTSwish+, TReLU,
GeneralReLU.

The "+" recipe of that thread: after the activation subtract a constant ``mean_shift`` (to bring the
mean of the outputs towards 0) and optionally clamp at ``maxv``; see ``base.shift_and_clamp``. The sign
follows the thread's code (``x.sub_(mean_shift)``): a negative ``mean_shift`` raises the output.
"""

from keras import ops

from keras_frelu.layers.base import ActivationLayer, shift_and_clamp
from keras_frelu.registry import register


class ThresholdedRectifier(ActivationLayer):
    """Shared by FTSwish and TReLU: ``min(positive_part(x) + threshold - mean_shift, maxv)``."""

    hyperparameters = ("threshold", "mean_shift", "maxv")

    def __init__(self, threshold, mean_shift, maxv, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.mean_shift = float(mean_shift)
        self.maxv = None if maxv is None else float(maxv)

    def positive_part(self, inputs):
        raise NotImplementedError

    def call(self, inputs):
        return shift_and_clamp(self.positive_part(inputs) + self.threshold, self.mean_shift, self.maxv)


@register("ftswish")
class FTSwish(ThresholdedRectifier):
    """Flatten-T Swish: a swish for positive inputs, a flat threshold below.

    Formula: ``f(x) = x * sigmoid(x) + T`` for ``x >= 0``, ``T`` otherwise
    (= ``relu(x) * sigmoid(x) + T``), then ``min(f(x) - mean_shift, maxv)``.

    Args:
        threshold: ``T``, default -0.2 (the paper's recommended value).
        mean_shift: subtracted from the output, default 0 (the paper has none).
        maxv: clamp the output at this value; default None (no clamp).

    Example:

    >>> layer = keras_frelu.layers.FTSwish()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([-0.2   , -0.2   ,  1.5616], dtype=float32)

    Reference: Chieng, Wahid, Pauline & Perla, "Flatten-T Swish: a thresholded ReLU-Swish-like activation
    function for deep learning", arXiv 1812.06247.
    """

    def __init__(self, threshold=-0.2, mean_shift=0.0, maxv=None, **kwargs):
        super().__init__(threshold=threshold, mean_shift=mean_shift, maxv=maxv, **kwargs)

    def positive_part(self, inputs):
        return ops.relu(inputs) * ops.sigmoid(inputs)


@register("ftswishplus", aliases=("ftswish_plus",))
class FTSwishPlus(FTSwish):
    """FTSwish+: FTSwish with the fast.ai forum thread's threshold and mean shift.

    Formula: ``f(x) = relu(x) * sigmoid(x) + threshold - mean_shift`` (then ``min(., maxv)`` if ``maxv``).

    Args:
        threshold: default -0.25 (the thread's winner on 3-channel ImageNette images).
        mean_shift: default -0.1, i.e. the output is raised by 0.1 ("tested as optimal for kaiming init").
        maxv: clamp value, default None (the thread's final FTSwish+ code does not clamp).

    Example:

    >>> layer = keras_frelu.layers.FTSwishPlus()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([-0.15  , -0.15  ,  1.6116], dtype=float32)

    Reference: Less Wright, "Comparison of new activation functions on ImageNette", fast.ai forums, 2019
    (FTSwishPlus code in the thread); FTSwish: arXiv 1812.06247.
    """

    def __init__(self, threshold=-0.25, mean_shift=-0.1, maxv=None, **kwargs):
        super().__init__(threshold=threshold, mean_shift=mean_shift, maxv=maxv, **kwargs)


@register("trelu")
class TReLU(ThresholdedRectifier):
    """Thresholded ReLU of the fast.ai forum thread: a ReLU moved down by a constant (FTSwish without the sigmoid).

    Formula: ``f(x) = relu(x) + threshold - mean_shift`` (then ``min(., maxv)`` if ``maxv``).
    With the defaults: ``relu(x) - 0.22``.

    Args:
        threshold: default -0.25.
        mean_shift: default -0.03 ("centers the mean nicely" in the thread).
        maxv: clamp value, default None.

    Example:

    >>> layer = keras_frelu.layers.TReLU()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([-0.22, -0.22,  1.78], dtype=float32)

    Reference: Less Wright, "Comparison of new activation functions on ImageNette", fast.ai forums, 2019
    (TRelu code in the thread).
    """

    def __init__(self, threshold=-0.25, mean_shift=-0.03, maxv=None, **kwargs):
        super().__init__(threshold=threshold, mean_shift=mean_shift, maxv=maxv, **kwargs)

    def positive_part(self, inputs):
        return ops.relu(inputs)


@register("grelu", aliases=("general_relu", "generalrelu"))
class GeneralReLU(ActivationLayer):
    """General ReLU of the fast.ai course: leak, shift down, clamp.

    Formula: ``f(x) = min(leaky_relu(x, leak) - sub, maxv)``.
    See docs/layers.md for where the defaults come from.

    Args:
        leak: slope for negative inputs, default 0.1.
        sub: subtracted from the output, default 0.4.
        maxv: clamp value, default 6.0 (None: no clamp).

    Example:

    >>> layer = keras_frelu.layers.GeneralReLU()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0, 10.0]))), 4)
    array([-0.5, -0.4,  1.6,  6. ], dtype=float32)

    Reference: Jeremy Howard, fast.ai "Deep Learning from the Foundations" (2019), lesson 10; Less
    Wright, "Comparison of new activation functions on ImageNette", fast.ai forums, 2019.
    """

    hyperparameters = ("leak", "sub", "maxv")

    def __init__(self, leak=0.1, sub=0.4, maxv=6.0, **kwargs):
        super().__init__(**kwargs)
        self.leak = float(leak)
        self.sub = float(sub)
        self.maxv = None if maxv is None else float(maxv)

    def call(self, inputs):
        return shift_and_clamp(ops.leaky_relu(inputs, negative_slope=self.leak), self.sub, self.maxv)
