"""Dataset folders on disk: both HDF5 layouts, their validation, the columnar cache and the train/test split.

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
  the data file and a hash of id.txt and is rebuilt when any of them changes. Safe to delete.

Every problem raises ``DatasetError`` with one line naming the file, the example and the fix.
"""

import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import tempfile

import h5py
import numpy as np
from tqdm.auto import tqdm

from keras_frelu import files
from keras_frelu.errors import DatasetError, StorageError

DATA_FILES = ("data.hdf5", "data.hy")
ID_FILE = "id.txt"
TEST_ID_FILE = "test_id.txt"
CACHE_FILE = "columnar_cache.hdf5"
CACHE_FORMAT = 1
BLOCK = 4096  # examples per read/write block: bounds memory while copying large files

log = logging.getLogger("keras_frelu.data")


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


def default_memory_limit():
    """Half the machine's physical memory: datasets above it are streamed from disk."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


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


def data_file(folder):
    """The path of the folder's data.hdf5 (or data.hy); DatasetError when it has none or both."""
    found = [os.path.join(folder, name) for name in DATA_FILES if os.path.isfile(os.path.join(folder, name))]
    if not found:
        raise DatasetError(f"{folder} has no data.hdf5 (or data.hy); put your examples there (see "
                           "datasets/README.md) or download a built-in dataset with download.py")
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
    with open(path, encoding="utf-8") as handle:
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
                           "datasets/README.md) or download a built-in dataset with download.py")
    memory_limit = default_memory_limit() if memory_limit is None else memory_limit
    path = data_file(folder)
    id_path = os.path.join(folder, ID_FILE)
    ids = read_ids(id_path, required=True)
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

    with open_hdf5(path) as handle:
        columnar = isinstance(handle.get("images"), h5py.Dataset) and isinstance(handle.get("labels"), h5py.Dataset)
        if columnar:
            columns = _read_columnar(handle, path, ids, memory_limit)
    if not columnar:
        columns = _cached_per_id(folder, path, id_path, ids, memory_limit, progress)
    if columns.labels_are_indices:
        log.warning(f"note: {path} stores class indices, not one-hot vectors, as labels; using them as class "
                    f"indices ({columns.num_classes} classes)")

    is_test = np.zeros(len(ids), bool)
    is_test[test_positions] = True
    train_positions = np.flatnonzero(~is_test)
    return Dataset(
        name=os.path.basename(folder), path=folder,
        train_images=_take(columns.images, train_positions), train_labels=columns.labels[train_positions],
        test_images=_take(columns.images, test_positions), test_labels=columns.labels[test_positions],
        num_classes=columns.num_classes, image_shape=tuple(columns.images.shape[1:]),
        class_names=columns.class_names, layout=columns.layout, split=split)


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


@dataclasses.dataclass
class _Columns:
    images: object  # ndarray or HDF5Images, in id.txt order
    labels: np.ndarray  # int32 class indices, in id.txt order
    num_classes: int
    class_names: list
    labels_are_indices: bool
    layout: str


# ---------------------------------------------------------------------------------------------- validation

