"""Errors that the command-line tools turn into one-line messages and exit codes."""


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
