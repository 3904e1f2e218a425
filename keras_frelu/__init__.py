"""keras_frelu: activation-function layers for Keras 3, reference networks and activation monitoring.

Importing the package registers every layer with Keras serialisation, so ``keras.models.load_model``
restores saved models that use them.
"""

from keras_frelu import layers
from keras_frelu.registry import available, get, register

__version__ = "0.1.0"
__all__ = ["available", "get", "layers", "register", "__version__"]
