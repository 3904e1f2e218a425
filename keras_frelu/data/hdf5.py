"""The files of a dataset folder: reading the columnar HDF5 layout (``HDF5Images`` for data larger than memory)
and writing both layouts.

A dataset folder ``datasets/NAME`` holds

- ``data.hdf5`` (``data.hy``, the original project's name, is accepted too) in one of two layouts, detected
  from its contents:

  * per-id (the original project's layout, for your own data): one group per example id holding ``image``
    [height, width, channels] (uint8 0..255, or float in [0, 1]) and ``label`` (a one-hot vector; a class
    index is accepted with a note);
  * columnar (written by download.py): datasets ``images`` [N, height, width, channels], ``labels``
    [N, classes] one-hot (or [N] class indices) and ``ids`` [N].

- ``id.txt``: the ids to use, one per line (the order of the examples).
- ``test_id.txt`` (optional): the ids of the test split. Built-in datasets record their official split here;
  without it a deterministic seeded split holds out ``test_fraction`` of the ids.
- ``columnar_cache.hdf5``: written on the first load of a per-id file (reading tens of thousands of tiny
  groups takes seconds; the columnar copy loads in a fraction of one). It records the size and mtime of
  the data file and a hash of id.txt and is rebuilt when any of them changes. Safe to delete (``per_id``).

Reading a per-id file is ``per_id``'s job, checking values ``checks``'s, and the folder as a ``Dataset``
with its splits ``dataset``'s. Every problem raises ``DatasetError`` with one line naming the file, the
example and the fix.
"""

import contextlib
import dataclasses
import logging
import math

import h5py
import numpy as np

from keras_frelu.data.checks import check_class_names, check_images, check_labels
from keras_frelu.errors import DatasetError

DATA_FILES = ("data.hdf5", "data.hy")
ID_FILE = "id.txt"
TEST_ID_FILE = "test_id.txt"
BLOCK = 4096  # examples per read/write block: bounds memory while copying large files

log = logging.getLogger("keras_frelu.data")


class HDF5Images:
    """The images of some rows of a columnar HDF5 file, read on demand: an array-like for data larger than
    memory. Indexing (an int, a slice or an index array) reads and returns a NumPy array."""

    def __init__(self, path, rows, image_shape, dtype):
        self.path = path
        self.rows = np.asarray(rows, dtype=np.int64)
        self.image_shape = tuple(image_shape)
        self.dtype = np.dtype(dtype)

    @property
    def shape(self):
        return (len(self.rows), *self.image_shape)

    ndim = 4

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.read_rows(self.rows[[key]])[0]
        return self.read_rows(self.rows[key])

    def subset(self, positions):
        return HDF5Images(self.path, self.rows[positions], self.image_shape, self.dtype)

    def read_rows(self, rows, handle=None):
        """The images of file rows ``rows`` (any order) as one array; reads the covering span when the rows
        are dense (one sequential read), otherwise only the rows themselves."""
        rows = np.asarray(rows, dtype=np.int64)
        if handle is None:
            with open_hdf5(self.path) as opened:
                return self.read_rows(rows, opened)
        out = np.empty((len(rows), *self.image_shape), self.dtype)
        if len(rows) == 0:
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        first, last = int(ordered[0]), int(ordered[-1])
        images = handle["images"]
        if last - first + 1 <= 4 * len(rows):
            out[order] = images[first:last + 1][ordered - first]
        else:
            unique, inverse = np.unique(ordered, return_inverse=True)
            out[order] = images[unique][inverse]
        return out


@contextlib.contextmanager
def open_hdf5(path, **options):
    """``h5py.File(path, "r", **options)`` with a DatasetError for truncated, damaged or non-HDF5 files."""
    try:
        handle = h5py.File(path, "r", **options)
    except OSError as error:
        raise _unreadable(path, error) from None
    try:
        yield handle
    except (OSError, RuntimeError) as error:  # damage found while reading datasets
        raise _unreadable(path, error) from None
    finally:
        handle.close()


def _unreadable(path, error):
    reason = str(error)
    if "(" in reason:  # h5py: "Unable to synchronously open file (truncated file: eof = ...)"
        reason = reason[reason.rindex("(") + 1:].rstrip(")")
    return DatasetError(f"{path} is not a readable HDF5 file ({reason}); re-create it (for a built-in dataset: "
                        "delete its folder and run download.py again)")


@dataclasses.dataclass
class Columns:
    """The examples of a data file, in id.txt order."""

    images: object  # ndarray or HDF5Images
    labels: np.ndarray  # int32 class indices
    num_classes: int
    class_names: list
    labels_are_indices: bool
    layout: str


def is_columnar(handle):
    """Whether the open data file holds the columnar layout (else: the per-id one)."""
    return isinstance(handle.get("images"), h5py.Dataset) and isinstance(handle.get("labels"), h5py.Dataset)


