"""Converters of the built-in datasets' published files into arrays, and the checks that those files are
what they should be (``CorruptArchive`` otherwise).

A converter takes ``{file name: path}`` of the files it needs and returns a ``Converted``: parts of (ids,
images NHWC uint8 in their true orientation, class indices), the ids of the test split and the class names.
"""

import codecs
import dataclasses
import gzip
import pickle
import tarfile
import zlib

import numpy as np

from keras_frelu.data.dataset import seeded_split
from keras_frelu.errors import DownloadError

DIGITS = tuple(str(digit) for digit in range(10))


@dataclasses.dataclass(frozen=True)
class Converted:
    """A converted dataset: parts of (ids, images NHWC uint8, class indices), stored in this order."""

    parts: list
    test_ids: list
    num_classes: int
    class_names: tuple


class CorruptArchive(DownloadError):
    """A downloaded file that cannot be read as what it should be."""

    def __init__(self, path, problem):
        super().__init__(f"{path} is corrupt ({problem}); it was deleted: run again to download it afresh, or "
                         "try another --mirror")
        self.path = path


def _read_idx(path, rank):
    """A gzip-compressed IDX file of unsigned bytes (the MNIST format) with ``rank`` dimensions."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptArchive(path, f"not a gzip file: {error}") from None
    header = 4 + 4 * rank
    if len(raw) < header or raw[:4] != bytes((0, 0, 0x08, rank)):
        raise CorruptArchive(path, f"not an IDX file of unsigned bytes with {rank} dimension(s)")
    shape = tuple(int.from_bytes(raw[4 + 4 * axis:8 + 4 * axis], "big") for axis in range(rank))
    if len(raw) - header != int(np.prod(shape)):
        raise CorruptArchive(path, f"the header promises {shape} values but {len(raw) - header} bytes follow")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _idx_split(paths, prefix):
    images = _read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"], 3)[..., None]
    labels = _read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"], 1)
    if len(images) != len(labels) or labels.max(initial=0) > 9:
        raise CorruptArchive(paths[f"{prefix}-labels-idx1-ubyte.gz"],
                             f"{len(labels)} labels (largest {labels.max(initial=0)}) for {len(images)} images")
    return images, labels


def convert_idx(class_names):
    def convert(paths):
        return _official(_idx_split(paths, "train"), _idx_split(paths, "t10k"), class_names)
    return convert


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain data and NumPy arrays only: the CIFAR batches are pickles, and a pickle from an
    unverified mirror must not be able to run code."""

    _reconstruct = np.zeros(0).__reduce__()[0]
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): codecs.encode}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return self.ALLOWED[module, name]


def convert_cifar(folder, train_members, test_member, label_key, meta, names_key):
    def convert(paths):
        (path,) = paths.values()
        try:
            with tarfile.open(path, "r:gz") as archive:
                def load(member):
                    with archive.extractfile(f"{folder}/{member}") as handle:
                        return _ArrayUnpickler(handle, encoding="bytes").load()

                def split(members):
                    loaded = [load(member) for member in members]
                    data = np.concatenate([np.asarray(batch[b"data"], np.uint8) for batch in loaded])
                    labels = np.concatenate([np.asarray(batch[label_key], np.int64) for batch in loaded])
                    # Rows are stored channel by channel (1024 red, 1024 green, 1024 blue values, each row-major).
                    return data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1), labels

                train, test = split(train_members), split([test_member])
                class_names = tuple(name.decode() for name in load(meta)[names_key])
        except (tarfile.TarError, EOFError, zlib.error, OSError, pickle.UnpicklingError, KeyError, ValueError,
                TypeError, AttributeError) as error:
            raise CorruptArchive(path, f"not the CIFAR python archive: {type(error).__name__}: {error}") from None
        for labels in (train[1], test[1]):
            if len(labels) and labels.max() >= len(class_names):
                raise CorruptArchive(path, f"label {labels.max()} but only {len(class_names)} class names")
        return _official(train, test, class_names)
    return convert


def _read_svhn(path):
    import scipy.io  # deferred: only SVHN needs it

    try:
        content = scipy.io.loadmat(path)
        images, labels = content["X"], content["y"].reshape(-1).astype(np.int64)
    except (ValueError, TypeError, OSError, EOFError, KeyError, zlib.error, scipy.io.matlab.MatReadError) as error:
        raise CorruptArchive(path, f"not an SVHN MATLAB file: {type(error).__name__}: {error}") from None
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.shape[3] != len(labels) \
            or not np.isin(labels, np.arange(1, 11)).all():
        raise CorruptArchive(path, f"X {images.shape} and y {labels.shape} are not 32x32x3xN images with labels 1..10")
    # X is [height, width, channel, example]; the label 10 stands for the digit 0.
    return np.ascontiguousarray(images.transpose(3, 0, 1, 2), dtype=np.uint8), labels % 10


def convert_svhn(with_extra):
    def convert(paths):
        train, test = _read_svhn(paths["train_32x32.mat"]), _read_svhn(paths["test_32x32.mat"])
        extra = _read_svhn(paths["extra_32x32.mat"]) if with_extra else None
        return _official(train, test, DIGITS, extra=extra)
    return convert


def convert_digits(paths):
    """scikit-learn's bundled handwritten digits: 1,797 images 8x8, values 0..16 scaled to uint8 0..255."""
    from sklearn.datasets import load_digits  # deferred: imports much of scikit-learn

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    ids = [f"{index:04d}" for index in range(len(images))]
    test = seeded_split(ids, 0.2, seed=0)  # no official split: a fixed seeded one, stored in test_id.txt
    return Converted([(ids, images, digits.target.astype(np.int64))], [ids[position] for position in test], 10,
                     DIGITS)


def _official(train, test, class_names, extra=None):
    def part(split, images, labels):
        width = len(str(max(len(images) - 1, 0)))
        return [f"{split}_{index:0{width}d}" for index in range(len(images))], images, labels

    parts = [part("train", *train)] + ([part("extra", *extra)] if extra is not None else []) + [part("test", *test)]
    return Converted(parts, parts[-1][0], len(class_names), tuple(class_names))
