"""Training runs: one run directory per (prefix, dataset, activation, model, seed), resumable after a kill.

``train(config)`` (a ``keras_frelu.config.TrainConfig``) is what ``trainer.py`` calls. The loop is Keras ``model.fit`` (so
``tf.distribute`` strategies work unchanged); "epochs" are windows of ``log_step`` steps, at whose end the
window's mean loss and accuracy go to ``train/`` event files, a checkpoint is written every
``output_save_step`` steps and the whole test split is evaluated in inference mode every
``test_sample_step`` steps. The step counter is the optimiser's, saved in every checkpoint, and the
order of the training batches is a function of (seed, step) only, so a resumed run sees exactly the
batches the uninterrupted run would have.
"""

import contextlib
import dataclasses
import json
import math
import os
import platform
import signal
import statistics
import tempfile
import threading
import time

import h5py
import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

import keras_frelu
from keras_frelu import checkpoints, data, evaluation, events, files, models
from keras_frelu.config import RESUMABLE_CHANGES, validate, validation_interval
from keras_frelu.errors import TrainingDiverged, UsageError
from keras_frelu.monitor import ActivationMonitor
from keras_frelu.rundir import RunDir

# No XLA: on CPU it makes these networks' training steps slower (its convolutions); measured in bench/.
JIT_COMPILE = False


def build_model(config, image_shape, num_classes):
    """The model named by ``config.model`` for images of ``image_shape``."""
    if config.model == "reference_cnn":
        return models.reference_cnn(image_shape, num_classes, activation=config.activation)
    depth = int(config.model[len("cifar_resnet"):])
    return models.cifar_resnet(depth, num_classes, input_shape=image_shape, activation=config.activation)


def compile_model(model, config):
    learning_rate = config.learning_rate
    if config.lr_weight_decay:  # as the original project: halve every 10,000 steps
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=10000, decay_rate=0.5, staircase=True)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=config.clip_norm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
        jit_compile=JIT_COMPILE,
    )


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


