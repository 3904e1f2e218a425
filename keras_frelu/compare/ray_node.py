"""What runs on a Ray node for ``script.py --ray``: the task that trains one run (trainer.py as a child, its
output appended to the run's log, Ctrl-C passed on) and the task that checks the node sees the shared storage.
How the two sides work together: docs/ray.md."""

import contextlib
import ctypes
import fcntl
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time

from keras_frelu.compare.tensorboard import signal_group

LOCK_WAIT_S = 120  # longer than Ray's default raylet reconnect timeout (60 s), after which it exits
POLL_S = 0.2
# The line ``train_run`` writes into the log before each attempt; the driver reads where the run trains off it.
HEADER = re.compile(r"^=== \S+ \S+ on (?P<host>\S+) \(Ray node (?P<node>[0-9a-f]+)\)")

_libc = None


def _trainer_setup():
    """In the trainer child, before it runs: the signals that Ray blocks in its workers get through, and the
    trainer dies with the worker that started it (PR_SET_PDEATHSIG = 1)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def _wait_for_run_lock(lock_path, log):
    """Wait until no process holds the run's lock: the trainer of an attempt that Ray gave up on may still be
    ending. After ``LOCK_WAIT_S``, trainer.py starts anyway and itself refuses, naming the holder."""
    if not os.path.exists(lock_path):
        return
    deadline, said = time.monotonic() + LOCK_WAIT_S, False
    while time.monotonic() < deadline:
        with open(lock_path, "a+") as handle:  # NFS grants an exclusive lock only to a file open for writing
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return  # closing the file releases it
            except BlockingIOError:
                if not said:
                    handle.seek(0)
                    log.write(f"waiting for {handle.read().strip() or 'another process'} to release "
                              f"{lock_path}\n")
                    log.flush()
                    said = True
        time.sleep(1)


def train_run(command, cwd, env, log_path, lock_path):
    """The Ray task of one run: trainer.py ``command`` on this node, its output appended to ``log_path``;
    returns its exit code. ``ray.cancel`` (a KeyboardInterrupt here) and a SIGTERM to this worker (its node is
    being stopped) pass SIGTERM on: the trainer stops at the end of its step with a checkpoint of it."""
    global _libc
    import ray

    _libc = _libc or ctypes.CDLL(None, use_errno=True)  # looked up before fork: the child only calls it
    node = ray.get_runtime_context().get_node_id()
    with open(log_path, "a+") as log:
        log.seek(0, os.SEEK_END)
        newline = "\n" if log.tell() and not _ends_with_newline(log_path) else ""  # an attempt cut short
        log.write(f"{newline}=== {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()} "
                  f"(Ray node {node[:12]}): {shlex.join(command)}\n")
        log.flush()
        _wait_for_run_lock(lock_path, log)
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_trainer_setup)
        try:
            with _sigterm_raises():
                while process.poll() is None:
                    time.sleep(POLL_S)  # Python code between sleeps: ray.cancel's KeyboardInterrupt lands here
        except KeyboardInterrupt:  # ray.cancel: the run stops here and the driver records it as interrupted
            signal_group(process, signal.SIGTERM)
            process.wait()
        except _WorkerStopping:  # the node goes: checkpoint, then end this worker so that Ray retries elsewhere
            signal_group(process, signal.SIGTERM)
            process.wait()
            log.write(f"=== this Ray worker was told to stop (SIGTERM); the trainer saved its checkpoint (exit "
                      f"{process.returncode}); the run is retried on another node\n")
            log.flush()
            os._exit(1)  # a worker that dies is a system failure, which Ray retries (max_retries)
        finally:
            if process.poll() is None:  # the worker is going away regardless: checkpoints are atomic
                signal_group(process, signal.SIGKILL)
                process.wait()
    return process.returncode


class _WorkerStopping(Exception):
    """This worker got SIGTERM."""


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises ``_WorkerStopping`` in the block (Ray runs tasks in the worker's main thread)."""
    def stop(signum, frame):
        raise _WorkerStopping

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ends_with_newline(path):
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def check_node(probe_dir, token, paths):
    """The check task on one node: ``(host, node id, problem or None)``. It must see ``paths``, read this
    machine's ``token`` in ``probe_dir`` (else it sees other storage at that path) and write its own file."""
    import ray

    node, host = ray.get_runtime_context().get_node_id(), socket.gethostname()
    for path in paths:
        if not os.path.exists(path):
            return host, node, f"has no {path}"
    try:
        with open(os.path.join(probe_dir, "driver")) as handle:
            if handle.read() != token:
                return host, node, f"sees other storage at {probe_dir}"
    except FileNotFoundError:
        return host, node, f"does not see {os.path.dirname(probe_dir)} as this machine does"
    except OSError as error:
        return host, node, f"cannot read {probe_dir} ({error.strerror})"
    try:
        with open(os.path.join(probe_dir, node), "w") as handle:
            handle.write(token)
    except OSError as error:
        return host, node, f"cannot write into {os.path.dirname(probe_dir)} ({error.strerror})"
    return host, node, None
