"""Comparison runs: the same training with several activations side by side, TensorBoard, and a report.

``script.py`` is the front door. A comparison lives in one folder, ``train_dir/compare-<datasets>[-<hash>]``
(or ``train_dir/NAME`` with ``--name``), holding

- one run directory per (dataset, activation, seed), written by a ``trainer.py`` child process started
  with the same trainer flags for every run except ``--activation``, ``--dataset`` and ``--seed``;
- ``runs.json``: the trainer flags and each run's status (pending, running, complete, failed,
  interrupted), exit code, process id and last output line. It marks the folder as made by this module:
  ``clean`` removes no folder without it;
- ``logs/<run>.log``, ``logs/tensorboard.log``: the output of each child (appended on every attempt);
- ``comparison.md`` and ``comparison.png``: the report, built from the event files only (``write_report``).

The default folder name hashes the trainer flags that define the experiment (those ``trainer.py`` refuses
to change when it resumes a run), so rerunning a command finds its folder and resumes its runs, while
changing e.g. the learning rate starts a new comparison beside the old one. Activations and seeds are not
in the name: adding some to a comparison adds runs to the same folder.

Ctrl-C (SIGINT) or SIGTERM: the children are in their own process groups, so the terminal's Ctrl-C
reaches only this process, which forwards one SIGINT to each child (the trainer stops with its
checkpoints intact, as they are written atomically), waits for them (a second Ctrl-C, or
``STOP_GRACE_S`` seconds, kills them), stops TensorBoard and raises KeyboardInterrupt. If this process
is killed outright, its children train on; runs.json keeps their process ids, and a rerun refuses to
start while one of them is alive rather than have two processes write one run directory.
"""

import collections
import dataclasses
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
from matplotlib.figure import Figure

from keras_frelu import data, events, registry, training
from keras_frelu.errors import UsageError

DEFAULT_ACTIVATIONS = ("relu", "lrelu", "selu", "frelu")
DEFAULT_DATASETS = ("digits",)
DEFAULT_PORT = 7007
STATE_FILE = "runs.json"
LOG_DIR = "logs"
REPORT_MARKDOWN = "comparison.md"
REPORT_FIGURE = "comparison.png"
# Trainer flags that the comparison sets for each run; the others after -- are shared by all runs.
PER_RUN_FLAGS = ("activation", "dataset", "seed", "train_dir")
STOP_GRACE_S = 30
# Lines of TensorFlow/absl start-up chatter that no flag silences: kept in the logs, not echoed.
NOISE = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000", "To enable the following")
PROGRESS_FRACTION = 0.95  # "steps to reach 95% of the best test accuracy"
PROGRESS_COLUMN = f"steps to {PROGRESS_FRACTION:.0%} of best"
INTERRUPTED_CODES = (130, -signal.SIGINT)  # trainer.py's exit code after Ctrl-C; killed by SIGINT


# ------------------------------------------------------------------------------------------------ planning

def trainer_config(parser, argv):
    """The ``TrainConfig`` of the trainer flags after ``--``, parsed by trainer.py's ``parser``.

    The flags each run gets from the comparison are refused, naming the comparison flag to use instead.
    """
    parser.prog = f"{parser.prog} (trainer flags after --)"
    parser.set_defaults(**{flag: None for flag in PER_RUN_FLAGS})
    values = vars(parser.parse_args(argv))
    instead = {"activation": "--activations", "dataset": "--datasets", "seed": "--seeds N",
               "train_dir": "--train_dir (before --)"}
    for flag in PER_RUN_FLAGS:
        if values.pop(flag) is not None:
            raise UsageError(f"--{flag} after -- is set by the comparison for each run; use {instead[flag]}")
    return training.TrainConfig(**values)


def activation_names(names):
    """The registry names of ``names`` (aliases resolved), each once, in the given order."""
    canonical = []
    for name in names:
        try:
            canonical.append(registry.canonical_name(name))
        except ValueError as error:
            raise UsageError(f"--activations: {error}") from None
    return list(dict.fromkeys(canonical))


