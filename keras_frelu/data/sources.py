"""Built-in datasets: where they come from, how they are downloaded, checked and converted, and how a
dataset name is found on disk.

Each built-in becomes ``data_dir/NAME`` in the columnar layout (see ``hdf5``), uint8 images in their true
orientation, the official train/test split recorded in ``test_id.txt``. Downloads stream into
``data_dir/downloads/NAME/FILE.part`` (resumed with an HTTP Range request after a dropped connection, retried
with back-off, falling back to the next mirror), are checked against the published MD5 and renamed; the
dataset is converted into a hidden staging folder that is renamed to ``data_dir/NAME`` only when complete.
A file that fails its checksum or cannot be read is deleted; partial downloads stay so that rerunning the
command resumes them; archives are deleted after a successful conversion unless kept on request.
"""

import codecs
import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib

import numpy as np
from tqdm.auto import tqdm

from keras_frelu import files
from keras_frelu.data import hdf5
from keras_frelu.errors import DatasetError, DownloadError

DOWNLOADS = "downloads"
CHUNK = 1 << 20
TIMEOUT = 60  # seconds without data before a connection counts as dropped
RETRIES = 4  # attempts per URL for network errors
BACKOFF = 0.5  # seconds before the first retry; doubles after each failure
USER_AGENT = "keras-frelu-download/0.1 (Python urllib)"

DIGITS = tuple(str(digit) for digit in range(10))
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


# ---------------------------------------------------------------------------------------------- converters

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


def _convert_idx(class_names):
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


def _convert_cifar(folder, train_members, test_member, label_key, meta, names_key):
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


def _convert_svhn(with_extra):
    def convert(paths):
        train, test = _read_svhn(paths["train_32x32.mat"]), _read_svhn(paths["test_32x32.mat"])
        extra = _read_svhn(paths["extra_32x32.mat"]) if with_extra else None
        return _official(train, test, DIGITS, extra=extra)
    return convert


def _convert_digits(paths):
    """scikit-learn's bundled handwritten digits: 1,797 images 8x8, values 0..16 scaled to uint8 0..255."""
    from sklearn.datasets import load_digits  # deferred: imports much of scikit-learn

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    ids = [f"{index:04d}" for index in range(len(images))]
    test = hdf5.seeded_split(ids, 0.2, seed=0)  # no official split: a fixed seeded one, stored in test_id.txt
    return Converted([(ids, images, digits.target.astype(np.int64))], [ids[position] for position in test], 10,
                     DIGITS)


def _official(train, test, class_names, extra=None):
    def part(split, images, labels):
        width = len(str(max(len(images) - 1, 0)))
        return [f"{split}_{index:0{width}d}" for index in range(len(images))], images, labels

    parts = [part("train", *train)] + ([part("extra", *extra)] if extra is not None else []) + [part("test", *test)]
    return Converted(parts, parts[-1][0], len(class_names), tuple(class_names))


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
           _convert_idx(DIGITS), "handwritten digits, 60,000 + 10,000 images 28x28x1, 11 MB"),
    Source("FashionMNIST", _mnist_files(("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                         "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
                                        FASHION_BASES),
           _convert_idx(FASHION_CLASSES), "Zalando clothing, 60,000 + 10,000 images 28x28x1, 30 MB"),
    Source("CIFAR10", (Archive("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", CIFAR_BASES),),
           _convert_cifar("cifar-10-batches-py", [f"data_batch_{index}" for index in range(1, 6)], "test_batch",
                          b"labels", "batches.meta", b"label_names"),
           "10 object classes, 50,000 + 10,000 images 32x32x3, 163 MB"),
    Source("CIFAR100", (Archive("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", CIFAR_BASES),),
           _convert_cifar("cifar-100-python", ["train"], "test", b"fine_labels", "meta", b"fine_label_names"),
           "100 object classes (fine labels), 50,000 + 10,000 images 32x32x3, 161 MB"),
    Source("SVHN", _svhn_files(("train", "test")), _convert_svhn(with_extra=False),
           "street-view house numbers, 73,257 + 26,032 images 32x32x3, 246 MB"),
    Source("SVHN_extra", _svhn_files(("train", "extra", "test")), _convert_svhn(with_extra=True),
           "SVHN with the 531,131 'extra' images added to its training split, 1.5 GB"),
    Source("digits", (), _convert_digits,
           "scikit-learn's handwritten digits, 1,797 images 8x8x1, bundled: no download"),
)}
BUILTIN = tuple(SOURCES)


def canonical_name(name):
    """The built-in name matching ``name`` in any letter case, or None."""
    return next((builtin for builtin in BUILTIN if builtin.lower() == str(name).lower()), None)


