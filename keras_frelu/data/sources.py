"""The built-in datasets: where they come from, how they are downloaded and converted, and how a dataset
name is found on disk.

Each built-in becomes ``data_dir/NAME`` in the columnar layout (see ``hdf5``), uint8 images in their true
orientation, the official train/test split recorded in ``test_id.txt``. Its files are fetched by
``downloader`` into ``data_dir/downloads/NAME/`` (resumed, retried, falling back to the next mirror,
checked against the published MD5) and converted by ``converters`` into a hidden staging folder that is
renamed to ``data_dir/NAME`` only when complete. A file that fails its checksum or cannot be read is
deleted; partial downloads stay so that rerunning the command resumes them; archives are deleted after a
successful conversion unless kept on request.
"""

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile

from keras_frelu import files
from keras_frelu.data import hdf5
from keras_frelu.data.converters import (DIGITS, CorruptArchive, convert_cifar, convert_digits, convert_idx,
                                         convert_svhn)
from keras_frelu.data.dataset import read_folder
from keras_frelu.data.downloader import fetch, md5_of
from keras_frelu.errors import DatasetError

DOWNLOADS = "downloads"

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

# yann.lecun.com answers 403 to scripts; torchvision and tfds fetch the same files from these buckets.
MNIST_BASES = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
               "http://yann.lecun.com/exdb/mnist/")
FASHION_BASES = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")
CIFAR_BASES = ("https://www.cs.toronto.edu/~kriz/", "https://cave.cs.toronto.edu/kriz/")  # the second: its new host
SVHN_BASES = ("http://ufldl.stanford.edu/housenumbers/",)


@dataclasses.dataclass(frozen=True)
class Archive:
    """One published file: its original name (also its name under ``--mirror``), MD5 and base URLs."""

    name: str
    md5: str
    bases: tuple


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    archives: tuple
    convert: object
    about: str


def _mnist_files(md5s, bases):
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
    return tuple(Archive(name, md5, bases) for name, md5 in zip(names, md5s))


def _svhn_files(splits):
    md5s = {"train": "e26dedcc434d2e4c54c9b2d4a06d8373", "test": "eb5a983be6a315427106f1b164d9cef3",
            "extra": "a93ce644f1a588dc4d68dda5feec44a7"}
    return tuple(Archive(f"{split}_32x32.mat", md5s[split], SVHN_BASES) for split in splits)


