"""What the ActivationMonitor costs: reference_cnn training with and without it, side by side in one process.

Runs alternate (without, with, with, without, ...) so that drifts of the machine hit both the same way;
each run builds the model afresh (same seed) and trains ``--steps`` steps with ``model.fit`` on synthetic
images of ``--shape``; the monitor runs at its defaults (every 100 steps, figures every 1000, a final set
at the end) on a fixed sample of 16 images with labels (so gradient norms are included) and statistics over
``--statistics_size`` images, as trainer.py runs it. The wall time of
``fit`` is compared by medians; the overhead is ``median(with) / median(without) - 1``, and the median of
the per-pair ratios (each run with the monitor against the run without it next to it). On a shared machine
those differences of noisy totals can swing by more than the monitor costs, so two steadier figures are
reported too: the CPU time (all threads, and the monitor's figure process) of the runs with and without the
monitor, and the time spent inside the monitor's callback hooks (what training waits for) and the CPU time of
the monitor's background thread (which computes and writes the summaries while training goes on: it costs
training wall time only where it competes for a core or the GIL).

    python bench/monitor_overhead.py --shape 32 32 3 --steps 1000 --repeats 3
"""

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu import models  # noqa: E402
from keras_frelu.cli import ArgumentParser, run  # noqa: E402
from keras_frelu.data import make_dataset  # noqa: E402
from keras_frelu.errors import UsageError  # noqa: E402
from keras_frelu.monitor import ActivationMonitor, figure_process  # noqa: E402
from timing import figure_process_cpu_seconds  # noqa: E402

NUM_CLASSES = 10
SAMPLE_SIZE = 16


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(32, 32, 3), metavar=("H", "W", "C"),
                        help="image shape (default 32 32 3, CIFAR/SVHN; 28 28 1 is MNIST, 8 8 1 digits)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps per run (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind (default 3)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--statistics_size", type=int, default=512,
                        help="images in the monitor's statistics sample, as trainer.py's --monitor_statistics_size "
                             "(default 512; digits' validation split has 144)")
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if min(args.shape) < 1:
        raise UsageError(f"--shape takes three positive sizes, got {args.shape}")
    return args


def synthetic_data(shape, batch_size, seed=0):
    """An endless stream of batches of random images and labels (through the library's input pipeline,
    as trainer.py), and a fixed sample with labels."""
    rng = np.random.default_rng(seed)
    images = rng.random((1024, *shape), dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, 1024).astype(np.int32)
    dataset = make_dataset(images, labels, batch_size, seed=seed, repeat=True, drop_remainder=True)
    return dataset, images[:SAMPLE_SIZE], labels[:SAMPLE_SIZE], images


class TimedMonitor(ActivationMonitor):
    """The monitor with a stopwatch around its hooks; ``background_cpu_seconds``: its thread's CPU time."""

    seconds = 0.0

    @property
    def background_cpu_seconds(self):
        return self._background.cpu_seconds

    def on_train_begin(self, logs=None):
        self._timed(super().on_train_begin, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._timed(super().on_train_batch_end, batch, logs)

    def on_train_end(self, logs=None):
        self._timed(super().on_train_end, logs)

    def _timed(self, hook, *args):
        start = time.perf_counter()
        hook(*args)
        self.seconds += time.perf_counter() - start


def timed_fit(args, dataset, steps, make_monitor=None):
    """``(wall seconds, CPU seconds of the process and the monitor's figure process, the monitor or None)`` of
    one fresh model's ``fit``; the monitor, if any, is made on the clock, just before ``fit`` (making it
    starts its figure process)."""
    keras.utils.set_random_seed(0)
    model = models.reference_cnn(tuple(args.shape), NUM_CLASSES, activation=args.activation)
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    start, start_cpu = time.perf_counter(), time.process_time() + figure_process_cpu_seconds()
    monitor = make_monitor() if make_monitor else None
    model.fit(dataset, epochs=1, steps_per_epoch=steps, callbacks=[monitor] if monitor else [], verbose=0,
              shuffle=False)
    wall, cpu = time.perf_counter() - start, time.process_time() + figure_process_cpu_seconds() - start_cpu
    figure_process.shared().close()  # each run starts its own, as each trainer.py process does
    return wall, cpu, monitor


def main(argv=None):
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    dataset, sample, labels, pool = synthetic_data(tuple(args.shape), args.batch_size)
    statistics_sample = pool[:args.statistics_size]
    timed_fit(args, dataset, 20)  # warm-up: TensorFlow's one-time start-up costs belong to neither side
    runs = {"without": [], "with": [], "inside": [], "background": []}
    with tempfile.TemporaryDirectory() as log_root:
        for repeat in range(args.repeats):
            def make_monitor():
                return TimedMonitor(os.path.join(log_root, f"run{repeat}"), sample=sample, labels=labels,
                                    statistics_sample=statistics_sample)
            # A B B A: a drift of the machine (or of the process) over the runs favours neither side
            for kind in ("without", "with") if repeat % 2 == 0 else ("with", "without"):
                wall, cpu, monitor = timed_fit(args, dataset, args.steps, make_monitor if kind == "with" else None)
                runs[kind].append((wall, cpu))
                if monitor:
                    monitored = monitor
                    runs["inside"].append(monitor.seconds / wall)
                    runs["background"].append(monitor.background_cpu_seconds / wall)
            (wall, cpu), (monitored_wall, monitored_cpu) = runs["without"][-1], runs["with"][-1]
            print(f"repeat {repeat + 1}/{args.repeats}: without {wall:.2f} s ({cpu:.2f} CPU s), with "
                  f"{monitored_wall:.2f} s ({monitored_cpu:.2f} CPU s) of which {monitored.seconds:.2f} s in the "
                  f"monitor's hooks, and {monitored.background_cpu_seconds:.2f} CPU s in its background thread", flush=True)
    without, with_monitor = (statistics.median(wall for wall, _ in runs[kind]) for kind in ("without", "with"))
    cpu_without, cpu_with = (statistics.median(cpu for _, cpu in runs[kind]) for kind in ("without", "with"))
    pair_ratio = statistics.median(w[0] / o[0] for o, w in zip(runs["without"], runs["with"]))
    shape = "x".join(map(str, args.shape))
    print(f"reference_cnn ({args.activation}), {shape} images, batch {args.batch_size}, {args.steps} steps, "
          f"statistics over {len(statistics_sample)} images, "
          f"{args.repeats} runs each: median wall without monitor {without:.2f} s "
          f"({without / args.steps * 1000:.1f} ms/step), with {with_monitor:.2f} s: overhead "
          f"{with_monitor / without - 1:+.1%} (median of pair ratios {pair_ratio - 1:+.1%}); median CPU without "
          f"{cpu_without:.2f} s, with {cpu_with:.2f} s: {cpu_with / cpu_without - 1:+.1%}; inside the monitor's "
          f"hooks: median {statistics.median(runs['inside']):.1%} of the monitored run's wall time, background "
          f"thread CPU: median {statistics.median(runs['background']):.1%} of it; "
          f"load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    run(main)