def dataset_label(dataset):
    """How a dataset (name or folder path) appears in run and folder names, as trainer.py names runs."""
    return os.path.basename(os.path.normpath(dataset))


def default_name(base, datasets):
    """``compare-<datasets>``, plus a hash of the experiment-defining trainer flags that differ from the
    defaults; the same command always gives the same name."""
    defaults = dataclasses.asdict(training.TrainConfig())
    changed = {key: value for key, value in dataclasses.asdict(base).items()
               if key not in training.RESUMABLE_CHANGES and key not in PER_RUN_FLAGS and value != defaults[key]}
    name = "compare-" + "+".join(dataset_label(dataset) for dataset in datasets)
    if changed:
        name += "-" + hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]
    return name


def plan(base, folder, activations, datasets, seeds):
    """One ``TrainConfig`` per run, seed-major so that the first runs to finish cover every activation."""
    return [dataclasses.replace(base, activation=activation, dataset=dataset, seed=seed, train_dir=folder)
            for seed in range(seeds) for dataset in datasets for activation in activations]


def check_plan(configs):
    """Every check that needs no training, before anything is written; UsageError naming the problem."""
    for config in configs:
        training.validate(config)
    for dataset in dict.fromkeys(config.dataset for config in configs):
        try:
            data.find_folder(dataset, configs[0].data_dir)
        except UsageError as error:
            raise UsageError(f"--datasets: {error}") from None


# ---------------------------------------------------------------------------------------------- resources

def cpu_count():
    """CPU cores this process may use (its affinity mask, e.g. a container's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus(environ=os.environ):
    """The ids to put in CUDA_VISIBLE_DEVICES, one per GPU this process may use."""
    import tensorflow as tf  # deferred: only the run needs the device list

    count = len(tf.config.list_physical_devices("GPU"))
    listed = [entry.strip() for entry in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    return (listed or [str(index) for index in range(count)])[:count]


def default_parallel(num_runs, cpus, gpus, strategy="default"):
    """How many runs to train at once: one per GPU; on CPU one per two cores (each run gets two
    intra-op threads, see bench/RESULTS.md); one when a run spreads over all devices itself."""
    if strategy != "default":
        return 1
    slots = len(gpus) if gpus else max(1, cpus // 2)
    return max(1, min(num_runs, slots))


def child_environment(slot, parallel, cpus, gpus, environ=os.environ):
    """The environment of the child in ``slot`` (0 .. parallel-1): its own GPU, or its share of the CPU
    cores as TensorFlow thread counts (unless the caller set them), and unbuffered output."""
    env = {**environ, "PYTHONUNBUFFERED": "1"}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    else:
        env.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, cpus // parallel)))
        env.setdefault("TF_NUM_INTEROP_THREADS", "1")  # a sequential network: one op at a time suffices
    return env


# ------------------------------------------------------------------------------------------------- state

def read_state(folder):
    """runs.json as ``{"trainer_args": [...], "runs": {name: {...}}}`` (runs in plan order), or None."""
    path = os.path.join(folder, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        state = json.load(handle)
    state["runs"] = {run.pop("name"): run for run in state["runs"]}
    return state


def write_state(folder, state):
    # A list on disk: JSON objects are written with sorted keys, and the plan's order matters to the reader.
    runs = [{"name": name, **run} for name, run in state["runs"].items()]
    training.write_json(os.path.join(folder, STATE_FILE), {**state, "runs": runs})


def owned_folder(folder):
    """True if ``folder`` is a comparison folder made here; False if missing; UsageError if it is a
    folder made by something else (never written into or removed)."""
    if not os.path.exists(folder):
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


def check_not_running(folder, state):
    for name, run in (state or {}).get("runs", {}).items():
        pid = run.get("pid")
        if run.get("status") == "running" and pid and _trainer_alive(pid, folder):
            raise UsageError(f"run {name} in {folder} is still being trained by process {pid} (from a script.py "
                             f"that was killed); stop it with kill -INT {pid} or wait for it, then rerun")


def clean(folder):
    """Remove the comparison folder ``folder``, and nothing if it was not made here."""
    if owned_folder(folder):
        check_not_running(folder, read_state(folder))
        shutil.rmtree(folder)
        print(f"removed {folder}")


# ------------------------------------------------------------------------------------------- TensorBoard

class TensorBoard:
    """``tensorboard --logdir FOLDER`` on localhost:PORT, as a child in its own process group."""

    def __init__(self, folder, port):
        self.folder, self.port = folder, port
        self.url = f"http://localhost:{port}/"
        self.process = None

    def check_port(self):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as TensorBoard's server does
            try:
                probe.bind(("localhost", self.port))
            except OSError as error:
                raise UsageError(f"--port {self.port}: localhost:{self.port} is not free ({error.strerror}); "
                                 "pass another --port or --no_tensorboard") from None

    def start(self):
        log = open(os.path.join(self.folder, LOG_DIR, "tensorboard.log"), "a")
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", self.folder, "--port", str(self.port),
                   "--host", "localhost"]
        with log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is None:
            return
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()


def _signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------------------------- children

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


def _metrics(run_dir):
    """The run's metrics.json, or {} before its first checkpoint."""
    return training.read_json(os.path.join(run_dir, training.METRICS))


