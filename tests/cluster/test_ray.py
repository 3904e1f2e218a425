"""script.py --ray on a real Ray cluster that each test starts on this machine (ray.cluster_utils.Cluster,
everything on 127.0.0.1): a head node without CPUs, which script.py's driver joins, and two worker nodes with
one CPU each, so that runs asking for one CPU must spread over both. The runs are short digits runs.

Run separately from the main suite (they need Ray and take minutes):
    .venv/bin/python -m pytest tests/cluster
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

# Ray's switch that keeps a single-machine cluster on loopback (read when ray is imported, here and in
# every process started from here).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import pytest  # noqa: E402
from helpers import CLI_ENV, free_port, popen_cli, read_json, run_cli, wait_for  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from test_compare import RUN, TRAINER_FLAGS, poison, row, runs_of, table  # noqa: E402

from keras_frelu import checkpoints  # noqa: E402

ENV = {**CLI_ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
NODE_PROCESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_process.py")
TIMEOUT_S = 900  # a loaded two-core machine: three raylets, two trainers and TensorFlow start-ups
HEADER = re.compile(r"^=== \S+ \S+ on \S+ \(Ray node ([0-9a-f]+)\)", re.MULTILINE)


@pytest.fixture
def cluster():
    """A head node (no CPUs: script.py's driver joins it, no run lands on it) and two one-CPU worker nodes."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes(timeout=120)
        yield cluster, workers
    finally:
        cluster.shutdown()


def script_args(cluster, train_dir, data_dir, *comparison, trainer_flags=TRAINER_FLAGS):
    return ["--ray", cluster.address, "--cpus_per_run", 1, "--train_dir", train_dir, *comparison,
            "--", "--data_dir", data_dir, *trainer_flags]


def only_folder(train_dir):
    folders = list(train_dir.glob("compare-digits-*"))
    return folders[0] if len(folders) == 1 else None


def node_of(run):
    """The Ray node id (as runs.json abbreviates it) a run trained on last, from runs.json's ``node``."""
    return re.fullmatch(r"\S+ \(([0-9a-f]+)\)", run["node"]).group(1)


def trainer_pid(run_dir):
    """The process id of the last trainer that wrote the run, from its lock file (keras_frelu.rundir)."""
    return int(re.match(r"process (\d+) on ", (run_dir / ".lock").read_text()).group(1))


def assert_gone(pid):
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_runs_spread_over_both_nodes_and_report_equals_each_runs_metrics(cluster, data_dir, tmp_path):
    cluster, workers = cluster
    train_dir = tmp_path / "runs"
    result = run_cli("script.py", *script_args(cluster, train_dir, data_dir, "--activations", "relu", "lrelu",
                                               "--seeds", 2, "--no_tensorboard", "--exit_when_done"),
                     env=ENV, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = only_folder(train_dir)
    names = [RUN.format(activation, seed) for seed in (0, 1) for activation in ("relu", "lrelu")]
    runs = runs_of(folder)
    assert {name: runs[name]["status"] for name in names} == dict.fromkeys(names, "complete")
    worker_ids = {worker.node_id[:12] for worker in workers}
    assert {node_of(runs[name]) for name in names} == worker_ids  # both nodes trained runs, the head none

    per_run = table((folder / "comparison.md").read_text(), "run")
    for name in names:
        metrics = read_json(folder / name / "metrics.json")
        assert metrics["complete"] and metrics["step"] == 200
        assert row(per_run, name, ("status", "step", "final test accuracy", "best validation accuracy")) == [
            "complete", "200", f"{metrics['test_accuracy']:.4f}", f"{metrics['best_validation_accuracy']:.4f}"]
        # Streamed back with the run's name: where it trained, its progress and its last line.
        assert f"[{name}] training on " in result.stdout
        assert f"[{name}] step 200: test accuracy {metrics['test_accuracy']:.4f}" in result.stdout
        log = (folder / "logs" / f"{name}.log").read_text()
        assert HEADER.findall(log) == [node_of(runs[name])]
        assert runs[name]["message"] in log and "step 200" in runs[name]["message"]
    assert "training on the Ray cluster at" in result.stdout and "2 nodes with 2 CPUs" in result.stdout
    assert "| digits | lrelu | 2 |" in result.stdout
    assert not list(train_dir.rglob(".ray-check-*"))  # the storage check leaves nothing behind


def test_a_run_whose_node_dies_resumes_on_the_other_node_from_its_checkpoint(cluster, data_dir, tmp_path):
    cluster, workers = cluster
    train_dir = tmp_path / "runs"
    steps = 400  # long enough to be killed between its first checkpoint (step 40) and its end
    flags = [*TRAINER_FLAGS[2:], "--max_training_steps", steps]
    name = RUN.format("relu", 0)
    with open(tmp_path / "out", "w") as out:
        process = popen_cli("script.py", *script_args(cluster, train_dir, data_dir, "--activations", "relu",
                                                      "--no_tensorboard", "--exit_when_done", trainer_flags=flags),
                            env=ENV, stdout=out, stderr=out)
        try:
            folder = lambda: only_folder(train_dir)  # noqa: E731
            wait_for(lambda: folder() and checkpoints.list_checkpoints(str(folder() / name))
                     and runs_of(folder())[name].get("node"), "a first checkpoint", process, TIMEOUT_S)
            first_node = node_of(runs_of(folder())[name])
            first_trainer = trainer_pid(folder() / name)
            (dying,) = [worker for worker in workers if worker.node_id.startswith(first_node)]
            cluster.remove_node(dying, allow_graceful=False)  # every process of the node killed at once
            assert process.wait(timeout=TIMEOUT_S) == 0, (tmp_path / "out").read_text()
        finally:
            process.kill()
    folder = folder()
    assert_gone(first_trainer)  # it died with its node: it is not writing beside the retry
    run = runs_of(folder)[name]
    (survivor,) = [worker.node_id[:12] for worker in workers if worker is not dying]
    assert run["status"] == "complete" and node_of(run) == survivor
    log = (folder / "logs" / f"{name}.log").read_text()
    assert HEADER.findall(log) == [first_node, survivor]
    resumed_at = read_json(folder / name / "config.json")["start_step"]
    assert resumed_at >= 40 and resumed_at % 40 == 0  # from a checkpoint, not from scratch
    history = read_json(folder / name / "metrics.json")["history"]
    assert [record["step"] for record in history] == list(range(20, steps + 1, 20))  # continuous, no repeats
    assert read_json(folder / name / "metrics.json")["complete"]
    output = (tmp_path / "out").read_text()
    assert output.count(f"[{name}] training on ") == 2


@pytest.mark.usefixtures("terminal_signals")
def test_ctrl_c_stops_every_task_and_a_rerun_keeps_complete_runs(cluster, data_dir, tmp_path):
    cluster, workers = cluster
    train_dir = tmp_path / "runs"
    names = [RUN.format(activation, seed) for seed in (0, 1) for activation in ("relu", "lrelu")]
    comparison = ["--activations", "relu", "lrelu", "--seeds", 2]
    folder = lambda: only_folder(train_dir)  # noqa: E731

    def statuses():
        return {name: run["status"] for name, run in runs_of(folder()).items()} if folder() else {}

    def one_complete_one_halfway():
        """A complete run, and a running one with a checkpoint well before its end (step 40 to 120)."""
        done = [name for name, status in statuses().items() if status == "complete"]
        return done and any(40 <= (checkpoints.list_checkpoints(str(folder() / name)) or [(0, None)])[-1][0] <= 120
                            for name in names if name not in done and statuses()[name] == "running")

    # 1. Ctrl-C once a run is complete and another has a checkpoint: every task stops, runs.json says so.
    with open(tmp_path / "first.out", "w") as out:
        process = popen_cli("script.py", *script_args(cluster, train_dir, data_dir, *comparison, "--no_tensorboard"),
                            env=ENV, stdout=out, stderr=out)
        try:
            wait_for(one_complete_one_halfway, "a complete run and one halfway", process, TIMEOUT_S)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=300) == 130, (tmp_path / "first.out").read_text()
        finally:
            process.kill()
    assert "stopping " in (tmp_path / "first.out").read_text()
    folder = folder()
    first = runs_of(folder)
    complete = [name for name in names if first[name]["status"] == "complete"]
    interrupted = [name for name in names if first[name]["status"] == "interrupted"]
    assert complete and interrupted and set(complete) | set(interrupted) | {
        name for name in names if first[name]["status"] == "pending"} == set(names)
    interrupted_at = {}
    for name in interrupted:
        assert_gone(trainer_pid(folder / name))  # stopped, not left training on its node
        if checkpoints.list_checkpoints(str(folder / name)):
            step, path = checkpoints.list_checkpoints(str(folder / name))[-1]
            assert int(checkpoints.load_checkpoint(path).optimizer.iterations.numpy()) == step < 200
            interrupted_at[name] = step
    assert interrupted_at
    failing = next(iter(interrupted_at))
    poison(folder / failing)  # it diverges when it resumes: reported as failed while the others go on
    kept = {name: ((folder / name / "metrics.json").stat().st_mtime_ns, (folder / "logs" / f"{name}.log").read_text())
            for name in complete}

    # 2. The same command resumes; TensorBoard serves the folder until Ctrl-C after the report.
    port = free_port()
    with open(tmp_path / "second.out", "w") as out:
        process = popen_cli("script.py", *script_args(cluster, train_dir, data_dir, *comparison, "--port", port),
                            env=ENV, stdout=out, stderr=out)
        try:
            wait_for(lambda: (folder / "comparison.md").exists(), "the report", process, TIMEOUT_S)
            with urllib.request.urlopen(f"http://localhost:{port}/data/runs", timeout=30) as response:
                listed = response.read().decode()
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=120) == 1, (tmp_path / "second.out").read_text()  # one run failed
        finally:
            process.kill()
    output = (tmp_path / "second.out").read_text()
    assert f"{len(complete)} already complete" in output
    runs = runs_of(folder)
    assert {name: runs[name]["status"] for name in names} == {
        name: "failed" if name == failing else "complete" for name in names}
    assert "NaN/inf at step" in runs[failing]["message"] and f"[{failing}] failed (" in output
    assert f"{failing}: failed" in output  # and in the report's summary
    for name in names:
        assert f'"{name}/' in listed, (name, listed)
    for name, (mtime, log) in kept.items():  # not run again: untouched, no new attempt in its log
        assert (folder / name / "metrics.json").stat().st_mtime_ns == mtime
        assert (folder / "logs" / f"{name}.log").read_text() == log
        assert f"[{name}] training on" not in output
    for name, step in interrupted_at.items():  # resumed from where Ctrl-C left it (then one diverged)
        assert read_json(folder / name / "config.json")["start_step"] == step
    for name in set(names) - {failing}:
        history = read_json(folder / name / "metrics.json")["history"]
        assert [record["step"] for record in history] == list(range(20, 201, 20))