def split_cpu(num_devices):
    """Expose the CPU as ``num_devices`` logical devices (must run before TensorFlow starts)."""
    if num_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def is_chief():
    """Whether this process writes files: always, except the non-chief workers of a multi-worker run."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = cluster.get("task", {})
    if not task:
        return True
    if "chief" in cluster.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index", 0) == 0


def library_versions():
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "h5py": h5py.__version__, "keras_frelu": keras_frelu.__version__}


# What identifies a dataset for resuming: not how its folder was spelled, but what it holds.
DATASET_IDENTITY = ("name", "image_shape", "num_classes", "train_size", "test_size")


def dataset_summary(dataset):
    """The dataset as config.json records it."""
    return {"name": dataset.name, "path": os.path.abspath(dataset.path), "image_shape": list(dataset.image_shape),
            "num_classes": dataset.num_classes, "train_size": len(dataset.train_labels),
            "validation_size": dataset.validation_size,
            "test_size": len(dataset.test_labels)}


def check_resumable(run, config, dataset):
    """Refuse to resume a run that was made with different experiment flags or another dataset. Folder
    paths (--train_dir, --data_dir, --dataset as a path) may be spelled differently or have moved."""
    saved = run.config()
    if not saved:
        return
    flags = saved.get("flags", {})
    for key, value in dataclasses.asdict(config).items():
        if key not in RESUMABLE_CHANGES and key != "dataset" and key in flags and flags[key] != value:
            raise UsageError(f"{run} was trained with --{key} {flags[key]!r}, not {value!r}; rerun with "
                             "the same flags to resume it, or pick another --prefix for a new run")
    recorded, current = saved.get("dataset", {}), dataset_summary(dataset)
    for key in DATASET_IDENTITY:
        if key in recorded and recorded[key] != current[key]:
            raise UsageError(f"{run} was trained on {recorded.get('name')} ({key} {recorded[key]!r}), but "
                             f"--dataset {config.dataset} has {key} {current[key]!r}; give the same dataset "
                             "to resume it, or pick another --prefix for a new run")


class TrainingLoop(keras.callbacks.Callback):
    """The bookkeeping at each step and at the end of each logging window of ``model.fit``: training
    figures, validation (which alone chooses the best step), test figures (only reported), checkpoints."""

    def __init__(self, config, run, start_step, evaluation_data, writers, chief, previous_metrics,
                 validation_every):
        super().__init__()
        self.config, self.run, self.chief = config, run, chief
        self.step = start_step
        self.evaluation_data = evaluation_data  # {"validation": tf.data (if any), "test": tf.data}
        self.validation_every = validation_every
        self.writers = writers
        self.previous = previous_metrics  # of the run this one resumes, as of its last checkpoint
        self.history = []
        self.started = time.perf_counter()
        self.bar = None
        self.diverged_at = None
        self.best_accuracy = previous_metrics.get("best_validation_accuracy")
        self.best_step = previous_metrics.get("best_validation_step")
        self.best_weights = _read_best_weights(run, self.best_step) if chief and self.best_step else None
        self.best_saved = True
        self.at_best = {}
        self.interrupted = False  # set by Ctrl-C (see ``interrupts_kept``)

    # -- per step --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        # smoothing=0: the rate (and the ETA) is the average since the first step ended, leaving out the
        # first step, which traces the graph.
        self.bar = tqdm(total=self.config.max_training_steps, initial=self.step, unit="step",
                        disable=not (self.config.progress and self.chief), dynamic_ncols=True,
                        mininterval=0.5, smoothing=0)
        self.first_step = True
        self.window_start = time.perf_counter()
        self.window_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._stop_if_interrupted()
        self.step += self.config.steps_per_execution
        self.window_steps += self.config.steps_per_execution
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            self.diverged_at = self.step
            self.model.stop_training = True
            return
        if self.first_step and not self.bar.disable:
            # The first step traces the graph: counted, but left out of the rate and the ETA from the start.
            self.bar.n = self.bar.last_print_n = self.bar.initial = self.bar.n + self.config.steps_per_execution
            self.bar.start_t = self.bar.last_print_t = time.time()
            self.bar.refresh()
        else:
            self.bar.update(self.config.steps_per_execution)
        self.first_step = False
        if self.bar.n % 10 == 0 or self.step >= self.config.max_training_steps:
            elapsed = time.perf_counter() - self.window_start
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{float(logs['accuracy']):.3f}",
                                 img_s=f"{self.window_steps * self.config.batch_size / elapsed:.0f}",
                                 refresh=False)
        if self.step >= self.config.max_training_steps:
            self.model.stop_training = True

    # -- per logging window ----------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        if self.diverged_at is not None:
            return
        elapsed = time.perf_counter() - self.window_start
        images = self.window_steps * self.config.batch_size
        record = {"step": self.step, "loss": float(logs["loss"]),
                  "accuracy": float(logs["accuracy"]),
                  "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                  "images_per_s": images / elapsed}
        self._write_scalars("train", record)
        last = self.step >= self.config.max_training_steps
        if "validation" in self.evaluation_data and (last or self.step % self.validation_every == 0):
            record.update(self.evaluate("validation"))
            self._track_best(record["validation_accuracy"])
        if last or self.step % self.config.test_sample_step == 0:
            record.update(self.evaluate("test"))
            if self.chief:
                self.bar.write(f"step {self.step}: test accuracy {record['test_accuracy']:.4f}, "
                               f"test loss {record['test_loss']:.4f}")
        self.history.append(record)
        if last or self.step % self.config.output_save_step == 0:
            self.save()
        self._stop_if_interrupted()
        self.window_start = time.perf_counter()
        self.window_steps = 0

    @contextlib.contextmanager
    def interrupts_kept(self):
        """Ctrl-C raises KeyboardInterrupt at once, as Python's own handler does, and again at the end of the
        next step or window if a library swallowed it (Keras's saving code has bare ``except:`` clauses)."""
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield  # signals reach the main thread only; a handler of the caller's own stays
            return

        def request(signum, frame):
            self.interrupted = True
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, request)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _stop_if_interrupted(self):
        if self.interrupted:
            raise KeyboardInterrupt

    def evaluate(self, split, write=True):
        """``{split_loss, split_accuracy}`` over the whole split, in inference mode (written to ``split/``)."""
        result = self.model.evaluate(self.evaluation_data[split], verbose=0, return_dict=True)
        loss, accuracy = float(result["loss"]), float(result["accuracy"])
        if write:
            self._write_scalars(split, {"loss": loss, "accuracy": accuracy})
        return {f"{split}_loss": loss, f"{split}_accuracy": accuracy}

    def _track_best(self, accuracy):
        """Keep the weights of the best validation accuracy so far (the first of equal ones)."""
        if self.best_accuracy is None or accuracy > self.best_accuracy:
            self.best_accuracy, self.best_step = accuracy, self.step
            self.best_weights = [np.array(weights) for weights in self.model.get_weights()]
            self.best_saved = False

    def test_at_best(self):
        """The test figures of the best-validation weights (the model's own weights are put back)."""
        if self.best_weights is None:
            return {}
        final = self.model.get_weights()
        self.model.set_weights(self.best_weights)
        try:
            result = self.evaluate("test", write=False)
        finally:
            self.model.set_weights(final)
        self.at_best = {f"{key}_at_best_validation": value for key, value in result.items()}
        return self.at_best

    def save(self):
        if not all(np.isfinite(w).all() for w in self.model.get_weights()):
            self.diverged_at = self.step
            self.model.stop_training = True
            return
        if self.chief:
            checkpoints.save_checkpoint(self.model, self.run, self.step)
            if not self.best_saved:
                _write_best_weights(self.run, self.best_step, self.best_weights)
                self.best_saved = True
            self.run.write_metrics(self.metrics(complete=False))
        else:  # saving reads synchronised variables, a collective operation every worker must join
            with tempfile.TemporaryDirectory() as scratch:
                checkpoints.save_checkpoint(self.model, scratch, self.step)

    def metrics(self, complete):
        """What ``metrics.json`` holds: the final test and validation figures, the best validation step and
        the test figures there, and the history since step 0."""
        history = _merge_history(self.previous.get("history", []), self.history)
        latest = {}
        for record in history:
            latest.update({key: value for key, value in record.items() if key.startswith(("test_", "validation_"))})
        return {
            "complete": complete,
            "step": self.step,
            "test_accuracy": latest.get("test_accuracy"),
            "test_loss": latest.get("test_loss"),
            "validation_accuracy": latest.get("validation_accuracy"),
            "validation_loss": latest.get("validation_loss"),
            "best_validation_accuracy": self.best_accuracy,
            "best_validation_step": self.best_step,
            "test_accuracy_at_best_validation": self.at_best.get("test_accuracy_at_best_validation"),
            "test_loss_at_best_validation": self.at_best.get("test_loss_at_best_validation"),
            "wall_time_s": self.previous.get("wall_time_s", 0.0) + time.perf_counter() - self.started,
            # The median window: robust to the first window of each process, which includes tracing.
            "images_per_s": statistics.median(speeds) if (speeds := [record["images_per_s"] for record in history
                                                                     if "images_per_s" in record]) else 0.0,
            "history": history,
        }

    def _write_scalars(self, split, record):
        writer = self.writers.get(split)
        if writer is None:
            return
        with writer.as_default(step=self.step):
            for key, value in record.items():
                if key != "step":
                    tf.summary.scalar(key, value)
        writer.flush()

    def on_train_end(self, logs=None):
        self.bar.close()


