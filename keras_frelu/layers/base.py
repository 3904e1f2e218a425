"""What every activation layer shares: the base class, weight helpers and the shift-and-clamp step."""

import numbers

import keras
from keras import ops


def as_initializer(value):
    """A Keras initializer from a number (a constant), a name, a config dict or an initializer."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return keras.initializers.Constant(float(value))
    return keras.initializers.get(value)


def _json_value(value):
    """Initializers and constraints become their Keras config dicts, so ``get_config`` stays JSON."""
    if isinstance(value, keras.initializers.Initializer):
        return keras.initializers.serialize(value)
    if isinstance(value, keras.constraints.Constraint):
        return keras.constraints.serialize(value)
    return value


@keras.saving.register_keras_serializable(package="keras_frelu")
class Clip(keras.constraints.Constraint):
    """Keeps a weight inside ``[min_value, max_value]`` after every optimizer step (``None``: no bound).

    PELU's authors clip their parameters the same way (``a`` in [0.1, 2], ``b`` >= 0.1), which keeps a
    gradient flowing, unlike clipping inside the forward pass.
    """

    def __init__(self, min_value=None, max_value=None):
        self.min_value = min_value
        self.max_value = max_value

    def __call__(self, w):
        if self.min_value is not None:
            w = ops.maximum(w, ops.cast(self.min_value, w.dtype))
        if self.max_value is not None:
            w = ops.minimum(w, ops.cast(self.max_value, w.dtype))
        return w

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value}


class ActivationLayer(keras.layers.Layer):
    """Base of every keras_frelu activation: output shape = input shape, masks pass through.

    Subclasses list their constructor arguments in ``hyperparameters``; each is stored as an attribute
    of the same name and written to ``get_config()`` (initializers and constraints as config dicts).
    ``keras_frelu.models.activation_layers`` finds a model's activations by this class.
    """

    hyperparameters = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({name: _json_value(getattr(self, name)) for name in self.hyperparameters})
        return config

    def add_activation_weight(self, name, input_shape, initializer, per_channel, constraint=None):
        """A learnable weight of shape ``(channels,)`` (per_channel, broadcast over the last axis; the layer
        then only accepts that channel count) or ``()``."""
        if per_channel:
            channels = input_shape[-1]
            if channels is None:
                raise ValueError(f"{type(self).__name__} needs a known channel (last) dimension, got input "
                                 f"shape {tuple(input_shape)}")
            shape = (channels,)
            self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: channels})
        else:
            shape = ()
        return self.add_weight(name=name, shape=shape, initializer=initializer, constraint=constraint)


def channel_sum(*factors):
    """Per-channel sums of the product of ``factors`` over every axis but the last, in float32 (the
    gradients of per-channel weights; float16 products of large values would overflow)."""
    product = ops.cast(factors[0], "float32")
    for factor in factors[1:]:
        product = product * ops.cast(factor, "float32")
    return ops.sum(product, axis=tuple(range(len(product.shape) - 1)))


def shift_and_clamp(outputs, mean_shift, maxv):
    """``min(outputs - mean_shift, maxv)``; the fast.ai-forum "+" recipe (``maxv=None``: no clamp)."""
    if mean_shift:
        outputs = outputs - mean_shift
    if maxv is not None:
        outputs = ops.minimum(outputs, maxv)
    return outputs
