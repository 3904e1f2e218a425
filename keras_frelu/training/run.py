"""One training run, from flags to metrics.json, in named phases: prepare (everything that can be wrong, checked
before anything is written), then ``train``: open the run, start the model, record the start, make the
inputs, fit, finish."""

import dataclasses
import functools
import math
import os
import platform

import h5py
import keras
import numpy as np
import tensorflow as tf

import keras_frelu
from keras_frelu import checkpoints, data, evaluation, events, files
from keras_frelu.config import validate, validation_interval
from keras_frelu.errors import TrainingDiverged, UsageError
from keras_frelu.monitor import ActivationMonitor
from keras_frelu.rundir import RunDir, is_chief
from keras_frelu.training import distribute
from keras_frelu.training.interrupts import KeepInterrupts
from keras_frelu.training.network import build_model, compile_model
from keras_frelu.training.non_finite import StopOnNonFinite
from keras_frelu.training.progress import ProgressBar
from keras_frelu.training.recorder import RunRecorder
from keras_frelu.training.resume import check_resumable, dataset_summary, saved_start
from keras_frelu.training.step_counter import StepCounter


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
    if not is_chief():
        return _train(config, dataset, strategy, callbacks, run, chief=False)
    existed = os.path.isdir(run.path)
    try:
        with run.lock():
            files.remove_stale_temporaries(run.path)
            files.remove_stale_temporaries(run.checkpoint_dir, suffix=".keras")
            return _train(config, dataset, strategy, callbacks, run, chief=True)
    finally:
        if not existed:
            run.remove_if_unused()


@dataclasses.dataclass
class _Inputs:
    train_from: callable  # start_batch=STEP -> the training batches in their seeded order from that step on
    evaluation: dict  # split -> tf.data.Dataset, "validation" only if the dataset has one
    writers: dict  # split -> summary writer (the chief's only)
    validation_every: int  # steps between two validation passes


def _train(config, dataset, strategy, callbacks, run, chief):
    _open(config, run, dataset)
    if not chief or config.no_monitor:
        return _train_from_start(config, dataset, strategy, list(callbacks), run, chief)
    monitor = _monitor(config, run, dataset)
    try:
        return _train_from_start(config, dataset, strategy, [*callbacks, monitor], run, chief)
    finally:  # a process that goes on after the run (a notebook, a test) keeps no child
        monitor.close_figure_process()


def _train_from_start(config, dataset, strategy, callbacks, run, chief):
    model, resume_from = _start_model(config, dataset, strategy, run, chief)
    start_step = int(model.optimizer.iterations.numpy())  # 0 for a new model; a worker's is the chief's
    previous = run.metrics() if chief and start_step else {}
    if chief:
        run.write_config({"flags": dataclasses.asdict(config), "versions": library_versions(),
                          "dataset": dataset_summary(dataset), "resumed_from": resume_from,
                          "start_step": start_step})
    if start_step % config.steps_per_execution:
        raise UsageError(f"{run} stopped at step {start_step}, which --steps_per_execution "
                         f"{config.steps_per_execution} does not divide; resume it with a --steps_per_execution "
                         "that does (e.g. 1)")
    trained = start_step >= config.max_training_steps
    # A run stopped after its last checkpoint but before it was marked complete is completed without training
    # (not under multi_worker: the other workers, which cannot tell, would wait in a collective).
    if trained and (previous.get("complete") or distribute.is_multi_worker(strategy)):
        print(f"{run} is already trained to step {start_step} (--max_training_steps "
              f"{config.max_training_steps}); raise --max_training_steps to train further")
        return previous
    inputs = _inputs(config, dataset, run, start_step, chief)
    recorder = _fit(config, model, strategy, inputs, run, start_step, chief, previous, callbacks)
    return _finish(model, strategy, recorder, inputs, dataset, run, chief, trained, start_step)


def _open(config, run, dataset):
    """Refuse a run made otherwise; seed every generator (and make the ops deterministic if asked)."""
    check_resumable(run, config, dataset)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)


def _monitor(config, run, dataset):
    """The ActivationMonitor, made first so that its figure process starts while the model is built. Fixed
    samples, the same in every run of a dataset, so numbers and pictures compare across steps and runs: 16 test
    images for the pictures (their labels give the gradient norms), and up to --monitor_statistics_size
    validation images for the statistics."""
    return ActivationMonitor(
        run.events("activations"), sample=data.scale_images(dataset.test_images[:16]),
        labels=dataset.test_labels[:16], statistics_sample=statistics_sample(dataset, config.monitor_statistics_size),
        every_n_steps=config.monitor_step)