def _is_complete(config):
    metrics = _metrics(config.run_dir())
    return bool(metrics.get("complete")) and metrics["step"] >= config.max_training_steps


@dataclasses.dataclass
class Comparison:
    """The runs of one comparison and how to train them."""

    folder: str
    configs: list
    trainer_script: str
    trainer_args: list

    def command(self, config):
        return [sys.executable, self.trainer_script, *self.trainer_args, "--activation", config.activation,
                "--dataset", config.dataset, "--seed", str(config.seed), "--train_dir", config.train_dir,
                "--no_progress"]

    def prepare(self):
        """Create the folder (or take up the one of an earlier call) and record the plan in runs.json."""
        owned_folder(self.folder)
        state = read_state(self.folder) or {"runs": {}}
        check_not_running(self.folder, state)
        os.makedirs(os.path.join(self.folder, LOG_DIR), exist_ok=True)
        state["trainer_args"] = self.trainer_args
        for config in self.configs:
            run = state["runs"].setdefault(config.run_name(), {})
            run.update(dataset=config.dataset, activation=config.activation, seed=config.seed)
            if _is_complete(config):
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
        say(f"comparison {self.folder}: {_count(len(self.configs), 'run')}, "
            f"{len(self.configs) - len(todo)} already complete{training_note}")
        with _StopRequests() as stop:
            if tensorboard:
                tensorboard.start()
                say(f"TensorBoard: {tensorboard.url} (log: {os.path.join(self.folder, LOG_DIR, 'tensorboard.log')})")
            try:
                self._train(todo, state, parallel, cpus, gpus, stop, say)
                if stop.count:
                    raise KeyboardInterrupt
                say(report_text(write_report(self.folder)))
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
                    _signal_group(child.process, signal.SIGINT)
            if stop_sent_at is not None and not killed and (
                    stop.count > 1 or time.monotonic() - stop_sent_at > STOP_GRACE_S):
                killed = True  # safe: a checkpoint on disk is always complete
                for child in running.values():
                    _signal_group(child.process, signal.SIGKILL)
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


# ------------------------------------------------------------------------------------------------- report

