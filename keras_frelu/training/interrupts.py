"""Stopping ``fit`` on a signal: Ctrl-C (SIGINT) at once, SIGTERM (preemption) at the end of the current step."""

import contextlib
import signal
import threading

import keras


class KeepInterrupts(keras.callbacks.Callback):
    """Ctrl-C raises KeyboardInterrupt at once, as Python's own handler does, and again at the end of the next
    step or window if a library swallowed it (Keras's saving code has bare ``except:`` clauses). SIGTERM only
    sets ``terminated``: the run recorder then checkpoints the step that ends and stops (``Preempted``).
    Listed first, so that no other callback's work follows an interrupted step."""

    def __init__(self):
        super().__init__()
        self.interrupted = False
        self.terminated = False

    @contextlib.contextmanager
    def installed(self):
        """Installs the handlers for the ``with`` block, each only where the signal has its default action:
        a signal the parent ignores (SIGINT under ``nohup`` or in a background job) or a handler of the
        caller's own stays as it is. Signals reach the main thread only."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {}
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._interrupt)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._terminate)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _interrupt(self, signum, frame):
        self.interrupted = True
        raise KeyboardInterrupt

    def _terminate(self, signum, frame):
        self.terminated = True

    def on_train_batch_end(self, batch, logs=None):
        self._raise_if_interrupted()

    def on_epoch_end(self, epoch, logs=None):
        self._raise_if_interrupted()

    def _raise_if_interrupted(self):
        if self.interrupted:
            raise KeyboardInterrupt