def test_bad_cluster_input_is_one_line_and_writes_nothing(cluster, data_dir, tmp_path):
    cluster, workers = cluster
    train_dir = tmp_path / "runs"
    common = ["--train_dir", train_dir, "--no_tensorboard", "--", "--data_dir", data_dir, *TRAINER_FLAGS]
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    cases = [(["--ray", address], f"--ray {address}: no Ray cluster answers at {address}"),
             (["--ray", cluster.address, "--cpus_per_run", 2],
              "--cpus_per_run 2 --gpus_per_run 0: no node of the Ray cluster has that much (the largest: 1 CPUs")]
    for arguments, expected in cases:
        result = run_cli("script.py", *arguments, *common, env=ENV, timeout=300)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert len(lines) == 1 and lines[0].startswith("script.py: error: ") and expected in lines[0], lines
        assert not train_dir.exists()


def test_a_node_that_does_not_see_the_folder_is_named_in_one_line_before_anything_is_written(cluster, data_dir,
                                                                                               tmp_path):
    cluster, workers = cluster
    # A third worker node whose processes see an empty tmpfs where this machine has tmp_path.
    node = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             'mount -t tmpfs none "$1" && exec "$2" "$3" "$4"', "sh", tmp_path, sys.executable,
                             NODE_PROCESS, cluster.address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV)
    try:
        started = next((line for line in node.stdout if "node started" in line or "Error" in line), "ended")
        assert started == "node started\n", started
        before = sorted(path.name for path in tmp_path.iterdir())
        result = run_cli("script.py", *script_args(cluster, tmp_path / "runs", data_dir, "--no_tensorboard"),
                         env=ENV, timeout=600)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert len(lines) == 1 and lines[0].startswith("script.py: error: --ray: node "), lines
        assert f"does not see {tmp_path} as this machine does; every node needs the comparison folder on shared " \
               "storage" in lines[0]
        assert sorted(path.name for path in tmp_path.iterdir()) == before  # the check's files are gone too
    finally:
        node.terminate()
        node.wait(timeout=60)
        node.stdout.close()


