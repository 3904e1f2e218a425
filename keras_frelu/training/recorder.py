"""The run's record at the end of each logging window: training scalars, validation (which alone picks the best
step and its weights), test figures (only reported), checkpoints and metrics.json; and the checkpoints between
windows: every --checkpoint_minutes, and at the step SIGTERM stops."""

import contextlib
import math
import resource
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_frelu import checkpoints, files
from keras_frelu.errors import Preempted


class RunRecorder(keras.callbacks.Callback):
    """At the end of each window of ``fit`` (an epoch of ``--log_step`` steps): the window's mean loss and
    accuracy to ``train/``, validation every ``validation_every`` steps, the whole test split every
    ``--test_sample_step`` steps, a checkpoint every ``--output_save_step`` steps, and all of them at the
    last step. Between windows, a checkpoint once ``--checkpoint_minutes`` have passed since the last one, and
    at the end of the step during which SIGTERM came, which then stops the run (``Preempted``). Only the chief
    writes files; the others join the collective reads of a checkpoint, so under multi_worker, where the
    workers cannot agree on a time or a signal, only the windows' checkpoints are written.

    ``inputs`` holds the evaluation splits (``evaluation``), the summary writers and ``validation_every``;
    ``previous`` is the metrics.json of the run this one resumes, as of its last checkpoint."""

    def __init__(self, config, run, chief, previous, inputs, steps, non_finite, interrupts, progress,
                 anytime_checkpoints):
        super().__init__()
        self.config, self.run, self.chief, self.previous = config, run, chief, previous
        self.evaluation_data = inputs.evaluation  # {"validation": tf.data (if any), "test": tf.data}
        self.writers, self.validation_every = inputs.writers, inputs.validation_every
        self.steps, self.non_finite, self.interrupts, self.progress = steps, non_finite, interrupts, progress
        self.checkpoint_s = config.checkpoint_minutes * 60 if anytime_checkpoints else math.inf
        self.saved_at = time.monotonic()
        self.history = []
        self.started = time.perf_counter()
        self.best_accuracy = previous.get("best_validation_accuracy")
        self.best_step = previous.get("best_validation_step")
        self.best_weights = read_best_weights(run, self.best_step) if chief and self.best_step else None
        self.best_saved = True
        self.at_best = {}

    def on_train_batch_end(self, batch, logs=None):
        # A window's last step is recorded (and saved, and stopped at) in on_epoch_end, after its evaluations.
        if self.non_finite.diverged_at is not None or self._window_ends():
            return
        if self.interrupts.terminated:
            self._preempt()
        if self._checkpoint_due():
            self.save()

    def _checkpoint_due(self):
        return time.monotonic() - self.saved_at >= self.checkpoint_s

    def _window_ends(self):
        return self.steps.last or self.steps.step % self.config.log_step == 0

    def _preempt(self, saved=False):
        """Stop after SIGTERM: with a checkpoint of this step where every worker can write one (``saved``: it
        is written already), none if its weights are not finite (the run then stops as diverged)."""
        if self.checkpoint_s == math.inf:
            raise Preempted(f"stopped by SIGTERM at step {self.steps.step} (under multi_worker the run resumes "
                            "from its last --output_save_step checkpoint)")
        if saved or self.save():
            raise Preempted(f"stopped by SIGTERM at step {self.steps.step}, its checkpoint saved")

    def on_epoch_end(self, epoch, logs=None):
        if self.non_finite.diverged_at is not None:
            return
        step, last = self.steps.step, self.steps.last
        record = {"step": step, "loss": float(logs["loss"]), "accuracy": float(logs["accuracy"]),
                  "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                  "images_per_s": self.steps.steps_per_s() * self.config.batch_size}
        self._write_scalars("train", record)
        if "validation" in self.evaluation_data and (last or step % self.validation_every == 0):
            record.update(self.evaluate("validation"))
            self._track_best(record["validation_accuracy"])
        if last or step % self.config.test_sample_step == 0:
            record.update(self.evaluate("test"))
            if self.chief:
                self.progress.write(f"step {step}: test accuracy {record['test_accuracy']:.4f}, "
                                    f"test loss {record['test_loss']:.4f}")
        self.history.append(record)
        saved = (last or step % self.config.output_save_step == 0 or self._checkpoint_due()) and self.save()
        if self.interrupts.terminated and not last:  # at the last step the run completes instead
            self._preempt(saved)

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
            self.best_accuracy, self.best_step = accuracy, self.steps.step
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
        """A checkpoint of the current step, the best weights if they are new, and metrics.json so far; False
        (nothing written, training stopped as diverged) if a weight is not finite."""
        if not self.non_finite.weights_finite():
            return False
        self.saved_at = time.monotonic()
        if self.chief:  # the checkpoint last: whatever a resumed run starts from has its history and best weights
            if not self.best_saved:
                write_best_weights(self.run, self.best_step, self.best_weights)
                self.best_saved = True
            self.run.write_metrics(self.metrics(complete=False))
            checkpoints.save_checkpoint(self.model, self.run, self.steps.step)
        else:  # saving reads synchronised variables, a collective operation every worker must join
            with tempfile.TemporaryDirectory() as scratch:
                checkpoints.save_checkpoint(self.model, scratch, self.steps.step)
        return True

    def metrics(self, complete):
        """What ``metrics.json`` holds: the final test and validation figures, the best validation step and
        the test figures there, and the history since step 0."""
        history = merge_history(self.previous.get("history", []), self.history)
        latest = {}
        for record in history:
            latest.update({key: value for key, value in record.items() if key.startswith(("test_", "validation_"))})
        speeds = [record["images_per_s"] for record in history if "images_per_s" in record]
        return {
            "complete": complete,
            "step": self.steps.step,
            **{key: latest.get(key) for key in ("test_accuracy", "test_loss", "validation_accuracy",
                                                "validation_loss")},
            "best_validation_accuracy": self.best_accuracy,
            "best_validation_step": self.best_step,
            "test_accuracy_at_best_validation": self.at_best.get("test_accuracy_at_best_validation"),
            "test_loss_at_best_validation": self.at_best.get("test_loss_at_best_validation"),
            "wall_time_s": self.previous.get("wall_time_s", 0.0) + time.perf_counter() - self.started,
            # The median window: robust to the first window of each process, which includes tracing.
            "images_per_s": statistics.median(speeds) if speeds else 0.0,
            **peak_memory(self.previous),
            "history": history,
        }

    def _write_scalars(self, split, record):
        writer = self.writers.get(split)
        if writer is None:
            return
        with writer.as_default(step=self.steps.step):
            for key, value in record.items():
                if key != "step":
                    tf.summary.scalar(key, value)
        writer.flush()


def peak_memory(previous):
    """The training's peak memory so far, over every process of the run (a resumed run keeps the larger):
    ``peak_memory_mb``, this process's peak resident memory, and ``peak_device_memory_mb``, the first GPU's
    peak allocation where TensorFlow reports one (None without a GPU)."""
    resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    device = None
    if tf.config.list_logical_devices("GPU"):
        with contextlib.suppress(ValueError, RuntimeError):  # a backend or device that does not report it
            device = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    peaks = {"peak_memory_mb": resident, "peak_device_memory_mb": device}
    return {key: max((known for known in (value, previous.get(key)) if known is not None), default=None)
            for key, value in peaks.items()}


def write_best_weights(run, step, weights):
    files.makedirs(run.checkpoint_dir)
    with files.atomic_write(run.best_weights_path, "wb") as handle:
        np.savez(handle, step=step, **{f"w{index}": array for index, array in enumerate(weights)})


def read_best_weights(run, step):
    """The best-validation weights saved with the checkpoint this run resumes from, if they are of ``step``."""
    try:
        with np.load(run.best_weights_path) as saved:
            if int(saved["step"]) != step:
                return None
            return [saved[f"w{index}"] for index in range(len(saved.files) - 1)]
    except (OSError, KeyError, ValueError):  # missing or damaged: the replayed steps may find it again
        return None


def merge_history(previous, current):
    """Earlier windows of a resumed run, then this run's (later steps replace replayed ones)."""
    first = current[0]["step"] if current else math.inf
    return [record for record in previous if record["step"] < first] + current
