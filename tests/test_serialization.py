"""Saving and loading: get_config round trips and .keras files read back by a fresh Python process."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy

import keras_frelu
from keras_frelu import layers, models

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(3)
SHAPE = (5, 6, 4)

L1, L2, L1L2 = keras.regularizers.L1, keras.regularizers.L2, keras.regularizers.L1L2
NON_DEFAULT_KWARGS = {  # every constructor argument set to something other than its default
    "lrelu": {"negative_slope": 0.1}, "elu": {"alpha": 0.7}, "gelu": {"approximate": True},
    "prelu": {"alpha_initializer": 0.1, "alpha_regularizer": L2(1e-2), "alpha_constraint": layers.Clip(0.0, 1.0),
              "shared_axes": [1]},
    "flexrelu": {"bias_initializer": -0.5, "bias_regularizer": L1(1e-2), "bias_constraint": layers.Clip(None, 0.0)},
    "pelu": {"a_initializer": 0.5, "b_initializer": "ones", "a_regularizer": L2(1e-3), "b_regularizer": "l1",
             "a_constraint": None, "b_constraint": layers.Clip(0.2, 3.0)},
    "srelu": {"t_left_initializer": -1.0, "a_left_initializer": 0.1, "t_right_initializer": 2.0,
              "a_right_initializer": 0.5, "t_left_regularizer": L1(1e-3), "a_left_regularizer": L2(1e-3),
              "t_right_regularizer": L1L2(1e-3, 1e-3), "a_right_regularizer": "l2",
              "t_left_constraint": layers.Clip(None, 0.0), "a_left_constraint": "non_neg",
              "t_right_constraint": layers.Clip(0.0, None), "a_right_constraint": keras.constraints.MaxNorm(3.0),
              "shared_axes": [1, 2]},
    "frelu": {"kernel_size": 5, "kernel_initializer": "he_normal", "momentum": 0.99, "epsilon": 1e-3,
              "kernel_regularizer": L2(1e-4), "kernel_constraint": keras.constraints.MaxNorm(2.0, axis=[0, 1]),
              "bias_regularizer": L1(1e-3), "bias_constraint": layers.Clip(-1.0, 1.0),
              "gamma_regularizer": L2(1e-3), "gamma_constraint": "non_neg", "beta_regularizer": L1(1e-3),
              "beta_constraint": layers.Clip(-2.0, 2.0)},
    "frelu_light": {"kernel_size": 5, "kernel_initializer": "glorot_uniform", "momentum": 0.8, "epsilon": 1e-4,
                    "kernel_regularizer": L1L2(1e-4, 1e-4), "kernel_constraint": layers.Clip(-1.0, 1.0),
                    "gamma_regularizer": "l2", "gamma_constraint": "non_neg", "beta_regularizer": L2(1e-3),
                    "beta_constraint": layers.Clip(-2.0, 2.0)},
    "ftswish": {"threshold": -0.3, "mean_shift": 0.1, "maxv": 3.0},
    "ftswishplus": {"threshold": -0.2, "mean_shift": -0.2, "maxv": 4.0},
    "trelu": {"threshold": -0.2, "mean_shift": -0.1, "maxv": 5.0},
    "lisht": {"mean_shift": 0.3, "maxv": 2.0}, "lishtplus": {"mean_shift": 0.5, "maxv": None},
    "grelu": {"leak": 0.05, "sub": 0.3, "maxv": None},
}
# A control takes its Funnel ReLU's arguments.
NON_DEFAULT_KWARGS.update({"frelu_control": NON_DEFAULT_KWARGS["frelu"],
                           "frelu_light_control": NON_DEFAULT_KWARGS["frelu_light"]})


def randomise(model):
    """Random weights everywhere (positive batch-norm variances, PELU inside its clip range)."""
    for weight in model.weights:
        leaf = weight.path.rsplit("/", 1)[-1]
        if leaf.startswith("moving_variance") or leaf in ("a", "b"):
            value = RNG.uniform(0.3, 1.8, weight.shape)
        else:
            value = RNG.normal(0.0, 0.5, weight.shape)
        weight.assign(value.astype(weight.dtype))


@pytest.mark.parametrize("name", keras_frelu.available())
def test_non_default_kwargs_set_every_constructor_argument_to_a_non_default(name):
    cls = type(keras_frelu.get(name))
    arguments = [parameter for parameter in inspect.signature(cls).parameters.values()
                 if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
    kwargs = NON_DEFAULT_KWARGS.get(name, {})
    assert sorted(kwargs) == sorted(parameter.name for parameter in arguments)
    default, changed = cls().get_config(), cls(**kwargs).get_config()
    for key in kwargs:
        assert changed[key] != default[key], key


@pytest.mark.parametrize("name", keras_frelu.available())
def test_get_config_is_json_and_round_trips(name):
    layer = keras_frelu.get(name, name=f"act_{name}", **NON_DEFAULT_KWARGS.get(name, {}))
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = keras.layers.deserialize(json.loads(json.dumps(keras.layers.serialize(layer))))
    assert type(clone) is type(layer) and clone.get_config() == config
    x = RNG.normal(0.0, 2.0, (3,) + SHAPE).astype(np.float32)
    layer.build(x.shape)
    clone.build(x.shape)
    assert [tuple(w.shape) for w in clone.weights] == [tuple(w.shape) for w in layer.weights]
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(x, training=False)), to_numpy(layer(x, training=False)))


def saved_models():
    """One small model per activation (non-default arguments, random weights) plus the builders."""
    built = {}
    for name in keras_frelu.available():
        inputs = keras.Input(SHAPE)
        layer = keras_frelu.get(name, name=f"act_{name}", **NON_DEFAULT_KWARGS.get(name, {}))
        built[name] = keras.Model(inputs, layer(inputs))
    inputs = keras.Input(SHAPE)
    built["frelu_mixed_float16"] = keras.Model(inputs, keras_frelu.get("frelu", dtype="mixed_float16")(inputs))
    built["reference_cnn_flexrelu"] = models.reference_cnn((8, 8, 1), 10, activation="flexrelu")
    built["cifar_resnet8_frelu_light"] = models.cifar_resnet(8, 10, input_shape=(8, 8, 1),
                                                             activation="frelu_light", act_after_add=False)
    for model in built.values():
        randomise(model)
    return built


LOADER = """
import json
import sys
import numpy as np
import keras
import keras_frelu  # registers the layers with Keras serialisation
from keras_frelu import models

