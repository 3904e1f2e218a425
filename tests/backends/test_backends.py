"""The layers on every Keras backend: CI runs this file under KERAS_BACKEND=tensorflow, jax and torch
(`.venv/bin/python -m pip install "torch==2.13.0" jax jaxlib`, then `KERAS_BACKEND=jax .venv/bin/python -m
pytest tests/backends`; see .ci/run).

Each check is against the same independent references as the TensorFlow-only layer tests (the NumPy
formulas of test_layers.py, the NumPy Funnel ReLU of test_funnel.py, the saved models of
test_serialization.py); gradients come from the running backend's own automatic differentiation
(``autodiff``), and a model saved here is loaded by each of the other two backends in a process of its own.
"""

import keras
import numpy as np
import pytest

from layer_checks import (CONTROLS, ELEMENTWISE, FUNNEL, assert_matches_central_differences, layer_class,
                          layer_gradients, seeded_rng, to_numpy)
from test_funnel import np_funnel, np_funnel_training, randomise_funnel
from test_layers import CHANNELS, REFERENCES, make_layer
# test_layers' NumPy-reference tests are backend-neutral: imported here, pytest runs them under every backend.
from test_layers import (test_layer_arguments_reach_the_formula, test_layer_matches_numpy_formula,  # noqa: F401
                         test_mixed_float16_computes_in_half_precision_with_float32_weights)
from test_serialization import RNG, load_in_fresh_process, saved_models

BACKENDS = ("tensorflow", "jax", "torch")
BACKEND = keras.backend.backend()
rng = pytest.fixture(seeded_rng, name="rng")


def test_the_backend_under_test_is_one_ci_runs():
    assert BACKEND in BACKENDS


def test_tf_distribute_strategies_need_the_tensorflow_backend():
    from keras_frelu import config, training
    from keras_frelu.errors import UsageError

    mirrored = config.TrainConfig(strategy="mirrored")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        assert isinstance(training.make_strategy(mirrored), tf.distribute.MirroredStrategy)
    else:  # refused before anything runs, in one line that says what to do
        with pytest.raises(UsageError, match=f"^--strategy mirrored uses tf.distribute, which needs the TensorFlow "
                                             f"backend, but KERAS_BACKEND is {BACKEND}; set KERAS_BACKEND=tensorflow"):
            training.make_strategy(mirrored)


@pytest.mark.parametrize("name", FUNNEL)
@pytest.mark.parametrize("shape", [(3, 6), (3, 7, 5), (2, 6, 5, 5), (2, 4, 5, 3, 5)],
                         ids=["rank2", "rank3", "rank4", "rank5"])
def test_funnel_matches_numpy_depthwise_conv_and_batch_norm(name, shape, rng):
    x = rng.normal(0, 1, shape).astype(np.float32)
    layer = layer_class(name)()
    layer.build(shape)
    control = name in CONTROLS
    expected = np_funnel(x.astype(np.float64), randomise_funnel(layer, shape[-1], rng), control=control)
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)
    expected = np_funnel_training(x.astype(np.float64), randomise_funnel(layer, shape[-1], rng), control=control)
    np.testing.assert_allclose(to_numpy(layer(x, training=True)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_gradients_match_numpy_finite_differences(name, rng):
    """The gradients for x and every weight against central differences of the NumPy formula (float64),
    along random directions; random inputs, which lie on no kink."""
    kwargs, formula = REFERENCES[name]
    x = rng.normal(0.0, 3.0, (6, 5, CHANNELS)).astype(np.float32)
    layer, weights = make_layer(name, rng, kwargs, x)
    cotangent = rng.normal(size=x.shape)
    analytic = layer_gradients(layer, x, cotangent, {key: getattr(layer, key) for key in sorted(weights)})
    point = {"x": x.astype(np.float64), **{key: value.astype(np.float64) for key, value in weights.items()}}
    assert all(analytic[key].shape == point[key].shape for key in point)

    def perturbed(key, delta):
        values = {**point, key: point[key] + delta}
        return np.sum(formula(values.pop("x"), values) * cotangent)

    assert_matches_central_differences(analytic, perturbed, tolerance=1e-4, rng=rng)


@pytest.mark.parametrize("name", FUNNEL)
def test_funnel_training_gradients_match_numpy_finite_differences(name, rng):
    shape = (3, 5, 4, 3)
    x = rng.normal(0, 1, shape)
    layer = layer_class(name)()
    layer.build(shape)
    branches = randomise_funnel(layer, shape[-1], rng)
    cotangent = rng.normal(size=shape)
    analytic = layer_gradients(layer, x, cotangent, {"kernel": layer.kernels[0], "gamma": layer.gammas[0],
                                                     "beta": layer.betas[0]}, training=True)

    def perturbed(key, delta):
        if key == "x":
            return float(np.sum(np_funnel_training(x + delta, branches, control=name in CONTROLS) * cotangent))
        changed = [{**branches[0], key: branches[0][key].astype(np.float64) + delta}] + branches[1:]
        return float(np.sum(np_funnel_training(x, changed, control=name in CONTROLS) * cotangent))

    assert_matches_central_differences(analytic, perturbed, tolerance=2e-3, rng=rng)


@pytest.fixture(scope="module")
def saved_here(tmp_path_factory):
    """test_serialization.py's models (every activation with non-default arguments, random weights, the
    reference CNN and a ResNet) saved by this backend, with their inputs; and their outputs here."""
    directory = tmp_path_factory.mktemp("saved_by_" + BACKEND)
    inputs, expected = {}, {}
    for key, model in saved_models().items():
        x = RNG.normal(0.0, 2.0, (2,) + tuple(model.input_shape[1:])).astype(np.float32)
        x.flat[:4] = (-1e3, -30.0, 30.0, 1e3)
        model.save(directory / f"{key}.keras")
        inputs[key], expected[key] = x, to_numpy(model(x, training=False)).astype(np.float32)
        expected[key + "/losses"] = np.array([to_numpy(loss) for loss in model.losses], np.float32)
    np.savez(directory / "inputs.npz", **inputs)
    return directory, expected


@pytest.mark.parametrize("loader", [backend for backend in BACKENDS if backend != BACKEND])
def test_models_saved_here_load_under_another_backend_with_the_same_outputs(loader, saved_here):
    directory, expected = saved_here
    loaded = load_in_fresh_process(directory, backend=loader, timeout=600)
    assert sorted(loaded.files) == sorted(expected)
    for key, value in expected.items():
        assert np.isfinite(value).all(), key
        # Another backend's kernels round differently; float16 ones by float16's precision
        tolerance = 2e-2 if "mixed_float16" in key else 1e-4
        np.testing.assert_allclose(loaded[key], value, rtol=tolerance, atol=tolerance, err_msg=key)
