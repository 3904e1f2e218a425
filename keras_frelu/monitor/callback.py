"""ActivationMonitor: a Keras callback that writes what a model's activation layers do to TensorBoard."""

import os

import keras
import numpy as np

from keras_frelu import models
from keras_frelu.errors import UsageError
from keras_frelu.monitor import compute, figure_process
from keras_frelu.monitor.background import BackgroundThread
from keras_frelu.monitor import summaries as summary_module
from keras_frelu.monitor.images import activation_image
from keras_frelu.monitor.statistics import StreamingStatistics, histogram_buckets
from keras_frelu.monitor.writer import open_writer

FIGURE_INTERVALS = 10  # figures are drawn at every 10th monitor step by default: matplotlib is the costly part


class ActivationMonitor(keras.callbacks.Callback):
    """Writes the activations of a fixed sample, and the activation parameters, to TensorBoard during fit.

    Every ``every_n_steps`` optimizer steps (counted on from the optimizer's own step counter at the start
    of ``fit``, so a resumed run continues its step axis) the sample goes once through a sub-model that
    outputs every monitored layer at once, in inference mode (dropout off, batch norm on its moving
    statistics; nothing in the model changes), and these summaries are written to ``log_dir`` (for each
    monitored layer ``L``):

    - ``activations/L/values``: histogram of the layer's output values over the statistics sample, on
      fixed bucket edges (switch ``histograms``);
    - ``activations/L/{mean,std,min,max,zero_fraction,negative_fraction,dead_fraction}`` and, for conv
      layers, ``dead_channel_fraction``: scalars over the statistics sample, defined in
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

    Gradient norms are those of the compiled loss on the fixed ``(sample, labels)``, in inference mode
    (Keras ``fit`` does not hand its gradients to callbacks): comparable across steps and runs; without
    ``labels`` only the weight norms are written.

    It runs on the TensorFlow, JAX and PyTorch backends with the same summaries (``keras_frelu.monitor.compute``
    and ``keras_frelu.monitor.writer``), and under ``tf.distribute`` strategies: the sample goes through the
    model once, on one device, with the variables' local values, and needs nothing of other replicas or
    workers (under ``MultiWorkerMirroredStrategy`` give it to the chief alone).

    A final set (figures included) is written at the end of every ``fit`` unless its last step already has
    one. The hooks only copy the model's variables; the monitor's computation
    (``keras_frelu.monitor.compute``), statistics, pictures and the event writes run in a background thread
    while training goes on, the figures in a child process (one per Python process, started when the
    monitor is made and kept for later fits; ``keras_frelu.monitor.figure_process``), and the end of
    ``fit`` (and ``write``) waits for them and closes the event file. A monitor that starts at a step other
    than 0 (a resumed run) marks the restart in its event files, so TensorBoard drops the replayed steps.

    Args:
        log_dir: folder for the event files (created if missing).
        layers: names of the layers to monitor, a predicate ``layer -> bool`` over ``model.layers``, or
            None: every activation layer (``keras_frelu.models.activation_layers``).
        sample: a fixed batch of model inputs, batch axis first (e.g. 16 test images): the pictures and
            panels, and the gradient norms.
        labels: the targets of ``sample``, for gradient norms (optional).
        statistics_sample: the model inputs the statistics and histograms are computed over, streamed in
            batches of ``statistics_batch_size`` (e.g. 512 validation images; default: ``sample``). Numbers
            to quote need a sample of the data, not 16 images: a unit that 16 images leave off is not dead.
        every_n_steps: optimizer steps between two sets of summaries (default 100).
        figure_every_n_steps: steps between two sets of figures, a multiple of ``every_n_steps``
            (default ``10 * every_n_steps``).
        max_images: feature-map grids per conv layer (the first samples; default 3).
        histograms, scalars, images, figures, parameters, weight_norms: switch each output on or off.
    """

    def __init__(self, log_dir, layers=None, *, sample, labels=None, statistics_sample=None,
                 statistics_batch_size=256, every_n_steps=100, figure_every_n_steps=None, max_images=3,
                 histograms=True, scalars=True, images=True, figures=True, parameters=True, weight_norms=True):
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
        self.backend = keras.backend.backend()
        self._sample = _tensors(sample)
        self._labels = None if labels is None else _tensors(labels)
        statistics_sample = sample if statistics_sample is None else statistics_sample
        _batch_size(statistics_sample)  # a non-empty batch axis
        batch = _positive_int("statistics_batch_size", statistics_batch_size)
        size = _batch_size(statistics_sample)
        self._statistics_batches = [
            keras.tree.map_structure(lambda array: _tensors(np.asarray(array)[start:start + batch]), statistics_sample)
            for start in range(0, size, batch)]
        self.monitored = []
        if self.switches["figures"]:
            figure_process.shared().start()  # its imports overlap building the model and starting fit
        self._background = BackgroundThread()
        self._outputs_model = self._computation = None
        self._writer = None
        self._fits = 0

    # -- Keras hooks ---------------------------------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        self.monitored = _select_layers(model, self.layer_selection)
        self._computation = None
        try:
            # One forward pass gives the monitored outputs and the predictions (for the gradients).
            self._outputs_model = keras.Model(model.input, {
                "activations": [layer.output for layer in self.monitored], "predictions": model.output})
        except (AttributeError, ValueError) as error:
            names = ", ".join(layer.name for layer in self.monitored)
            raise UsageError(f"ActivationMonitor cannot read the outputs of {names} "
                             f"({error}); use a functional or Sequential model whose monitored layers "
                             "are each called once") from None

    def on_train_begin(self, logs=None):
        # The optimizer's step is read once; then steps are counted here, which is cheaper than reading
        # the variable after every batch.
        self._step = int(compute.to_numpy(self.model.optimizer.iterations))
        # The first fit starts (or, resumed, restarts) the step axis; later fits continue it.
        self._writer = open_writer(self.log_dir, self.backend, resumed_at=None if self._fits else self._step)
        self._fits += 1
        self._epoch_steps = 0
        self._summaries_step = self._figures_step = None
        if self.switches["figures"]:  # builds the figures in the figure process (started at __init__)
            self._background.submit(lambda: self._figure_request(None)())

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
            self.write(self._step, summaries=True, figures=figures_due, wait=False)

    def on_train_end(self, logs=None):
        try:
            self.write(self._step, summaries=self._step != self._summaries_step,
                       figures=self._step != self._figures_step)
        finally:
            self._writer.close()

    @staticmethod
    def close_figure_process():
        """End the child process that draws the figures, shared by the monitors of this process; the next
        monitor made starts a new one. Ends with this process anyway: for a process that goes on after a run."""
        figure_process.shared().close()

    # -- writing -------------------------------------------------------------------------------
    def write(self, step, summaries=True, figures=True, wait=True):
        """Write the summaries and/or the figures of the model as it is now, at ``step``. The model's
        variables are copied now; the numbers are computed and the summaries built and written in the
        background thread. ``wait``: until everything asked for so far is written (otherwise errors of
        earlier writes are raised here)."""
        figures = figures and self.switches["figures"]
        if summaries or figures:
            state = self._model_computation().snapshot()
            self._background.submit(self._write_step, step, state, self._parameters() if summaries else None,
                                    figures)
            if summaries:
                self._summaries_step = step
            if figures:
                self._figures_step = step
        if wait:
            self._background.wait()
        else:
            self._background.check()

    def _write_step(self, step, state, parameters, figures):
        """A background job: the numbers of the model's ``state`` (``Computation.snapshot``), written as one
        event of summaries (unless ``parameters`` is None) and one of figures; each event is flushed so that
        a live TensorBoard sees it."""
        computation = self._computation
        first, *further = self._statistics_batches
        activations, gradients, reductions = computation.values(state, self._sample, self._gradient_labels(), first)
        # The figure process draws while this thread computes the statistics.
        figure_values = self._figure_request(activations) if figures else None
        events = []
        try:
            if parameters is not None:
                reductions = [reductions] + [computation.reductions(state, batch) for batch in further]
                events.append(self._summaries(activations, reductions, computation.norms(state, gradients), parameters))
        finally:
            if figure_values:
                events.append(figure_values())
        for values in events:
            self._writer.write(step, values)
            self._writer.flush()

    def _model_computation(self):
        """The model's ``compute.Computation``, made at first use; reading ``self.model`` brings JAX's
        training state into the model's variables. Its functions compile at the first write, in the
        background thread while training steps run (compiling them beside the tracing of Keras's own train
        step, which holds the GIL, would delay the first step by as much)."""
        model = self.model
        if self._computation is None:
            self._computation = compute.for_backend(self.backend, model, self._outputs_model,
                                                    weight_norms=self.switches["weight_norms"])
        return self._computation

    def _figure_request(self, activations):
        """A function that returns the figures' summary values, drawn meanwhile in the figure process
        (``figure_process``); with ``activations`` None it builds the figures."""
        return figure_process.shared().request([layer.name for layer in self.monitored], activations)

    def _gradient_labels(self):
        return self._labels if self.switches["weight_norms"] else None

    def _parameters(self):
        """``{tag: copy of the weight}`` of the monitored layers' trainable weights (``parameters``)."""
        if not self.switches["parameters"]:
            return {}
        return {f"parameters/{layer.name}/{_relative_path(weight, layer)}":
                compute.to_numpy(weight) for layer in self.monitored for weight in layer.trainable_weights}

    def _summaries(self, activations, reductions, norms, parameters):
        """The summary values of one monitor step: statistics and histograms from the statistics sample's
        ``reductions`` (per batch, per layer), images from the picture sample's ``activations``, the graph's
        norms and the parameters."""
        values = []
        for index, (layer, outputs) in enumerate(zip(self.monitored, activations)):
            prefix = f"activations/{layer.name}/"
            streaming = StreamingStatistics()
            for batch in reductions:
                streaming.add(batch[index])
            if self.switches["histograms"]:
                values.append(summary_module.histogram(prefix + "values", streaming.histogram()))
            if self.switches["scalars"]:
                values += [summary_module.scalar(prefix + name, value) for name, value in streaming.result().items()]
            if self.switches["images"]:
                pictures = activation_image(outputs, self.max_images)
                pngs = [summary_module.png(picture) for picture in pictures]
                values.append(summary_module.image(prefix + "image", pngs, *pictures.shape[1:3]))
        for tag, parameter in parameters.items():
            if parameter.size == 1:
                values.append(summary_module.scalar(tag, parameter.reshape(())))
            else:
                values += [summary_module.histogram(tag, histogram_buckets(parameter)),
                           summary_module.scalar(tag + "_norm", np.linalg.norm(parameter.astype(np.float64)))]
        values += [summary_module.scalar(tag, norm) for tag, norm in norms.items()]
        return values


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
    sizes = {int(np.shape(array)[0]) if np.ndim(array) else 0 for array in keras.tree.flatten(batch)}
    if len(sizes) != 1 or 0 in sizes:
        raise UsageError("ActivationMonitor: sample (and labels) must be arrays with the same non-empty "
                         "batch axis first, e.g. sample=x_test[:16], labels=y_test[:16]")
    return sizes.pop()


def _tensors(structure):
    """The arrays of ``structure`` as tensors of the backend (copied once, not at every monitor step)."""
    return keras.tree.map_structure(keras.ops.convert_to_tensor, structure)
