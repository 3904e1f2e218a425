"""ActivationMonitor: a Keras callback that writes what a model's activation layers do to TensorBoard."""

import os

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram import metadata as histogram_metadata

from keras_frelu import models
from keras_frelu.errors import UsageError
from keras_frelu.monitor import figures as panels
from keras_frelu.monitor.images import activation_image
from keras_frelu.monitor.statistics import activation_statistics, histogram_buckets

FIGURE_INTERVALS = 10  # figures are drawn at every 10th monitor step by default: matplotlib is the costly part


class ActivationMonitor(keras.callbacks.Callback):
    """Writes the activations of a fixed sample, and the activation parameters, to TensorBoard during fit.

    Every ``every_n_steps`` optimizer steps (counted on from the optimizer's own step counter at the start
    of ``fit``, so a resumed run continues its step axis) the sample goes once through a sub-model that
    outputs every monitored layer at once, in inference mode (dropout off, batch norm on its moving
    statistics; nothing in the model changes), and these summaries are written to ``log_dir`` (for each
    monitored layer ``L``):

    - ``activations/L/values``: histogram of the layer's output values (switch ``histograms``);
    - ``activations/L/{mean,std,min,max,zero_fraction,dead_fraction,negative_fraction}``: scalars, see
      ``keras_frelu.monitor.statistics`` (switch ``scalars``);
    - ``activations/L/image``: for rank-4 outputs the feature maps of each of the first ``max_images``
      samples as a grid, otherwise a units x samples heat map (switch ``images``);
    - ``activations/L/visualization`` and ``activations/L/histogram``: the original project's two
      matplotlib panels, and ``activations/summary`` with every layer side by side, see
      ``keras_frelu.monitor.figures`` (switch ``figures``; drawn every ``figure_every_n_steps`` steps);
    - ``parameters/L/W`` for every trainable weight ``W`` of a monitored layer (Flexible ReLU's bias,
      PReLU's alpha, PELU's and SReLU's parameters, Funnel ReLU's condition kernel, ...): a scalar for a
      single-number weight, otherwise a histogram plus its L2 norm as ``parameters/L/W_norm``
      (switch ``parameters``);
    - ``weight_norm/K`` for every layer ``K`` of the model with trainable weights (global L2 norm of its
      weights), and with ``labels``, ``gradient_norm/K`` (switch ``weight_norms``).

    Gradient norms: Keras ``fit`` does not hand the gradients of its training step to callbacks, and
    changing its train step would slow every step. So at each monitor step the monitor computes the
    gradient of the model's compiled loss (``model.compute_loss``, regularisation included) on the fixed
    ``(sample, labels)`` with a ``GradientTape``, in inference mode, and restores the metric trackers the
    loss may update. These are the gradients of a fixed batch, comparable across steps and runs, not the
    noisy ones of the training batches; without ``labels`` only the weight norms are written.

    A final set (figures included) is written at the end of training unless the last step already has
    one, so short runs get one too.

    Cost: the summaries run as one TensorFlow graph, traced at the first monitor step (about a second,
    once per monitor), then a few milliseconds per monitor step for the reference network. The matplotlib
    figures cost about 0.1 s of CPU per monitored layer each time, hence their own, ten times longer,
    default interval. ``bench/monitor_overhead.py`` measures the whole (bench/RESULTS.md).

    Args:
        log_dir: folder for the event files (created if missing).
        layers: names of the layers to monitor, a predicate ``layer -> bool`` over ``model.layers``, or
            None: every activation layer (``keras_frelu.models.activation_layers``).
        sample: a fixed batch of model inputs, batch axis first (e.g. 16 test images).
        labels: the targets of ``sample``, for gradient norms (optional).
        every_n_steps: optimizer steps between two sets of summaries (default 100).
        figure_every_n_steps: steps between two sets of figures, a multiple of ``every_n_steps``
            (default ``10 * every_n_steps``).
        max_images: feature-map grids per conv layer (the first samples; default 3).
        histograms, scalars, images, figures, parameters, weight_norms: switch each output on or off.
    """

    def __init__(self, log_dir, layers=None, *, sample, labels=None, every_n_steps=100,
                 figure_every_n_steps=None, max_images=3, histograms=True, scalars=True, images=True,
                 figures=True, parameters=True, weight_norms=True):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.layer_selection = [layers] if isinstance(layers, str) else layers
        self.every_n_steps = _positive_int("every_n_steps", every_n_steps)
        if figure_every_n_steps is None:
            figure_every_n_steps = FIGURE_INTERVALS * self.every_n_steps
        self.figure_every_n_steps = _positive_int("figure_every_n_steps", figure_every_n_steps)
        if self.figure_every_n_steps % self.every_n_steps:
            raise UsageError(f"ActivationMonitor: figure_every_n_steps ({figure_every_n_steps}) must be a "
                             f"multiple of every_n_steps ({every_n_steps}): figures are drawn at monitor steps")
        self.max_images = _positive_int("max_images", max_images)
        self.switches = {"histograms": histograms, "scalars": scalars, "images": images, "figures": figures,
                         "parameters": parameters, "weight_norms": weight_norms}
        sample_size = _batch_size(sample)
        if labels is not None and _batch_size(labels) != sample_size:
            raise UsageError(f"ActivationMonitor: labels has {_batch_size(labels)} entries but sample has "
                             f"{sample_size}; give one label per sample")
        self._sample = tf.nest.map_structure(tf.convert_to_tensor, sample)
        self._labels = None if labels is None else tf.convert_to_tensor(labels)
        self.monitored = []
        self._panels = {}
        self._outputs_model = self._summaries_function = None
        self._writer = None

    # -- Keras hooks ---------------------------------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        self.monitored = _select_layers(model, self.layer_selection)
        self._panels = {layer.name: panels.LayerPanels(layer.name) for layer in self.monitored}
        outputs_needed = any(self.switches[key] for key in ("histograms", "scalars", "images", "figures"))
        self._outputs_model = self._summaries_function = None
        if outputs_needed:
            try:
                self._outputs_model = keras.Model(model.input, [layer.output for layer in self.monitored])
            except (AttributeError, ValueError) as error:
                names = ", ".join(layer.name for layer in self.monitored)
                raise UsageError(f"ActivationMonitor cannot read the outputs of {names} "
                                 f"({error}); use a functional or Sequential model whose monitored layers "
                                 "are each called once") from None

    def on_train_begin(self, logs=None):
        if self._writer is None:  # one writer for every fit call (the traced summaries hold on to it)
            self._writer = tf.summary.create_file_writer(self.log_dir)
        # The optimizer's step is read once; then steps are counted here, which is cheaper than reading
        # the variable after every batch.
        self._step = int(self.model.optimizer.iterations.numpy())
        self._epoch_steps = 0
        self._summaries_step = self._figures_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        # ``batch`` is the index, within the epoch, of the last step of this execution (one execution is
        # steps_per_execution steps): write when a multiple of the interval was crossed.
        previous = self._step
        self._step += batch + 1 - self._epoch_steps
        self._epoch_steps = batch + 1
        if self._step // self.every_n_steps > previous // self.every_n_steps:
            figures_due = self._step // self.figure_every_n_steps > previous // self.figure_every_n_steps
            self.write(self._step, summaries=True, figures=figures_due)

    def on_train_end(self, logs=None):
        self.write(self._step, summaries=self._step != self._summaries_step,
                   figures=self._step != self._figures_step)

    # -- writing -------------------------------------------------------------------------------
    def write(self, step, summaries=True, figures=True):
        """Write the summaries and/or the figures of the model as it is now, at ``step``."""
        figures = figures and self.switches["figures"]
        outputs = []
        if summaries:
            if self._summaries_function is None:
                # One graph for the forward pass, the statistics and the summaries: run eagerly they would
                # cost more than the 100 training steps between two monitor steps of a small model.
                self._summaries_function = tf.function(self._write_summaries, autograph=False)
            outputs = self._summaries_function(tf.constant(step, tf.int64), self._sample, self._labels)
            self._summaries_step = step
        elif figures:
            outputs = _as_list(self._outputs_model(self._sample, training=False))
        if figures:
            with self._writer.as_default(step=step):
                self._write_figures([np.asarray(values) for values in outputs])
            self._figures_step = step
        self._writer.flush()

    def _write_summaries(self, step, sample, labels):
        """Traced once: write the summaries at ``step``; return the monitored layers' outputs."""
        outputs = []
        with self._writer.as_default(step=step):
            if self._outputs_model is not None:
                outputs = _as_list(self._outputs_model(sample, training=False))
                for layer, values in zip(self.monitored, outputs):
                    self._write_activations(f"activations/{layer.name}/", values)
            if self.switches["parameters"]:
                self._write_parameters()
            if self.switches["weight_norms"]:
                self._write_norms(sample, labels)
        return outputs

    def _write_activations(self, prefix, values):
        if self.switches["histograms"]:
            _write_histogram(prefix + "values", values)
        if self.switches["scalars"]:
            for name, value in activation_statistics(values).items():
                tf.summary.scalar(prefix + name, value)
        if self.switches["images"]:
            tf.summary.image(prefix + "image", activation_image(values, self.max_images),
                             max_outputs=self.max_images)

    def _write_figures(self, arrays):
        visualizations, histograms = [], []
        for layer, values in zip(self.monitored, arrays):
            visualization, histogram = self._panels[layer.name].render(values)
            tf.summary.image(f"activations/{layer.name}/visualization", visualization[np.newaxis])
            tf.summary.image(f"activations/{layer.name}/histogram", histogram[np.newaxis])
            visualizations.append(visualization)
            histograms.append(histogram)
        tf.summary.image("activations/summary", panels.side_by_side(histograms, visualizations)[np.newaxis])

    def _write_parameters(self):
        for layer in self.monitored:
            for weight in layer.trainable_weights:
                tag = f"parameters/{layer.name}/{_relative_path(weight, layer)}"
                if int(np.prod(weight.shape)) == 1:
                    tf.summary.scalar(tag, tf.reshape(weight, []))
                else:
                    _write_histogram(tag, weight)
                    tf.summary.scalar(tag + "_norm", tf.norm(weight))

    def _write_norms(self, sample, labels):
        weighted = [layer for layer in self.model.layers if layer.trainable_weights]
        for layer in weighted:
            tf.summary.scalar(f"weight_norm/{layer.name}", tf.linalg.global_norm(layer.trainable_weights))
        if labels is None:
            return
        gradients = self._sample_gradients(sample, labels)
        for layer in weighted:
            layer_gradients = [gradients[id(weight)] for weight in layer.trainable_weights
                               if gradients.get(id(weight)) is not None]
            if layer_gradients:
                tf.summary.scalar(f"gradient_norm/{layer.name}", tf.linalg.global_norm(layer_gradients))

    def _sample_gradients(self, sample, labels):
        """``{id(variable): gradient}`` of the compiled loss on (sample, labels), in inference mode; the
        metric trackers that ``compute_loss`` may update are put back."""
        model = self.model
        variables = model.trainable_variables
        saved_metrics = [tf.identity(variable) for variable in model.metrics_variables]
        with tf.GradientTape() as tape:
            predictions = model(sample, training=False)
            loss = model.compute_loss(x=sample, y=labels, y_pred=predictions, training=False)
        gradients = tape.gradient(loss, variables)
        for variable, value in zip(model.metrics_variables, saved_metrics):
            variable.assign(value)
        return {id(variable): gradient for variable, gradient in zip(variables, gradients)}