def _start_model(config, dataset, strategy, run, chief):
    """``(model, path it was loaded from)``: the run's newest checkpoint, ``--checkpoint``, or a new model."""
    if distribute.is_multi_worker(strategy):
        return distribute.start_multi_worker(config, dataset, strategy, run, chief)
    with distribute.scope(strategy):
        model, resume_from = saved_start(config, run)
        if model is None:
            model = build_model(config, dataset.image_shape, dataset.num_classes)
            compile_model(model, config)
    return model, resume_from


def _inputs(config, dataset, run, start_step, chief):
    """The training batches, the evaluation splits, the summary writers (from ``start_step``)."""
    splits = {"test": (dataset.test_images, dataset.test_labels)}
    if dataset.validation_labels is not None:
        splits["validation"] = (dataset.validation_images, dataset.validation_labels)
    writers = {}
    if chief:
        writers = {split: events.resumed_writer(run.events(split), start_step) for split in ("train", *splits)}
    train_from = functools.partial(data.make_dataset, dataset.train_images, dataset.train_labels, config.batch_size,
                                   shuffle=True, seed=config.seed, repeat=True, drop_remainder=True)
    evaluation_data = {split: data.make_dataset(images, labels, config.batch_size, shuffle=False)
                       for split, (images, labels) in splits.items()}
    return _Inputs(train_from, evaluation_data, writers,
                   validation_interval(config, dataset.validation_size))


def _fit(config, model, strategy, inputs, run, start_step, chief, previous, extra_callbacks):
    """``model.fit`` in windows of ``--log_step`` steps up to ``--max_training_steps``; returns the recorder."""
    interrupts = KeepInterrupts()
    steps = StepCounter(start_step, config.max_training_steps, config.steps_per_execution)
    non_finite = StopOnNonFinite(steps)
    progress = ProgressBar(steps, config.batch_size, enabled=config.progress and chief)
    recorder = RunRecorder(config, run, chief, previous, inputs, steps, non_finite, interrupts, progress,
                           anytime_checkpoints=not distribute.is_multi_worker(strategy))
    callbacks = [interrupts, steps, non_finite, progress, recorder, *extra_callbacks]
    try:
        with interrupts.installed(), distribute.scope(strategy):
            if distribute.is_multi_worker(strategy):
                distribute.work_around_keras_multi_worker(model)
            for first_step, windows, window_steps in _windows(config, start_step):
                if non_finite.diverged_at is not None:
                    break
                # The batches are already in their seeded order, hence shuffle=False.
                model.fit(inputs.train_from(start_batch=first_step), epochs=windows, steps_per_epoch=window_steps,
                          verbose=0, shuffle=False, callbacks=callbacks)
    finally:
        progress.close()
        for writer in inputs.writers.values():
            writer.close()
    if non_finite.diverged_at is not None:
        last_good = checkpoints.latest_checkpoint(run)
        raise TrainingDiverged(
            f"the loss became NaN/inf at step {non_finite.diverged_at}; the last good checkpoint is "
            f"{last_good or 'none (no checkpoint was written yet)'}; lower --learning_rate or --clip_norm and "
            "start a new run (another --prefix)")
    return recorder


def _windows(config, start_step):
    """``(first step, windows, steps per window)`` of each ``fit``: one, unless the run resumes inside a window
    (from a checkpoint of --checkpoint_minutes or SIGTERM), whose rest is then a ``fit`` of its own, so that
    every later window, and so every evaluation and checkpoint, falls on the steps of an uninterrupted run."""
    head = min(-start_step % config.log_step, max(0, config.max_training_steps - start_step))
    rest = start_step + head
    windows = max(0, math.ceil((config.max_training_steps - rest) / config.log_step))
    phases = [(start_step, 1, head)] if head else []
    if windows or not phases:  # a run already at its last step still gets a fit, of no steps, for its callbacks
        phases.append((rest, windows, config.log_step))
    return phases


def _finish(model, strategy, recorder, inputs, dataset, run, chief, trained, start_step):
    """The final figures: test at the best-validation weights, the test predictions, metrics.json complete."""
    with distribute.scope(strategy):
        if trained:  # the final figures of the checkpoint's weights; its window's training figures are lost
            final = {"step": start_step}
            for split in inputs.evaluation:
                final.update(recorder.evaluate(split, write=False))
            recorder.history.append(final)
        recorder.test_at_best()
        predictions = evaluation.predict(model, inputs.evaluation["test"], dataset.test_labels)
    metrics = recorder.metrics(complete=True)
    if chief:
        evaluation.write_predictions(run.predictions_path, predictions, recorder.steps.step)
        run.write_metrics(metrics)
    return metrics


def statistics_sample(dataset, size):
    """The monitor's statistics sample: the first ``size`` images of the validation split (which is the
    same for every seed), or of the test split when there is none, scaled as the model sees them."""
    images = dataset.validation_images if dataset.validation_size else dataset.test_images
    return data.scale_images(images[:size])


def library_versions():
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "h5py": h5py.__version__, "keras_frelu": keras_frelu.__version__}
