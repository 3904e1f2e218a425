"""ActivationMonitor: train a few steps with it, read the event files back with TensorBoard's own reader and
check every summary against NumPy computed independently on the same sample.

Backend-neutral: CI runs this file under KERAS_BACKEND=tensorflow, jax and torch; the gradients it checks
against come from each backend's own automatic differentiation of the model's variables."""

import io
import math
import os

import keras
import matplotlib
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from keras_frelu import layers
from keras_frelu.errors import UsageError
from keras_frelu.monitor import ActivationMonitor

STATISTICS = ("mean", "std", "min", "max", "zero_fraction", "dead_fraction", "negative_fraction")
STEPS = 8  # optimizer steps of the fixture's training run
EVERY = 3  # summaries at steps 3 and 6, and the final set at 8
FIGURE_EVERY = 6  # figures at step 6, and at 8 (end of training)


def small_model():
    """Every kind of monitored layer: a conv Funnel ReLU (its own batch norm), a conv PReLU (per-channel
    alpha), a dense Flexible ReLU (one scalar bias), and a plain keras tanh that is not an activation
    layer of ours."""
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv1")(inputs)
    x = layers.FunnelReLU(name="act_conv1")(x)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="conv2")(x)
    x = layers.PReLU(name="act_conv2")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(12, name="fc1")(x)
    x = layers.FlexibleReLU(name="act_fc1")(x)
    x = keras.layers.Activation("tanh", name="plain_tanh")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def training_data(samples=64, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(samples, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 3, samples).astype(np.int32)
    return images, labels


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A model trained STEPS steps with the monitor, its sample, labels and the monitor's events; and the
    same training without the monitor."""
    images, labels = training_data()
    sample, sample_labels = images[:10], labels[:10]
    statistics_sample = images[10:50]  # 40 images in batches of 16: the last batch is smaller
    log_dir = tmp_path_factory.mktemp("monitor")
    monitor = ActivationMonitor(log_dir, sample=sample, labels=sample_labels, statistics_sample=statistics_sample,
                                statistics_batch_size=16, every_n_steps=EVERY, figure_every_n_steps=FIGURE_EVERY)
    trained = {}
    for name, callbacks, steps in (("model", [monitor], STEPS), ("unmonitored", [], STEPS), ("first_3", [], 3)):
        keras.utils.set_random_seed(1)
        model = small_model()
        history = model.fit(images[:8 * steps], labels[:8 * steps], batch_size=8, epochs=1, callbacks=callbacks,
                            verbose=0, shuffle=False)
        trained[name], trained[name + "_history"] = model, history.history
    yield {**trained, "sample": sample, "labels": sample_labels, "statistics_sample": statistics_sample,
           "events": read_events(log_dir),
           "layers": ["act_conv1", "act_conv2", "act_fc1"]}
    ActivationMonitor.close_figure_process()  # the figure process this module's tests share


def read_events(log_dir):
    """TensorBoard's own reader over the event files in log_dir, every event kept."""
    events = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    return events


def tags_of(events, plugin):
    return {tag for tag in events.Tags()["tensors"] if events.SummaryMetadata(tag).plugin_data.plugin_name == plugin}


def value_at(events, tag, step):
    (event,) = [event for event in events.Tensors(tag) if event.step == step]
    return tensor_util.make_ndarray(event.tensor_proto)


def pngs_at(events, tag, step):
    """The decoded pictures of an image summary: TensorBoard stores [width, height, png, png, ...]."""
    stored = value_at(events, tag, step)
    width, height = int(stored[0]), int(stored[1])
    pictures = []
    for blob in stored[2:]:
        assert blob.startswith(b"\x89PNG\r\n\x1a\n")
        pictures.append(np.asarray(Image.open(io.BytesIO(blob))))
        assert pictures[-1].shape[:2] == (height, width)
    return pictures


def layer_outputs(model, names, sample):
    """Each named layer's output on the sample in inference mode, read from the model independently."""
    extractor = keras.Model(model.input, [model.get_layer(name).output for name in names])
    return [as_numpy(values) for values in extractor(sample, training=False)]


def as_numpy(tensor):
    """A backend tensor or a variable's value as NumPy (PyTorch's own conversion: Keras's warns under NumPy 2)."""
    value = tensor.value if isinstance(tensor, keras.Variable) else tensor
    return value.detach().cpu().numpy() if hasattr(value, "detach") else keras.ops.convert_to_numpy(value)


def reference_gradients(model, sample, labels):
    """``{id(variable): gradient}`` of the loss on (sample, labels) in inference mode, by the backend's own
    automatic differentiation of the model's variables (none of the monitor's code)."""
    loss_function = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_function(labels, model(sample, training=False))
        gradients = tape.gradient(loss, variables)
    elif backend == "jax":
        import jax

        def loss_of(values):
            predictions, _ = model.stateless_call(values, [v.value for v in model.non_trainable_variables],
                                                  sample, training=False)
            return loss_function(labels, predictions)

        gradients = jax.grad(loss_of)([variable.value for variable in variables])
    else:
        import torch

        loss = loss_function(keras.ops.convert_to_tensor(labels), model(sample, training=False))
        gradients = torch.autograd.grad(loss, [variable.value for variable in variables])
    return {id(variable): as_numpy(gradient) for variable, gradient in zip(variables, gradients)}


def numpy_statistics(values):
    """The documented definitions, in NumPy: dead units are never positive for any image; a dead channel
    (outputs with spatial axes) is never positive at any position of any image."""
    values = values.astype(np.float64)
    statistics = {
        "mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max(),
        "zero_fraction": np.mean(values == 0), "negative_fraction": np.mean(values < 0),
        "dead_fraction": np.mean(np.all(values <= 0, axis=0)),
    }
    if values.ndim == 4:
        statistics["dead_channel_fraction"] = np.mean(np.all(values <= 0, axis=(0, 1, 2)))
    return statistics


def test_default_layers_are_the_activation_layers_each_with_every_kind_of_summary(run):
    events = run["events"]
    histograms, scalars, images = (tags_of(events, plugin) for plugin in ("histograms", "scalars", "images"))
    for name in run["layers"]:
        assert f"activations/{name}/values" in histograms
        assert {f"activations/{name}/{statistic}" for statistic in STATISTICS} <= scalars
        assert {f"activations/{name}/{picture}" for picture in ("image", "visualization", "histogram")} <= images
    assert "activations/summary" in images
    assert not any("plain_tanh" in tag for tag in histograms | images) and \
        not any(tag.startswith("activations/plain_tanh") for tag in scalars)


def test_summaries_follow_the_optimizer_steps_and_figures_their_own_interval(run):
    events = run["events"]
    assert [event.step for event in events.Tensors("activations/act_fc1/mean")] == [3, 6, STEPS]
    assert [event.step for event in events.Tensors("activations/act_fc1/values")] == [3, 6, STEPS]
    assert [event.step for event in events.Tensors("activations/act_fc1/histogram")] == [6, STEPS]
    assert [event.step for event in events.Tensors("activations/summary")] == [6, STEPS]


def test_scalar_statistics_equal_numpy_on_the_statistics_sample(run):
    outputs = layer_outputs(run["model"], run["layers"], run["statistics_sample"])
    tags = tags_of(run["events"], "scalars")
    for name, values in zip(run["layers"], outputs):
        expected = numpy_statistics(values)
        assert (f"activations/{name}/dead_channel_fraction" in tags) == (values.ndim == 4), name
        for statistic in expected:
            got = float(value_at(run["events"], f"activations/{name}/{statistic}", STEPS))
            assert got == pytest.approx(expected[statistic], rel=1e-5, abs=1e-6), (name, statistic)


def test_histograms_hold_numpy_bucket_counts_on_edges_fixed_for_every_step_and_layer(run):
    outputs = layer_outputs(run["model"], run["layers"], run["statistics_sample"])
    first_edges = None
    for name, values in zip(run["layers"], outputs):
        for step in (3, 6, STEPS):
            buckets = value_at(run["events"], f"activations/{name}/values", step)
            first_edges = buckets[:, :2] if first_edges is None else first_edges
            np.testing.assert_array_equal(buckets[:, :2], first_edges)
        assert buckets[0, 0] == -8192 and buckets[-1, 1] == 8192
        assert buckets[:, 1].tolist() == buckets[1:, 0].tolist() + [8192]
        # Independently: bucket i holds left_i <= v < right_i above zero, left_i < v <= right_i below it, the
        # values beyond the outer edges in the outer buckets.
        edges = np.concatenate([buckets[:, 0], [buckets[-1, 1]]])
        flat = values.astype(np.float64).ravel()
        index = np.where(flat < 0, np.searchsorted(edges, flat, side="left"),
                         np.searchsorted(edges, flat, side="right")) - 1
        counts = np.bincount(np.clip(index, 0, len(edges) - 2), minlength=len(edges) - 1)
        # Values within float32 rounding of an edge may land either side (the reference outputs here come from
        # another graph than the monitor's): allow that many moves.
        near_edge = np.isclose(values.ravel()[:, None], edges[None, :], rtol=1e-6, atol=0).any(axis=1).sum()
        assert np.abs(buckets[:, 2] - counts).sum() <= 2 * near_edge, name
        assert buckets[:, 2].sum() == values.size


def test_activation_parameters_scalar_ones_as_scalars_others_as_histogram_and_norm(run):
    model, events = run["model"], run["events"]
    assert float(value_at(events, "parameters/act_fc1/bias", STEPS)) == pytest.approx(
        float(as_numpy(model.get_layer("act_fc1").bias)), rel=1e-6)
    assert float(as_numpy(model.get_layer("act_fc1").bias)) != -1.0  # it trained: the value is not the init
    alpha = as_numpy(model.get_layer("act_conv2").alpha)
    assert value_at(events, "parameters/act_conv2/alpha", STEPS)[:, 2].sum() == alpha.size
    assert float(value_at(events, "parameters/act_conv2/alpha_norm", STEPS)) == pytest.approx(
        np.linalg.norm(alpha), rel=1e-5)
    funnel = model.get_layer("act_conv1")  # every trainable weight, tagged by its path inside the layer
    weights = {weight.path.removeprefix("act_conv1/"): as_numpy(weight) for weight in funnel.trainable_weights}
    assert "kernel" in weights  # the condition kernel
    for path, weight in weights.items():
        assert float(value_at(events, f"parameters/act_conv1/{path}_norm", STEPS)) == pytest.approx(
            np.linalg.norm(weight), rel=1e-5, abs=1e-7)


def test_weight_and_gradient_norms_per_layer_equal_an_independent_computation(run):
    model, events = run["model"], run["events"]
    weighted = [layer for layer in model.layers if layer.trainable_weights]
    gradients = reference_gradients(model, run["sample"], run["labels"])
    for layer in weighted:
        weight_norm = math.sqrt(sum(float(np.sum(as_numpy(weight).astype(np.float64) ** 2))
                                    for weight in layer.trainable_weights))
        gradient_norm = math.sqrt(sum(float(np.sum(gradients[id(weight)].astype(np.float64) ** 2))
                                      for weight in layer.trainable_weights))
        assert float(value_at(events, f"weight_norm/{layer.name}", STEPS)) == pytest.approx(weight_norm, rel=1e-5)
        assert float(value_at(events, f"gradient_norm/{layer.name}", STEPS)) == pytest.approx(
            gradient_norm, rel=1e-4)
        assert gradient_norm > 0


def test_a_monitor_step_during_training_sees_the_weights_of_that_step(run):
    # Step 3 is mid-epoch (JAX keeps the training state outside the model's variables until asked): the
    # weights written then are those of the same model trained 3 steps and no more.
    after_3 = run["first_3"]
    for layer in after_3.layers:
        if layer.trainable_weights:
            norm = math.sqrt(sum(float(np.sum(as_numpy(weight).astype(np.float64) ** 2))
                                 for weight in layer.trainable_weights))
            assert float(value_at(run["events"], f"weight_norm/{layer.name}", 3)) == pytest.approx(norm, rel=1e-5)
    # The statistics too: computed in the background from the weights copied at step 3, while training went on.
    for name, values in zip(run["layers"], layer_outputs(after_3, run["layers"], run["statistics_sample"])):
        for statistic, expected in numpy_statistics(values).items():
            got = float(value_at(run["events"], f"activations/{name}/{statistic}", 3))
            assert got == pytest.approx(expected, rel=1e-5, abs=1e-6), (name, statistic)
    bias = float(as_numpy(after_3.get_layer("act_fc1").bias))
    assert float(value_at(run["events"], "parameters/act_fc1/bias", 3)) == pytest.approx(bias, rel=1e-6)
    assert bias != pytest.approx(float(value_at(run["events"], "parameters/act_fc1/bias", STEPS)), rel=1e-6)


def colour_levels(picture):
    """Invert the colouring: each pixel's index in the 256-colour viridis table, -1 for white."""
    table = np.round(matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255)
    distances = np.abs(picture[..., np.newaxis, :].astype(float) - table).sum(axis=-1)
    levels = np.argmin(distances, axis=-1)
    levels[(picture == 255).all(axis=-1)] = -1
    return levels


def expected_levels(values, low, high):
    return np.round((values - low) / (high - low) * 255).astype(int)


def test_images_are_pngs_of_the_documented_layouts(run):
    model, events, sample = run["model"], run["events"], run["sample"]
    conv_values, dense_values = layer_outputs(model, ["act_conv2", "act_fc1"], sample)
    # act_conv2: 4x4 maps, 5 channels -> per sample a 2 x 3 grid of maps with 1-pixel white separators;
    # the first 3 samples, scaled together
    grids = pngs_at(events, "activations/act_conv2/image", STEPS)
    assert [grid.shape for grid in grids] == [(2 * 5 - 1, 3 * 5 - 1, 3)] * 3
    first = conv_values[:3]
    for index, grid in enumerate(grids):
        expected = np.full((9, 14), -1)
        for channel in range(5):
            row, column = divmod(channel, 3)
            expected[row * 5:row * 5 + 4, column * 5:column * 5 + 4] = expected_levels(
                first[index, :, :, channel], first.min(), first.max())
        assert np.abs(colour_levels(grid) - expected).max() <= 1
        assert (colour_levels(grid)[expected == -1] == -1).all()
    # act_fc1: a heat map of 12 units (rows) x 10 samples (columns)
    (heatmap,) = pngs_at(events, "activations/act_fc1/image", STEPS)
    assert heatmap.shape == (12, 10, 3)
    expected = expected_levels(dense_values.T, dense_values.min(), dense_values.max())
    assert np.abs(colour_levels(heatmap) - expected).max() <= 1
    # figures: equally sized panels; the summary puts the 3 histograms above the 3 visualizations
    (panel,) = pngs_at(events, "activations/act_fc1/histogram", STEPS)
    (visualization,) = pngs_at(events, "activations/act_fc1/visualization", STEPS)
    (summary,) = pngs_at(events, "activations/summary", STEPS)
    assert visualization.shape == panel.shape and panel.shape[0] > 100
    height, width, _ = panel.shape
    assert summary.shape == (2 * height, 3 * width, 3)
    np.testing.assert_array_equal(summary[:height, 2 * width:], panel)
    np.testing.assert_array_equal(summary[height:, 2 * width:], visualization)


def test_the_monitor_changes_nothing_in_training(run):
    # Batch-norm moving statistics are weights too: an inference-mode monitor must leave them alone, and
    # its gradient computation must not touch the optimizer or the loss trackers.
    for without, with_monitor in zip(run["unmonitored"].get_weights(), run["model"].get_weights()):
        np.testing.assert_allclose(with_monitor, without, rtol=1e-5, atol=1e-7)
    for metric, values in run["unmonitored_history"].items():
        assert run["model_history"][metric] == pytest.approx(values, rel=1e-5)


# Keras runs one step per execution on PyTorch (steps_per_execution must be 1 there)
@pytest.mark.parametrize("steps_per_execution", [4] if keras.backend.backend() != "torch" else [1])
def test_steps_count_across_epochs_executions_of_several_steps_and_fit_calls(tmp_path, steps_per_execution):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(layers.ReLU(name="act")(keras.layers.Dense(3)(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    data = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    monitor = ActivationMonitor(tmp_path, sample=data[:2], every_n_steps=3, figures=False)
    model.fit(data, data[:, :2], batch_size=1, epochs=2, callbacks=[monitor], verbose=0)
    # a second fit continues from the optimizer's step 16 (like a resumed run)
    model.fit(data, data[:, :2], batch_size=1, epochs=1, callbacks=[monitor], verbose=0)
    steps = [event.step for event in read_events(tmp_path).Tensors("activations/act/mean")]
    if steps_per_execution == 4:
        # two epochs of 8 steps run as executions of 4 steps, ending at steps 4, 8, 12 and 16: each crossed
        # a multiple of 3 (3, 6, 9, 15)
        assert steps == [4, 8, 12, 16, 20, 24]
    else:  # every multiple of 3, and a final set at the end of each fit (16; 24 is a multiple)
        assert steps == [3, 6, 9, 12, 15, 16, 18, 21, 24]


def test_layers_by_name_or_predicate(tmp_path):
    model = small_model()
    sample = training_data(2)[0]
    by_name = ActivationMonitor(tmp_path, "plain_tanh", sample=sample)
    by_name.set_model(model)
    assert [layer.name for layer in by_name.monitored] == ["plain_tanh"]
    by_predicate = ActivationMonitor(tmp_path, lambda layer: isinstance(layer, keras.layers.Conv2D), sample=sample)
    by_predicate.set_model(model)
    assert [layer.name for layer in by_predicate.monitored] == ["conv1", "conv2"]


@pytest.mark.parametrize("kwargs, message", [
    ({"layers": ["act_fc1", "act_fc9"]}, "has no layer 'act_fc9'"),
    ({"layers": lambda layer: False}, "has no layer for which"),
])
def test_bad_layer_selection_names_the_problem(tmp_path, kwargs, message):
    monitor = ActivationMonitor(tmp_path, sample=training_data(2)[0], **kwargs)
    with pytest.raises(UsageError, match=message):
        monitor.set_model(small_model())


def test_a_model_without_activation_layers_needs_a_selection(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(UsageError, match="no activation layer .* pass layers="):
        ActivationMonitor(tmp_path, sample=np.zeros((2, 3))).set_model(model)


@pytest.mark.parametrize("kwargs, message", [
    ({"every_n_steps": 0}, "every_n_steps must be a positive integer"),
    ({"every_n_steps": 2.5}, "every_n_steps must be a positive integer"),
    ({"every_n_steps": 10, "figure_every_n_steps": 25}, "must be a multiple of every_n_steps"),
    ({"labels": np.zeros(3)}, "labels has 3 entries but sample has 2"),
    ({"sample": None}, "sample .* must be arrays"),
])
def test_bad_arguments_raise_one_clear_error(tmp_path, kwargs, message):
    arguments = {"sample": np.zeros((2, 8, 8, 1)), **kwargs}
    with pytest.raises(UsageError, match=message):
        ActivationMonitor(tmp_path, **arguments)


def open_files_under(folder):
    """Paths under ``folder`` that this process has open (Linux /proc)."""
    folder = os.path.realpath(folder)
    found = []
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:  # closed meanwhile (e.g. the listing's own descriptor)
            continue
        if target.startswith(folder + os.sep):
            found.append(target)
    return found


def test_each_fit_closes_its_event_file_and_the_next_fit_writes_on(tmp_path):
    images, labels = training_data(32)
    model = small_model()
    monitor = ActivationMonitor(tmp_path, sample=images[:4], labels=labels[:4], every_n_steps=2, figures=False)
    for _ in range(2):
        model.fit(images, labels, batch_size=8, epochs=1, callbacks=[monitor], verbose=0)
        assert open_files_under(tmp_path) == []
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2  # one file per fit
    steps = [event.step for event in read_events(tmp_path).Tensors("activations/act_fc1/mean")]
    assert steps == [2, 4, 6, 8]