@dataclasses.dataclass
class RunResult:
    """What the event files of one run directory say (curves as ``[(step, value), ...]``)."""

    name: str
    dataset: str
    activation: str
    seed: int
    status: str
    message: str = None
    test_accuracy: list = dataclasses.field(default_factory=list)
    test_loss: list = dataclasses.field(default_factory=list)
    step: int = None
    images_per_s: float = None
    activations: dict = dataclasses.field(default_factory=dict)  # layer -> [mean, std] at its last step

    @property
    def final_accuracy(self):
        return self.test_accuracy[-1][1] if self.test_accuracy else None

    @property
    def best_accuracy(self):
        return max(value for _, value in self.test_accuracy) if self.test_accuracy else None

    @property
    def steps_to_progress(self):
        """The first step whose test accuracy reaches PROGRESS_FRACTION of the best."""
        if not self.test_accuracy:
            return None
        return next(step for step, value in self.test_accuracy if value >= PROGRESS_FRACTION * self.best_accuracy)


_ACTIVATION_TAG = re.compile(r"^activations/(.+)/(mean|std)$")


def read_run(run_dir, status, message=None, identity=None):
    """The ``RunResult`` of ``run_dir`` from its event files; ``identity`` (dataset, activation, seed)
    for a run that never started (no config.json)."""
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as handle:
            flags = json.load(handle)["flags"]
        identity = (flags["dataset"], flags["activation"], flags["seed"])
    dataset, activation, seed = identity
    result = RunResult(os.path.basename(run_dir), dataset_label(dataset), activation, seed, status, message)
    test = _scalars(run_dir, "test")
    result.test_accuracy, result.test_loss = test.get("accuracy", []), test.get("loss", [])
    train = _scalars(run_dir, "train")
    if train.get("loss"):
        result.step = train["loss"][-1][0]
        # The median logging window, as metrics.json's images_per_s.
        result.images_per_s = float(np.median([value for _, value in train["images_per_s"]]))
    for tag, curve in _scalars(run_dir, "activations").items():
        match = _ACTIVATION_TAG.match(tag)
        if match and curve:
            layer, statistic = match.groups()
            result.activations.setdefault(layer, [None, None])[("mean", "std").index(statistic)] = curve[-1][1]
    return result


def _scalars(run_dir, split):
    log_dir = os.path.join(run_dir, split)
    return events.read_scalars(log_dir) if os.path.isdir(log_dir) else {}


def read_runs(folder):
    """Every run of ``folder``: those in runs.json (with their recorded status), then every other
    directory with a config.json (complete if its metrics.json says so)."""
    state = read_state(folder) or {"runs": {}}
    results = []
    for name, run in state["runs"].items():
        results.append(read_run(os.path.join(folder, name), run["status"], run.get("message"),
                                (run["dataset"], run["activation"], run["seed"])))
    for name in sorted(os.listdir(folder)):
        run_dir = os.path.join(folder, name)
        if name not in state["runs"] and os.path.isfile(os.path.join(run_dir, "config.json")):
            results.append(read_run(run_dir, "complete" if _metrics(run_dir).get("complete") else "incomplete"))
    return results


@dataclasses.dataclass
class Group:
    """The runs of one (dataset, activation); statistics are over the complete ones."""

    dataset: str
    activation: str
    runs: list

    @functools.cached_property
    def complete(self):
        return [run for run in self.runs if run.status == "complete"]

    def statistic(self, attribute):
        """(mean, sample std or None) of ``attribute`` over the complete runs, or None without any."""
        values = [getattr(run, attribute) for run in self.complete if getattr(run, attribute) is not None]
        if not values:
            return None
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None

    @functools.cached_property
    def final_activations(self):
        """``{layer: (mean over seeds of the final mean, of the final std)}``."""
        layers = dict.fromkeys(layer for run in self.complete for layer in run.activations)
        return {layer: tuple(float(np.mean([run.activations[layer][index] for run in self.complete
                                            if layer in run.activations])) for index in (0, 1))
                for layer in layers}