def read_columnar(handle, path, ids, memory_limit, layout="columnar"):
    """The examples ``ids`` of the columnar file open as ``handle`` as ``Columns``: images in memory when they
    take at most ``memory_limit`` bytes, else ``HDF5Images`` read on demand."""
    images, labels = handle["images"], handle["labels"]
    count = images.shape[0] if images.ndim else 0
    if images.ndim != 4:
        raise DatasetError(f"{path}: 'images' has shape {images.shape}; it must be [N, height, width, channels]")
    if labels.ndim not in (1, 2) or labels.shape[0] != count:
        raise DatasetError(f"{path}: 'labels' has shape {labels.shape} but there are {count} images; store "
                           f"[{count}, classes] one-hot labels (or [{count}] class indices)")
    rows = _rows_of(handle, path, ids, count)

    all_labels = labels[()]
    label_rows = all_labels if rows is None else all_labels[rows]
    class_indices = check_labels(label_rows, ids, path)
    labels_are_indices = all_labels.ndim == 1
    num_classes = int(class_indices.max()) + 1 if labels_are_indices else all_labels.shape[1]

    data = _columnar_images(handle, path, ids, rows, memory_limit)
    class_names = check_class_names(handle, num_classes, path)
    return Columns(data, class_indices, num_classes, class_names, labels_are_indices, layout)


def _rows_of(handle, path, ids, count):
    """The file rows of ``ids``, in their order; None when they are every row in file order."""
    if "ids" not in handle or handle["ids"].shape != (count,):
        raise DatasetError(f"{path}: the columnar layout needs an 'ids' dataset of {count} strings, one per image; "
                           "add it (or store the file in the per-id layout)")
    file_ids = handle["ids"][()].astype(bytes)
    wanted = np.array([identifier.encode() for identifier in ids])
    if len(wanted) == count and (wanted == file_ids).all():
        return None  # id.txt lists every example in file order (the built-ins): read everything, no reordering
    row_of = {identifier: row for row, identifier in enumerate(file_ids)}
    missing = [identifier.decode() for identifier in wanted if identifier not in row_of]
    if missing:
        raise DatasetError(missing_ids_message(path, missing, ids))
    return np.array([row_of[identifier] for identifier in wanted], dtype=np.int64)


def _columnar_images(handle, path, ids, rows, memory_limit):
    """The checked images of file rows ``rows`` (None: all): an array, or ``HDF5Images`` above ``memory_limit``."""
    images = handle["images"]
    count, dtype = images.shape[0], images.dtype
    nbytes = len(ids) * math.prod(images.shape[1:]) * dtype.itemsize
    if nbytes <= memory_limit:
        data = images[()] if rows is None else HDF5Images(path, rows, images.shape[1:], dtype).read_rows(rows, handle)
        return check_images(data, ids, path)
    if dtype != np.uint8 and dtype != np.float32:
        raise DatasetError(f"{path}: images larger than memory must be stored as uint8 or float32, not "
                           f"{dtype}; convert the file")
    data = HDF5Images(path, np.arange(count) if rows is None else rows, images.shape[1:], dtype)
    if dtype != np.uint8:  # uint8 cannot hold bad values; check floats block by block
        for start in range(0, len(data), BLOCK):
            check_images(data.read_rows(data.rows[start:start + BLOCK], handle), ids[start:start + BLOCK], path)
    return data


def missing_ids_message(path, missing, ids):
    """The error message for ids of id.txt (``missing``, in its order) that the data file at ``path`` lacks."""
    line = ids.index(missing[0]) + 1
    return (f"{path}: {len(missing)} id(s) listed in {ID_FILE} are not in the file (first: {missing[0]!r} on line "
            f"{line}); remove them from {ID_FILE} or add their examples")


def write_columnar(path, parts, num_classes, class_names=None, attrs=None):
    """Write the columnar layout to ``path`` from ``parts``: (ids, images uint8/float32 NHWC, int class
    indices) tuples, stored one after another (labels become one-hot uint8 rows)."""
    parts = list(parts)
    count = sum(len(ids) for ids, _, _ in parts)
    image_shape, dtype = parts[0][1].shape[1:], parts[0][1].dtype
    width = max(max(len(identifier.encode()) for identifier in ids) for ids, _, _ in parts if len(ids))
    with h5py.File(path, "w") as handle:
        images = handle.create_dataset("images", (count, *image_shape), dtype)
        labels = handle.create_dataset("labels", (count, num_classes), np.uint8)
        ids_out = handle.create_dataset("ids", (count,), f"S{width}")
        start = 0
        for ids, part_images, part_labels in parts:
            stop = start + len(ids)
            images[start:stop] = part_images
            labels[start:stop] = np.eye(num_classes, dtype=np.uint8)[part_labels]
            ids_out[start:stop] = np.array([identifier.encode() for identifier in ids], dtype=f"S{width}")
            start = stop
        if class_names is not None:
            handle.attrs["class_names"] = np.array([name.encode() for name in class_names])
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value


def write_per_id(path, ids, images, labels, one_hot=True):
    """Write the per-id layout (one group per id with ``image`` and ``label``) to ``path``.

    ``labels`` are class indices; ``one_hot`` stores them as one-hot vectors (the original layout) rather
    than as scalars. Builds the file in memory and writes it once, with h5py's low-level API: far
    cheaper than ``group["image"] = ...`` per example for many small examples."""
    labels = np.asarray(labels)
    stored = np.eye(int(labels.max()) + 1, dtype=np.uint8)[labels] if one_hot else labels.astype(np.int64)
    spaces = h5py.h5s.create_simple(images.shape[1:]), h5py.h5s.create_simple(stored.shape[1:])
    types = h5py.h5t.py_create(images.dtype), h5py.h5t.py_create(stored.dtype)
    with h5py.File(path, "w", driver="core", backing_store=True) as handle:
        for identifier, image, label in zip(ids, images, stored):
            group = h5py.h5g.create(handle.id, identifier.encode())
            for name, value, space, memory_type in zip((b"image", b"label"), (image, label), spaces, types):
                h5py.h5d.create(group, name, memory_type, space).write(
                    h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(value), memory_type)
