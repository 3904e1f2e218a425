"""Reading the per-id layout (one HDF5 group per example, the original project's) through its columnar cache.

Reading tens of thousands of tiny groups takes seconds, so the first load writes every example, in id.txt
order, to ``columnar_cache.hdf5`` in the columnar layout, and later loads read that copy. The cache records
the size and mtime of the data file and a hash of id.txt, and is rebuilt when any of them changes; a folder
where it cannot be written is read group by group on every load.
"""

import hashlib
import os
import tempfile

import h5py
import numpy as np
from tqdm.auto import tqdm

from keras_frelu import files
from keras_frelu.data.checks import check_class_names, check_image_shape, check_images, check_labels
from keras_frelu.data.hdf5 import BLOCK, log, missing_ids_message, open_hdf5, read_columnar
from keras_frelu.errors import DatasetError, StorageError

CACHE_FILE = "columnar_cache.hdf5"
BUILT_CACHE = "per-id (columnar cache built)"  # the layout of a load that wrote the cache
CACHE_FORMAT = 1


def _cache_key(path, id_path):
    stat = os.stat(path)
    with open(id_path, "rb") as handle:
        ids_digest = hashlib.sha256(handle.read()).hexdigest()
    return {"cache_format": CACHE_FORMAT, "source": os.path.basename(path), "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns, "ids_sha256": ids_digest}


def read_per_id(folder, path, id_path, ids, memory_limit, progress):
    """The examples ``ids`` of the per-id file ``path`` as ``Columns``, through its columnar cache in
    ``folder``, rebuilt when the data file or id.txt changed."""
    cache = os.path.join(folder, CACHE_FILE)
    key = _cache_key(path, id_path)
    if os.path.isfile(cache):
        try:
            with h5py.File(cache, "r") as handle:
                if {name: handle.attrs.get(name) for name in key} == key:
                    return read_columnar(handle, cache, ids, memory_limit, layout="per-id (columnar cache)")
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
                return read_columnar(handle, path, ids, float("inf"), layout="per-id")
    with h5py.File(cache, "r") as handle:
        return read_columnar(handle, cache, ids, memory_limit, layout=BUILT_CACHE)


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
            class_names = check_class_names(handle, num_classes, path)
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
        form = _Form(*_first_example(handle, path, ids[0], ids))
        image_block = np.empty((BLOCK, *form.image_shape), form.image_dtype)
        label_block = np.empty((BLOCK, form.label_size), form.label_dtype)
        for start in range(0, len(ids), BLOCK):
            block_ids = ids[start:start + BLOCK]
            for offset, identifier in enumerate(block_ids):
                _read_example(handle, path, ids, identifier, form, image_block[offset], label_block[offset])
            count = len(block_ids)
            labels = label_block[:count, 0] if form.label_size == 1 else label_block[:count]
            yield (check_images(image_block[:count], block_ids, path), check_labels(labels, block_ids, path),
                   form.label_size)


class _Form:
    """The shape and type of the first example, which every example must share, and the HDF5 memory types
    that read them (made once, not once per example)."""

    def __init__(self, image, label):
        self.image_shape, self.image_dtype, self.image_type = image.shape, image.dtype, image.id.get_type()
        self.label_shape, self.stored_label_dtype, self.label_size = label.shape, label.dtype, label.size
        # Labels are read as float64, which holds every integer or float label exactly, so the checks see the
        # stored values (bool labels, an HDF5 enum that converts to nothing else, stay bool).
        self.label_dtype = np.dtype(bool) if label.dtype == bool else np.dtype(np.float64)
        self.image_memory_type = h5py.h5t.py_create(self.image_dtype)
        self.label_memory_type = h5py.h5t.py_create(self.label_dtype)
        self.label_memory = h5py.h5s.create_simple((self.label_size,))  # HDF5 then checks each label's size


def _read_example(handle, path, ids, identifier, form, image_out, label_out):
    """Read the example ``identifier`` into ``image_out`` and ``label_out`` after checking that it has the
    first example's ``form``."""
    name, everything = identifier.encode(), h5py.h5s.ALL
    try:
        image = h5py.h5d.open(handle.id, name + b"/image")
        label = h5py.h5d.open(handle.id, name + b"/label")
    except KeyError:
        raise _absent_example(handle, path, ids, identifier) from None
    shape = image.get_space().get_simple_extent_dims()
    if shape != form.image_shape:
        check_image_shape(shape, identifier, path, form.image_shape)
    if image.get_type() != form.image_type:  # HDF5 would convert silently (floats to bytes: clipped)
        raise DatasetError(f"{path}: example {identifier!r}: the image is "
                           f"{handle[identifier]['image'].dtype} but the first example's is {form.image_dtype}; "
                           "store all images with one dtype")
    image.read(everything, everything, image_out, form.image_memory_type)
    try:
        label.read(form.label_memory, everything, label_out, form.label_memory_type)
    except (OSError, TypeError, ValueError):
        found = handle[identifier]["label"]
        raise DatasetError(f"{path}: example {identifier!r}: the label has shape {found.shape} and type "
                           f"{found.dtype} but the first example's has {form.label_shape} and "
                           f"{form.stored_label_dtype}; give all labels one form") from None


def _first_example(handle, path, identifier, ids):
    """The image and label datasets of the first example, which set the shape and type of all."""
    group = handle.get(identifier)
    if not isinstance(group, h5py.Group) or not isinstance(group.get("image"), h5py.Dataset) \
            or not isinstance(group.get("label"), h5py.Dataset):
        raise _absent_example(handle, path, ids, identifier)
    image, label = group["image"], group["label"]
    check_image_shape(image.shape, identifier, path)
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
    return DatasetError(missing_ids_message(path, missing, ids))
