"""Training the runs of a comparison: one scheduling loop, and pools that start, poll and stop the runs.

``Comparison`` does the bookkeeping whatever trains the runs: runs.json (state), the per-run logs echoed
with the run's name, a failed run reported while the others go on, Ctrl-C, TensorBoard and the report. A
pool only starts, polls and stops runs: ``LocalPool`` (trainer.py children of this process, at most
``parallel`` at once) or ``keras_frelu.compare.ray_runner.RayPool`` (one Ray task per run on a cluster).

What a pool and its run handles must offer is declared in ``keras_frelu.compare.pool``.

Ctrl-C (SIGINT) or SIGTERM: this process passes SIGTERM on to every run, which stops at the end of its current
step with a checkpoint of that step (trainer.py's preemption), waits for them (a second Ctrl-C or SIGTERM, or
``STOP_GRACE_S`` seconds, kills them; checkpoints are written atomically), stops TensorBoard and raises
KeyboardInterrupt. A SIGINT that this process's parent ignores (``nohup``, a background job) stays ignored:
SIGTERM then stops it. Local children are in their own process groups, so the terminal's Ctrl-C reaches only
this process. If this process is killed
outright, local children train on; runs.json keeps their process ids, and a rerun refuses to start while one
of them is alive; each run's own lock (keras_frelu.rundir) also keeps a second writer out.
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
from keras_frelu.compare.pool import Output, Pool
from keras_frelu.compare.report import count, report_text, write_report
from keras_frelu.compare.resources import child_environment
from keras_frelu.compare import state as comparison_state
from keras_frelu.compare.state import check_not_running, read_state, write_state
from keras_frelu.compare.tensorboard import LOG_DIR, signal_group
from keras_frelu.errors import Preempted
from keras_frelu.rundir import RunDir

STOP_GRACE_S = 30
# trainer.py's exit codes after Ctrl-C and after SIGTERM; killed by either before it could answer
INTERRUPTED_CODES = (130, 143, -signal.SIGINT, -signal.SIGTERM)


class _Child:
    """One trainer.py process (a ``pool.RunHandle``): its output goes to its log file and to ``output``."""

    def __init__(self, config, command, env, log_path, output):
        self.config, self.name, self.output = config, config.run_name(), output
        self.log = open(log_path, "a")
        self.log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n")
        self.log.flush()
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace",
                                        start_new_session=True)
        self.never_started, self.message = False, None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.log.write(line)
            self.log.flush()
            self.output.line(line)

    def placed(self):
        return {"pid": self.process.pid}

    def done(self):
        return self.process.poll() is not None

    @property
    def exit_code(self):
        return self.process.returncode

    def interrupt(self):
        signal_group(self.process, signal.SIGTERM)

    def kill(self):
        signal_group(self.process, signal.SIGKILL)

    def close(self):
        self.reader.join()
        self.process.stdout.close()
        self.log.close()


class LocalPool:
    """A ``pool.Pool`` of trainer.py children of this process, at most ``parallel`` at once, each with its share
    of the ``cpus`` cores as TensorFlow threads, or its own GPU of ``gpus``."""

    poll_s = 0.1

    def __init__(self, parallel, cpus, gpus):
        self.parallel, self.cpus, self.gpus = parallel, cpus, gpus

    def begin(self, pending):
        self.at_once = max(1, min(self.parallel, pending))
        threads = "" if self.gpus else f", {max(1, self.cpus // self.at_once)} TensorFlow thread(s) each"
        return f"training {self.at_once} at once{threads}"

    def slots(self):
        return self.at_once

    def start(self, slot, config, command, log_path, output):
        env = child_environment(slot, self.at_once, self.cpus, self.gpus)
        return _Child(config, command, env, log_path, output)

    def update(self, handles):
        pass

    def close(self):
        pass


class _StopRequests:
    """Counts SIGINT/SIGTERM instead of raising, so that the loop stops the runs at a safe point; a signal that
    the parent made this process ignore stays ignored."""

    def __init__(self):
        self.count = 0
        self.first = None  # the signal that asked first

    def __enter__(self):
        self.previous = {signum: signal.signal(signum, self._request) for signum in (signal.SIGINT, signal.SIGTERM)
                         if signal.getsignal(signum) is not signal.SIG_IGN}
        return self

    def _request(self, signum, frame):
        self.count += 1
        self.first = self.first or signum

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


@dataclasses.dataclass
class Comparison:
    """The runs of one comparison and how to train them."""

    folder: str
    configs: list
    trainer_script: str | tuple  # trainer.py's path, or what follows the interpreter: ("-m", MODULE, ...)
    trainer_args: list
    baseline: str = None  # the report's (keras_frelu.compare.report.write_report)
    alpha: float = 0.05

    def command(self, config):
        trainer = [self.trainer_script] if isinstance(self.trainer_script, str) else list(self.trainer_script)
        return [sys.executable, *trainer, *self.trainer_args, "--activation", config.activation,
                "--dataset", config.dataset, "--seed", str(config.seed), "--train_dir", config.train_dir,
                "--no_progress"]

    def prepare(self):
        """Create the folder (or take up the one of an earlier call) and record the plan in runs.json."""
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

    def run(self, pool: Pool, tensorboard=None, wait=False, echo=print):
        """Train the runs that are not complete with ``pool`` (e.g. ``LocalPool``); write and print the report.

        Returns the number of failed runs. Raises KeyboardInterrupt after Ctrl-C, ``Preempted`` after SIGTERM,
        once every run has stopped. With ``wait``, TensorBoard keeps serving after the report until Ctrl-C.
        One script.py at a time runs a comparison: a second one gets ``RunLocked`` naming the first.
        """
        comparison_state.owned_folder(self.folder)  # before the lock makes the folder
        with comparison_state.lock(self.folder):
            return self._run(pool, tensorboard, wait, echo)

    def _run(self, pool, tensorboard, wait, echo):
        lock = threading.Lock()

        def say(message):
            with lock:
                echo(message)

        state = self.prepare()
        todo = collections.deque(config for config in self.configs
                                 if state["runs"][config.run_name()]["status"] != "complete")
        training_note = f"; {pool.begin(len(todo))}" if todo else ""
        say(f"comparison {self.folder}: {count(len(self.configs), 'run')}, "
            f"{len(self.configs) - len(todo)} already complete{training_note}")
        with _StopRequests() as stop:
            if tensorboard:
                tensorboard.start()
                say(f"TensorBoard: {tensorboard.url} (log: {os.path.join(self.folder, LOG_DIR, 'tensorboard.log')})")
            try:
                self._train(todo, state, pool, stop, say)
                if stop.first == signal.SIGTERM:
                    raise Preempted("stopped by SIGTERM, every run that was training with a checkpoint of its step")
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

    def _train(self, todo, state, pool, stop, say):
        """The scheduling loop: start runs into free slots, reap finished ones, stop all on request."""
        running = {}  # slot -> run handle
        recorded = {}  # run name -> its placement last written to runs.json
        stop_sent_at, killed = None, False
        while running or (todo and not stop.count):
            if stop.count and stop_sent_at is None:
                stop_sent_at = time.monotonic()
                if running:
                    say(f"stopping {len(running)} runs, each at the end of its step with a checkpoint "
                        "(Ctrl-C again kills them)")
                for run in running.values():
                    run.interrupt()
            if stop_sent_at is not None and not killed and (
                    stop.count > 1 or time.monotonic() - stop_sent_at > STOP_GRACE_S):
                killed = True  # safe: a checkpoint on disk is always complete
                for run in running.values():
                    run.kill()
            slots = pool.slots() if todo else 0
            while todo and not stop.count and len(running) < slots:
                slot = min(set(range(slots)) - set(running))
                config = todo.popleft()
                output = Output(config.run_name(), say)
                running[slot] = pool.start(slot, config, self.command(config),
                                           os.path.join(self.folder, LOG_DIR, config.run_name() + ".log"), output)
            pool.update(list(running.values()))
            for slot, run in list(running.items()):
                placement = run.placed()
                if placement is not None and placement != recorded.get(run.name):
                    recorded[run.name] = placement
                    self._record(state, run.name, status="running", exit_code=None, message=None, **placement)
                if run.done():
                    run.close()
                    del running[slot]
                    recorded.pop(run.name, None)
                    self._finished(state, run, run.exit_code, stopping=stop_sent_at is not None, say=say)
            time.sleep(pool.poll_s)

    def _finished(self, state, run, code, stopping, say):
        if run.never_started:  # stopped while it waited for a place to train
            self._record(state, run.name, status="pending")
            return
        config = next(config for config in self.configs if config.run_name() == run.name)
        # A run that completed just as it was stopped (its exit code that of the signal) is complete.
        if code == 0 or RunDir(config.run_dir()).is_complete(config.max_training_steps):
            status = "complete"
        elif stopping or code in INTERRUPTED_CODES:
            status = "interrupted"
        else:
            status = "failed"
            say(f"[{run.name}] failed ({run.message or f'exit code {code}'}); the other runs go on")
        self._record(state, run.name, status=status, exit_code=code,
                     message=run.message or run.output.last_line or f"exit code {code}")

    def _record(self, state, name, **fields):
        state["runs"][name].update(fields)
        write_state(self.folder, state)
