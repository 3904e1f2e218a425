"""The parameter-free residual shortcut of He et al.'s CIFAR ResNets (used by ``models.cifar_resnet``).

Not an activation; it lives here so that importing keras_frelu registers it for ``load_model``.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_frelu")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al.'s parameter-free shortcut "option A": subsample by ``strides``, then append zero channels
    up to ``filters``.

    Args:
        filters: channels of the output (at least the input's).
        strides: subsampling step along height and width.

    Example:

    >>> shortcut = keras_frelu.layers.ZeroPadShortcut(filters=3, strides=2)
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> y = keras.ops.convert_to_numpy(shortcut(x))
    >>> y.shape
    (1, 2, 2, 3)
    >>> y[0, :, :, 0]
    array([[ 0.,  2.],
           [ 8., 10.]], dtype=float32)
    >>> float(np.abs(y[..., 1:]).max())  # the appended channels
    0.0

    Reference: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
    arXiv 1512.03385 (section 4.2, CIFAR-10).
    """

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
