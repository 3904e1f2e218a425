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
    """Initializers, regularizers and constraints become their Keras config dicts, so ``get_config`` stays JSON."""
    if isinstance(value, keras.initializers.Initializer):
        return keras.initializers.serialize(value)
    if isinstance(value, keras.regularizers.Regularizer):
        return keras.regularizers.serialize(value)
    if isinstance(value, keras.constraints.Constraint):
        return keras.constraints.serialize(value)
    return value


def as_shared_axes(shared_axes):
    """``shared_axes`` as a list of input axes (``None`` stays ``None``); axis 0, the batch, is always shared."""
    if shared_axes is None:
        return None
    axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
    if not all(isinstance(axis, int) and not isinstance(axis, bool) and axis >= 1 for axis in axes) \
            or len(set(axes)) != len(axes):
        raise ValueError(f"shared_axes must be distinct input axes >= 1 (axis 0 is the batch), got {shared_axes!r}")
    return sorted(axes)


@keras.saving.register_keras_serializable(package="keras_frelu")
class Clip(keras.constraints.Constraint):
    """Keeps a weight inside ``[min_value, max_value]`` after every optimizer step.

    See docs/layers.md for why PELU clips this way.

    Args:
        min_value: lower bound. Default None (no bound).
        max_value: upper bound. Default None (no bound).
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

    def __repr__(self):
        return f"Clip(min_value={self.min_value!r}, max_value={self.max_value!r})"


class ActivationLayer(keras.layers.Layer):
    """Base of every keras_frelu activation: output shape = input shape, masks pass through.

    Subclasses list their constructor arguments in ``hyperparameters``; see docs/layers.md for the contract.
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

    def add_activation_weight(self, name, shape):
        """A learnable weight with the layer's ``{name}_initializer``, ``{name}_regularizer`` and
        ``{name}_constraint``."""
        return self.add_weight(name=name, shape=shape, initializer=getattr(self, f"{name}_initializer"),
                               regularizer=getattr(self, f"{name}_regularizer"),
                               constraint=getattr(self, f"{name}_constraint"))

    def per_channel_shape(self, input_shape):
        """The shape of a per-channel weight for ``input_shape``, which the layer then requires (input spec).

        With ``self.shared_axes`` None: ``(channels,)``, broadcast over every axis but the last, any rank.
        Otherwise as ``keras.layers.PReLU``: ``input_shape[1:]`` with 1 on each shared axis, for inputs of
        this rank whose unshared axes have these sizes.
        """
        rank = len(input_shape)
        if self.shared_axes is None:
            axes = [rank - 1]
        else:
            if any(axis >= rank for axis in self.shared_axes):
                raise ValueError(f"{type(self).__name__}: shared_axes {self.shared_axes} name axes beyond the "
                                 f"input's last axis {rank - 1} (input shape {tuple(input_shape)})")
            axes = [axis for axis in range(1, rank) if axis not in self.shared_axes]
        unknown = [axis for axis in axes if input_shape[axis] is None]
        if rank < 2 or unknown:
            raise ValueError(f"{type(self).__name__} needs inputs of rank >= 2 with a known size on axes {axes} "
                             f"(its weights have one value per position there), got input shape "
                             f"{tuple(input_shape)}")
        if self.shared_axes is None:
            self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_shape[-1]})
            return (input_shape[-1],)
        self.input_spec = keras.layers.InputSpec(ndim=rank, axes={axis: input_shape[axis] for axis in axes})
        return tuple(input_shape[axis] if axis in axes else 1 for axis in range(1, rank))


def sum_to_shape(shape, *factors):
    """The product of ``factors`` summed, in float32, down to the broadcast ``shape`` of a weight: over the
    leading axes the weight lacks and the axes where it has size 1 (the gradient of a weight broadcast over
    them). float16 products of large values would overflow, hence float32."""
    product = ops.cast(factors[0], "float32")
    for factor in factors[1:]:
        product = product * ops.cast(factor, "float32")
    leading = len(product.shape) - len(shape)
    axes = tuple(range(leading)) + tuple(leading + axis for axis, size in enumerate(shape) if size == 1)
    return ops.reshape(ops.sum(product, axis=axes, keepdims=True), shape)


def channel_sum(*factors):
    """Per-channel sums of the product of ``factors`` over every axis but the last, in float32."""
    return sum_to_shape((factors[0].shape[-1],), *factors)


def shift_and_clamp(outputs, mean_shift, maxv):
    """``min(outputs - mean_shift, maxv)``; the fast.ai-forum "+" recipe (``maxv=None``: no clamp)."""
    if mean_shift:
        outputs = outputs - mean_shift
    if maxv is not None:
        outputs = ops.minimum(outputs, maxv)
    return outputs
