"""Training a comparison's runs on a Ray cluster (``script.py --ray ADDRESS``): one Ray task per run.

``RayPool`` is a ``keras_frelu.compare.pool.Pool``; the comparison's bookkeeping stays in
``runner.Comparison``. How it works (tasks, shared storage, logs, Ctrl-C, dying nodes): docs/ray.md.
"""

import contextlib
import math
import os
import socket
import time
import uuid

from keras_frelu.compare.ray_node import HEADER, POLL_S, check_node, train_run
from keras_frelu.errors import UsageError, first_line

INSTALL_HINT = "--ray needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]')"
MAX_RETRIES = 3  # node deaths a run survives
CHECK_TIMEOUT_S = 180  # each node starts a worker for the check; slow on a loaded machine
CONNECT_TIMEOUT_S = 10


def import_ray(address):
    """The ``ray`` module, or UsageError saying how to install it. ``local`` keeps the private cluster
    on 127.0.0.1."""
    if address == "local":
        # Ray's switch (its default on macOS and Windows) that binds a single-machine cluster to loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def connect(address, cpus):
    """Connect to the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or start a private
    one with ``cpus`` CPUs (``local``); UsageError in one line if there is none."""
    import logging

    ray = import_ray(address)
    options = {"log_to_driver": False, "logging_level": logging.ERROR}  # our own lines tell what happens
    if address == "local":
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, **options)
        return ray
    _check_reachable(ray, address)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UsageError(f"--ray {address}: cannot connect ({first_line(error)}); start a cluster with "
                         "ray start --head, or use --ray local") from None
    return ray


def _check_reachable(ray, address):
    """UsageError unless something listens at the cluster's address: ray.init would retry for minutes."""
    target = address
    if not address.startswith("ray://"):
        try:
            from ray._private.services import canonicalize_bootstrap_address  # where ray.init resolves auto

            target = canonicalize_bootstrap_address(address)
        except (ImportError, ValueError, ConnectionError) as error:
            raise UsageError(f"--ray {address}: {first_line(error)}; start a cluster with ray start --head, "
                             "or use --ray local") from None
        if target is None:
            raise UsageError(f"--ray {address}: no running Ray cluster found; start one with ray start --head, "
                             "or use --ray local")
    host, _, port = target.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise UsageError(f"--ray {address}: no Ray cluster answers at {host}:{port} ({first_line(error)}); "
                         "start one with ray start --head, or use --ray local") from None


def node_label(node):
    return f"{node.get('NodeManagerHostname') or node.get('NodeManagerAddress')} ({node['NodeID'][:12]})"


