"""download.py as a real process against a loopback HTTP server serving generated files in the real formats
(gzip IDX, the CIFAR python-pickle tar.gz, SVHN MATLAB .mat)."""

import os
import runpy

import numpy as np
import pytest
from helpers import ROOT, call_cli, run_cli
from fake_sources import FileServer, cifar10, cifar100, mnist_like, svhn

from keras_frelu.data import load_dataset

DROPPED = "all/cifar-10-python.tar.gz"


@pytest.fixture(scope="module")
def generated():
    rng = np.random.default_rng(11)
    return {"MNIST": mnist_like(rng), "CIFAR10": cifar10(rng), "CIFAR100": cifar100(rng), "SVHN": svhn(rng)}


@pytest.fixture(scope="module")
def downloaded(generated, tmp_path_factory):
    """One download.py run fetching five datasets from the mirror; the CIFAR-10 archive's first response
    breaks off half-way."""
    files = {f"all/{name}": content for made, _ in generated.values() for name, content in made.items()}
    data_dir = tmp_path_factory.mktemp("download") / "datasets"
    with FileServer(files, drop_once=[DROPPED]) as server:
        result = run_cli("download.py", "--datasets", "mnist", "CIFAR10", "cifar100", "SVHN", "svhn_EXTRA",
                         "--data_dir", data_dir, "--mirror", f"{server.url}/all", "--no_checksum")
    return result, data_dir, server.requests, len(files[DROPPED])


def assert_split(images, labels, expected):
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])


def test_every_format_converts_to_its_true_images_labels_and_official_split(downloaded, generated):
    result, data_dir, _, _ = downloaded
    assert result.returncode == 0, result.stderr
    for name in ("MNIST", "CIFAR10", "CIFAR100", "SVHN"):
        expected = generated[name][1]
        dataset = load_dataset(name, data_dir=str(data_dir))
        assert_split(dataset.train_images, dataset.train_labels, expected["train"])
        assert_split(dataset.test_images, dataset.test_labels, expected["test"])
        assert dataset.split == "test_id.txt"
        test_ids = (data_dir / name / "test_id.txt").read_text().split()
        assert len(test_ids) == len(expected["test"][1]) and all(i.startswith("test_") for i in test_ids)
        # Random images are not symmetric: a transposed or channel-swapped conversion could not have matched.
        assert not np.array_equal(expected["train"][0], expected["train"][0].transpose(0, 2, 1, 3))
    assert load_dataset("CIFAR10", data_dir=str(data_dir)).class_names == generated["CIFAR10"][1]["names"]
    assert load_dataset("cifar100", data_dir=str(data_dir)).num_classes == 100
    assert load_dataset("MNIST", data_dir=str(data_dir)).image_shape == (28, 28, 1)
    svhn_expected = generated["SVHN"][1]
    assert 0 in svhn_expected["train"][1]  # stored as 10 in the .mat files


def test_svhn_extra_adds_the_extra_images_to_training_only(downloaded, generated):
    _, data_dir, _, _ = downloaded
    expected = generated["SVHN"][1]
    dataset = load_dataset("SVHN_extra", data_dir=str(data_dir))
    assert_split(dataset.train_images, dataset.train_labels,
                 [np.concatenate([expected["train"][i], expected["extra"][i]]) for i in (0, 1)])
    assert_split(dataset.test_images, dataset.test_labels, expected["test"])


def test_a_dropped_connection_is_resumed_with_a_range_request(downloaded, generated):
    result, data_dir, requests, size = downloaded
    assert [range_ for path, range_ in requests if path == DROPPED] == [None, f"bytes={size // 2}-"]
    assert "retrying" in result.stdout
    dataset = load_dataset("CIFAR10", data_dir=str(data_dir))
    assert_split(dataset.train_images, dataset.train_labels, generated["CIFAR10"][1]["train"])


def test_only_the_dataset_folders_are_left(downloaded):
    _, data_dir, _, _ = downloaded
    assert sorted(os.listdir(data_dir)) == ["CIFAR10", "CIFAR100", "MNIST", "SVHN", "SVHN_extra"]
    for name in os.listdir(data_dir):
        assert sorted(os.listdir(data_dir / name)) == ["data.hdf5", "id.txt", "test_id.txt"]


@pytest.fixture(scope="module")
def cifar_server(generated):
    """The generated CIFAR-10 archive (which cannot match the official MD5) and a truncated copy."""
    archive = generated["CIFAR10"][0]["cifar-10-python.tar.gz"]
    with FileServer({"good/cifar-10-python.tar.gz": archive,
                     "truncated/cifar-10-python.tar.gz": archive[:len(archive) * 2 // 3]}) as server:
        yield server


@pytest.mark.parametrize("mirror, flags, message", [
    ("good", [], "cifar-10-python.tar.gz from {url}/good/cifar-10-python.tar.gz: checksum mismatch (md5 "),
    ("truncated", ["--no_checksum"], "cifar-10-python.tar.gz is corrupt (not the CIFAR python archive: "),
])
def test_a_bad_file_fails_with_exit_1_and_leaves_nothing(cifar_server, tmp_path, mirror, flags, message):
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    code, _, err = call_cli("download.py", "--dataset", "CIFAR10", "--data_dir", data_dir,
                            "--mirror", f"{cifar_server.url}/{mirror}", *flags)
    lines = [line for line in err.splitlines() if "error" in line]
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("download.py: error: "), lines
    assert message.format(url=cifar_server.url) in lines[0], lines[0]
    if not flags:
        assert "expected c58f30108f718f92721af3b95e74349a" in lines[0]
    assert "Traceback" not in err
    assert os.listdir(data_dir) == []  # no dataset folder, no staging folder, no archive, no partial file


def test_unknown_dataset_name_lists_the_names(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["download.py", "--dataset", "MNIST", "ImageNet"])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(ROOT / "download.py"), run_name="__main__")
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert err == ["download.py: error: argument --dataset/--datasets: unknown dataset 'ImageNet'; choose from "
                   "MNIST, FashionMNIST, CIFAR10, CIFAR100, SVHN, SVHN_extra, digits (see --help)"]


def test_help_documents_the_mirror_layout():
    parser = runpy.run_path(str(ROOT / "download.py"))["build_parser"]()
    text = parser.format_help()
    assert "BASE_URL/<original file name>" in " ".join(text.split())
    assert parser.parse_args(["--datasets", "mnist", "Cifar10"]).datasets == ["MNIST", "CIFAR10"]
