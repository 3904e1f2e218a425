"""keras_frelu: activation-function layers for Keras 3, reference networks and activation monitoring.

Importing the package registers every layer with Keras serialisation as soon as Keras is imported (at
once if it already is), so ``keras.models.load_model`` restores saved models that use them. The package
itself imports neither Keras nor TensorFlow: the command-line tools answer ``--help`` and bad flags at
once, and ``keras_frelu.get``, ``available``, ``activations`` and ``layers`` load them on first use.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"
__all__ = ["activations", "available", "get", "layers", "register", "__version__"]

_LAZY = {"available": "keras_frelu.activations", "get": "keras_frelu.activations", "register": "keras_frelu.registry"}


def __getattr__(name):
    if name in ("activations", "layers"):
        return importlib.import_module(f"keras_frelu.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_frelu' has no attribute {name!r}")


# Still needed: it registers the layers for load_model without importing Keras (and TensorFlow) with the package.
class _RegisterAfterKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``keras`` like the finders after it, and once Keras has loaded imports ``keras_frelu.layers``.
    Stays in place until that has happened (TensorFlow may start importing Keras and retry later)."""

    def find_spec(self, name, path, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # the look-up below must not find this finder again
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        importlib.import_module("keras_frelu.layers")


if "keras" in sys.modules:
    importlib.import_module("keras_frelu.layers")
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
