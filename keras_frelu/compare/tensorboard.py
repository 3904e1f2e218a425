"""TensorBoard over a comparison folder, as a child process in its own process group."""

import os
import signal
import socket
import subprocess
import sys

from keras_frelu.errors import UsageError

DEFAULT_PORT = 7007
LOG_DIR = "logs"


class TensorBoard:
    """``tensorboard --logdir FOLDER`` on localhost:PORT, as a child in its own process group."""

    def __init__(self, folder, port):
        self.folder, self.port = folder, port
        self.url = f"http://localhost:{port}/"
        self.process = None

    def check_port(self):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as TensorBoard's server does
            try:
                probe.bind(("localhost", self.port))
            except OSError as error:
                raise UsageError(f"--port {self.port}: localhost:{self.port} is not free ({error.strerror}); "
                                 "pass another --port or --no_tensorboard") from None

    def start(self):
        log = open(os.path.join(self.folder, LOG_DIR, "tensorboard.log"), "a")
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", self.folder, "--port", str(self.port),
                   "--host", "localhost"]
        with log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is None:
            return
        signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_group(self.process, signal.SIGKILL)
            self.process.wait()


def signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
