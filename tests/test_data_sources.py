"""The built-in sources in-process: fetch (checksums, resume, fallback), the converters on good and bad files,
the bundled digits dataset, and name lookup."""

import gzip
import hashlib
import io
import os

import numpy as np
import pytest
import scipy.io
from fake_sources import FileServer, cifar100, idx, mnist_like, tar_gz

from keras_frelu.data import converters, downloader, hdf5, load_dataset, sources
from keras_frelu.data.dataset import seeded_split
from keras_frelu.errors import DatasetError, DownloadError


def quiet(message):
    pass


@pytest.fixture()
def served(tmp_path):
    content = np.random.default_rng(3).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    with FileServer({"good/file.bin": content}) as server:
        yield server, content


def test_fetch_checks_the_md5_and_renames_the_finished_file(served, tmp_path):
    server, content = served
    target = tmp_path / "downloads" / "file.bin"
    downloader.fetch([f"{server.url}/good/file.bin"], str(target), md5=hashlib.md5(content).hexdigest(), say=quiet)
    assert target.read_bytes() == content
    assert os.listdir(tmp_path / "downloads") == ["file.bin"]


def test_fetch_resumes_a_partial_file_with_a_range_request(served, tmp_path):
    server, content = served
    target = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(content[:123_456])  # left by an interrupted run
    downloader.fetch([f"{server.url}/good/file.bin"], str(target), md5=hashlib.md5(content).hexdigest(), say=quiet)
    assert target.read_bytes() == content
    assert server.requests == [("good/file.bin", "bytes=123456-")]


def test_fetch_retries_a_dropped_connection_from_where_it_stopped(served, tmp_path):
    server, content = served
    server.drop_once.add("good/file.bin")
    downloader.fetch([f"{server.url}/good/file.bin"], str(tmp_path / "file.bin"), backoff=0.01, say=quiet)
    assert (tmp_path / "file.bin").read_bytes() == content
    assert server.requests == [("good/file.bin", None), ("good/file.bin", f"bytes={len(content) // 2}-")]