def statistics_sample(dataset, size):
    """The monitor's statistics sample: the first ``size`` images of the validation split (which is the
    same for every seed), or of the test split when there is none, scaled as the model sees them."""
    images = dataset.validation_images if dataset.validation_size else dataset.test_images
    return data.scale_images(images[:size])


def _write_best_weights(run, step, weights):
    with files.atomic_write(run.best_weights_path, "wb") as handle:
        np.savez(handle, step=step, **{f"w{index}": array for index, array in enumerate(weights)})


def _read_best_weights(run, step):
    """The best-validation weights saved with the checkpoint this run resumes from, if they are of ``step``."""
    try:
        with np.load(run.best_weights_path) as saved:
            if int(saved["step"]) != step:
                return None
            return [saved[f"w{index}"] for index in range(len(saved.files) - 1)]
    except (OSError, KeyError, ValueError):  # missing or damaged: the replayed steps may find it again
        return None


def _work_around_keras_multi_worker(model):
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


def prepare(config):
    """Validate everything that can be wrong before anything is written: flags, dataset, model shape."""
    validate(config)
    dataset = data.with_validation(data.load_dataset(config.dataset, data_dir=config.data_dir,
                                                     test_fraction=config.test_fraction), config.validation_fraction)
    try:
        build_model(config, dataset.image_shape, dataset.num_classes)
    except UsageError as error:
        raise UsageError(f"--model {config.model} cannot take the images of {dataset.name} "
                         f"{tuple(dataset.image_shape)}: {error}") from None
    except ValueError as error:
        raise UsageError(f"--model {config.model} cannot take the images of {dataset.name} "
                         f"{tuple(dataset.image_shape)} ({error}); use another --model or resize the "
                         "dataset") from None
    if config.checkpoint and not checkpoints.list_checkpoints(config.run_dir()):  # else it resumes its own
        checkpoints.check_loadable(config.checkpoint)
    if config.batch_size > len(dataset.train_labels):
        raise UsageError(f"--batch_size {config.batch_size} is larger than the training split of {dataset.name} "
                         f"({len(dataset.train_labels)} images); give at most {len(dataset.train_labels)}")
    return dataset