SOURCES = {source.name: source for source in (
    Source("MNIST", _mnist_files(("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                                  "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
                                 MNIST_BASES),
           convert_idx(DIGITS), "handwritten digits, 60,000 + 10,000 images 28x28x1, 11 MB"),
    Source("FashionMNIST", _mnist_files(("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                         "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
                                        FASHION_BASES),
           convert_idx(FASHION_CLASSES), "Zalando clothing, 60,000 + 10,000 images 28x28x1, 30 MB"),
    Source("CIFAR10", (Archive("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", CIFAR_BASES),),
           convert_cifar("cifar-10-batches-py", [f"data_batch_{index}" for index in range(1, 6)], "test_batch",
                          b"labels", "batches.meta", b"label_names"),
           "10 object classes, 50,000 + 10,000 images 32x32x3, 163 MB"),
    Source("CIFAR100", (Archive("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", CIFAR_BASES),),
           convert_cifar("cifar-100-python", ["train"], "test", b"fine_labels", "meta", b"fine_label_names"),
           "100 object classes (fine labels), 50,000 + 10,000 images 32x32x3, 161 MB"),
    Source("SVHN", _svhn_files(("train", "test")), convert_svhn(with_extra=False),
           "street-view house numbers, 73,257 + 26,032 images 32x32x3, 246 MB"),
    Source("SVHN_extra", _svhn_files(("train", "extra", "test")), convert_svhn(with_extra=True),
           "SVHN with the 531,131 'extra' images added to its training split, 1.5 GB"),
    Source("digits", (), convert_digits,
           "scikit-learn's handwritten digits, 1,797 images 8x8x1, bundled: no download"),
)}
BUILTIN = tuple(SOURCES)


def canonical_name(name):
    """The built-in name matching ``name`` in any letter case, or None."""
    return next((builtin for builtin in BUILTIN if builtin.lower() == str(name).lower()), None)


# ---------------------------------------------------------------------------------------------- datasets

STAGING_SUFFIX = ".incomplete"
# .<dataset>.<pid>.<random>.incomplete (older versions: no pid)
_STAGING = re.compile(r"^\.(?P<name>[^.]+)\.(?:(?P<pid>\d+)\.)?[^.]+" + re.escape(STAGING_SUFFIX) + "$")


@contextlib.contextmanager
def _staging(data_dir, name):
    """A hidden folder in ``data_dir`` renamed to ``data_dir/name`` when the block succeeds, else deleted:
    an interrupted or failed conversion never leaves a folder that looks like a dataset."""
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", suffix=STAGING_SUFFIX, dir=data_dir)
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp makes it private
        try:
            os.rename(staging, os.path.join(data_dir, name))
        except OSError:
            if not os.path.isdir(os.path.join(data_dir, name)):
                raise  # otherwise another process finished the same dataset first: keep theirs
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_abandoned_staging(data_dir):
    """Remove the staging folders left in ``data_dir`` by conversions whose process is gone (killed)."""
    if not os.path.isdir(data_dir):
        return
    for entry in os.listdir(data_dir):
        match = _STAGING.match(entry)
        if match and not _process_alive(int(match.group("pid") or 0)):
            shutil.rmtree(os.path.join(data_dir, entry), ignore_errors=True)


def _process_alive(pid):
    if pid <= 0:
        return False  # a staging folder of a version that did not record its process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def write_dataset(folder, converted, attrs=None):
    """Write ``converted`` into ``folder``: data.hdf5 (columnar), id.txt and test_id.txt."""
    hdf5.write_columnar(os.path.join(folder, hdf5.DATA_FILES[0]), converted.parts, converted.num_classes,
                        converted.class_names, attrs)
    with files.atomic_write(os.path.join(folder, hdf5.ID_FILE)) as handle:
        handle.writelines(f"{identifier}\n" for ids, _, _ in converted.parts for identifier in ids)
    with files.atomic_write(os.path.join(folder, hdf5.TEST_ID_FILE)) as handle:
        handle.writelines(f"{identifier}\n" for identifier in converted.test_ids)


def _remove_empty(*directories):
    for directory in directories:
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def prepare(name, data_dir="datasets", mirror=None, verify=True, keep_archives=False, progress=True, say=print):
    """Download (unless bundled), check and convert the built-in dataset ``name`` into ``data_dir/name``.

    ``mirror``: fetch every file as ``mirror/<original file name>`` instead of the official URLs. ``verify``:
    check the published MD5s. Returns the dataset folder; an existing folder is left as it is."""
    source = SOURCES[canonical_name(name)]
    folder = os.path.join(data_dir, source.name)
    with files.storage_errors(folder):
        return _prepare(source, folder, data_dir, mirror, verify, keep_archives, progress, say)


def _prepare(source, folder, data_dir, mirror, verify, keep_archives, progress, say):
    remove_abandoned_staging(data_dir)
    if os.path.exists(folder):
        say(f"{source.name}: {folder} already exists (delete it to convert again)")
        return folder
    downloads = os.path.join(data_dir, DOWNLOADS, source.name)
    paths = {}
    done = False
    try:
        for archive in source.archives:
            urls = [mirror.rstrip("/") + "/" + archive.name] if mirror else [base + archive.name for base in archive.bases]
            paths[archive.name] = fetch(urls, os.path.join(downloads, archive.name), archive.md5 if verify else None,
                                        progress=progress, say=say)
        say(f"{source.name}: converting")
        with _staging(data_dir, source.name) as staging:
            converted = source.convert(paths)
            files = ", ".join(f"{name} md5 {md5_of(path)}" for name, path in paths.items())
            write_dataset(staging, converted, attrs={"source": source.name, "files": files or "bundled"})
        done = True
    except CorruptArchive as error:
        os.remove(error.path)
        raise
    finally:
        if done and not keep_archives:
            for path in paths.values():
                os.remove(path)
        _remove_empty(downloads, os.path.dirname(downloads))
    count = sum(len(ids) for ids, _, _ in converted.parts)
    say(f"{source.name}: {count:,} images {'x'.join(map(str, converted.parts[0][1].shape[1:]))} "
        f"({len(converted.test_ids):,} test), {converted.num_classes} classes -> {folder}")
    return folder


def find_folder(name_or_path, data_dir="datasets"):
    """The dataset folder for a name under ``data_dir`` (any letter case) or a folder path; converts the
    bundled digits dataset on first use; DatasetError naming the known datasets otherwise."""
    given = os.fspath(name_or_path)
    text = os.path.normpath(given)  # "./mine" is a path (normpath would make it the name "mine")
    parent, name = os.path.split(text) if os.sep in given or "/" in given else (os.fspath(data_dir), text)
    parent = parent or "."
    folder = os.path.join(parent, name)
    if os.path.isdir(folder):
        return folder
    entries = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
    matches = [entry for entry in entries if entry.lower() == name.lower() and os.path.isdir(os.path.join(parent, entry))]
    if len(matches) == 1:
        return os.path.join(parent, matches[0])
    builtin = canonical_name(name)
    if builtin == "digits":
        return prepare("digits", parent, say=lambda message: None)
    if builtin:
        raise DatasetError(f"{folder} does not exist; download it with: python download.py --dataset {builtin} "
                           f"--data_dir {parent} (keras-frelu download, the same flags, where pip installed it)")
    found = [entry for entry in entries if not entry.startswith(".")
             and any(os.path.isfile(os.path.join(parent, entry, data)) for data in hdf5.DATA_FILES)]
    raise DatasetError(f"unknown dataset {name!r}: {parent} holds {', '.join(found) or 'no dataset'}; built-in "
                       f"datasets: {', '.join(BUILTIN)} (python download.py --dataset NAME, or keras-frelu download); "
                       "or give the path of a folder with data.hdf5 and id.txt")


def load_dataset(name_or_path, data_dir="datasets", test_fraction=0.2, seed=0, memory_limit=None, progress=None):
    """Load a dataset by name (under ``data_dir``) or folder path; see ``dataset.read_folder`` for the rest."""
    return read_folder(find_folder(name_or_path, data_dir), test_fraction=test_fraction, seed=seed,
                            memory_limit=memory_limit, progress=progress)
