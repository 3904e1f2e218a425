"""The package imports neither Keras nor TensorFlow by itself, yet registers its layers with Keras
whichever of the two is imported first; the command-line tools answer --help without TensorFlow."""

import subprocess
import sys

import pytest
from helpers import CLI_ENV, ROOT


def python(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLI_ENV, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_import_loads_no_tensorflow():
    assert python("import sys, keras_frelu, keras_frelu.config, keras_frelu.compare.command, keras_frelu.data; "
                  "print('tensorflow' in sys.modules, 'keras' in sys.modules)") == ["False", "False"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import keras

    import keras_frelu

    path = tmp_path_factory.mktemp("saved") / "model.keras"
    inputs = keras.Input((5, 5, 2))
    keras.Model(inputs, keras_frelu.get("frelu")(inputs)).save(path)
    return path


@pytest.mark.parametrize("first, second", [("keras_frelu", "keras"), ("keras", "keras_frelu")])
def test_layers_load_from_a_saved_model_whichever_is_imported_first(first, second, saved_model):
    path = saved_model
    assert python(f"import {first}; import {second}; "
                  f"print(type(keras.models.load_model(r'{path}').layers[1]).__name__)") == ["FunnelReLU"]


@pytest.mark.parametrize("script", ["trainer.py", "evaler.py", "script.py", "download.py"])
def test_help_needs_no_tensorflow(script):
    code = (f"import runpy, sys; sys.argv = ['{script}', '--help']\n"
            f"try:\n    runpy.run_path('{script}', run_name='__main__')\n"
            "except SystemExit as exit_:\n    print(exit_.code, 'tensorflow' in sys.modules)")
    *_, exit_code, loaded = python(code)
    assert (exit_code, loaded) == ("0", "False")
