"""What Ray adds to each run of a comparison: the same small grid with script.py locally and with --ray on
a two-node Ray cluster started on this machine (ray.cluster_utils.Cluster, 127.0.0.1 only).

Both sides train the same runs two at once with one TensorFlow thread each: locally ``--parallel 2``; on
Ray a head node without CPUs (the driver's) and two one-CPU worker nodes with ``--cpus_per_run 1``. The
cluster is started before and shut down after each of its rounds (its start is not a per-run cost), and
the sides alternate (local, Ray, Ray, local, ...) so that slow drifts of a shared machine hit both alike.

From script.py's output (timestamped as it arrives) and runs.json (polled), per run:

- **start**: from the moment its place freed (the comparison's first line for the first runs; the
  completion of the run it replaces for the others) to its first ``step`` line: process or task start,
  TensorFlow start-up, data, tracing and the first ``--test_sample_step`` steps;
- **end**: from its last line (trainer.py's summary) to runs.json marking it complete;
- and per comparison, **ready**: script.py's start to its first line (Ray: connecting, the storage check);
  **report**: the last completion to the report's last line.

Ray's added cost per run is (start + end on Ray) - (start + end locally), medians over runs and rounds.

    python bench/ray_overhead.py --data_dir DATASETS            # one round each side (L R R L with --rounds 2)
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Ray's switch that keeps a single-machine cluster on loopback (read when ray is imported).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="datasets folder (digits is converted there if missing)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (local, Ray) pairs, alternating")
    parser.add_argument("--activations", nargs="+", default=["relu", "lrelu"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    return parser.parse_args()


def trainer_flags(args):
    return ["--data_dir", args.data_dir, "--max_training_steps", str(args.steps), "--log_step", "20",
            "--test_sample_step", "40", "--output_save_step", "40", "--monitor_step", "100", "--learning_rate",
            "3e-3"]


def comparison(args, train_dir, extra):
    """Run script.py; return (arrival time of each output line, runs.json status changes), clock from its
    start."""
    command = [sys.executable, os.path.join(ROOT, "script.py"), "--activations", *args.activations, "--seeds",
               str(args.seeds), "--train_dir", train_dir, "--no_tensorboard", "--exit_when_done", *extra, "--",
               *trainer_flags(args)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines, completed, stop = [], {}, threading.Event()

    def watch_state():
        while not stop.is_set():
            for path in _state_files(train_dir):
                try:
                    with open(path) as handle:
                        runs = json.load(handle)["runs"]
                except (OSError, ValueError):
                    continue
                for run in runs:
                    if run["status"] == "complete" and run["name"] not in completed:
                        completed[run["name"]] = time.perf_counter() - start
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_state, daemon=True)
    watcher.start()
    for line in process.stdout:
        lines.append((time.perf_counter() - start, line.rstrip()))
    stop.set()
    watcher.join()
    if process.wait():
        raise SystemExit(f"script.py failed (exit {process.returncode}):\n" + "\n".join(text for _, text in lines))
    return lines, completed


def _state_files(train_dir):
    return [os.path.join(train_dir, name, "runs.json") for name in os.listdir(train_dir)] if os.path.isdir(
        train_dir) else []


def latencies(lines, completed, slots):
    """Per run (start, end) seconds, and the comparison's (ready, report) seconds."""
    first_line = next(t for t, text in lines if text.startswith("comparison "))
    report_line = max(t for t, text in lines if text.startswith("report: "))
    first_step, last_line = {}, {}
    for t, text in lines:
        match = re.match(r"\[(\S+)\] (.*)", text)
        if match:
            name, rest = match.groups()
            if rest.startswith("step ") and name not in first_step:
                first_step[name] = t
            if re.search(r": step \d+, test accuracy", rest):
                last_line[name] = t
    order = list(first_step)  # the order runs started in: the plan's, as places freed
    freed = [first_line] * slots + sorted(completed.values())
    starts = [first_step[name] - freed[index] for index, name in enumerate(order)]
    ends = [completed[name] - last_line[name] for name in order]
    return starts, ends, first_line, report_line - max(completed.values())


def ray_round(args, train_dir):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes(timeout=120)
        return comparison(args, train_dir, ["--ray", cluster.address, "--cpus_per_run", "1"])
    finally:
        cluster.shutdown()


def main():
    args = parse_args()
    sides = {"local": lambda train_dir: comparison(args, train_dir, ["--parallel", "2"]),
             "ray": lambda train_dir: ray_round(args, train_dir)}
    samples = {side: {"start": [], "end": [], "ready": [], "report": [], "wall": []} for side in sides}
    load_before = os.getloadavg()[0]
    for round_index in range(args.rounds):
        for side in (["local", "ray"] if round_index % 2 == 0 else ["ray", "local"]) * 1:
            with tempfile.TemporaryDirectory() as train_dir:
                lines, completed = sides[side](train_dir)
            starts, ends, ready, report = latencies(lines, completed, slots=2)
            samples[side]["start"] += starts
            samples[side]["end"] += ends
            samples[side]["ready"].append(ready)
            samples[side]["report"].append(report)
            samples[side]["wall"].append(lines[-1][0])
            print(f"round {round_index + 1} {side}: wall {lines[-1][0]:.1f} s, start per run "
                  f"{', '.join(f'{s:.1f}' for s in starts)} s, end per run {', '.join(f'{e:.2f}' for e in ends)} s",
                  flush=True)
    median = {side: {key: statistics.median(values) for key, values in measured.items()}
              for side, measured in samples.items()}
    runs = len(args.activations) * args.seeds
    import ray

    print(f"\n{runs} digits runs of {args.steps} steps, 2 at once, {args.rounds} round(s) per side "
          f"(L R R L ...), {platform.machine()}, {os.cpu_count()} CPUs, Ray {ray.__version__}; load average "
          f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n")
    print("| per run (median) | local s | Ray s | Ray - local s |")
    print("|---|---|---|---|")
    for key, label in (("start", "place free -> first step line"), ("end", "last line -> complete in runs.json")):
        print(f"| {label} | {median['local'][key]:.2f} | {median['ray'][key]:.2f} | "
              f"{median['ray'][key] - median['local'][key]:+.2f} |")
    added = (median["ray"]["start"] + median["ray"]["end"]) - (median["local"]["start"] + median["local"]["end"])
    print(f"| **Ray's added cost per run** | | | **{added:+.2f}** |")
    print("\n| per comparison (median) | local s | Ray s | Ray / local |")
    print("|---|---|---|---|")
    for key, label in (("ready", "script.py start -> first line"), ("report", "last completion -> report"),
                       ("wall", "wall time")):
        print(f"| {label} | {median['local'][key]:.1f} | {median['ray'][key]:.1f} | "
              f"{median['ray'][key] / median['local'][key]:.2f} |")


if __name__ == "__main__":
    main()
