"""A run directory: where each file of one training run lives, and the lock that makes one process its writer.

::

    RUN/config.json        flags, library versions, dataset summary, where this attempt resumed from
    RUN/metrics.json       the newest test figures and the history (rewritten with every checkpoint)
    RUN/checkpoints/       ckpt-<step>.keras (keras_frelu.checkpoints); best.weights.npz: the weights of the
                           best validation accuracy, written with the checkpoint after it was reached
    RUN/predictions.npz    the final model on the test split, per example (keras_frelu.evaluation)
    RUN/train/ validation/ test/ activations/ eval/      TensorBoard event files
    RUN/eval.json, confusion.png, eval_predictions.npz  evaler.py's report
    RUN/.lock              held (fcntl) by the process writing the run; released by the OS when it dies

Every file is written with ``keras_frelu.files.atomic_write``.
"""

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys

from keras_frelu import files
from keras_frelu.errors import UsageError

CONFIG = "config.json"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"
EVAL_REPORT = "eval.json"
CONFUSION_FIGURE = "confusion.png"
PREDICTIONS = "predictions.npz"
EVAL_PREDICTIONS = "eval_predictions.npz"
BEST_WEIGHTS = "best.weights.npz"
LOCK = ".lock"
EVENT_FOLDERS = ("train", "validation", "test", "activations", "eval")


def is_chief():
    """Whether this process writes the run's files: always, except the non-chief workers of a multi-worker run
    (read from TF_CONFIG, so it needs no TensorFlow)."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = cluster.get("task", {})
    if not task:
        return True
    if "chief" in cluster.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index", 0) == 0


class RunLocked(UsageError):
    """Another process is writing the run (exit code 2)."""


class RunDir:
    """The files of the run in ``path`` (which need not exist yet)."""

    def __init__(self, path):
        self.path = os.path.normpath(os.fspath(path))

    @classmethod
    def of(cls, run):
        """``run`` itself if it is a RunDir, else the RunDir of the path ``run``."""
        return run if isinstance(run, cls) else cls(run)

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path

    def __repr__(self):
        return f"RunDir({self.path!r})"

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    @property
    def name(self):
        return os.path.basename(self.path)

    @property
    def config_path(self):
        return self.join(CONFIG)

    @property
    def metrics_path(self):
        return self.join(METRICS)

    @property
    def checkpoint_dir(self):
        return self.join(CHECKPOINTS)

    @property
    def best_weights_path(self):
        return os.path.join(self.checkpoint_dir, BEST_WEIGHTS)

    @property
    def predictions_path(self):
        return self.join(PREDICTIONS)

    @property
    def eval_predictions_path(self):
        return self.join(EVAL_PREDICTIONS)

    @property
    def eval_report_path(self):
        return self.join(EVAL_REPORT)

    @property
    def confusion_path(self):
        return self.join(CONFUSION_FIGURE)

    def events(self, split):
        """The event-file folder of ``split`` (one of EVENT_FOLDERS)."""
        if split not in EVENT_FOLDERS:
            raise ValueError(f"unknown event folder {split!r}; one of {', '.join(EVENT_FOLDERS)}")
        return self.join(split)

    def is_run(self):
        """Whether trainer.py has started this run (it has a config.json)."""
        return os.path.isfile(self.config_path)

    def config(self):
        """config.json as a dict ({} before the run started)."""
        return files.read_json(self.config_path)

    def flags(self):
        """The trainer flags the run was started with ({} before it started)."""
        return self.config().get("flags", {})

    def metrics(self):
        """metrics.json as a dict ({} before the first checkpoint)."""
        return files.read_json(self.metrics_path)

    def is_complete(self, max_training_steps=None):
        """Whether the run finished (up to ``max_training_steps``, when given)."""
        metrics = self.metrics()
        return bool(metrics.get("complete")) and (max_training_steps is None or
                                                  metrics.get("step", 0) >= max_training_steps)

    def write_config(self, payload):
        files.write_json(self.config_path, payload)

    def write_metrics(self, payload):
        files.write_json(self.metrics_path, payload)

    def create(self):
        files.makedirs(self.path)
        return self

    def remove_if_unused(self):
        """Remove the folder if nothing but the lock (and empty folders) was ever written into it."""
        for parent, folders, names in os.walk(self.path):
            if set(names) - {LOCK} or (parent != self.path and names):
                return
        with contextlib.suppress(OSError):
            for parent, folders, names in os.walk(self.path, topdown=False):
                for name in names:
                    os.remove(os.path.join(parent, name))
                os.rmdir(parent)

    def lock(self):
        """Hold the run's write lock for the block (creating the folder); ``RunLocked`` naming the process
        that holds it otherwise. The OS releases it when the process ends, however it ends."""
        return folder_lock(self.path, "is being written by")

    def check_unlocked(self):
        """``RunLocked`` now if another process writes the run: an early answer, before the slow start-up
        that precedes taking the lock (which still decides)."""
        check_unlocked(self.path, "is being written by")


@contextlib.contextmanager
def folder_lock(folder, doing):
    """Hold ``folder``'s lock (``folder/.lock``, creating the folder) for the block; ``RunLocked`` saying
    "FOLDER <doing> process PID on HOST (COMMAND)" if another process holds it."""
    files.makedirs(folder)
    path = os.path.join(folder, LOCK)
    with files.storage_errors(path):
        handle = open(path, "a+", encoding="utf-8")
    try:
        _take(handle, folder, doing)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()} "
                     f"({shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])})\n")
        handle.flush()
        yield folder
    finally:
        handle.close()  # releases the lock


def check_unlocked(folder, doing):
    """``RunLocked`` if another process holds ``folder``'s lock (taken and given back at once)."""
    try:
        handle = open(os.path.join(folder, LOCK), "r+", encoding="utf-8")  # NFS locks files open for writing
    except OSError:  # no folder or lock yet, or unreadable: taking the lock will tell
        return
    with handle:
        _take(handle, folder, doing)


def _take(handle, folder, doing):
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        raise RunLocked(f"{folder} {doing} {holder}; wait for it to finish or stop it, then run the same "
                        "command again") from None
