"""runs.json: the comparison's plan and each run's status; it also marks a folder as made by script.py."""

import os
import shutil

from keras_frelu import files
from keras_frelu.errors import UsageError
from keras_frelu.rundir import LOCK, check_unlocked, folder_lock

RUNNING = "is being run by another script.py:"  # the lock's message: "FOLDER is being run by ... process PID"

STATE_FILE = "runs.json"


def read_state(folder):
    """runs.json as ``{"trainer_args": [...], "runs": {name: {...}}}`` (runs in plan order), or None."""
    state = files.read_json(os.path.join(folder, STATE_FILE))
    if not state:
        return None
    state["runs"] = {run.pop("name"): run for run in state["runs"]}
    return state


def write_state(folder, state):
    # A list on disk: JSON objects are written with sorted keys, and the plan's order matters to the reader.
    runs = [{"name": name, **run} for name, run in state["runs"].items()]
    files.write_json(os.path.join(folder, STATE_FILE), {**state, "runs": runs})


def owned_folder(folder):
    """True if ``folder`` is a comparison folder made here; False if missing; UsageError if it is a
    folder made by something else (never written into or removed)."""
    if not os.path.exists(folder) or set(os.listdir(folder)) <= {LOCK}:  # only the lock of a script.py starting
        return False
    if read_state(folder) is None:
        raise UsageError(f"{folder} exists but is not a comparison folder (it has no {STATE_FILE}); "
                         "choose another --name or --train_dir")
    return True


def _trainer_alive(pid, folder):
    """Whether ``pid`` is still a trainer.py of this comparison (a pid may have been reused since)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's: not one of ours
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return os.fsencode(folder) in handle.read()  # the children get --train_dir FOLDER
    except OSError:
        return True  # no /proc: assume the worst


def lock(folder):
    """Hold the comparison's lock for the block: one script.py per comparison folder."""
    return folder_lock(folder, RUNNING)


def check_not_running(folder, state):
    """A ``UsageError`` if a trainer started by a script.py that was killed still trains one of the runs."""
    for name, run in (state or {}).get("runs", {}).items():
        pid = run.get("pid")
        if run.get("status") == "running" and pid and _trainer_alive(pid, folder):
            raise UsageError(f"run {name} in {folder} is still being trained by process {pid} (from a script.py "
                             f"that was killed); stop it with kill -TERM {pid} (it saves a checkpoint) or wait for "
                             "it, then rerun")


def clean(folder):
    """Remove the comparison folder ``folder``, and nothing if it was not made here."""
    if owned_folder(folder):
        check_unlocked(folder, RUNNING)
        check_not_running(folder, read_state(folder))
        shutil.rmtree(folder)
        print(f"removed {folder}")
