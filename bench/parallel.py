"""How to share the CPU between the runs of a comparison: wall time of the same runs trained with K at
once and T TensorFlow threads each, relative to one at a time with every core.

Each setting trains the same ``--runs`` trainer.py runs (digits, no monitor) as script.py does, K child
processes at once with ``TF_NUM_INTRAOP_THREADS=T`` (and one inter-op thread); "default" leaves
TensorFlow's own thread counts (every core, in every child). Settings are measured in interleaved rounds
(A, B, C, A, B, C, ...) so that slow drifts of a shared machine hit each alike; the table gives the median
wall time over rounds and its ratio to the first setting. ``--append`` adds the table, with the command,
to bench/RESULTS.md.

    python bench/parallel.py                     # settings for this machine's cores
    python bench/parallel.py --rounds 5 --steps 1000 --append
"""

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keras_frelu.compare import resources  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "bench"))
from timing import append_results  # noqa: E402


def settings(cpus):
    """(K runs at once, T threads each or None for TensorFlow's default), the baseline first."""
    candidates = [(1, cpus), (max(1, cpus // 2), 2), (cpus, 1), (cpus, None)]
    return list(dict.fromkeys(candidates))


def train_all(runs, parallel, threads, steps, data_dir, train_dir):
    """Wall seconds to train ``runs`` runs, ``parallel`` at once."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads is not None:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1")
    commands = [[sys.executable, os.path.join(ROOT, "trainer.py"), "--no_monitor", "--no_progress",
                 "--max_training_steps", str(steps), "--log_step", "50", "--test_sample_step", str(steps),
                 "--output_save_step", str(steps), "--data_dir", data_dir, "--train_dir", train_dir,
                 "--seed", str(seed)] for seed in range(runs)]
    start = time.perf_counter()
    running = []
    while commands or running:
        while commands and len(running) < parallel:
            running.append(subprocess.Popen(commands.pop(0), env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        for process in list(running):
            if process.poll() is not None:
                if process.returncode:
                    raise SystemExit(f"trainer.py failed with exit code {process.returncode}")
                running.remove(process)
        time.sleep(0.05)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4, help="runs per setting (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=600, help="training steps per run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--data_dir", default=os.path.join(ROOT, "datasets"))
    parser.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()

    cpus = resources.cpu_count()
    candidates = settings(cpus)
    seconds = {setting: [] for setting in candidates}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for setting in candidates:
                train_dir = os.path.join(scratch, f"round{round_index}-{setting[0]}x{setting[1]}")
                seconds[setting].append(train_all(args.runs, *setting, args.steps, args.data_dir, train_dir))
    baseline = statistics.median(seconds[candidates[0]])
    lines = [f"{args.runs} digits runs of {args.steps} steps, {cpus} CPU cores, median of {args.rounds} "
             f"interleaved rounds ({platform.processor() or platform.machine()})", "",
             "| runs at once | TF threads each | wall s | relative to 1 at once |", "|---|---|---|---|"]
    for parallel, threads in candidates:
        wall = statistics.median(seconds[(parallel, threads)])
        lines.append(f"| {parallel} | {threads or 'default'} | {wall:.1f} | {wall / baseline:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.append:
        command = "python bench/parallel.py " + shlex.join(sys.argv[1:])
        append_results("bench/parallel.py", command, table)


if __name__ == "__main__":
    main()
