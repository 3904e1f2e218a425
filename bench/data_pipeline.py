"""What the input pipeline costs, side by side in one process.

1. The pipeline alone: images/s of ``make_dataset`` batches (uint8 -> float32 in [0, 1], shuffled) from
   memory, and streamed from a columnar HDF5 file.
2. Training: reference_cnn ``model.fit`` through ``make_dataset`` versus on one batch of float32 tensors
   already in memory (no input work at all: the upper bound). Runs alternate (pipeline, memory, memory,
   pipeline, ...) on the same compiled model so that drifts of the machine hit both sides; the slowdown is
   ``median(pipeline) / median(memory) - 1`` (target: under 3%).
3. A per-id dataset of 70,000 MNIST-sized examples: the first load (every group read, the columnar cache
   written; the cache is deleted before each repeat) and later loads (from the cache).

Wall and CPU seconds (this process, all threads) are both reported: when other processes share the machine,
wall times scatter and CPU time is the steadier measure of what each side costs.

    python bench/data_pipeline.py --steps 300 --cifar_steps 60 --repeats 5
"""

import contextlib
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu import data, models  # noqa: E402
from keras_frelu.cli import ArgumentParser, run  # noqa: E402
from keras_frelu.data import hdf5, per_id  # noqa: E402
from keras_frelu.errors import UsageError  # noqa: E402

