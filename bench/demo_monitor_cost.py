"""What the ActivationMonitor costs the default digits demo (``trainer.py --activation frelu``): the demo's
training with the monitor on and with ``--no_monitor``, side by side in one process (A B B A).

Each run is ``keras_frelu.training.train`` with trainer.py's defaults (digits, reference_cnn, 3000 steps,
validation, test evaluations, checkpoints) in a fresh run folder, timed from the call to its return (model
building and the final predictions included); the process start (importing TensorFlow), the same for both,
is left out. Reported: the cost ``median(monitor) / median(no monitor) - 1`` and the median of the pair
ratios (steadier where the machine drifts between runs), and the same two for the CPU time of the runs (all
threads and the figure process).

    python bench/demo_monitor_cost.py --repeats 2
"""

import dataclasses
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu import cli, config  # noqa: E402
from keras_frelu.monitor import figure_process  # noqa: E402
from timing import alternating, figure_process_cpu_seconds  # noqa: E402


def parse_args(argv):
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activation", default="frelu", help="the demo's activation (default frelu)")
    parser.add_argument("--steps", type=cli.positive_int, default=config.DEFAULTS.max_training_steps,
                        help="training steps per run (default: the trainer's, %(default)s)")
    parser.add_argument("--repeats", type=cli.positive_int, default=2, help="pairs of runs (default 2)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.quiet_tensorflow()
    from keras_frelu import training

    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as root:
        base = dataclasses.replace(config.TrainConfig(), activation=args.activation, max_training_steps=args.steps,
                                   data_dir=os.path.join(root, "datasets"), progress=False)
        dataset = training.prepare(base)
        training.train(dataclasses.replace(base, train_dir=os.path.join(root, "warm-up"), max_training_steps=50,
                                           no_monitor=True), dataset)  # TensorFlow's one-time start-up costs
        kinds = {"monitor": base, "no monitor": dataclasses.replace(base, no_monitor=True)}
        times = {kind: [] for kind in kinds}
        for run, kind in enumerate(alternating(("no monitor", "monitor"), args.repeats), 1):  # A B B A
            flags = dataclasses.replace(kinds[kind], train_dir=os.path.join(root, f"run{run}"))
            cpu, start = time.process_time(), time.perf_counter()
            training.train(flags, dataset)
            wall = time.perf_counter() - start
            times[kind].append((wall, time.process_time() + figure_process_cpu_seconds() - cpu))
            figure_process.shared().close()  # each run starts its own, as each trainer.py process does
            print(f"{kind}: {wall:.2f} s ({times[kind][-1][1]:.2f} CPU s)", flush=True)
    (monitor, monitor_cpu), (plain, plain_cpu) = (
        (statistics.median(wall for wall, _ in times[kind]), statistics.median(cpu for _, cpu in times[kind]))
        for kind in ("monitor", "no monitor"))
    pairs, cpu_pairs = (statistics.median(m[index] / p[index] for m, p in zip(times["monitor"], times["no monitor"]))
                        for index in (0, 1))
    print(f"digits demo ({args.activation}, {args.steps} steps), {args.repeats} pairs: median wall {monitor:.2f} s "
          f"with the monitor against {plain:.2f} s without: cost {monitor / plain - 1:+.1%} (median of pair ratios "
          f"{pairs - 1:+.1%}); CPU {monitor_cpu:.2f} s against {plain_cpu:.2f} s: {monitor_cpu / plain_cpu - 1:+.1%} "
          f"(median of pair ratios {cpu_pairs - 1:+.1%}); load average {load_at_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    cli.run(main)