# ---------------------------------------------------------------------------------------------- downloading

def md5_of(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Incomplete(OSError):
    """The connection ended before the announced length arrived."""


def _attempt(url, part, progress):
    """One request for ``url`` that appends to ``part``, resuming from its size with a Range request."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the partial file is complete
            return
        raise
    with response:
        if offset and (response.status != 206 or
                       not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")):
            offset = 0  # the server ignored the Range request: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=os.path.basename(url), disable=None if progress else True, leave=False) as bar:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                bar.update(len(chunk))
    received = os.path.getsize(part)
    if total is not None and received != total:
        raise _Incomplete(f"connection closed after {received:,} of {total:,} bytes")
    if total is None and not _gzip_complete(part):  # no announced length to check the end against
        raise _Incomplete(f"the gzip stream ends early after {received:,} bytes (the server sent no length)")


def _gzip_complete(path):
    """False for a gzip file whose stream is cut short; True for a whole one, and for any other format
    (which its conversion checks)."""
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return True
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(CHUNK):
                pass
    except (EOFError, OSError, zlib.error):
        return False
    return True


def _permanent(error):
    """HTTP errors that retrying the same URL cannot fix (403, 404, ...), unlike timeouts and 5xx."""
    return isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500 and error.code not in (408, 429)


def _try_url(url, part, progress, retries, backoff, say):
    """Download ``url`` into ``part`` with up to ``retries`` attempts; None on success, else the problem."""
    for attempt in range(retries):
        try:
            _attempt(url, part, progress)
            return None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets are OSErrors
            if files.storage_error(error, part) is not None:  # our disk, not the network: retrying cannot help
                raise files.storage_error(error, part) from None
            if isinstance(error, urllib.error.HTTPError):
                problem = f"{url}: HTTP {error.code} {error.reason}"
            else:
                problem = f"{url}: {getattr(error, 'reason', None) or error}"
            if _permanent(error) or attempt == retries - 1:
                return problem
            delay = backoff * 2 ** attempt
            say(f"{problem}; retrying in {delay:g} s")
            time.sleep(delay)


def fetch(urls, path, md5=None, progress=True, retries=RETRIES, backoff=BACKOFF, say=print):
    """Download the first of ``urls`` that works to ``path`` and return ``path``.

    Streams into ``path + ".part"`` (resumed by Range requests across retries and runs), checks ``md5``
    (None: no check), then renames. A file already at ``path`` is reused when it passes the check. Raises
    DownloadError when every URL fails or the checksum does not match (the bad file is deleted)."""
    name = os.path.basename(path)
    if os.path.exists(path):
        if md5 is None or md5_of(path) == md5:
            return path
        os.remove(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    part = path + ".part"
    for url in urls:
        say(f"{name}: downloading {url}")
        problem = _try_url(url, part, progress, retries, backoff, say)
        if problem is None and md5 is not None:
            actual = md5_of(part)
            if actual != md5:
                os.remove(part)
                problem = f"{url}: checksum mismatch (md5 {actual}, expected {md5})"
        if problem is None:
            os.replace(part, path)
            return path
        if url != urls[-1]:
            say(f"{name}: {problem}; trying the next URL")
    if "checksum mismatch" in problem:
        raise DownloadError(f"{name} from {problem}; the file was deleted: run again, try another --mirror, or "
                            "pass --no_checksum if you trust this source")
    kept = " (the partial download is kept and resumes)" if os.path.exists(part) else ""
    raise DownloadError(f"could not download {name} ({len(urls)} URL(s) tried; last: {problem}); check the "
                        f"network and run the same command again{kept}, or pass --mirror BASE_URL")


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
    text = os.path.normpath(os.fspath(name_or_path))
    parent, name = os.path.split(text) if os.sep in text or "/" in text else (os.fspath(data_dir), text)
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
                           f"--data_dir {parent}")
    found = [entry for entry in entries if not entry.startswith(".")
             and any(os.path.isfile(os.path.join(parent, entry, data)) for data in hdf5.DATA_FILES)]
    raise DatasetError(f"unknown dataset {name!r}: {parent} holds {', '.join(found) or 'no dataset'}; built-in "
                       f"datasets: {', '.join(BUILTIN)} (python download.py --dataset NAME); or give the path of a "
                       "folder with data.hdf5 and id.txt")


def load_dataset(name_or_path, data_dir="datasets", test_fraction=0.2, seed=0, memory_limit=None, progress=None):
    """Load a dataset by name (under ``data_dir``) or folder path; see ``hdf5.read_folder`` for the rest."""
    return hdf5.read_folder(find_folder(name_or_path, data_dir), test_fraction=test_fraction, seed=seed,
                            memory_limit=memory_limit, progress=progress)
