"""Activation-function layers, one module per family (plus the ResNet shortcut).

Importing registers each activation under its ``keras_frelu.get`` name (``keras_frelu.registry.register``)
and every layer with Keras saving."""

from keras_frelu.layers.base import ActivationLayer, Clip
from keras_frelu.layers.exponential import ELU, PELU, SELU
from keras_frelu.layers.flexible import FlexibleReLU
from keras_frelu.layers.funnel import FunnelReLU, FunnelReLULight
from keras_frelu.layers.funnel_control import FunnelReLUControl, FunnelReLULightControl
from keras_frelu.layers.rectifiers import LeakyReLU, PReLU, ReLU
from keras_frelu.layers.shortcut import ZeroPadShortcut
from keras_frelu.layers.smooth import GELU, LiSHT, LiSHTPlus, Mish, Sigmoid, Swish, Tanh
from keras_frelu.layers.srelu import SReLU
from keras_frelu.layers.thresholded import FTSwish, FTSwishPlus, GeneralReLU, TReLU

__all__ = [
    "ActivationLayer", "Clip", "ELU", "FTSwish", "FTSwishPlus", "FlexibleReLU", "FunnelReLU", "FunnelReLUControl",
    "FunnelReLULight", "FunnelReLULightControl", "GELU", "GeneralReLU", "LeakyReLU", "LiSHT", "LiSHTPlus", "Mish",
    "PELU", "PReLU", "ReLU", "SELU", "SReLU", "Sigmoid", "Swish", "TReLU", "Tanh", "ZeroPadShortcut",
]
