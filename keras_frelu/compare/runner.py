"""Training the runs of a comparison: trainer.py children, at most ``parallel`` at once, their logs, Ctrl-C.

Ctrl-C (SIGINT) or SIGTERM: the children are in their own process groups, so the terminal's Ctrl-C
reaches only this process, which forwards one SIGINT to each child (the trainer stops with its
checkpoints intact, as they are written atomically), waits for them (a second Ctrl-C, or
``STOP_GRACE_S`` seconds, kills them), stops TensorBoard and raises KeyboardInterrupt. If this process
is killed outright, its children train on; runs.json keeps their process ids, and a rerun refuses to
start while one of them is alive; each run's own lock (keras_frelu.rundir) also keeps a second writer out.
"""

import collections
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

from keras_frelu import files
from keras_frelu.compare.report import count, report_text, write_report
from keras_frelu.compare.resources import child_environment
from keras_frelu.compare.state import check_not_running, owned_folder, read_state, write_state
from keras_frelu.compare.tensorboard import LOG_DIR, signal_group
from keras_frelu.rundir import RunDir

STOP_GRACE_S = 30
# Lines of TensorFlow/absl start-up chatter that no flag silences: kept in the logs, not echoed.
NOISE = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000", "To enable the following")
INTERRUPTED_CODES = (130, -signal.SIGINT)  # trainer.py's exit code after Ctrl-C; killed by SIGINT


class _Child:
    """One trainer.py process: its output goes to its log file and, without start-up chatter, to ``echo``."""

    def __init__(self, config, command, env, log_path, echo):
        self.config, self.name = config, config.run_name()
        self.log = open(log_path, "a")
        self.log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n")
        self.log.flush()
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace",
                                        start_new_session=True)
        self.last_line = ""
        self.echo = echo
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.log.write(line)
            self.log.flush()
            if line.strip() and not line.startswith(NOISE):
                self.last_line = line.strip()
                self.echo(f"[{self.name}] {line.rstrip()}")

    def close(self):
        self.reader.join()
        self.process.stdout.close()
        self.log.close()


class _StopRequests:
    """Counts SIGINT/SIGTERM instead of raising, so that the loop stops the children at a safe point."""

    def __init__(self):
        self.count = 0

    def __enter__(self):
        self.previous = {signum: signal.signal(signum, self._request) for signum in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _request(self, signum, frame):
        self.count += 1

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


@dataclasses.dataclass
class Comparison:
    """The runs of one comparison and how to train them."""

    folder: str
    configs: list
    trainer_script: str
    trainer_args: list
    baseline: str = None  # the report's (keras_frelu.compare.report.write_report)
    alpha: float = 0.05

    def command(self, config):
        return [sys.executable, self.trainer_script, *self.trainer_args, "--activation", config.activation,
                "--dataset", config.dataset, "--seed", str(config.seed), "--train_dir", config.train_dir,
                "--no_progress"]

    def prepare(self):
        """Create the folder (or take up the one of an earlier call) and record the plan in runs.json."""
        owned_folder(self.folder)
        state = read_state(self.folder) or {"runs": {}}
        check_not_running(self.folder, state)
        files.makedirs(os.path.join(self.folder, LOG_DIR))
        state["trainer_args"] = self.trainer_args
        for config in self.configs:
            run = state["runs"].setdefault(config.run_name(), {})
            run.update(dataset=config.dataset, activation=config.activation, seed=config.seed)
            if RunDir(config.run_dir()).is_complete(config.max_training_steps):
                run.update(status="complete", exit_code=0)
            elif run.get("status") in (None, "complete"):  # new, or --max_training_steps was raised
                run["status"] = "pending"
        write_state(self.folder, state)
        return state

    def run(self, parallel, cpus, gpus, tensorboard=None, wait=False, echo=print):
        """Train the runs that are not complete, at most ``parallel`` at once; write and print the report.

        Returns the number of failed runs. Raises KeyboardInterrupt after Ctrl-C, once every child has
        stopped. With ``wait``, TensorBoard keeps serving after the report until Ctrl-C.
        """
        lock = threading.Lock()

        def say(message):
            with lock:
                echo(message)

        state = self.prepare()
        todo = collections.deque(config for config in self.configs
                                 if state["runs"][config.run_name()]["status"] != "complete")
        parallel = max(1, min(parallel, len(todo)))
        threads = "" if gpus else f", {max(1, cpus // parallel)} TensorFlow thread(s) each"
        training_note = f"; training {parallel} at once{threads}" if todo else ""
        say(f"comparison {self.folder}: {count(len(self.configs), 'run')}, "
            f"{len(self.configs) - len(todo)} already complete{training_note}")
        with _StopRequests() as stop:
            if tensorboard:
                tensorboard.start()
                say(f"TensorBoard: {tensorboard.url} (log: {os.path.join(self.folder, LOG_DIR, 'tensorboard.log')})")
            try:
                self._train(todo, state, parallel, cpus, gpus, stop, say)
                if stop.count:
                    raise KeyboardInterrupt
                say(report_text(write_report(self.folder, self.baseline, self.alpha)))
                if tensorboard and wait:
                    if tensorboard.running():
                        say(f"TensorBoard keeps serving {tensorboard.url}; press Ctrl-C to stop it")
                    else:
                        say(f"TensorBoard has stopped; see {os.path.join(self.folder, LOG_DIR, 'tensorboard.log')}")
                    while not stop.count and tensorboard.running():
                        time.sleep(0.2)
            finally:
                if tensorboard:
                    tensorboard.stop()
        return sum(run["status"] == "failed" for run in state["runs"].values())

    def _train(self, todo, state, parallel, cpus, gpus, stop, say):
        """The scheduling loop: start runs into free slots, reap finished ones, stop all on request."""
        running = {}  # slot -> _Child
        stop_sent_at, killed = None, False
        while running or (todo and not stop.count):
            if stop.count and stop_sent_at is None:
                stop_sent_at = time.monotonic()
                if running:
                    say(f"stopping {len(running)} runs (their checkpoints are kept; Ctrl-C again kills them)")
                for child in running.values():
                    signal_group(child.process, signal.SIGINT)
            if stop_sent_at is not None and not killed and (
                    stop.count > 1 or time.monotonic() - stop_sent_at > STOP_GRACE_S):
                killed = True  # safe: a checkpoint on disk is always complete
                for child in running.values():
                    signal_group(child.process, signal.SIGKILL)
            while todo and not stop.count and len(running) < parallel:
                slot = min(set(range(parallel)) - set(running))
                config = todo.popleft()
                child = _Child(config, self.command(config), child_environment(slot, parallel, cpus, gpus),
                               os.path.join(self.folder, LOG_DIR, config.run_name() + ".log"), say)
                running[slot] = child
                self._record(state, child.name, status="running", pid=child.process.pid, exit_code=None,
                             message=None)
            for slot, child in list(running.items()):
                code = child.process.poll()
                if code is not None:
                    child.close()
                    del running[slot]
                    self._finished(state, child, code, stopping=stop_sent_at is not None, say=say)
            time.sleep(0.1)

    def _finished(self, state, child, code, stopping, say):
        if code == 0:
            status = "complete"
        elif stopping or code in INTERRUPTED_CODES:
            status = "interrupted"
        else:
            status = "failed"
            say(f"[{child.name}] failed (exit code {code}); the other runs go on")
        self._record(state, child.name, status=status, exit_code=code, message=child.last_line or f"exit code {code}")

    def _record(self, state, name, **fields):
        state["runs"][name].update(fields)
        write_state(self.folder, state)