class RayPool:
    """A ``pool.Pool``: the runs as Ray tasks on the cluster that ``connect`` joined, each asking for
    ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs; at most ``parallel`` at once (default: as many as the
    cluster fits)."""

    poll_s = POLL_S

    def __init__(self, ray, address, cpus_per_run, gpus_per_run, parallel=None, max_retries=MAX_RETRIES):
        self.ray, self.address = ray, address
        self.cpus, self.gpus, self.parallel = cpus_per_run, gpus_per_run, parallel
        # max_calls=1: a fresh worker per run, so nothing of one run (e.g. GPU memory) outlives it.
        self.task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries,
                               max_calls=1)(train_run)
        self.env = {"PYTHONUNBUFFERED": "1", "TF_NUM_INTRAOP_THREADS": str(cpus_per_run),
                    "TF_NUM_INTEROP_THREADS": "1",  # as in local mode: a sequential network
                    # This machine's TensorFlow and Keras settings, as a local run would see them.
                    **{key: value for key, value in os.environ.items() if key.startswith(("TF_", "KERAS_"))}}
        if not gpus_per_run:
            self.env["CUDA_VISIBLE_DEVICES"] = ""  # else TensorFlow takes every GPU of the node
        self._capacity, self._capacity_at = None, -math.inf

    def fits(self, resources):
        """How many runs a node with ``resources`` trains at once."""
        runs = resources.get("CPU", 0) // self.cpus
        if self.gpus:
            runs = min(runs, resources.get("GPU", 0) // self.gpus)
        return int(runs)

    def nodes(self):
        """The live nodes that can take a run."""
        return [node for node in self.ray.nodes() if node["Alive"] and self.fits(node["Resources"])]

    def check_nodes(self, folder, paths):
        """UsageError in one line unless a node can take a run, and each that can sees and writes ``folder``
        (through its nearest existing parent) and has ``paths``. Leaves nothing behind."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        every = [node for node in self.ray.nodes() if node["Alive"]]
        nodes = [node for node in every if self.fits(node["Resources"])]
        if not nodes:
            largest = max(every, key=lambda node: node["Resources"].get("CPU", 0), default={"Resources": {}})
            raise UsageError(
                f"--cpus_per_run {self.cpus} --gpus_per_run {self.gpus:g}: no node of the Ray cluster has that much "
                f"(the largest: {largest['Resources'].get('CPU', 0):g} CPUs, {largest['Resources'].get('GPU', 0):g} "
                "GPUs); ask for less per run or add bigger nodes")
        parent = os.path.abspath(folder)
        while not os.path.isdir(parent):
            parent = os.path.dirname(parent)
        token = uuid.uuid4().hex
        probe_dir = os.path.join(parent, f".ray-check-{token[:12]}")
        check = self.ray.remote(num_cpus=0, max_retries=0)(check_node)
        try:
            try:
                os.mkdir(probe_dir)
                with open(os.path.join(probe_dir, "driver"), "w") as handle:
                    handle.write(token)
            except OSError as error:
                raise UsageError(f"--train_dir: cannot write into {parent} ({error.strerror}); choose a folder this "
                                 "machine and every node can write") from None
            refs = {check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                    .remote(probe_dir, token, paths): node for node in nodes}
            ready, late = self.ray.wait(list(refs), num_returns=len(refs), timeout=CHECK_TIMEOUT_S)
            if late:
                raise UsageError(f"--ray: node {node_label(refs[late[0]])} did not answer the storage check within "
                                 f"{CHECK_TIMEOUT_S} s; check it with ray status, or remove it from the cluster")
            for ref in ready:
                host, node, problem = self.ray.get(ref)
                written = os.path.join(probe_dir, node)
                if problem is None and not _holds(written, token):
                    problem = f"writes {parent} to other storage"
                if problem:
                    raise UsageError(
                        f"--ray: node {host} ({node[:12]}) {problem}; every node needs the comparison folder on "
                        "shared storage (e.g. NFS) and the project, Python and datasets at the same paths as here")
        finally:
            with contextlib.suppress(OSError):
                for name in os.listdir(probe_dir):
                    os.remove(os.path.join(probe_dir, name))
                os.rmdir(probe_dir)
        return nodes

    def begin(self, pending):
        nodes = self.nodes()
        cpus = sum(node["Resources"].get("CPU", 0) for node in nodes)
        gpus = sum(node["Resources"].get("GPU", 0) for node in nodes)
        per_run = f"{self.cpus} CPU(s)" + (f" and {self.gpus:g} GPU(s)" if self.gpus else "")
        return (f"training on the Ray cluster at {self.address}: {len(nodes)} node{'s' * (len(nodes) != 1)} with "
                f"{cpus:g} CPUs and {gpus:g} GPUs, {per_run} per run, {self.slots()} at once")

    def slots(self):
        """Runs in flight: as many as the live nodes fit (looked up every few seconds), so that a run is
        either training or about to."""
        if time.monotonic() - self._capacity_at > 5:
            self._capacity = sum(self.fits(node["Resources"]) for node in self.nodes())
            self._capacity_at = time.monotonic()
        capacity = max(1, self._capacity)  # none fits (nodes died): one waits in Ray's queue for a node
        return min(capacity, self.parallel) if self.parallel else capacity

    def start(self, slot, config, command, log_path, output):
        log_path = os.path.abspath(log_path)
        ref = self.task.options(name=config.run_name()).remote(
            command, os.getcwd(), self.env, log_path, os.path.abspath(os.path.join(config.run_dir(), ".lock")))
        return _RayRun(self.ray, config.run_name(), ref, log_path, output)

    def update(self, handles):
        """Collect the results of the tasks that ended, then echo every run's new log lines (for an ended
        task: its last ones)."""
        waiting = {run.ref: run for run in handles if not run.resolved}
        if waiting:
            ready, _ = self.ray.wait(list(waiting), num_returns=len(waiting), timeout=0)
            for ref in ready:
                waiting[ref].resolve()
        for run in handles:
            run.tail()

    def close(self):
        self.ray.shutdown()


def _holds(path, token):
    try:
        with open(path) as handle:
            return handle.read() == token
    except OSError:
        return False


class _RayRun:
    """One run's Ray task, seen from this process (a ``pool.RunHandle``): its result, and its log file tailed
    from where it ended when the task was submitted; ``RayPool.update`` brings both up to date."""

    def __init__(self, ray, name, ref, log_path, output):
        self.ray, self.name, self.ref, self.log_path, self.output = ray, name, ref, log_path, output
        self.offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        self.resolved, self.exit_code, self.message = False, None, None
        self.started, self.where, self.cancelled = False, None, False

    def tail(self):
        """Echo the log's complete new lines; a line from ``train_run`` says where an attempt started."""
        try:
            with open(self.log_path, "rb") as handle:  # opened anew: NFS shows other hosts' writes on open
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            header = HEADER.match(line)
            if header:
                self.started, self.where = True, f"{header['host']} ({header['node']})"
                self.output.echo(f"[{self.name}] training on {self.where}")
            else:
                self.output.line(line)

    def resolve(self):
        self.resolved = True
        exceptions = self.ray.exceptions
        try:
            self.exit_code = self.ray.get(self.ref)
        except exceptions.TaskCancelledError:
            self.cancelled, self.message = True, "stopped by Ctrl-C"
        except exceptions.RayError as error:  # a worker or node lost for good, retries spent
            self.message = f"Ray: {type(error).__name__}: {first_line(error)}"

    def placed(self):
        if self.where is None:
            return None
        return {"node": self.where, "pid": None}  # pid: local mode's, a process of this machine

    def done(self):
        return self.resolved

    @property
    def never_started(self):
        return self.resolved and self.cancelled and not self.started

    def interrupt(self):
        self.ray.cancel(self.ref)

    def kill(self):
        self.ray.cancel(self.ref, force=True)

    def close(self):
        pass
