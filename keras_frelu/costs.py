"""What a network costs, counted from its built layers: trainable parameters (in all, and inside its activation
layers) and forward FLOPs per image (inference).

FLOPs, for one image:

- convolutions and dense layers: 2 per multiply-add, plus 1 per output for the bias;
- batch normalisation: 2 per element (a scale and a shift);
- Funnel ReLU and its controls: 2 per tap of each depthwise kernel per element, 1 per element for the bias
  their folded batch norms leave, and 1 per element for the max (or, in a control, the ReLU); the kernels
  are counted as the layer defines them (the light variant's 1xk and kx1 lines: 2k taps), although inference
  on up to two spatial axes adds the lines into one kxk kernel, which does k^2 multiply-adds;
- every other activation layer: 1 per element, whatever its formula (an exponential counts as 1);
- addition: 1 per output element; pooling: 1 per input element; dropout, flatten, reshaping and the
  zero-padding shortcut: 0.

A layer of another kind raises ``ValueError``: its cost is not guessed.
"""

import math

import keras

from keras_frelu.layers import ActivationLayer, ZeroPadShortcut
from keras_frelu.layers.funnel import FunnelCondition

FREE = (keras.layers.InputLayer, keras.layers.Dropout, keras.layers.AlphaDropout, keras.layers.Flatten,
        keras.layers.Reshape, ZeroPadShortcut)
POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D,
           keras.layers.GlobalMaxPooling2D)


def layers_of(model):
    """Every layer of ``model``, nested models unrolled, in model order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from layers_of(layer)
        else:
            yield layer


def trainable_parameters(model):
    """``(in all, inside activation layers)``: the sizes of the trainable weights."""
    total = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    activation = sum(math.prod(weight.shape) for layer in layers_of(model) if isinstance(layer, ActivationLayer)
                     for weight in layer.trainable_weights)
    return total, activation


def forward_flops(model):
    """The FLOPs of one image through ``model`` in inference, by the rules above."""
    return sum(layer_flops(layer) for layer in layers_of(model))


def layer_flops(layer):
    """One layer's FLOPs per image (see the module docstring)."""
    outputs = _elements(layer.output)
    if isinstance(layer, FREE):
        return 0
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        kernel = layer.kernel.shape
        multiply_adds = math.prod(kernel[:-1])  # per output: the window times the input channels (of a group)
        return outputs * (2 * multiply_adds + int(layer.use_bias))
    if isinstance(layer, keras.layers.BatchNormalization):
        return 2 * outputs
    if isinstance(layer, FunnelCondition):
        taps = sum(math.prod(kernel.shape[:-2]) if len(kernel.shape) > 1 else 1 for kernel in layer.kernels)
        return outputs * (2 * taps + 2)
    if isinstance(layer, (ActivationLayer, keras.layers.Add)):
        return outputs
    if isinstance(layer, POOLING):
        return _elements(layer.input)
    raise ValueError(f"no FLOP count for layer {layer.name!r} ({type(layer).__name__}); add a rule to "
                     "keras_frelu.costs")


def _elements(tensors):
    """Elements per image of a tensor or a list of tensors (the batch axis left out)."""
    tensors = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    return sum(math.prod(tensor.shape[1:]) for tensor in tensors)
