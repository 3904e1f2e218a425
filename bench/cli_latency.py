"""How long the front doors take to answer --help and bad flags (they must not load TensorFlow for that).

Each command runs as a fresh process ``--repeats`` times, interleaved; prints the median wall time of each
and the load average.

    python bench/cli_latency.py --repeats 5
"""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from keras_frelu import cli  # noqa: E402

COMMANDS = (
    ("trainer.py --help", ["trainer.py", "--help"]),
    ("evaler.py --help", ["evaler.py", "--help"]),
    ("script.py --help", ["script.py", "--help"]),
    ("download.py --help", ["download.py", "--help"]),
    ("trainer.py --batch_size 0", ["trainer.py", "--batch_size", "0"]),
    ("script.py --seeds 0", ["script.py", "--seeds", "0"]),
    ("evaler.py --train_dir missing", ["evaler.py", "--train_dir", "missing"]),
    ("download.py --dataset ImageNet", ["download.py", "--dataset", "ImageNet"]),
    ("python -m keras_frelu.data check missing", ["-m", "keras_frelu.data", "check", "missing"]),
)


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=cli.positive_int, default=5)
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    seconds = {label: [] for label, _ in COMMANDS}
    for _ in range(args.repeats):
        for label, command in COMMANDS:
            start = time.perf_counter()
            subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True)
            seconds[label].append(time.perf_counter() - start)
    for label, _ in COMMANDS:
        print(f"{label:<45} median {statistics.median(seconds[label]):.2f} s (max {max(seconds[label]):.2f} s)")
    print(f"{args.repeats} runs each; load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    cli.run(main)