def train(config, dataset=None, strategy=None, callbacks=()):
    """Train (or resume) the run of ``config``; return the metrics written to ``metrics.json``.

    ``strategy`` is ``make_strategy(config)``, which must be made before TensorFlow runs any operation
    (multi-worker collectives are configured at start-up), so before ``prepare``. The writing process holds
    the run's lock throughout: a second trainer or evaler on the same run stops at once with ``RunLocked``.
    """
    if dataset is None:
        dataset = prepare(config)
    run = RunDir(config.run_dir())
    chief = is_chief()
    if not chief:
        return _train(config, dataset, strategy, callbacks, run, chief)
    existed = os.path.isdir(run.path)
    try:
        with run.lock():
            files.remove_stale_temporaries(run.path)
            files.remove_stale_temporaries(run.checkpoint_dir, suffix=".keras")
            return _train(config, dataset, strategy, callbacks, run, chief)
    finally:
        if not existed:
            run.remove_if_unused()


def _train(config, dataset, strategy, callbacks, run, chief):
    check_resumable(run, config, dataset)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    monitor = None
    if not config.no_monitor and chief:
        # Made first, so that its figure process starts while the model is built. Fixed samples, the same in
        # every run of a dataset, so numbers and pictures compare across steps and runs: 16 test images for
        # the pictures (their labels give the gradient norms), and up to --monitor_statistics_size validation
        # images for the statistics.
        monitor = ActivationMonitor(
            run.events("activations"), sample=data.scale_images(dataset.test_images[:16]),
            labels=dataset.test_labels[:16], statistics_sample=statistics_sample(dataset, config.monitor_statistics_size),
            every_n_steps=config.monitor_step)

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        model, resume_from = _multi_worker_start(config, dataset, strategy, run, chief)
    else:
        with strategy.scope() if strategy else contextlib.nullcontext():
            model, resume_from = _saved_start(config, run)
            if model is None:
                model = build_model(config, dataset.image_shape, dataset.num_classes)
                compile_model(model, config)
    start_step = int(model.optimizer.iterations.numpy())  # 0 for a new model; a worker's is the chief's

    previous = run.metrics() if chief and start_step else {}
    if chief:
        run.write_config({"flags": dataclasses.asdict(config), "versions": library_versions(),
                          "dataset": dataset_summary(dataset), "resumed_from": resume_from,
                          "start_step": start_step})
    trained = start_step >= config.max_training_steps
    # A run stopped after its last checkpoint but before it was marked complete is completed without training
    # (not under multi_worker: the other workers, which cannot tell, would wait in a collective).
    if trained and (previous.get("complete") or isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)):
        print(f"{run} is already trained to step {start_step} (--max_training_steps "
              f"{config.max_training_steps}); raise --max_training_steps to train further")
        return previous

    evaluation_data = {"test": (dataset.test_images, dataset.test_labels)}
    if dataset.validation_labels is not None:
        evaluation_data["validation"] = (dataset.validation_images, dataset.validation_labels)
    writers = {}
    if chief:
        writers = {split: events.resumed_writer(run.events(split), start_step)
                   for split in ("train", *evaluation_data)}
    train_data = data.make_dataset(dataset.train_images, dataset.train_labels, config.batch_size, shuffle=True,
                                   seed=config.seed, repeat=True, drop_remainder=True, start_batch=start_step)
    evaluation_data = {split: data.make_dataset(images, labels, config.batch_size, shuffle=False)
                       for split, (images, labels) in evaluation_data.items()}
    validation_every = validation_interval(config, dataset.validation_size)
    loop = TrainingLoop(config, run, start_step, evaluation_data, writers, chief, previous, validation_every)
    all_callbacks = [loop, *callbacks, *([monitor] if monitor else [])]

    windows = max(0, math.ceil((config.max_training_steps - start_step) / config.log_step))
    try:
        with loop.interrupts_kept(), strategy.scope() if strategy else contextlib.nullcontext():
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                _work_around_keras_multi_worker(model)
            model.fit(train_data, epochs=windows, steps_per_epoch=config.log_step, callbacks=all_callbacks,
                      verbose=0, shuffle=False)  # the batches are already in their seeded order
    finally:
        for writer in writers.values():
            writer.close()

    if loop.diverged_at is not None:
        last_good = checkpoints.latest_checkpoint(run)
        raise TrainingDiverged(
            f"the loss became NaN/inf at step {loop.diverged_at}; the last good checkpoint is "
            f"{last_good or 'none (no checkpoint was written yet)'}; lower --learning_rate or --clip_norm and "
            "start a new run (another --prefix)")

    with strategy.scope() if strategy else contextlib.nullcontext():
        if trained:  # the final figures of the checkpoint's weights; its window's training figures are lost
            loop.history.append({"step": start_step, **{key: value for split in evaluation_data
                                                        for key, value in loop.evaluate(split, write=False).items()}})
        loop.test_at_best()
        predictions = evaluation.predict(model, evaluation_data["test"], dataset.test_labels)
    metrics = loop.metrics(complete=True)
    if chief:
        evaluation.write_predictions(run.predictions_path, predictions, loop.step)
        run.write_metrics(metrics)
    return metrics