CIFAR_SHAPE, CIFAR_COUNT = (32, 32, 3), 50_000


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per timed digits run (default 300)")
    parser.add_argument("--cifar_steps", type=int, default=60,
                        help="training steps per timed run on CIFAR-shaped images (default 60)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each kind (default 5)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--per_id_count", type=int, default=70_000, help="examples of the per-id dataset")
    args = parser.parse_args(argv)
    for name in ("steps", "cifar_steps", "repeats", "batch_size", "per_id_count"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    return args


def synthetic_cifar(folder):
    """50,000 random CIFAR-shaped uint8 images in the columnar layout (as download.py writes CIFAR-10)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (CIFAR_COUNT, *CIFAR_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, 10, CIFAR_COUNT)
    ids = [f"train_{index:05d}" for index in range(CIFAR_COUNT)]
    os.makedirs(folder)
    hdf5.write_columnar(os.path.join(folder, "data.hdf5"), [(ids, images, labels)], num_classes=10)
    with open(os.path.join(folder, "id.txt"), "w") as handle:
        handle.writelines(f"{identifier}\n" for identifier in ids)
    with open(os.path.join(folder, "test_id.txt"), "w") as handle:
        handle.writelines(f"{identifier}\n" for identifier in ids[-1000:])


def pipeline_rate(images, labels, batch_size, batches=400):
    """Images per second out of a repeating shuffled make_dataset (median of 3 passes after a warm-up)."""
    dataset = data.make_dataset(images, labels, batch_size, seed=0, repeat=True, drop_remainder=True)
    iterator = iter(dataset)
    for _ in range(50):
        next(iterator)
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        rates.append(batches * batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def timed(function):
    """(wall seconds, CPU seconds of this process over all its threads) of ``function()``. CPU time is the
    steadier measure when other processes share the machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def training_times(images, labels, num_classes, steps, args):
    """Medians of (wall, CPU) seconds of fit() through make_dataset and on a batch already in memory."""
    keras.utils.set_random_seed(0)
    model = models.reference_cnn(images.shape[1:], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    through_pipeline = data.make_dataset(images, labels, args.batch_size, seed=0, repeat=True, drop_remainder=True)
    in_memory = tf.data.Dataset.from_tensors(next(iter(through_pipeline))).repeat()
    kinds = {"pipeline": through_pipeline, "memory": in_memory}
    for dataset in kinds.values():  # warm-up: tracing and TensorFlow start-up belong to neither side
        model.fit(dataset, epochs=1, steps_per_epoch=20, shuffle=False, verbose=0)
    times = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):
        for kind in (("pipeline", "memory") if repeat % 2 == 0 else ("memory", "pipeline")):
            times[kind].append(timed(lambda: model.fit(kinds[kind], epochs=1, steps_per_epoch=steps, shuffle=False,
                                                       verbose=0)))
    return {kind: [statistics.median(values) for values in zip(*runs)] for kind, runs in times.items()}


def per_id_times(folder, count, repeats):
    """Seconds to write a per-id dataset of ``count`` 28x28x1 examples, and medians of (wall, CPU) seconds of
    its first load (cache built; the cache is deleted before each) and of later loads (from the cache)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    ids = [f"example{index}" for index in range(count)]
    os.makedirs(folder)
    written, _ = timed(lambda: hdf5.write_per_id(os.path.join(folder, "data.hdf5"), ids, images, labels))
    with open(os.path.join(folder, "id.txt"), "w") as handle:
        handle.writelines(f"{identifier}\n" for identifier in ids)
    first, cached = [], []
    for _ in range(repeats):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, per_id.CACHE_FILE))
        first.append(timed(lambda: data.read_folder(folder)))
        cached.append(timed(lambda: data.read_folder(folder)))
    assert data.read_folder(folder).layout == "per-id (columnar cache)"
    return written, [statistics.median(values) for values in zip(*first)], \
        [statistics.median(values) for values in zip(*cached)]


def main(argv=None):
    args = parse_args(argv)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start; batch {args.batch_size}, {args.repeats} runs each, medians\n")
    with tempfile.TemporaryDirectory() as root:
        digits = data.load_dataset("digits", data_dir=os.path.join(root, "datasets"))
        synthetic_cifar(os.path.join(root, "cifar"))
        cifar = data.load_dataset(os.path.join(root, "cifar"))
        streamed = data.load_dataset(os.path.join(root, "cifar"), memory_limit=0)
        sets = [("digits 8x8x1 (1,437 train)", digits, args.steps),
                ("CIFAR-shaped 32x32x3 (49,000 train)", cifar, args.cifar_steps)]

        print("| pipeline alone | images/s |\n|---|---:|")
        for name, dataset, _ in sets:
            rate = pipeline_rate(dataset.train_images, dataset.train_labels, args.batch_size)
            print(f"| {name}, in memory | {rate:,.0f} |")
        rate = pipeline_rate(streamed.train_images, streamed.train_labels, args.batch_size)
        print(f"| CIFAR-shaped, streamed from HDF5 | {rate:,.0f} |")

        print("\n| reference_cnn training | steps | pipeline wall / CPU s | in-memory wall / CPU s | images/s via "
              "pipeline | slowdown wall / CPU |\n|---|---:|---:|---:|---:|---:|")
        for name, dataset, steps in sets:
            times = training_times(dataset.train_images, dataset.train_labels, dataset.num_classes, steps, args)
            (pipeline_wall, pipeline_cpu), (memory_wall, memory_cpu) = times["pipeline"], times["memory"]
            print(f"| {name} | {steps} | {pipeline_wall:.2f} / {pipeline_cpu:.2f} | {memory_wall:.2f} / "
                  f"{memory_cpu:.2f} | {steps * args.batch_size / pipeline_wall:,.0f} | "
                  f"{100 * (pipeline_wall / memory_wall - 1):+.1f}% / {100 * (pipeline_cpu / memory_cpu - 1):+.1f}% |")

        written, first, cached = per_id_times(os.path.join(root, "per_id"), args.per_id_count, args.repeats)
        print(f"\n| per-id dataset, {args.per_id_count:,} examples 28x28x1 | wall s | CPU s |\n|---|---:|---:|\n"
              f"| writing it (hdf5.write_per_id) | {written:.1f} | |\n"
              f"| first load (all groups read, columnar cache written) | {first[0]:.2f} | {first[1]:.2f} |\n"
              f"| later loads (columnar cache) | {cached[0]:.2f} | {cached[1]:.2f} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    run(main)
