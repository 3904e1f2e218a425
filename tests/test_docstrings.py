"""The ``Example:`` blocks of the layers' docstrings run as doctests and print what they say."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_frelu
from keras_frelu import layers

MODULES = sorted(f"keras_frelu.layers.{module.name}" for module in pkgutil.iter_modules(layers.__path__))
# What the examples may use without importing it, as in Keras's own docstrings.
NAMESPACE = {"np": np, "keras": keras, "keras_frelu": keras_frelu}
PUBLIC_LAYERS = [cls for cls in map(layers.__dict__.get, layers.__all__)
                 if isinstance(cls, type) and issubclass(cls, keras.layers.Layer) and cls is not layers.ActivationLayer]


def run_examples(obj):
    """Run every doctest found in ``obj`` (a module or a class); returns (examples run, failure reports)."""
    reports, attempted = [], 0
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(obj, extraglobs=NAMESPACE):
        attempted += runner.run(test, out=reports.append).attempted
    return attempted, "".join(reports)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_give_the_printed_results(module):
    attempted, failures = run_examples(importlib.import_module(module))
    assert not failures, failures
    assert attempted or module == "keras_frelu.layers.base", "no example ran"


def test_every_public_layer_and_every_activation_has_an_example():
    registered = {type(keras_frelu.get(name)) for name in keras_frelu.available()}
    assert registered <= set(PUBLIC_LAYERS)
    for cls in PUBLIC_LAYERS:
        assert "    Example" in cls.__doc__, cls.__name__
        examples = doctest.DocTestFinder(recurse=False).find(cls, extraglobs=NAMESPACE)
        assert sum(len(test.examples) for test in examples) >= 2, cls.__name__


def test_a_wrong_example_fails():
    class Wrong:
        """
        >>> keras_frelu.layers.ReLU()(np.array([-1.0, 2.0])).numpy()
        array([0., 3.], dtype=float32)
        """

    attempted, failures = run_examples(Wrong)
    assert attempted == 1
    assert "Expected:\n    array([0., 3.], dtype=float32)\nGot:\n    array([0., 2.], dtype=float32)" in failures
