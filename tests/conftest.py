"""Fixtures: the embedded digits dataset converted once per session, Ctrl-C as a terminal delivers it, and a
check that no test leaves a child process running. Shared helpers are in helpers.py."""

import os
import signal
import time

import pytest

CHILD_GRACE_S = 10  # how long a test's children may take to exit after it ends


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A datasets folder holding the embedded digits dataset (converted offline, once per session)."""
    from keras_frelu import data

    directory = tmp_path_factory.mktemp("datasets")
    data.load_dataset("digits", data_dir=str(directory))
    return directory


def pytest_collection_modifyitems(items):
    """Tests that rely on signals are signal tests (``-m signals``, which CI runs again with SIGINT ignored)."""
    for item in items:
        if "terminal_signals" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.signals)


@pytest.fixture
def terminal_signals():
    """SIGINT and SIGTERM handled as in a terminal, whatever this process inherited (a background job or nohup
    starts it with SIGINT ignored): Python's KeyboardInterrupt for SIGINT here, the default actions in the
    children started during the test. The previous handlers are restored afterwards."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, signal.SIG_DFL)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _children():
    """The process ids of this process's living children (Linux's /proc)."""
    found = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as handle:
            found.update(int(pid) for pid in handle.read().split())
    return {pid for pid in found if _alive(pid)}


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def _command(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _check_no_children_left(before, what):
    """Fail if children started since ``before`` still run CHILD_GRACE_S seconds on (and kill them, so that
    they cannot disturb what follows)."""
    deadline = time.monotonic() + CHILD_GRACE_S
    while (left := _children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    described = [f"{pid} ({_command(pid)})" for pid in sorted(left)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"child processes still running after {what}: {', '.join(described)}"


@pytest.fixture(scope="session", autouse=True)
def no_child_outlives_the_session():
    """The same check for children that fixtures started (a fixture's teardown must end them)."""
    before = _children()
    yield
    _check_no_children_left(before, "the session")


@pytest.fixture(autouse=True)
def no_child_outlives_its_test():
    """Fails the test whose child processes outlive it."""
    before = _children()
    yield
    _check_no_children_left(before, "the test")
