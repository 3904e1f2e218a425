"""The parameter-free residual shortcut of He et al.'s CIFAR ResNets (used by ``models.cifar_resnet``).

Not an activation; it lives here so that importing keras_frelu registers it for ``load_model``.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_frelu")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al.'s parameter-free shortcut "option A": subsample by ``strides``, then append zero channels
    up to ``filters``."""

    def __init__(self, filters, strides, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, inputs):
        subsampled = inputs[:, ::self.strides, ::self.strides, :]
        extra = self.filters - subsampled.shape[-1]
        return ops.pad(subsampled, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        height, width = (None if size is None else math.ceil(size / self.strides) for size in (height, width))
        return (batch, height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
