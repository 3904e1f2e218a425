"""Smooth activations: sigmoid, tanh, Swish, GELU, Mish, LiSHT, LiSHT+."""

import math

import keras
from keras import ops

from keras_frelu.layers.base import ActivationLayer, shift_and_clamp
from keras_frelu.registry import register


@register("sigmoid")
class Sigmoid(ActivationLayer):
    """Logistic sigmoid.

    Formula: ``f(x) = 1 / (1 + exp(-x))``.

    Example:

    >>> layer = keras_frelu.layers.Sigmoid()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([0.2689, 0.5   , 0.8808], dtype=float32)

    Reference: e.g. LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998.
    """

    def call(self, inputs):
        return ops.sigmoid(inputs)


@register("tanh")
class Tanh(ActivationLayer):
    """Hyperbolic tangent.

    Formula: ``f(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``.

    Example:

    >>> layer = keras_frelu.layers.Tanh()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([-0.7616,  0.    ,  0.964 ], dtype=float32)

    Reference: e.g. LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998.
    """

    def call(self, inputs):
        return ops.tanh(inputs)


@register("swish", aliases=("silu",))
class Swish(ActivationLayer):
    """Swish / SiLU (with beta = 1).

    Formula: ``f(x) = x * sigmoid(x)``.

    Example:

    >>> layer = keras_frelu.layers.Swish()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([-0.2689,  0.    ,  1.7616], dtype=float32)

    Reference: Ramachandran, Zoph & Le, "Searching for Activation Functions", arXiv 1710.05941;
    Elfwing, Uchibe & Doya, "Sigmoid-Weighted Linear Units ...", arXiv 1702.03118.
    """

    def call(self, inputs):
        return ops.silu(inputs)


@register("gelu")
class GELU(ActivationLayer):
    """Gaussian error linear unit.

    Formula: ``f(x) = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))``; with ``approximate=True`` the
    tanh form ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))``.
    See docs/layers.md for how the derivative is computed.

    Args:
        approximate: use the tanh approximation. Default False (the exact definition).

    Example:

    >>> layer = keras_frelu.layers.GELU()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([-0.1587,  0.    ,  1.9545], dtype=float32)

    Reference: Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv 1606.08415.
    """

    hyperparameters = ("approximate",)

    def __init__(self, approximate=False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def call(self, inputs):
        return ops.gelu(inputs, approximate=True) if self.approximate else gelu(inputs)


@ops.custom_gradient
def gelu(x):
    """The exact ``x * Phi(x)`` with its derivative written out (see ``GELU``)."""
    cdf = 0.5 + 0.5 * ops.erf(x * (1.0 / math.sqrt(2.0)))

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        density = ops.exp(ops.square(x) * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))  # 0, not NaN, for huge |x|
        return upstream * (cdf + x * density)

    return x * cdf, grad


@register("mish")
class Mish(ActivationLayer):
    """Mish.

    Formula: ``f(x) = x * tanh(softplus(x))``, ``softplus(x) = log(1 + exp(x))``.
    See docs/layers.md for how it is computed and its accuracy.

    Example:

    >>> layer = keras_frelu.layers.Mish()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([-0.3034,  0.    ,  1.944 ], dtype=float32)

    Reference: Misra, "Mish: A Self Regularized Non-Monotonic Activation Function", BMVC 2020,
    arXiv 1908.08681.
    """

    def call(self, inputs):
        return mish(inputs)


@ops.custom_gradient
def mish(x):
    """``x * tanh(softplus(x))`` with its derivative written out (see ``Mish``)."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    wide = x if dtype == "float64" else ops.cast(x, "float32")  # float16 rounds t above 1 (see Mish)
    clamped = ops.minimum(wide, 40.0)
    e = ops.exp(clamped)
    n = e * (e + 2.0)
    t = n / (n + 2.0)  # a correctly rounded quotient: never above 1, and exactly 1 once n dwarfs 2

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        inverse = 1.0 / (n + 2.0)
        # the clamped x: beyond 40 the true term is below any resolution, x times the clamped one would grow
        derivative = t + clamped * ((e * (e + 1.0) * inverse) * (4.0 * inverse))
        return upstream * ops.cast(derivative, upstream.dtype)

    return ops.cast(wide * t, x.dtype), grad


@register("lisht")
class LiSHT(ActivationLayer):
    """Linearly scaled hyperbolic tangent (always >= 0).

    Formula: ``f(x) = x * tanh(x)``, then ``min(f(x) - mean_shift, maxv)``.

    Args:
        mean_shift: subtracted from the output, default 0 (the paper has none).
        maxv: clamp the output at this value; default None (no clamp).

    Example:

    >>> layer = keras_frelu.layers.LiSHT()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0]))), 4)
    array([0.7616, 0.    , 1.9281], dtype=float32)

    Reference: Roy, Manna, Dubey & Chaudhuri, "LiSHT: Non-Parametric Linearly Scaled Hyperbolic Tangent
    Activation Function for Neural Networks", arXiv 1901.05894.
    """

    hyperparameters = ("mean_shift", "maxv")

    def __init__(self, mean_shift=0.0, maxv=None, **kwargs):
        super().__init__(**kwargs)
        self.mean_shift = float(mean_shift)
        self.maxv = None if maxv is None else float(maxv)

    def call(self, inputs):
        return shift_and_clamp(inputs * ops.tanh(inputs), self.mean_shift, self.maxv)


@register("lishtplus", aliases=("lisht_plus",))
class LiSHTPlus(LiSHT):
    """LiSHT+: LiSHT with the fast.ai forum thread's "mean shift + clamping" recipe.

    Formula: ``f(x) = min(x * tanh(x) - mean_shift, maxv)``.
    See docs/layers.md for how the defaults were chosen (the thread gives no values).

    Args:
        mean_shift: subtracted from the output, default 0.6 (about ``E[z tanh z]`` for ``z ~ N(0, 1)``).
        maxv: clamp the output at this value; default 6.0 (None: no clamp).

    Example:

    >>> layer = keras_frelu.layers.LiSHTPlus()
    >>> np.round(keras.ops.convert_to_numpy(layer(np.array([-1.0, 0.0, 2.0, 10.0]))), 4)
    array([ 0.1616, -0.6   ,  1.3281,  6.    ], dtype=float32)

    Reference: Less Wright, "Comparison of new activation functions on ImageNette", fast.ai forums, 2019;
    LiSHT: arXiv 1901.05894.
    """

    def __init__(self, mean_shift=0.6, maxv=6.0, **kwargs):
        super().__init__(mean_shift=mean_shift, maxv=maxv, **kwargs)
