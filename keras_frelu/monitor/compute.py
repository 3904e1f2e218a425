"""What the monitor computes from the model, on each Keras backend.

One formulation, in ``keras.ops``: the model's variables are read once into tensors, and the sample goes
through the monitored outputs (and the compiled loss) inside a ``keras.StatelessScope`` that maps every
variable to its tensor; gradients are taken with respect to those tensors. So nothing differentiates
through a variable (a ``tf.distribute`` variable has no handle outside a replica context), nothing the
forward pass or the loss might assign (a metric, a moving statistic) is changed, and each backend only
supplies the differentiation and the compilation:

- TensorFlow: ``tf.GradientTape`` in one ``tf.function``;
- JAX: ``jax.value_and_grad`` in one ``jax.jit``;
- PyTorch: ``torch.autograd.grad``, eagerly.

Under a ``tf.distribute`` strategy the variables are read in the cross-replica context, which gives each
variable's local copy (the values a checkpoint saves) without any cross-device or cross-worker
communication, and the sample goes through the model once, on one device.
"""

import keras
import numpy as np
from keras import ops

from keras_frelu.monitor.statistics import batch_reductions


class Computation:
    """The monitor's numbers for ``model``. ``snapshot()`` copies the model's variables (cheap: the training
    thread does it); from a snapshot, ``values(state, sample, labels, batch)`` gives, in one compiled call,
    the monitored layers' outputs on the sample, the gradients of the compiled loss on ``(sample, labels)``
    with respect to the trainable variables (None without labels) and the reductions of one batch of the
    statistics sample per monitored layer (``batch_reductions``); ``reductions(state, batch)`` reduces each
    further batch, and ``norms(state, gradients)`` gives ``{tag: norm}`` (``weight_norm/K``, and given
    gradients ``gradient_norm/K``, for every layer ``K`` with trainable weights; empty without
    ``weight_norms``). All as NumPy values, from any thread, while training goes on."""

    def __init__(self, model, outputs_model, weight_norms=True):
        self.model, self.outputs_model = model, outputs_model
        self.weight_norms = weight_norms
        self.trainable = list(model.trainable_variables)
        self.non_trainable = list(model.non_trainable_variables)
        position = {id(variable): index for index, variable in enumerate(self.trainable)}
        self.weighted = [(layer.name, [position[id(weight)] for weight in layer.trainable_weights])
                         for layer in model.layers if layer.trainable_weights]

    # -- the formulation, in keras.ops ---------------------------------------------------------------
    def _scope(self, trainable_values, non_trainable_values):
        mapping = [*zip(self.trainable, trainable_values), *zip(self.non_trainable, non_trainable_values)]
        return keras.StatelessScope(state_mapping=mapping, collect_losses=True)

    def _forward(self, trainable_values, non_trainable_values, sample, labels):
        """``(monitored outputs, compiled loss or None)`` of the sample in inference mode."""
        with self._scope(trainable_values, non_trainable_values):
            outputs = self.outputs_model(sample, training=False)
            loss = None
            if labels is not None:
                loss = self.model.compute_loss(x=sample, y=labels, y_pred=outputs["predictions"], training=False)
        return outputs["activations"], loss

    def _reduce(self, trainable_values, non_trainable_values, batch):
        with self._scope(trainable_values, non_trainable_values):
            outputs = self.outputs_model(batch, training=False)["activations"]
        return [batch_reductions(layer_outputs) for layer_outputs in outputs]

    # -- the same on every backend -------------------------------------------------------------------
    def norms(self, state, gradients):
        """``{tag: L2 norm}`` of each weighted layer's weights in ``state`` (and ``gradients``, NumPy arrays in
        the order of the trainable variables), summed in float64: NumPy on a few small arrays costs less
        than compiling the per-tensor reductions into the graph."""
        if not self.weight_norms:
            return {}
        weights = [to_numpy(value) for value in state[0]]
        norms = {}
        for name, positions in self.weighted:
            if gradients is not None:
                norms[f"gradient_norm/{name}"] = _global_norm([gradients[index] for index in positions])
            norms[f"weight_norm/{name}"] = _global_norm([weights[index] for index in positions])
        return norms

    # -- per backend ---------------------------------------------------------------------------------
    def snapshot(self):
        """``(trainable values, non-trainable values)``: tensors that later optimizer steps leave as they are
        (TensorFlow copies a variable's buffer before updating it while a read of it lives on)."""
        return [self._read(variable) for variable in self.trainable], \
            [self._read(variable) for variable in self.non_trainable]

    def _read(self, variable):
        raise NotImplementedError

    # TensorFlow and JAX compile ``_values_function`` and ``_reductions_function``; PyTorch (eager) overrides both.
    def values(self, state, sample, labels, batch):
        return _numpy(self._values_function(*state, sample, labels, batch))

    def reductions(self, state, batch):
        return _numpy(self._reductions_function(*state, batch))


