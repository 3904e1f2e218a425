"""A dataset folder as a ``Dataset``: its ids, its train/test split, and the validation split held out of its
training split (the folder's files: ``hdf5``).

The test split is the ids of ``test_id.txt`` (the official split of a built-in dataset) or, without one, a
deterministic seeded split of ``test_fraction`` of the ids; ``with_validation`` holds out a stratified share
of each class's training examples.
"""

import dataclasses
import hashlib
import math
import os

import numpy as np

from keras_frelu.data.hdf5 import (DATA_FILES, ID_FILE, TEST_ID_FILE, HDF5Images, is_columnar, log, open_hdf5,
                                   read_columnar)
from keras_frelu.data.per_id import BUILT_CACHE, CACHE_FILE, read_per_id
from keras_frelu.errors import DatasetError


@dataclasses.dataclass
class Dataset:
    """One dataset folder, split into train and test.

    Images are uint8 (0..255) or float32 (0..1) NHWC: NumPy arrays, or ``HDF5Images`` (read on demand) when
    they do not fit in ``memory_limit``. Labels are int32 class indices.
    """

    name: str
    path: str
    train_images: object
    train_labels: np.ndarray
    test_images: object
    test_labels: np.ndarray
    num_classes: int
    image_shape: tuple
    class_names: list = None
    layout: str = "columnar"
    split: str = TEST_ID_FILE
    validation_images: object = None  # held out of the training split by ``with_validation``
    validation_labels: np.ndarray = None

    @property
    def validation_size(self):
        return 0 if self.validation_labels is None else len(self.validation_labels)


# One validation split for every run and seed: the runs of a comparison all validate on the same examples.
VALIDATION_SEED = 0


def with_validation(dataset, fraction, seed=VALIDATION_SEED):
    """``dataset`` with ``round(fraction * n_c)`` training examples of each class ``c`` held out as its
    validation split, drawn with ``seed`` (stratified: every class keeps its share, and one example at
    least in training). ``fraction`` 0 returns ``dataset`` unchanged."""
    if not 0 <= fraction < 1:
        raise DatasetError(f"the validation fraction must be at least 0 and below 1, got {fraction}")
    if fraction == 0:
        return dataset
    labels = np.asarray(dataset.train_labels)
    held_out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(int(round(fraction * len(members))), len(members) - 1)
        held_out.append(np.random.default_rng([seed, int(label)]).permutation(members)[:count])
    validation = np.sort(np.concatenate(held_out))
    if len(validation) == 0:
        raise DatasetError(f"--validation_fraction {fraction} of {len(labels)} training examples holds none "
                           "out; raise it or pass 0 to train without a validation split")
    train = np.setdiff1d(np.arange(len(labels)), validation)
    return dataclasses.replace(dataset, train_images=_take(dataset.train_images, train), train_labels=labels[train],
                               validation_images=_take(dataset.train_images, validation),
                               validation_labels=labels[validation])


def default_memory_limit():
    """Half the machine's physical memory: datasets above it are streamed from disk."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def data_file(folder):
    """The path of the folder's data.hdf5 (or data.hy); DatasetError when it has none or both."""
    found = [os.path.join(folder, name) for name in DATA_FILES if os.path.isfile(os.path.join(folder, name))]
    if not found:
        raise DatasetError(f"{folder} has no data.hdf5 (or data.hy); put your examples there (see "
                           "datasets/README.md) or download a built-in dataset with download.py (keras-frelu download)")
    if len(found) > 1:
        raise DatasetError(f"{folder} holds both data.hdf5 and data.hy; remove the one you do not use")
    return found[0]


def read_ids(path, required):
    """Ids of an id file, one per line (blank lines skipped); None when the file is absent and optional."""
    if not os.path.isfile(path):
        if required:
            raise DatasetError(f"{path} is missing; list the example ids (the group names in data.hdf5), one "
                               "per line")
        return None
    with open(path, encoding="utf-8-sig") as handle:  # a byte-order mark some editors write is not an id
        ids = [line.strip() for line in handle]
    ids = [identifier for identifier in ids if identifier]
    if not ids:
        raise DatasetError(f"{path} lists no ids; write the example ids (the group names in data.hdf5), one "
                           "per line")
    if len(set(ids)) != len(ids):
        seen = set()
        duplicate = next(identifier for identifier in ids if identifier in seen or seen.add(identifier))
        raise DatasetError(f"{path} lists the id {duplicate!r} more than once; remove the duplicates")
    return ids


def seeded_split(ids, test_fraction, seed):
    """Positions of the test ids: the ``ceil(n * test_fraction)`` ids with the smallest seeded hash.

    It depends only on the ids themselves, so it is the same on every run and does not change when
    id.txt is reordered."""
    if not 0 < test_fraction < 1:
        raise DatasetError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    count = len(ids)
    test_count = math.ceil(count * test_fraction)
    if count < 2 or test_count >= count:
        raise DatasetError(f"{count} example(s) cannot be split into train and test with test_fraction "
                           f"{test_fraction}; add examples or lower --test_fraction")
    keys = np.array([int.from_bytes(hashlib.blake2b(f"{seed}\0{identifier}".encode(), digest_size=8).digest(),
                                    "little") for identifier in ids], dtype=np.uint64)
    return np.sort(np.argsort(keys, kind="stable")[:test_count])