def _write_histogram(tag, values):
    """What ``tf.summary.histogram`` writes, built much faster inside a tf.function (see statistics)."""
    tf.summary.write(tag, histogram_buckets(values),
                     metadata=histogram_metadata.create_summary_metadata(display_name=None, description=None))


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _select_layers(model, selection):
    """The layers chosen by ``selection`` (None, a predicate or names), in model order."""
    if selection is None:
        chosen = models.activation_layers(model)
        what = "activation layer (a keras_frelu layer)"
    elif callable(selection):
        chosen = [layer for layer in model.layers if selection(layer)]
        what = "layer for which the layers predicate is true"
    else:
        by_name = {layer.name: layer for layer in model.layers}
        unknown = [name for name in selection if name not in by_name]
        if unknown:
            raise UsageError(f"ActivationMonitor: model {model.name!r} has no layer {', '.join(map(repr, unknown))}; "
                             f"its layers are {', '.join(by_name)}")
        chosen = [by_name[name] for name in selection]
        what = "layer name"
    if not chosen:
        raise UsageError(f"ActivationMonitor: model {model.name!r} has no {what} to monitor; pass layers= "
                         "with layer names or a predicate")
    return chosen


def _relative_path(weight, layer):
    """The weight's path inside its layer (``bias``, ``batch_norm/gamma``)."""
    prefix = layer.name + "/"
    return weight.path[len(prefix):] if weight.path.startswith(prefix) else weight.name


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"ActivationMonitor: {name} must be a positive integer, got {value!r}")
    return int(value)


def _batch_size(batch):
    sizes = {int(np.shape(array)[0]) if np.ndim(array) else 0 for array in tf.nest.flatten(batch)}
    if len(sizes) != 1 or 0 in sizes:
        raise UsageError("ActivationMonitor: sample (and labels) must be arrays with the same non-empty "
                         "batch axis first, e.g. sample=x_test[:16], labels=y_test[:16]")
    return sizes.pop()