def _saved_start(config, run):
    """``(model, path)`` the run starts from: its newest checkpoint, else ``--checkpoint``, else (None, None)."""
    model, resume_from = checkpoints.load_latest(run)
    if model is None and config.checkpoint:
        model, resume_from = checkpoints.check_loadable(config.checkpoint), config.checkpoint
    return model, resume_from


def _multi_worker_start(config, dataset, strategy, run, chief):
    """``(model, path)`` of a multi-worker run: every worker starts from the chief's state, wherever its own
    ``--train_dir`` points (the other workers write no files, so they have no checkpoint of their own).

    Under MultiWorkerMirroredStrategy creating a variable is a collective operation (its initial value is
    broadcast from the first worker), so the workers must create the same variables in the same order:
    each builds the model from the flags, then the chief's values (its newest checkpoint or
    ``--checkpoint``, loaded outside the strategy, where loading involves no other worker) are summed with
    zeros from the others, one all-reduce per dtype, and assigned. Before that a one-number all-reduce lets
    every worker stop together with the chief when its saved model does not fit the flags.
    """
    saved, resume_from = _saved_start(config, run) if chief else (None, None)
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


def _merge_history(previous, current):
    """Earlier windows of a resumed run, then this run's (later steps replace replayed ones)."""
    first = current[0]["step"] if current else math.inf
    return [record for record in previous if record["step"] < first] + current