def read_folder(folder, test_fraction=0.2, seed=0, memory_limit=None, progress=None):
    """Validate and load the dataset folder ``folder``; return a ``Dataset``.

    ``memory_limit`` (bytes, default half the physical memory): images larger than this stay on disk as
    ``HDF5Images`` and are streamed. ``progress``: show a progress bar while a per-id file is converted
    (default: when stderr is a terminal).
    """
    folder = os.path.normpath(folder)
    if not os.path.isdir(folder):
        raise DatasetError(f"{folder} does not exist; create it with data.hdf5 and id.txt (see "
                           "datasets/README.md) or download a built-in dataset with download.py (keras-frelu download)")
    memory_limit = default_memory_limit() if memory_limit is None else memory_limit
    path = data_file(folder)
    id_path = os.path.join(folder, ID_FILE)
    ids = read_ids(id_path, required=True)
    test_positions, split = _test_split(folder, ids, id_path, test_fraction, seed)
    columns = _read_columns(folder, path, id_path, ids, memory_limit, progress)

    is_test = np.zeros(len(ids), bool)
    is_test[test_positions] = True
    train_positions = np.flatnonzero(~is_test)
    try:
        check_classes(folder, columns.labels[train_positions], columns.labels[test_positions], columns.num_classes,
                      columns.class_names)
    except DatasetError:
        if columns.layout == BUILT_CACHE:  # nothing is written for a folder that is refused
            os.remove(os.path.join(folder, CACHE_FILE))
        raise
    return Dataset(
        name=os.path.basename(folder), path=folder,
        train_images=_take(columns.images, train_positions), train_labels=columns.labels[train_positions],
        test_images=_take(columns.images, test_positions), test_labels=columns.labels[test_positions],
        num_classes=columns.num_classes, image_shape=tuple(columns.images.shape[1:]),
        class_names=columns.class_names, layout=columns.layout, split=split)


def check_classes(folder, train_labels, test_labels, num_classes, class_names=None):
    """Refuse a dataset a classifier cannot learn from: fewer than 2 classes with examples, or a class with no
    training example; warn about a class with no test example (its accuracy cannot be measured)."""
    name = lambda index: repr(class_names[index]) if class_names else str(index)  # noqa: E731
    train_counts = np.bincount(train_labels, minlength=num_classes)
    test_counts = np.bincount(test_labels, minlength=num_classes)
    present = np.flatnonzero(train_counts + test_counts)
    if len(present) < 2:
        only = f"class {name(present[0])}" if len(present) else "no class"
        raise DatasetError(f"{folder} holds examples of {only} only; a classifier needs at least 2 classes: add "
                           "examples of the others")
    untrained = np.flatnonzero(train_counts == 0)
    if len(untrained):
        raise DatasetError(f"{folder}: class {name(untrained[0])} has no training example ({test_counts[untrained[0]]} "
                           f"in the test split{f'; {len(untrained)} such classes' if len(untrained) > 1 else ''}); "
                           "add training examples of it, or number the classes 0 to K-1 without gaps")
    untested = np.flatnonzero(test_counts == 0)
    if len(untested):
        log.warning(f"warning: {folder}: {len(untested)} class(es) have no test example (first: "
                    f"{name(untested[0])}); their accuracy cannot be measured: add test examples of them")


def _test_split(folder, ids, id_path, test_fraction, seed):
    """The positions of the test ids, and where the split comes from."""
    test_ids = read_ids(os.path.join(folder, TEST_ID_FILE), required=False)
    if test_ids is None:
        test_positions = seeded_split(ids, test_fraction, seed)
        split = f"seeded {test_fraction:g} (seed {seed})"
    else:
        test_positions = _positions_of(test_ids, ids, os.path.join(folder, TEST_ID_FILE), id_path)
        split = TEST_ID_FILE
    if len(test_positions) == len(ids):
        raise DatasetError(f"{folder}/{TEST_ID_FILE} lists every id, which leaves no training examples; "
                           "move some ids out of it")
    return test_positions, split


def _read_columns(folder, path, id_path, ids, memory_limit, progress):
    """The examples of the data file ``path`` in either layout, as ``Columns`` in id.txt order."""
    with open_hdf5(path) as handle:
        columnar = is_columnar(handle)
        if columnar:
            columns = read_columnar(handle, path, ids, memory_limit)
    if not columnar:
        columns = read_per_id(folder, path, id_path, ids, memory_limit, progress)
    if columns.labels_are_indices:
        log.warning(f"note: {path} stores class indices, not one-hot vectors, as labels; using them as class "
                    f"indices ({columns.num_classes} classes)")
    return columns


def _positions_of(wanted, ids, wanted_path, id_path):
    index = {identifier: position for position, identifier in enumerate(ids)}
    missing = [identifier for identifier in wanted if identifier not in index]
    if missing:
        raise DatasetError(f"{wanted_path} lists {len(missing)} id(s) that are not in {id_path} (first: "
                           f"{missing[0]!r}); remove them or add them to {ID_FILE}")
    return np.sort(np.array([index[identifier] for identifier in wanted], dtype=np.int64))


def _take(images, positions):
    """``images[positions]``: a view for a contiguous run (the official splits), else a copy."""
    if isinstance(images, HDF5Images):
        return images.subset(positions)
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions):
        return images[positions[0]:positions[-1] + 1]
    return images[positions]