def group_runs(results):
    """Groups per dataset (first-seen order), best mean final test accuracy first."""
    groups = {}
    for result in results:
        groups.setdefault((result.dataset, result.activation), []).append(result)
    groups = [Group(dataset, activation, runs) for (dataset, activation), runs in groups.items()]
    datasets = list(dict.fromkeys(group.dataset for group in groups))

    def rank(group):
        accuracy = group.statistic("final_accuracy")
        return datasets.index(group.dataset), -accuracy[0] if accuracy else 1.0  # no complete run: last

    return sorted(groups, key=rank)


def _mean_std(statistic, digits):
    if statistic is None:
        return "–"
    mean, std = statistic
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def _number(value, digits):
    return "–" if value is None else f"{value:.{digits}f}"


def _tally(statuses):
    """``"3 complete, 1 failed"``."""
    return ", ".join(f"{count} {status}" for status, count in sorted(collections.Counter(statuses).items()))


def _seeds_cell(group):
    others = [run.status for run in group.runs if run.status != "complete"]
    return str(len(group.complete)) + (f" of {len(group.runs)} ({_tally(others)})" if others else "")


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def summary_table(groups):
    lines = [f"| dataset | activation | seeds | final test accuracy | best test accuracy | {PROGRESS_COLUMN} "
             "| images/s |", "|---|---|---|---|---|---|---|"]
    for group in groups:
        lines.append(f"| {group.dataset} | {group.activation} | {_seeds_cell(group)} "
                     f"| {_mean_std(group.statistic('final_accuracy'), 4)} "
                     f"| {_mean_std(group.statistic('best_accuracy'), 4)} "
                     f"| {_mean_std(group.statistic('steps_to_progress'), 0)} "
                     f"| {_mean_std(group.statistic('images_per_s'), 0)} |")
    return lines


def winners(groups):
    lines = []
    for dataset in dict.fromkeys(group.dataset for group in groups):
        ranked = [group for group in groups if group.dataset == dataset and group.statistic("final_accuracy")]
        if ranked:
            best = ranked[0]
            lines.append(f"**{dataset}: {best.activation}** has the best final test accuracy, "
                         f"{_mean_std(best.statistic('final_accuracy'), 4)} over {_count(len(best.complete), 'seed')}.")
    return lines or ["No run is complete yet."]