directory = sys.argv[1]
inputs = np.load(f"{directory}/inputs.npz")
outputs, configs = {}, {}
for key in inputs.files:
    model = keras.models.load_model(f"{directory}/{key}.keras")
    outputs[key] = keras.ops.convert_to_numpy(model(inputs[key], training=False)).astype(np.float32)
    outputs[key + "/losses"] = np.array([keras.ops.convert_to_numpy(loss) for loss in model.losses], np.float32)
    configs[key] = [layer.get_config() for layer in models.activation_layers(model)]
np.savez(f"{directory}/loaded.npz", **outputs)
with open(f"{directory}/configs.json", "w") as file:
    json.dump(configs, file)
"""


# Keras's own saving code converts TF variables with np.array(x), which NumPy 2 flags; not ours to fix.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def load_in_fresh_process(directory, backend=None, timeout=300):
    """``LOADER`` run on ``directory`` in a new Python process (under ``backend``, default the running one);
    the outputs it saved, ``loaded.npz``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    if backend:
        env["KERAS_BACKEND"] = backend
    result = subprocess.run([sys.executable, "-c", LOADER, str(directory)], capture_output=True, text=True,
                            env=env, cwd=directory, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(directory / "loaded.npz")


def test_saved_models_load_in_a_fresh_process_with_identical_outputs(tmp_path):
    inputs, expected, configs = {}, {}, {}
    for key, model in saved_models().items():
        x = RNG.normal(0.0, 2.0, (2,) + tuple(model.input_shape[1:])).astype(np.float32)
        x.flat[:4] = (-1e3, -30.0, 30.0, 1e3)
        model.save(tmp_path / f"{key}.keras")
        inputs[key], expected[key] = x, to_numpy(model(x, training=False)).astype(np.float32)
        # Regularizers survive as penalties of the same weights, in the same order.
        expected[key + "/losses"] = np.array([to_numpy(loss) for loss in model.losses], np.float32)
        configs[key] = json.loads(json.dumps([layer.get_config() for layer in models.activation_layers(model)]))
    np.savez(tmp_path / "inputs.npz", **inputs)
    regularized = [key for key in configs if expected[key + "/losses"].size]
    assert {"prelu", "pelu", "srelu", "flexrelu", "frelu", "frelu_light"} <= set(regularized)

    loaded = load_in_fresh_process(tmp_path)
    assert sorted(loaded.files) == sorted(expected)
    for key, value in expected.items():
        assert np.isfinite(value).all(), key
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    assert json.loads((tmp_path / "configs.json").read_text()) == configs


def test_leaky_relu_configs_saved_with_alpha_still_load():
    config = {**keras_frelu.get("lrelu", name="old").get_config(), "alpha": 0.1}
    del config["negative_slope"]
    with pytest.warns(DeprecationWarning, match="`alpha` is now `negative_slope`"):
        layer = keras.layers.deserialize({"class_name": "keras_frelu>LeakyReLU", "config": config})
    assert type(layer) is layers.LeakyReLU and layer.negative_slope == 0.1