def _global_norm(arrays):
    """The L2 norm of all the arrays together (``tf.linalg.global_norm``)."""
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(array, dtype=np.float64))) for array in arrays)))


def to_numpy(value):
    """A NumPy copy of a backend tensor or a variable's value. PyTorch tensors are converted with their own
    ``numpy()`` (bfloat16 as float32): ``keras.ops.convert_to_numpy`` warns at every call under NumPy 2."""
    if isinstance(value, keras.Variable):
        value = value.value
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        return (value.float() if str(value.dtype) == "torch.bfloat16" else value).numpy().copy()
    if hasattr(value, "numpy"):  # TensorFlow tensors and variables (a distributed one reads its local copy)
        return np.array(value.numpy())
    return np.array(ops.convert_to_numpy(value))


def _numpy(structure):
    """NumPy copies of the tensors of ``structure``; None (no gradients) stays None (``keras.tree`` treats it
    as a leaf)."""
    return keras.tree.map_structure(lambda value: None if value is None else to_numpy(value), structure)


class _TensorFlow(Computation):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        import tensorflow as tf

        self._tf = tf
        self._values_function = tf.function(self._graph_values, autograph=False)
        self._reductions_function = tf.function(self._reduce, autograph=False)

    def _read(self, variable):
        return self._tf.identity(variable.value)

    def _graph_values(self, trainable, non_trainable, sample, labels, batch):
        tf = self._tf
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(trainable)
            activations, loss = self._forward(trainable, non_trainable, sample, labels)
            if loss is not None:
                # Keras divides every loss by the replicas of the strategy in scope (each replica's share of
                # a summed gradient): undone, so the norm is that of the loss itself whatever the strategy.
                loss = loss * tf.distribute.get_strategy().num_replicas_in_sync
        gradients = None
        if loss is not None:
            gradients = tape.gradient(loss, trainable, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return activations, gradients, self._reduce(trainable, non_trainable, batch)


class _Jax(Computation):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        import jax

        def loss_and_activations(trainable, non_trainable, sample, labels):
            activations, loss = self._forward(trainable, non_trainable, sample, labels)
            return loss, activations

        gradient = jax.value_and_grad(loss_and_activations, has_aux=True)

        def graph_values(trainable, non_trainable, sample, labels, batch):
            if labels is None:
                (activations, _), gradients = self._forward(trainable, non_trainable, sample, None), None
            else:
                (_, activations), gradients = gradient(trainable, non_trainable, sample, labels)
            return activations, gradients, self._reduce(trainable, non_trainable, batch)

        self._values_function = jax.jit(graph_values)
        self._reductions_function = jax.jit(self._reduce)
        self._copy = jax.numpy.copy

    def _read(self, variable):
        return self._copy(variable.value)  # Keras's JAX trainer donates the variables' buffers to its next step


class _Torch(Computation):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        import torch

        self._torch = torch

    def _read(self, variable):
        return variable.value.detach().clone()  # the optimizer updates parameters in place

    def values(self, state, sample, labels, batch):
        torch = self._torch
        # Leaves of their own that share the snapshot's memory: the gradients go nowhere else.
        trainable = [tensor.detach().requires_grad_(tensor.is_floating_point()) for tensor in state[0]]
        non_trainable = state[1]
        with torch.enable_grad():
            activations, loss = self._forward(trainable, non_trainable, _tensors(sample), _tensors(labels))
            gradients = None
            if loss is not None:
                differentiable = [index for index, tensor in enumerate(trainable) if tensor.requires_grad]
                found = torch.autograd.grad(loss, [trainable[index] for index in differentiable],
                                            allow_unused=True, materialize_grads=True)
                gradients = [torch.zeros_like(tensor) for tensor in trainable]
                for index, value in zip(differentiable, found):
                    gradients[index] = value
        with torch.no_grad():
            return _numpy([tensor.detach() for tensor in activations]), _numpy(gradients), \
                _numpy(self._reduce(*state, _tensors(batch)))

    def reductions(self, state, batch):
        with self._torch.no_grad():
            return _numpy(self._reduce(*state, _tensors(batch)))


def _tensors(structure):
    return None if structure is None else keras.tree.map_structure(ops.convert_to_tensor, structure)


BACKENDS = {"tensorflow": _TensorFlow, "jax": _Jax, "torch": _Torch}


def for_backend(backend, *args, **kwargs):
    """The ``Computation`` of ``backend`` (``keras.backend.backend()``)."""
    try:
        implementation = BACKENDS[backend]
    except KeyError:
        raise NotImplementedError(f"ActivationMonitor runs on the {', '.join(BACKENDS)} backends, not on "
                                  f"{backend!r}; set KERAS_BACKEND to one of them") from None
    return implementation(*args, **kwargs)
