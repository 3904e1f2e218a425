"""What the tests share besides fixtures: running the front doors as processes or in this process, reading
their files back, waiting on script.py, a free port, and the trainer flags that keep runs short."""

import contextlib
import io
import json
import os
import runpy
import socket
import subprocess
import sys
import time
from pathlib import Path

from keras_frelu.cli import TENSORFLOW_NOISE

ROOT = Path(__file__).resolve().parents[1]
# The tools' own console: no TensorFlow log settings of ours, so the tests see what a user sees.
CLI_ENV = {**{key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"},
           "PYTHONUNBUFFERED": "1"}


def run_cli(script, *args, cwd=None, timeout=600, env=None):
    """Run one of the front-door scripts as a real process; return the CompletedProcess."""
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env or CLI_ENV)


def popen_cli(script, *args, cwd=None, env=None, **kwargs):
    return subprocess.Popen([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd or ROOT,
                            env=env or CLI_ENV, **kwargs)


def call_cli(script, *args):
    """Run a front door's ``main`` in this process, as its ``__main__`` would; return (exit code, stdout,
    stderr). Much faster than a new process for checks that end before any training."""
    from keras_frelu import cli

    module = runpy.run_path(str(ROOT / script))
    out, err = io.StringIO(), io.StringIO()
    saved, sys.argv = sys.argv, [script]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.call(module["main"], [str(arg) for arg in args])
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()


def error_lines(stderr):
    """stderr without TensorFlow/absl start-up chatter (which no flag of ours can silence)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(TENSORFLOW_NOISE)]


# Small, fast trainer settings for the tests (the digits dataset: 8x8 images, 1,437 train / 360 test).
FAST = ["--no_monitor", "--no_progress", "--learning_rate", "3e-3", "--log_step", "20",
        "--test_sample_step", "100", "--output_save_step", "100"]


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def only_run_dir(train_dir):
    (name,) = os.listdir(train_dir)
    return train_dir / name


def wait_for(condition, what, process, timeout=300):
    """Poll ``condition`` until it holds; fail if script.py ``process`` ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"script.py ended (exit {process.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