def _check_images(block, ids, source):
    """A block of images as uint8 or float32, after checking their values; DatasetError naming the first bad
    example."""
    if block.dtype == np.uint8:
        return block
    flat = block.reshape(len(block), -1)
    if block.dtype.kind in "iu":
        bad = (flat < 0).any(axis=1) | (flat > 255).any(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise DatasetError(f"{source}: example {ids[first]!r}: integer image values must lie in 0..255 "
                               f"(found {flat[first].min()}..{flat[first].max()}); rescale them or store uint8")
        return block.astype(np.uint8)
    if block.dtype.kind != "f":
        raise DatasetError(f"{source}: images are {block.dtype}; store uint8 (0..255) or float (0..1) images")
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        first = int(np.argmin(finite))
        raise DatasetError(f"{source}: example {ids[first]!r}: the image contains NaN or inf values; replace them "
                           "(e.g. numpy.nan_to_num) or drop the example from id.txt")
    low, high = flat.min(axis=1), flat.max(axis=1)
    bad = (low < 0) | (high > 1)
    if bad.any():
        first = int(np.argmax(bad))
        raise DatasetError(f"{source}: example {ids[first]!r}: float image values must lie in [0, 1] (found "
                           f"{low[first]:g}..{high[first]:g}); divide by 255 or store uint8 images")
    return block.astype(np.float32, copy=False)


def _check_labels(block, ids, source):
    """A block of labels (one-hot rows, or class indices when 1-D) as int32 class indices."""
    if block.ndim == 1:
        integral = np.isfinite(block) & (block == np.round(block)) & (block >= 0) if block.dtype.kind == "f" \
            else block >= 0
        if not integral.all():
            first = int(np.argmin(integral))
            raise DatasetError(f"{source}: example {ids[first]!r}: the label {block[first]!r} is not a class index "
                               "(an integer >= 0); store a one-hot vector or a class index")
        return block.astype(np.int32)
    values = block.astype(np.float64, copy=False)
    one_hot = ((values == 0) | (values == 1)).all(axis=1) & (values.sum(axis=1) == 1)
    if not one_hot.all():
        first = int(np.argmin(one_hot))
        shown = np.array2string(block[first], separator=", ", threshold=12, edgeitems=4)
        raise DatasetError(f"{source}: example {ids[first]!r}: the label {shown} is not one-hot; store a vector "
                           "with a single 1 and 0 elsewhere (or a class index)")
    return np.argmax(values, axis=1).astype(np.int32)


def _check_image_shape(shape, identifier, source, expected=None):
    if len(shape) != 3:
        raise DatasetError(f"{source}: example {identifier!r}: the image has shape {tuple(shape)} (rank "
                           f"{len(shape)}); images must be [height, width, channels] (grayscale: image[..., None])")
    if expected is not None and tuple(shape) != tuple(expected):
        raise DatasetError(f"{source}: example {identifier!r}: the image has shape {tuple(shape)} but the first "
                           f"example's has {tuple(expected)}; give all images one shape (resize or crop them)")


def _class_names(handle, num_classes, source):
    names = handle.attrs.get("class_names")
    if names is None:
        return None
    names = [name.decode() if isinstance(name, bytes) else str(name) for name in np.atleast_1d(names)]
    if len(names) != num_classes:
        raise DatasetError(f"{source}: the class_names attribute names {len(names)} classes but the labels have "
                           f"{num_classes}; fix or delete the attribute")
    return names


# ---------------------------------------------------------------------------------------------- columnar

def _read_columnar(handle, path, ids, memory_limit, layout="columnar"):
    images, labels = handle["images"], handle["labels"]
    count = images.shape[0] if images.ndim else 0
    if images.ndim != 4:
        raise DatasetError(f"{path}: 'images' has shape {images.shape}; it must be [N, height, width, channels]")
    if labels.ndim not in (1, 2) or labels.shape[0] != count:
        raise DatasetError(f"{path}: 'labels' has shape {labels.shape} but there are {count} images; store "
                           f"[{count}, classes] one-hot labels (or [{count}] class indices)")
    if "ids" not in handle or handle["ids"].shape != (count,):
        raise DatasetError(f"{path}: the columnar layout needs an 'ids' dataset of {count} strings, one per image; "
                           "add it (or store the file in the per-id layout)")
    file_ids = handle["ids"][()].astype(bytes)
    wanted = np.array([identifier.encode() for identifier in ids])
    if len(wanted) == count and (wanted == file_ids).all():
        rows = None  # id.txt lists every example in file order (the built-ins): read everything, no reordering
    else:
        row_of = {identifier: row for row, identifier in enumerate(file_ids)}
        missing = [identifier.decode() for identifier in wanted if identifier not in row_of]
        if missing:
            raise DatasetError(_missing_ids_message(path, missing, ids))
        rows = np.array([row_of[identifier] for identifier in wanted], dtype=np.int64)

    all_labels = labels[()]
    label_rows = all_labels if rows is None else all_labels[rows]
    class_indices = _check_labels(label_rows, ids, path)
    labels_are_indices = all_labels.ndim == 1
    num_classes = int(class_indices.max()) + 1 if labels_are_indices else all_labels.shape[1]

    dtype = images.dtype
    nbytes = len(ids) * math.prod(images.shape[1:]) * dtype.itemsize
    if nbytes <= memory_limit:
        data = images[()] if rows is None else HDF5Images(path, rows, images.shape[1:], dtype).read_rows(rows, handle)
        data = _check_images(data, ids, path)
    else:
        if dtype != np.uint8 and dtype != np.float32:
            raise DatasetError(f"{path}: images larger than memory must be stored as uint8 or float32, not "
                               f"{dtype}; convert the file")
        data = HDF5Images(path, np.arange(count) if rows is None else rows, images.shape[1:], dtype)
        if dtype != np.uint8:  # uint8 cannot hold bad values; check floats block by block
            for start in range(0, len(data), BLOCK):
                _check_images(data.read_rows(data.rows[start:start + BLOCK], handle), ids[start:start + BLOCK], path)
    class_names = _class_names(handle, num_classes, path)
    return _Columns(data, class_indices, num_classes, class_names, labels_are_indices, layout)


def _missing_ids_message(path, missing, ids):
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


# ---------------------------------------------------------------------------------------------- per-id

def _cache_key(path, id_path):
    stat = os.stat(path)
    with open(id_path, "rb") as handle:
        ids_digest = hashlib.sha256(handle.read()).hexdigest()
    return {"cache_format": CACHE_FORMAT, "source": os.path.basename(path), "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns, "ids_sha256": ids_digest}


def _cached_per_id(folder, path, id_path, ids, memory_limit, progress):
    """The per-id file through its columnar cache, rebuilt when the data file or id.txt changed."""
    cache = os.path.join(folder, CACHE_FILE)
    key = _cache_key(path, id_path)
    if os.path.isfile(cache):
        try:
            with h5py.File(cache, "r") as handle:
                if {name: handle.attrs.get(name) for name in key} == key:
                    return _read_columnar(handle, cache, ids, memory_limit, layout="per-id (columnar cache)")
        except (OSError, DatasetError):
            pass  # a damaged cache is rebuilt below
    try:
        with files.atomic_path(cache) as temporary:
            _write_cache(path, ids, temporary, key, progress, memory_limit)
    except (OSError, StorageError) as error:  # read-only folder, full disk: convert into a temporary file
        log.warning(f"note: cannot write {cache} ({getattr(error, 'strerror', None) or error}); every load of "
                    f"{folder} will read all its groups")
        with tempfile.TemporaryDirectory() as directory:
            temporary = os.path.join(directory, CACHE_FILE)
            _write_cache(path, ids, temporary, key, progress, memory_limit)
            with h5py.File(temporary, "r") as handle:
                return _read_columnar(handle, path, ids, float("inf"), layout="per-id")
    with h5py.File(cache, "r") as handle:
        return _read_columnar(handle, cache, ids, memory_limit, layout="per-id (columnar cache built)")


def _write_cache(path, ids, output, key, progress, memory_limit):
    """Write every example of the per-id file ``path``, in id.txt order, to ``output`` in the columnar layout."""
    all_labels = np.empty(len(ids), np.int32)
    bar = tqdm(total=len(ids), desc=f"first load of {path}, cached afterwards", unit=" examples",
               disable=None if progress is None else not progress, mininterval=0.5)
    with h5py.File(output, "w") as out, bar:
        start = 0
        for images, labels, label_size in _per_id_blocks(path, ids, memory_limit):
            if start == 0:
                images_out = out.create_dataset("images", (len(ids), *images.shape[1:]), images.dtype)
            images_out[start:start + len(images)] = images
            all_labels[start:start + len(images)] = labels
            start += len(images)
            bar.update(len(images))
        labels_are_indices = label_size == 1
        num_classes = int(all_labels.max()) + 1 if labels_are_indices else label_size
        out["labels"] = all_labels if labels_are_indices else np.eye(num_classes, dtype=np.uint8)[all_labels]
        out["ids"] = np.array([identifier.encode() for identifier in ids])
        with open_hdf5(path) as handle:
            class_names = _class_names(handle, num_classes, path)
        if class_names is not None:
            out.attrs["class_names"] = np.array([name.encode() for name in class_names])
        out.attrs.update(key)


def _per_id_blocks(path, ids, memory_limit):
    """Validate the examples of the per-id file ``path`` and yield them in id.txt order, in blocks of
    (images as uint8 or float32, class indices, label size: 1 for class indices, else the one-hot length).

    Reads with h5py's low-level API and explicit memory types, from a copy of the file in memory when it
    fits: the fastest way through many small groups. (A generator, so that only errors reading ``path``,
    not errors of the caller writing elsewhere, pass through ``open_hdf5``.)"""
    in_memory = {"driver": "core", "backing_store": False} if os.path.getsize(path) <= memory_limit // 2 else {}
    with open_hdf5(path, **in_memory) as handle:
        first_image, first_label = _first_example(handle, path, ids[0], ids)
        image_shape, label_shape = first_image.shape, first_label.shape
        image_dtype, image_type = first_image.dtype, first_image.id.get_type()
        # Labels are read as float64, which holds every integer or float label exactly, so the checks see the
        # stored values (bool labels, an HDF5 enum that converts to nothing else, stay bool).
        label_dtype = np.dtype(bool) if first_label.dtype == bool else np.dtype(np.float64)
        image_memory_type, label_memory_type = h5py.h5t.py_create(image_dtype), h5py.h5t.py_create(label_dtype)
        label_size = first_label.size
        label_memory = h5py.h5s.create_simple((label_size,))  # HDF5 then checks each label's size
        image_block = np.empty((BLOCK, *image_shape), image_dtype)
        label_block = np.empty((BLOCK, label_size), label_dtype)
        file_id, everything = handle.id, h5py.h5s.ALL
        for start in range(0, len(ids), BLOCK):
            block_ids = ids[start:start + BLOCK]
            for offset, identifier in enumerate(block_ids):
                name = identifier.encode()
                try:
                    image = h5py.h5d.open(file_id, name + b"/image")
                    label = h5py.h5d.open(file_id, name + b"/label")
                except KeyError:
                    raise _absent_example(handle, path, ids, identifier) from None
                shape = image.get_space().get_simple_extent_dims()
                if shape != image_shape:
                    _check_image_shape(shape, identifier, path, image_shape)
                if image.get_type() != image_type:  # HDF5 would convert silently (floats to bytes: clipped)
                    raise DatasetError(f"{path}: example {identifier!r}: the image is "
                                       f"{handle[identifier]['image'].dtype} but the first example's is {image_dtype}; "
                                       "store all images with one dtype")
                image.read(everything, everything, image_block[offset], image_memory_type)
                try:
                    label.read(label_memory, everything, label_block[offset], label_memory_type)
                except (OSError, TypeError, ValueError):
                    found = handle[identifier]["label"]
                    raise DatasetError(f"{path}: example {identifier!r}: the label has shape {found.shape} and type "
                                       f"{found.dtype} but the first example's has {label_shape} and "
                                       f"{first_label.dtype}; give all labels one form") from None
            count = len(block_ids)
            labels = label_block[:count, 0] if label_size == 1 else label_block[:count]
            yield (_check_images(image_block[:count], block_ids, path), _check_labels(labels, block_ids, path),
                   label_size)


def _first_example(handle, path, identifier, ids):
    """The image and label datasets of the first example, which set the shape and type of all."""
    group = handle.get(identifier)
    if not isinstance(group, h5py.Group) or not isinstance(group.get("image"), h5py.Dataset) \
            or not isinstance(group.get("label"), h5py.Dataset):
        raise _absent_example(handle, path, ids, identifier)
    image, label = group["image"], group["label"]
    _check_image_shape(image.shape, identifier, path)
    if label.ndim > 1 or label.size == 0:
        raise DatasetError(f"{path}: example {identifier!r}: the label has shape {label.shape}; store a one-hot "
                           "vector [classes] or a class index")
    return image, label


def _absent_example(handle, path, ids, identifier):
    """The error for an example that cannot be opened: ids missing from the file, or a malformed group."""
    if identifier in handle:
        return DatasetError(f"{path}: example {identifier!r} must be a group holding the datasets 'image' and "
                            "'label'")
    missing = [other for other in ids if other not in handle]
    return DatasetError(_missing_ids_message(path, missing, ids))
