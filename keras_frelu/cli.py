"""What every front-door script shares: one-line errors and their exit codes."""

import argparse
import importlib.util
import os
import sys

from keras_frelu import __version__
from keras_frelu.errors import KerasFreluError, Preempted, UsageError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ...``) instead of the usage block; exit code 2; and
    ``--version`` (``keras-frelu VERSION``, the package's ``__version__``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.add_help:
            self.add_argument("--version", action="version", version=f"keras-frelu {__version__}",
                              help="print the version and exit")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


VERBOSE_VARIABLE = "KERAS_FRELU_VERBOSE"
# Prefixes of the TensorFlow/absl start-up lines that no flag silences.
TENSORFLOW_NOISE = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000", "To enable the following")


# Keras's backends and the package each needs; TensorFlow is needed by the tools whatever the backend (tf.data,
# event files).
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy",
                    "openvino": "openvino"}


def check_backend():
    """A ``UsageError`` naming the fix when KERAS_BACKEND names no Keras backend or one that is not installed
    (or TensorFlow itself is missing), instead of the ImportError traceback of importing Keras."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend is not None and backend not in BACKEND_PACKAGES:
        raise UsageError(f"KERAS_BACKEND={backend!r} is not a Keras backend; set it to one of "
                         f"{', '.join(BACKEND_PACKAGES)} (or unset it for tensorflow)")
    for package in dict.fromkeys(["tensorflow", BACKEND_PACKAGES.get(backend, "tensorflow")]):
        if importlib.util.find_spec(package) is None:
            where = f"KERAS_BACKEND={backend} needs" if package == backend else "the tools need"
            raise UsageError(f"{where} {package}, which is not installed; pip install {package}"
                             + ("" if package == "tensorflow" else " (or unset KERAS_BACKEND for tensorflow)"))


def quiet_tensorflow(verbose=False):
    """Import TensorFlow and find its devices with its C++ start-up lines dropped (some are written to the
    stderr file descriptor before ``TF_CPP_MIN_LOG_LEVEL`` applies). ``verbose`` or the environment
    variable KERAS_FRELU_VERBOSE=1 keeps them, and every TensorFlow log message after. A missing backend is
    a one-line ``UsageError`` first (``check_backend``)."""
    check_backend()
    if verbose or os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # the CUDA probe logs when no driver is found
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def folder(text):
    """An argparse type: a folder's path, which need not exist yet but is not a file and lies under no file."""
    path = os.path.abspath(text)
    while True:
        if os.path.exists(path) and not os.path.isdir(path):
            where = "is a file" if path == os.path.abspath(text) else f"lies under the file {path}"
            raise argparse.ArgumentTypeError(f"{text!r} {where}, not a folder; give a folder (made if missing)")
        if os.path.dirname(path) == path:
            return text
        path = os.path.dirname(path)


def positive_int(text):
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def call(main, argv=None, **kwargs):
    """Run ``main(argv, **kwargs)`` and return its exit code; our errors become ``prog: error: message`` on
    stderr and their exit code, argparse's exits keep theirs."""
    prog = os.path.basename(sys.argv[0])
    try:
        return main(argv, **kwargs) or 0
    except KerasFreluError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Preempted as stop:
        print(f"{prog}: {stop}; rerun the same command to resume", file=sys.stderr)
        return stop.exit_code
    except SystemExit as exit_:  # argparse: --help (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)


def run(main, argv=None, **kwargs):
    """The front doors' ``__main__``: ``call`` then exit with its code."""
    sys.exit(call(main, argv, **kwargs))