HOLDER = """
import fcntl, os, socket, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.write(f"process {os.getpid()} on {socket.gethostname()} (an attempt Ray gave up on)\\n")
handle.flush()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_retried_run_waits_for_the_writer_that_still_holds_its_lock(cluster, data_dir, tmp_path):
    from keras_frelu.compare import plan
    from keras_frelu.config import build_parser as trainer_parser

    cluster, workers = cluster
    train_dir = tmp_path / "runs"
    name = RUN.format("relu", 0)
    base = plan.trainer_config(trainer_parser(), ["--data_dir", str(data_dir), *map(str, TRAINER_FLAGS)])
    run_dir = train_dir / plan.default_name(base, ["digits"]) / name
    run_dir.mkdir(parents=True)
    # The comparison folder must look like script.py's own: an earlier attempt made it.
    (run_dir.parent / "runs.json").write_text('{"runs": [], "trainer_args": []}')
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, run_dir / ".lock", "20"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        released_at = time.time() + 20  # the holder's end, and its lock's
        result = run_cli("script.py", *script_args(cluster, train_dir, data_dir, "--activations", "relu",
                                                   "--no_tensorboard", "--exit_when_done"), env=ENV, timeout=TIMEOUT_S)
        assert holder.poll() == 0  # it held the lock to its end
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert result.returncode == 0, result.stdout + result.stderr
    log = (run_dir.parent / "logs" / f"{name}.log").read_text()
    assert f"waiting for process {holder.pid} on " in log
    # Without the wait trainer.py would have refused (RunLocked, exit 2): it started once the holder ended.
    assert (run_dir / "config.json").stat().st_mtime >= released_at
    assert read_json(run_dir / "metrics.json")["complete"]
    assert read_json(run_dir / "config.json")["start_step"] == 0
