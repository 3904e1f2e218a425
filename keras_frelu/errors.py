"""Errors that the command-line tools turn into one-line messages and exit codes, and ``first_line``, which
quotes another library's error in such a message."""


class KerasFreluError(Exception):
    """Base class: a problem the user can fix; the message names it and the fix."""

    exit_code = 2


class UsageError(KerasFreluError):
    """Bad flags or bad input (exit code 2)."""


class DatasetError(UsageError):
    """A dataset folder or file that cannot be used as it is (exit code 2)."""


class DownloadError(KerasFreluError):
    """A download or conversion that failed: bad checksum, corrupt archive, network (exit code 1)."""

    exit_code = 1


class TrainingDiverged(KerasFreluError):
    """The loss or the weights became NaN/inf; the last good checkpoint stays loadable (exit code 1)."""

    exit_code = 1


class StorageError(KerasFreluError):
    """A folder that cannot take a file: full disk, quota, read-only or not ours (exit code 1). Whatever
    was saved before stays intact; after the fix the same command resumes."""

    exit_code = 1


class Preempted(Exception):
    """SIGTERM (a scheduler's preemption) stopped training at the end of a step, after a checkpoint of that step:
    not an error, the same command resumes (exit code 143, 128 + SIGTERM, as schedulers expect)."""

    exit_code = 143


def first_line(error, limit=None, empty=None):
    """The first line of ``error``'s message, cut to ``limit`` characters; ``empty`` (default: the error's type
    name) when it has no message."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else empty or type(error).__name__
    return line[:limit]
