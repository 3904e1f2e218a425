"""The monitor's figures drawn in a process of their own.

matplotlib holds Python's GIL through nearly all of its drawing, and the training loop needs the GIL between
its steps: drawn in a thread, a set of figures slows training by about its whole CPU time. A child process
draws them instead, at a lower priority, on whatever CPU the training leaves idle. One child serves every
monitor of a process (it starts at the first figures and stays for the next ``fit``); it needs neither
TensorFlow nor Keras (``python -m keras_frelu.monitor.figure_process``), and ends when its parent closes the
pipe or dies.

Requests and replies are length-prefixed pickles over the child's stdin and stdout: ``(layer names,
arrays)`` in, the summary values of ``figures.FigureSets.draw`` out (serialised), or the child's traceback.
"""

import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import traceback

PRIORITY = 10  # the child's niceness: training goes first
_HEADER = struct.Struct("<Q")


def _send(stream, message):
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    """The next message, or EOFError when the other side has closed the pipe."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class FigureProcess:
    """The child process that draws figure sets; ``draw`` is thread-safe (one set at a time)."""

    def __init__(self):
        self._process = None
        self._lock = threading.Lock()

    def draw(self, layer_names, arrays):
        """The summary values of ``figures.FigureSets(layer_names).draw(arrays)``; with ``arrays`` None only
        builds the figures (``FigureSets.prepare``)."""
        return self.request(layer_names, arrays)()

    def request(self, layer_names, arrays):
        """Send ``draw``'s request and return a function that waits for its summary values, so that the
        caller can work while the child draws. Other requests wait until that function has been called:
        call it on every path."""
        self._lock.acquire()
        try:
            self._start()
            _send(self._process.stdin, (list(layer_names), arrays))
        except BrokenPipeError:
            self._lock.release()
            self._ended()
        except BaseException:
            self._lock.release()
            raise
        return self._reply

    def _reply(self):
        from tensorboard.compat.proto import summary_pb2

        try:
            status, reply = _receive(self._process.stdout)
        except EOFError:
            self._ended()
        finally:
            self._lock.release()
        if status == "error":
            raise RuntimeError(f"drawing the monitor's figures failed in their process:\n{reply}")
        return [summary_pb2.Summary.Value.FromString(value) for value in reply]

    def _ended(self):
        code = self._process.wait()
        self._process = None
        raise RuntimeError(f"the monitor's figure process ended (exit code {code}); its error, if any, is on "
                           "stderr above") from None

    def start(self):
        """Start the child now, if it is not running: its imports then overlap whatever the parent does
        before the first figures."""
        if not self._running():  # checked before the lock too: no wait for a set being drawn
            with self._lock:
                self._start()

    def _running(self):
        return self._process is not None and self._process.poll() is None

    def _start(self):
        if self._running():
            return
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        self._process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env)

    def close(self):
        """End the child (the next ``draw`` starts a new one)."""
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()
                try:
                    self._process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                self._process.stdout.close()
                self._process = None


_shared = None
_shared_lock = threading.Lock()


def shared():
    """The process-wide ``FigureProcess``."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FigureProcess()
        return _shared


def serve(requests, replies):
    """The child's loop: draw each request with one set of figures shared by all layer lists."""
    from keras_frelu.monitor import figures

    panels = figures.Panels()
    while True:
        try:
            layer_names, arrays = _receive(requests)
        except EOFError:
            return
        try:
            sets = figures.FigureSets(layer_names, panels)
            if arrays is None:
                sets.prepare()
                values = []
            else:
                values = [value.SerializeToString() for value in sets.draw(arrays)]
            _send(replies, ("ok", values))
        except Exception:  # noqa: BLE001 - sent to the parent, which raises it
            _send(replies, ("error", traceback.format_exc()))


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group: the parent handles it, and this child ends when
    # the parent closes the pipe or exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(PRIORITY)
    # Replies go to the original stdout; anything printed goes to stderr, so it cannot break the protocol.
    reply_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, reply_stream)
