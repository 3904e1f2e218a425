"""What validating at the default interval costs: trainer runs with the automatic --validation_step
against runs that validate only at their last step, side by side in one process (A B B A).

The dataset is synthetic, CIFAR-shaped (32x32x3, 10 classes) and written once as a columnar dataset
folder; the runs are ``keras_frelu.training.train`` as trainer.py runs it, without the monitor, so the
difference is the periodic validation alone. The cost is ``median(auto) / median(end only) - 1`` of the
runs' ``wall_time_s`` and the median of the pair ratios.

    python bench/validation_cost.py --train_size 10000 --steps 600 --repeats 2
"""

import dataclasses
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu import cli, config  # noqa: E402
from keras_frelu.errors import UsageError  # noqa: E402
from timing import alternating  # noqa: E402


def parse_args(argv):
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_size", type=cli.positive_int, default=10000,
                        help="training images before the validation split (default 10000)")
    parser.add_argument("--steps", type=cli.positive_int, default=600, help="training steps per run (default 600)")
    parser.add_argument("--repeats", type=cli.positive_int, default=2, help="pairs of runs (default 2)")
    args = parser.parse_args(argv)
    if args.steps % 50:
        raise UsageError(f"--steps must be a multiple of the trainer's --log_step 50, got {args.steps}")
    return args


def write_dataset(folder, train_size, test_size=1000):
    import numpy as np

    from keras_frelu.data import hdf5

    rng = np.random.default_rng(0)
    count = train_size + test_size
    ids = [str(index) for index in range(count)]
    os.makedirs(folder)
    hdf5.write_columnar(os.path.join(folder, "data.hdf5"),
                        [(ids, rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, count))],
                        10)
    for name, chosen in (("id.txt", ids), ("test_id.txt", ids[train_size:])):
        with open(os.path.join(folder, name), "w") as handle:
            handle.writelines(f"{identifier}\n" for identifier in chosen)


def main(argv=None):
    args = parse_args(argv)
    cli.quiet_tensorflow()
    from keras_frelu import training

    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as root:
        write_dataset(os.path.join(root, "synthetic"), args.train_size)
        base = dataclasses.replace(config.TrainConfig(), dataset=os.path.join(root, "synthetic"), no_monitor=True,
                                   max_training_steps=args.steps, progress=False, output_save_step=args.steps)
        dataset = training.prepare(base)
        interval = config.validation_interval(base, dataset.validation_size)
        kinds = {"auto": base, "end only": dataclasses.replace(base, validation_step=args.steps)}
        times = {kind: [] for kind in kinds}
        for run, kind in enumerate(alternating(("auto", "end only"), args.repeats), 1):  # A B B A
            flags = dataclasses.replace(kinds[kind], train_dir=os.path.join(root, f"run{run}"))
            times[kind].append(training.train(flags, dataset)["wall_time_s"])
            print(f"{kind}: {times[kind][-1]:.2f} s", flush=True)
    auto, end_only = (statistics.median(times[kind]) for kind in ("auto", "end only"))
    pairs = statistics.median(a / e for a, e in zip(times["auto"], times["end only"]))
    print(f"reference_cnn (relu), 32x32x3, batch {base.batch_size}, {dataset.validation_size} validation images "
          f"every {interval} steps (auto) against only at step {args.steps}, {args.steps} steps, {args.repeats} "
          f"pairs: median {auto:.2f} s against {end_only:.2f} s: cost {auto / end_only - 1:+.1%} (median of pair "
          f"ratios {pairs - 1:+.1%}); load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} "
          "at the end")


if __name__ == "__main__":
    cli.run(main)
