"""What ``runner.Comparison`` asks of whatever trains a comparison's runs: a ``Pool`` that starts, polls and
stops them, and the ``RunHandle`` of each run it started.

Two pools satisfy it: ``runner.LocalPool`` (trainer.py children of this process) and
``ray_runner.RayPool`` (one Ray task per run on a cluster). The scheduling loop calls ``update`` once a
turn; a handle's queries (``placed``, ``done``, its properties) only answer from what ``update`` last
saw, so asking twice gives the same answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from keras_frelu.cli import TENSORFLOW_NOISE

if TYPE_CHECKING:
    from keras_frelu.config import TrainConfig


class Output:
    """One run's output lines: each echoed with the run's name, start-up chatter left out, the last kept."""

    def __init__(self, name, echo):
        self.name, self.echo = name, echo
        self.last_line = ""

    def line(self, text):
        if text.strip() and not text.startswith(TENSORFLOW_NOISE):  # kept in the logs, not echoed
            self.last_line = text.strip()
            self.echo(f"[{self.name}] {text.rstrip()}")


class RunHandle(Protocol):
    """One run that a pool started."""

    @property
    def name(self) -> str:
        """The run's name (``config.run_name()``)."""

    @property
    def output(self) -> Output:
        """Where the run's output lines go (echoed with its name; the last one kept)."""

    @property
    def exit_code(self) -> int | None:
        """trainer.py's exit code once ``done()``; None if the run ended without one."""

    @property
    def never_started(self) -> bool:
        """Once ``done()``: stopped while it waited for a place to train (it stays pending)."""

    @property
    def message(self) -> str | None:
        """A failure that the run's output does not tell (e.g. its node lost), or None."""

    def placed(self) -> dict | None:
        """The runs.json fields of where the run trains (e.g. ``pid``, ``node``) once it has started, else
        None; a new value when it starts again elsewhere."""

    def done(self) -> bool:
        """Whether the run has ended."""

    def interrupt(self) -> None:
        """Ask the run to stop as SIGTERM stops trainer.py: at the end of its step, with a checkpoint of it."""

    def kill(self) -> None:
        """Stop the run now."""

    def close(self) -> None:
        """Release what the handle holds, once it is ``done()``."""


class Pool(Protocol):
    """Starts, polls and stops the runs of a comparison."""

    poll_s: float  # seconds between two turns of the scheduling loop

    def begin(self, pending: int) -> str:
        """Called before the first run, with the number of runs to train; returns how the pool trains them,
        for the comparison's start line."""

    def slots(self) -> int:
        """How many runs to train at once."""

    def start(self, slot: int, config: TrainConfig, command: list, log_path: str, output: Output) -> RunHandle:
        """Start trainer.py ``command`` for ``config`` in free ``slot``; its output goes to ``log_path`` and
        ``output``."""

    def update(self, handles: list[RunHandle]) -> None:
        """Bring the ``RunHandle``s of the running runs up to date (results, new log lines), once a turn."""

    def close(self) -> None:
        """Release the pool, once every run has ended."""
