"""Ctrl-C during ``fit``: a KeyboardInterrupt at once, and again at the next step if a library swallowed it."""

import contextlib
import signal
import threading

import keras


class KeepInterrupts(keras.callbacks.Callback):
    """Ctrl-C raises KeyboardInterrupt at once, as Python's own handler does, and again at the end of the
    next step or window if a library swallowed it (Keras's saving code has bare ``except:`` clauses).
    Listed first, so that no other callback's work follows an interrupted step."""

    def __init__(self):
        super().__init__()
        self.interrupted = False

    @contextlib.contextmanager
    def installed(self):
        """Installs the handler for the ``with`` block. A SIGINT the parent ignores (``nohup``, a background
        job) or a handler of the caller's own stays as it is, and so do threads other than the main one."""
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return

        def request(signum, frame):
            self.interrupted = True
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, request)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def on_train_batch_end(self, batch, logs=None):
        self._raise_if_interrupted()

    def on_epoch_end(self, epoch, logs=None):
        self._raise_if_interrupted()

    def _raise_if_interrupted(self):
        if self.interrupted:
            raise KeyboardInterrupt
