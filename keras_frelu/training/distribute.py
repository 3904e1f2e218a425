"""Distribution: the ``tf.distribute`` strategy of ``--strategy``, logical CPU devices, and a multi-worker run's
start from the chief's state (which process is the chief: ``keras_frelu.rundir.is_chief``).

Under MultiWorkerMirroredStrategy creating a variable is a collective operation, so every worker builds the
same model from the flags; the chief's values (its newest checkpoint or ``--checkpoint``) then reach the
others through one all-reduce per dtype (``start_multi_worker``).
"""

import contextlib
import os

import keras
import numpy as np
import tensorflow as tf

from keras_frelu.errors import UsageError
from keras_frelu.training.network import build_model, compile_model
from keras_frelu.training.resume import saved_start


def make_strategy(config):
    """The ``tf.distribute`` strategy of ``--strategy``; None for the default (no distribution)."""
    if config.strategy != "default" and keras.backend.backend() != "tensorflow":
        raise UsageError(f"--strategy {config.strategy} uses tf.distribute, which needs the TensorFlow backend, "
                         f"but KERAS_BACKEND is {keras.backend.backend()}; set KERAS_BACKEND=tensorflow or drop "
                         "--strategy")
    if config.strategy == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy multi_worker needs TF_CONFIG describing the cluster "
                             '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                             '"task": {"type": "worker", "index": 0}})')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if config.strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return None


def scope(strategy):
    """The strategy's scope, or no scope at all for the default strategy (None)."""
    return strategy.scope() if strategy else contextlib.nullcontext()


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def split_cpu(num_devices):
    """Expose the CPU as ``num_devices`` logical devices (must run before TensorFlow starts)."""
    if num_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def work_around_keras_multi_worker(model):
    """Keras 3 ``fit`` does not run under MultiWorkerMirroredStrategy as it is (keras-team/keras#20585):

    - before the first step it averages a distributed batch eagerly to build the model symbolically,
      which the strategy refuses: build the optimiser now and let the rest be built when the step is
      traced (``fit`` then runs under the strategy's scope, where ``model.distribute_strategy`` looks);
    - it reduces each replica's logs with ``strategy.reduce("MEAN", value, axis=0)``, which fails on
      scalars: give the train/test steps' logs a leading axis of one.
    """
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model._distribute_strategy = None
    for name in ("train_step", "test_step"):
        step = getattr(model, name)
        setattr(model, name, lambda data, step=step: {
            key: keras.ops.expand_dims(value, 0) for key, value in step(data).items()})


def start_multi_worker(config, dataset, strategy, run, chief):
    """``(model, path)`` of a multi-worker run: every worker starts from the chief's state, wherever its own
    ``--train_dir`` points (the other workers write no files, so they have no checkpoint of their own).

    The workers must create the same variables in the same order: each builds the model from the flags, then
    the chief's values (loaded outside the strategy, where loading involves no other worker) are summed with
    zeros from the others and assigned. Before that a one-number all-reduce lets every worker stop together
    with the chief when its saved model does not fit the flags.
    """
    saved, resume_from = saved_start(config, run) if chief else (None, None)
    with strategy.scope():
        model = build_model(config, dataset.image_shape, dataset.num_classes)
        compile_model(model, config)
        model.optimizer.build(model.trainable_variables)
    variables = _state_variables(model)
    values, problem = [np.zeros(variable.shape, variable.dtype) for variable in variables], None
    if chief:
        values = [keras.ops.convert_to_numpy(variable.value) for variable in variables]
    if saved is not None:
        saved_variables = _state_variables(saved)
        layout = [(tuple(variable.shape), variable.dtype) for variable in variables]
        if [(tuple(variable.shape), variable.dtype) for variable in saved_variables] != layout:
            problem = (f"{resume_from} holds another model than --model {config.model} --activation "
                       f"{config.activation} builds; under --strategy multi_worker the model is built from the "
                       "flags: give the flags it was trained with")
        else:
            values = [keras.ops.convert_to_numpy(variable.value) for variable in saved_variables]
    if _sum_over_workers(strategy, chief, [np.array([float(problem is not None)])])[0][0]:
        raise UsageError(problem or "the chief worker cannot start from its saved model (its error says why); "
                         "fix the chief's flags and rerun every worker")
    with strategy.scope():
        for variable, value in zip(variables, _sum_over_workers(strategy, chief, values)):
            variable.assign(value)
    return model, resume_from


def _state_variables(model):
    """Everything a checkpoint restores: the model's variables (weights, moving statistics, random seed
    states) and the optimizer's (step counter, moments)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    found = {}
    for variable in [*model.variables, *model.optimizer.variables]:
        found.setdefault(id(variable), variable)
    return list(found.values())


def _sum_over_workers(strategy, chief, arrays):
    """The sum over all replicas of ``arrays`` where the chief's first replica holds ``arrays`` and every
    other replica zeros: every worker gets the chief's arrays. One all-reduce per dtype, in a fixed order."""
    local_replicas = len(strategy.extended.worker_devices)
    by_dtype = {}
    for index, array in enumerate(arrays):
        by_dtype.setdefault(np.dtype(array.dtype).name, []).append(index)
    result = [None] * len(arrays)
    for dtype in sorted(by_dtype):
        indices = by_dtype[dtype]
        flat = np.concatenate([np.ravel(arrays[index]) for index in indices]).astype(dtype)

        def replica_value(context, flat=flat):
            first = chief and context.replica_id_in_sync_group % local_replicas == 0
            return tf.constant(flat if first else np.zeros_like(flat))

        summed = strategy.reduce("SUM", strategy.experimental_distribute_values_from_function(replica_value),
                                 axis=None).numpy()
        offsets = np.cumsum([0] + [np.size(arrays[index]) for index in indices])
        for index, start, end in zip(indices, offsets[:-1], offsets[1:]):
            result[index] = summed[start:end].reshape(np.shape(arrays[index]))
    return result