def test_fetch_without_a_length_or_checksum_still_refuses_a_cut_gzip_and_resumes_it(tmp_path):
    content = gzip.compress(np.random.default_rng(4).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    with FileServer({"f.gz": content}, drop_once=["f.gz"], no_length=["f.gz"]) as server:
        target = tmp_path / "f.gz"
        downloader.fetch([f"{server.url}/f.gz"], str(target), md5=None, backoff=0.01, say=quiet)
    assert target.read_bytes() == content  # the cut stream was noticed and the rest fetched
    assert [requested for _, requested in server.requests] == [None, f"bytes={len(content) // 2}-"]


def test_fetch_falls_back_to_the_next_url(served, tmp_path):
    server, content = served
    urls = [f"{server.url}/gone/file.bin", f"{server.url}/good/file.bin"]
    downloader.fetch(urls, str(tmp_path / "file.bin"), backoff=0.01, say=quiet)
    assert (tmp_path / "file.bin").read_bytes() == content
    assert [path for path, _ in server.requests] == ["gone/file.bin", "good/file.bin"]  # a 404 is not retried


def test_fetch_with_a_wrong_md5_deletes_the_file_and_says_so(served, tmp_path):
    server, _ = served
    with pytest.raises(DownloadError, match=r"checksum mismatch \(md5 [0-9a-f]{32}, expected 0{32}\)"):
        downloader.fetch([f"{server.url}/good/file.bin"], str(tmp_path / "file.bin"), md5="0" * 32, say=quiet)
    assert os.listdir(tmp_path) == []


def test_fetch_reports_when_every_url_fails(served, tmp_path):
    server, _ = served
    with pytest.raises(DownloadError, match=r"could not download file.bin \(1 URL\(s\) tried; last: .*404"):
        downloader.fetch([f"{server.url}/gone/file.bin"], str(tmp_path / "file.bin"), say=quiet)


def test_fashion_mnist_through_a_mirror_with_its_class_names(tmp_path):
    files, expected = mnist_like(np.random.default_rng(4), train=10, test=4)
    with FileServer({f"fashion/{name}": content for name, content in files.items()}) as server:
        sources.prepare("fashionmnist", str(tmp_path), mirror=f"{server.url}/fashion/", verify=False, say=quiet)
    dataset = load_dataset("FashionMNIST", data_dir=str(tmp_path))
    np.testing.assert_array_equal(dataset.train_images, expected["train"][0])
    np.testing.assert_array_equal(dataset.test_labels, expected["test"][1])
    assert dataset.class_names == list(sources.FASHION_CLASSES)
    assert sorted(os.listdir(tmp_path)) == ["FashionMNIST"]


def test_keep_archives_keeps_them_and_an_existing_dataset_is_left_alone(tmp_path):
    files, expected = cifar100(np.random.default_rng(5))
    with FileServer(files) as server:
        sources.prepare("CIFAR100", str(tmp_path), mirror=server.url, verify=False, keep_archives=True, say=quiet)
        kept = tmp_path / "downloads" / "CIFAR100" / "cifar-100-python.tar.gz"
        assert kept.read_bytes() == files["cifar-100-python.tar.gz"]
        sources.prepare("CIFAR100", str(tmp_path), mirror=server.url, verify=False, say=quiet)
        assert len(server.requests) == 1  # nothing fetched the second time
    dataset = load_dataset("cifar100", data_dir=str(tmp_path))
    np.testing.assert_array_equal(dataset.train_images, expected["train"][0])
    assert dataset.num_classes == 100 and dataset.class_names == expected["names"]


class Exploit:
    """Unpickling this runs a shell command: what a malicious mirror could serve."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def svhn_with_label(label):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[label], [3]])})
    return buffer.getvalue()


CORRUPT = {
    "bad IDX magic": ("train-images-idx3-ubyte.gz", lambda: idx(np.zeros((3, 28), np.uint8)),
                      "not an IDX file of unsigned bytes with 3 dimension"),
    "not gzip": ("train-images-idx3-ubyte.gz", lambda: b"<html>403 Forbidden</html>", "not a gzip file"),
    "truncated gzip": ("train-images-idx3-ubyte.gz", lambda: idx(np.zeros((3, 28, 28), np.uint8))[:-9],
                       "not a gzip file"),
    "IDX shorter than its header": ("train-images-idx3-ubyte.gz", lambda: gzip.compress(
        bytes((0, 0, 8, 3)) + b"".join(size.to_bytes(4, "big") for size in (5, 28, 28)) + bytes(100)),
        r"the header promises \(5, 28, 28\) values but 100 bytes follow"),
    "truncated tar.gz": ("cifar-100-python.tar.gz", lambda: cifar100(np.random.default_rng(0))[0][
        "cifar-100-python.tar.gz"][:5000], "not the CIFAR python archive"),
    "pickle that runs code": ("cifar-100-python.tar.gz", lambda: tar_gz({"cifar-100-python/train": Exploit()}),
                              "unexpected object posix.system"),
    "SVHN garbage": ("train_32x32.mat", lambda: b"MATLAB 5.0 MAT-file" + bytes(200), "not an SVHN MATLAB file"),
    "SVHN label 0": ("train_32x32.mat", lambda: svhn_with_label(0), "with labels 1..10"),
}
CONVERTERS = {"train-images-idx3-ubyte.gz": lambda path: converters._read_idx(path, 3),
              "cifar-100-python.tar.gz": lambda path: sources.SOURCES["CIFAR100"].convert({"archive": path}),
              "train_32x32.mat": converters._read_svhn}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_unreadable_archives_raise_corrupt_archive(tmp_path, monkeypatch, case):
    name, make, message = CORRUPT[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(make())
    with pytest.raises(converters.CorruptArchive, match=message) as raised:
        CONVERTERS[name](name)
    assert raised.value.path == name
    assert not (tmp_path / "pwned").exists()


def test_digits_are_the_real_sklearn_digits_with_a_fixed_split(tmp_path):
    from sklearn.datasets import load_digits

    dataset = load_dataset("digits", data_dir=str(tmp_path / "datasets"))  # converted on first use, offline
    assert len(dataset.train_labels) == 1437 and len(dataset.test_labels) == 360
    assert dataset.image_shape == (8, 8, 1) and dataset.train_images.dtype == np.uint8
    reference = load_digits()
    test_positions = seeded_split([f"{index:04d}" for index in range(1797)], 0.2, 0)
    is_test = np.isin(np.arange(1797), test_positions)
    expected = np.round(reference.images * 255 / 16).astype(np.uint8)[..., None]
    np.testing.assert_array_equal(dataset.train_images, expected[~is_test])
    np.testing.assert_array_equal(dataset.test_labels, reference.target[is_test])
    assert dataset.train_images.max() == 255 and dataset.split == "test_id.txt"
    test_ids = (tmp_path / "datasets" / "digits" / "test_id.txt").read_text().split()
    assert test_ids == [f"{index:04d}" for index in test_positions]


def test_names_are_found_in_any_letter_case_and_unknown_names_list_the_choices(tmp_path):
    (tmp_path / "Mine").mkdir()
    images = np.zeros((4, 2, 2, 1), np.uint8)
    hdf5.write_per_id(str(tmp_path / "Mine" / "data.hdf5"), list("abcd"), images, [0, 1, 0, 1])
    (tmp_path / "Mine" / "id.txt").write_text("a\nb\nc\nd\n")
    assert sources.find_folder("mine", str(tmp_path)) == str(tmp_path / "Mine")
    assert sources.find_folder(str(tmp_path / "Mine"), "elsewhere") == str(tmp_path / "Mine")
    with pytest.raises(DatasetError, match=rf"unknown dataset 'imagenet': {tmp_path} holds Mine; built-in "
                                           r"datasets: MNIST, FashionMNIST, CIFAR10, CIFAR100, SVHN, SVHN_extra, digits"):
        sources.find_folder("imagenet", str(tmp_path))
    with pytest.raises(DatasetError, match=r"does not exist; download it with: python download.py --dataset SVHN"):
        sources.find_folder("svhn", str(tmp_path))
    assert os.listdir(tmp_path) == ["Mine"]

