"""``check``: a dataset folder validated and summarised (``python -m keras_frelu.data check`` and
``keras-frelu check``): its flags, ``check(args)`` and the summary it prints."""

import numpy as np

from keras_frelu.data import hdf5, sources


def add_check_arguments(check):
    """``check``'s flags, on its subparser (python -m keras_frelu.data) or its own parser (keras-frelu)."""
    check.add_argument("folder", help="a dataset folder (datasets/NAME) or a dataset name under datasets/")
    check.add_argument("--test_fraction", type=float, default=0.2,
                       help="test share when the folder has no test_id.txt (default: %(default)s)")
    check.add_argument("--seed", type=int, default=0, help="seed of that split (default: %(default)s)")


def check(args):
    """Load the folder (a bad one raises a one-line ``DatasetError``) and print its summary; returns 0."""
    dataset = sources.load_dataset(args.folder, test_fraction=args.test_fraction, seed=args.seed)
    print(summary(dataset))
    return 0


def balance(labels, num_classes, class_names):
    """Class counts as text: every class for up to 20 classes, else the range."""
    counts = np.bincount(labels, minlength=num_classes)
    if num_classes <= 20:
        names = class_names or [str(index) for index in range(num_classes)]
        return ", ".join(f"{name}: {count:,}" for name, count in zip(names, counts))
    return f"{counts.min():,} to {counts.max():,} per class (mean {counts.mean():,.1f})"


def pixel_range(images, block=4096):
    """``(min, max)`` of the images, read a block at a time (streamed datasets stay on disk)."""
    low, high = np.inf, -np.inf
    for start in range(0, len(images), block):
        values = np.asarray(images[start:start + block])
        low, high = min(low, values.min()), max(high, values.max())
    return low, high


def pixel_range_of(dataset):
    train, test = pixel_range(dataset.train_images), pixel_range(dataset.test_images)
    return min(train[0], test[0]), max(train[1], test[1])


def summary(dataset):
    train, test = len(dataset.train_labels), len(dataset.test_labels)
    height, width, channels = dataset.image_shape
    names = dataset.class_names
    shown = f": {', '.join(names[:20])}{', ...' if len(names) > 20 else ''}" if names else ""
    return "\n".join([
        f"{dataset.path}: valid ({dataset.layout} layout)",
        f"  examples       {train + test:,}",
        f"  images         {height}x{width}x{channels} {np.dtype(dataset.train_images.dtype).name}"
        f"{' (streamed from disk)' if isinstance(dataset.train_images, hdf5.HDF5Images) else ''}",
        f"  pixel range    {' to '.join(f'{value:g}' for value in pixel_range_of(dataset))}",
        f"  classes        {dataset.num_classes}{shown}",
        f"  split          train {train:,}, test {test:,} (from {dataset.split})",
        f"  train balance  {balance(dataset.train_labels, dataset.num_classes, names)}",
        f"  test balance   {balance(dataset.test_labels, dataset.num_classes, names)}",
    ])