def activation_tables(groups):
    lines = []
    for dataset in dict.fromkeys(group.dataset for group in groups):
        columns = [group for group in groups if group.dataset == dataset and group.final_activations]
        if not columns:
            continue
        layers = list(dict.fromkeys(layer for group in columns for layer in group.final_activations))
        lines += ["", f"### {dataset}", "", "| layer | " + " | ".join(group.activation for group in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for layer in layers:
            cells = []
            for group in columns:
                statistics = group.final_activations.get(layer)
                cells.append("–" if statistics is None else f"{statistics[0]:.4g} / {statistics[1]:.4g}")
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return lines


def runs_table(results):
    lines = [f"| run | status | step | final test accuracy | best test accuracy | {PROGRESS_COLUMN} | images/s |",
             "|---|---|---|---|---|---|---|"]
    for run in results:
        lines.append(f"| {run.name} | {run.status} | {_number(run.step, 0)} "
                     f"| {_number(run.final_accuracy, 4)} | {_number(run.best_accuracy, 4)} "
                     f"| {_number(run.steps_to_progress, 0)} | {_number(run.images_per_s, 0)} |")
    return lines


def failure_lines(results):
    return [f"- {run.name}: {run.status}: {run.message or 'no output'} (log: {LOG_DIR}/{run.name}.log)"
            for run in results if run.status == "failed"]


@dataclasses.dataclass
class Report:
    folder: str
    results: list
    groups: list
    markdown: str


def build_report(folder):
    """The report of ``folder`` (nothing written)."""
    if not os.path.isdir(folder):
        raise UsageError(f"{folder} is not a folder; give a comparison folder (e.g. train_dir/compare-digits)")
    results = read_runs(folder)
    if not results:
        raise UsageError(f"{folder} holds no run directories (folders with a config.json written by trainer.py)")
    groups = group_runs(results)
    state = read_state(folder) or {}
    lines = ["# Activation comparison", "", f"{len(results)} runs: {_tally(run.status for run in results)}."]
    if state.get("trainer_args") is not None:
        lines.append(f"Trainer flags shared by every run: `{shlex.join(state['trainer_args']) or '(defaults)'}`.")
    lines += ["", *winners(groups), "", "## Test accuracy (mean ± std over seeds)", "", *summary_table(groups), "",
              f"![test accuracy and loss]({REPORT_FIGURE})", ""]
    activation_lines = activation_tables(groups)
    if activation_lines:
        lines += ["## Activations at the end of training", "",
                  "Mean / std of each activation layer's output on the monitor sample at the last step "
                  "(averaged over seeds).", *activation_lines, ""]
    lines += ["## Runs", "", *runs_table(results), ""]
    failed = failure_lines(results)
    if failed:
        lines += ["Failed runs:", "", *failed, ""]
    return Report(folder, results, groups, "\n".join(lines))


def write_report(folder):
    """Write ``comparison.md`` and ``comparison.png`` into ``folder`` (each atomically); return the Report."""
    report = build_report(folder)
    markdown_path = os.path.join(folder, REPORT_MARKDOWN)
    with open(markdown_path + ".tmp", "w") as handle:
        handle.write(report.markdown)
    os.replace(markdown_path + ".tmp", markdown_path)
    figure_path = os.path.join(folder, REPORT_FIGURE)
    activations = list(dict.fromkeys(run.activation for run in report.results))  # the order of the plan
    curves_figure(report.groups, activations).savefig(figure_path + ".tmp", format="png", dpi=100)
    os.replace(figure_path + ".tmp", figure_path)
    return report


def report_text(report):
    """What the terminal shows: the winners, the summary table, the failures and where the report is."""
    lines = ["", *winners(report.groups), "", *summary_table(report.groups)]
    failed = failure_lines(report.results)
    if failed:
        lines += ["", "Failed runs:", *failed]
    lines += ["", f"report: {os.path.join(report.folder, REPORT_MARKDOWN)}, "
                  f"{os.path.join(report.folder, REPORT_FIGURE)}"]
    return "\n".join(lines)


def mean_curve(runs, attribute):
    """(steps, mean, std) over the steps that every run has; std is zero for a single run."""
    curves = [dict(getattr(run, attribute)) for run in runs]
    steps = sorted(set.intersection(*(set(curve) for curve in curves)))
    values = np.array([[curve[step] for step in steps] for curve in curves])
    std = values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(steps))
    return np.array(steps), values.mean(axis=0), std


def curves_figure(groups, activations):
    """Test accuracy and loss against step, one row per dataset, one colour per activation (its place in
    ``activations``), ± std across seeds shaded."""
    datasets = list(dict.fromkeys(group.dataset for group in groups))
    figure = Figure(figsize=(11, 3.8 * len(datasets)), layout="constrained")
    axes = figure.subplots(len(datasets), 2, squeeze=False)
    for row, dataset in enumerate(datasets):
        for column, (attribute, label) in enumerate((("test_accuracy", "test accuracy"), ("test_loss", "test loss"))):
            ax = axes[row, column]
            for group in groups:
                runs = [run for run in group.complete if getattr(run, attribute)]
                if group.dataset != dataset or not runs:
                    continue
                steps, mean, std = mean_curve(runs, attribute)
                color = f"C{activations.index(group.activation) % 10}"
                ax.plot(steps, mean, color=color, marker=".",
                        label=f"{group.activation} ({_count(len(runs), 'seed')})")
                ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
            ax.set(title=f"{dataset}: {label}", xlabel="step", ylabel=label)
            ax.grid(alpha=0.3)
            if ax.has_data():
                ax.legend()
            else:
                ax.text(0.5, 0.5, "no complete run", ha="center", va="center", transform=ax.transAxes)
    return figure
