"""The one way the package writes a file: whole or not at all, and a full or read-only disk in one line.

Every writer (run directories, checkpoints, reports, dataset conversion, caches) goes through
``atomic_write``: the content goes to a temporary file beside the target whose name is unique to the
process, is flushed and fsynced, then renamed over the target, and the folder is fsynced so that the
rename itself survives a power cut. A reader therefore sees the old file or the new one, never a part;
two processes never share a temporary name; and a failure removes the temporary file.
"""

import contextlib
import errno
import json
import os
import tempfile

from keras_frelu.errors import StorageError

TEMPORARY_SUFFIX = ".tmp"
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: the files get the permissions open() would give them, not mkstemp's 0600
# What the disk says when it cannot take a file, and what to do about it.
_STORAGE_PROBLEMS = {
    errno.ENOSPC: "no space left on the device; free some space",
    errno.EDQUOT: "the disk quota is exceeded; free some space",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "permission denied; choose a folder you can write to",
}


def storage_error(error, path):
    """A ``StorageError`` naming the folder of ``path`` and the fix, for an OSError the disk raised; None for
    any other error (a bug or a missing file, which keep their own message)."""
    problem = _STORAGE_PROBLEMS.get(getattr(error, "errno", None))
    if problem is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    return StorageError(f"cannot write {folder}: {problem}, then run the same command again")


@contextlib.contextmanager
def storage_errors(path):
    """Turn a full or read-only disk met inside the block into a one-line ``StorageError`` about ``path``."""
    try:
        yield
    except OSError as error:
        translated = storage_error(error, path)
        if translated is None:
            raise
        raise translated from None


def makedirs(path):
    """``os.makedirs(path, exist_ok=True)``, with a one-line error when the disk refuses."""
    with storage_errors(os.path.join(path, ".")):
        os.makedirs(path, exist_ok=True)


def fsync_folder(folder):
    """Make a rename or a removal inside ``folder`` durable."""
    descriptor = os.open(folder or ".", os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """A temporary path beside ``path`` for a writer that wants a file name (h5py, ``model.save``): when the
    block succeeds the file is fsynced and renamed to ``path``; otherwise it is removed. ``suffix`` ends
    the temporary name (``model.save`` insists on ``.keras``)."""
    folder, name = os.path.split(os.path.abspath(path))
    with storage_errors(path):
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMPORARY_SUFFIX + suffix, dir=folder)
        os.fchmod(descriptor, 0o666 & ~_UMASK)
        os.close(descriptor)
        try:
            yield temporary
            with open(temporary, "rb") as handle:  # the rename must not overtake the data on a power cut
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            fsync_folder(folder)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """``open(path, mode)`` that replaces ``path`` only when the block succeeds (``mode`` "w" or "wb")."""
    with atomic_path(path) as temporary:
        with open(temporary, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()


def write_json(path, payload):
    """Write ``payload`` as indented JSON with sorted keys, atomically."""
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")


def write_bytes(path, content):
    with atomic_write(path, "wb") as handle:
        handle.write(content)


def read_json(path):
    """The JSON object in ``path``, or {} when the file does not exist (yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def remove_stale_temporaries(folder, suffix=""):
    """Remove the temporary files that ``atomic_path`` left in ``folder`` when its process was killed. Only
    safe while no other process writes into ``folder`` (e.g. under the run's lock)."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name.startswith(".") and name.endswith(TEMPORARY_SUFFIX + suffix):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))
