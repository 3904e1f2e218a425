"""Dataset folders: both HDF5 layouts, splits, the columnar cache, and `python -m keras_frelu.data check` on
every kind of bad input (one-line error, exit code 2, nothing written)."""

import logging
import math
import os
import runpy
import subprocess
import sys

import h5py
import numpy as np
import pytest
from helpers import CLI_ENV, error_lines

from keras_frelu.data import hdf5, load_dataset
from keras_frelu.data.dataset import seeded_split
from keras_frelu.data.per_id import CACHE_FILE


def write_per_id_folder(folder, images, labels, ids=None, one_hot=True, data_name="data.hdf5"):
    ids = ids or [f"example{index}" for index in range(len(images))]
    folder.mkdir(parents=True, exist_ok=True)
    hdf5.write_per_id(str(folder / data_name), ids, images, labels, one_hot=one_hot)
    (folder / "id.txt").write_text("".join(f"{identifier}\n" for identifier in ids))
    return ids


def small_arrays(count=20, shape=(6, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *shape), dtype=np.uint8), rng.integers(0, 4, count)


def small_arrays_of_classes(labels, shape=(6, 5, 3)):
    """Images and the given class indices, one-hot over 4 classes when written as the original layout."""
    labels = np.array(labels)
    images = np.random.default_rng(0).integers(0, 256, (len(labels), *shape), dtype=np.uint8)
    return images, labels


def class_only_in_test(folder):
    """Classes 0-2 in both splits, class 3 in the test split only (test_id.txt)."""
    ids = write_per_id_folder(folder, *small_arrays_of_classes([0, 1, 2] * 4 + [0, 1, 2, 3]))
    (folder / "test_id.txt").write_text("".join(f"{identifier}\n" for identifier in ids[-4:]))


def all_examples(dataset):
    """Images and labels of both splits, train then test."""
    return (np.concatenate([dataset.train_images, dataset.test_images]),
            np.concatenate([dataset.train_labels, dataset.test_labels]))


def test_per_id_and_columnar_layouts_give_the_same_dataset(tmp_path):
    images, labels = small_arrays()
    ids = [f"example{index}" for index in range(20)]
    write_per_id_folder(tmp_path / "per_id", images, labels, ids)
    (tmp_path / "columnar").mkdir()
    hdf5.write_columnar(str(tmp_path / "columnar" / "data.hdf5"), [(ids, images, labels)], num_classes=4)
    (tmp_path / "columnar" / "id.txt").write_text((tmp_path / "per_id" / "id.txt").read_text())

    per_id, columnar = (load_dataset(str(tmp_path / name)) for name in ("per_id", "columnar"))
    assert per_id.layout.startswith("per-id") and columnar.layout == "columnar"
    for dataset in (per_id, columnar):
        assert dataset.image_shape == (6, 5, 3) and dataset.num_classes == 4
        assert dataset.train_images.dtype == np.uint8 and dataset.train_labels.dtype == np.int32
        assert len(dataset.test_labels) == 4  # ceil(20 * 0.2)
    np.testing.assert_array_equal(per_id.train_images, columnar.train_images)
    np.testing.assert_array_equal(per_id.test_labels, columnar.test_labels)
    # Every example once, with its own label, in id.txt order within each split.
    test_ids = [ids[position] for position in seeded_split(ids, 0.2, 0)]
    train_rows = [index for index, identifier in enumerate(ids) if identifier not in test_ids]
    np.testing.assert_array_equal(per_id.train_images, images[train_rows])
    np.testing.assert_array_equal(per_id.train_labels, labels[train_rows])


def test_id_txt_chooses_and_orders_the_examples(tmp_path):
    images, labels = small_arrays(count=12)
    labels[[11, 3, 0, 5]] = [0, 1, 2, 3]  # every class has a training example (else the folder is refused)
    ids = write_per_id_folder(tmp_path / "subset", images, labels)
    chosen = [11, 3, 7, 0, 5]
    (tmp_path / "subset" / "id.txt").write_text("".join(f"{ids[index]}\n\n" for index in chosen))  # blank lines too
    (tmp_path / "subset" / "test_id.txt").write_text(f"{ids[7]}\n")
    dataset = load_dataset(str(tmp_path / "subset"))
    np.testing.assert_array_equal(dataset.train_images, images[[11, 3, 0, 5]])
    np.testing.assert_array_equal(dataset.test_images, images[[7]])
    assert dataset.split == "test_id.txt"


def test_the_original_name_data_hy_and_bool_one_hot_labels_work(tmp_path):
    folder = tmp_path / "original"
    folder.mkdir()
    images, labels = small_arrays(count=10)
    with h5py.File(folder / "data.hy", "w") as handle:  # as the original project's download.py wrote them
        for index in range(10):
            group = handle.create_group(str(index))
            group["image"] = images[index]
            group["label"] = np.eye(4, dtype=bool)[labels[index]]
    (folder / "id.txt").write_text("".join(f"{index}\n" for index in range(10)))
    dataset = load_dataset(str(folder))
    images_back, labels_back = all_examples(dataset)
    assert sorted(map(bytes, images_back)) == sorted(map(bytes, images))
    assert sorted(labels_back.tolist()) == sorted(labels.tolist())


def test_seeded_split_is_stable_order_independent_and_seeded():
    ids = [f"img_{index}" for index in range(1000)]
    split = seeded_split(ids, 0.2, seed=0)
    assert len(split) == 200 and len(set(split)) == 200
    np.testing.assert_array_equal(split, seeded_split(ids, 0.2, seed=0))
    reordered = ids[::-1]
    assert {reordered[p] for p in seeded_split(reordered, 0.2, 0)} == {ids[p] for p in split}
    assert set(seeded_split(ids, 0.2, seed=1)) != set(split)
    assert len(seeded_split([f"d{index}" for index in range(1797)], 0.2, 0)) == 360  # ceil(359.4)


def test_test_fraction_and_seed_choose_the_custom_split(tmp_path):
    images, labels = small_arrays(count=40)
    write_per_id_folder(tmp_path / "custom", images, labels)
    first = load_dataset(str(tmp_path / "custom"), test_fraction=0.25, seed=3)
    again = load_dataset(str(tmp_path / "custom"), test_fraction=0.25, seed=3)
    other = load_dataset(str(tmp_path / "custom"), test_fraction=0.25, seed=4)
    assert len(first.test_labels) == 10 and len(first.train_labels) == 30
    np.testing.assert_array_equal(first.test_images, again.test_images)
    assert not np.array_equal(first.test_images, other.test_images)


def test_class_indices_are_accepted_with_a_note(tmp_path, caplog):
    images, labels = small_arrays(count=15)
    write_per_id_folder(tmp_path / "indices", images, labels, one_hot=False)
    with caplog.at_level(logging.WARNING, logger="keras_frelu.data"):
        dataset = load_dataset(str(tmp_path / "indices"))
    assert "class indices, not one-hot" in caplog.text and "4 classes" in caplog.text
    assert dataset.num_classes == 4
    assert sorted(all_examples(dataset)[1].tolist()) == sorted(labels.tolist())


def test_float_images_in_the_unit_range_load_as_float32(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((10, 4, 4, 1))  # float64 in [0, 1)
    write_per_id_folder(tmp_path / "floats", images, np.arange(10) % 2)
    dataset = load_dataset(str(tmp_path / "floats"))
    assert dataset.train_images.dtype == np.float32
    assert sorted(map(bytes, all_examples(dataset)[0])) == sorted(map(bytes, images.astype(np.float32)))


def test_data_larger_than_the_memory_limit_stays_on_disk(tmp_path):
    images, labels = small_arrays(count=30)
    write_per_id_folder(tmp_path / "big", images, labels)
    in_memory = load_dataset(str(tmp_path / "big"))
    on_disk = load_dataset(str(tmp_path / "big"), memory_limit=0)
    assert isinstance(on_disk.train_images, hdf5.HDF5Images)
    assert on_disk.train_images.shape == in_memory.train_images.shape
    np.testing.assert_array_equal(on_disk.train_images[:], in_memory.train_images)
    np.testing.assert_array_equal(on_disk.test_images[[2, 0]], in_memory.test_images[[2, 0]])
    np.testing.assert_array_equal(on_disk.train_images[5], in_memory.train_images[5])


# ---------------------------------------------------------------------------------------------- the cache

def test_many_per_id_examples_are_cached_and_the_cache_is_used_afterwards(tmp_path, monkeypatch):
    count = 3 * hdf5.BLOCK + 123  # several copy blocks and a partial one
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (count, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    write_per_id_folder(tmp_path / "big", images, labels)

    first = load_dataset(str(tmp_path / "big"))
    assert first.layout == "per-id (columnar cache built)"
    assert (tmp_path / "big" / CACHE_FILE).is_file()
    assert len(first.test_labels) == math.ceil(0.2 * count) and len(first.train_labels) == count - math.ceil(0.2 * count)

    def no_group_reading(*args):
        raise AssertionError("the per-id groups were read again")

    monkeypatch.setattr("keras_frelu.data.per_id._per_id_blocks", no_group_reading)
    second = load_dataset(str(tmp_path / "big"))
    assert second.layout == "per-id (columnar cache)"
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    # And the cached arrays are the source's examples (the split is by id: check through the ids).
    test_ids = seeded_split([f"example{index}" for index in range(count)], 0.2, 0)
    np.testing.assert_array_equal(second.test_images, images[test_ids])
    np.testing.assert_array_equal(second.test_labels, labels[test_ids])


def test_the_cache_is_rebuilt_when_the_data_file_or_id_txt_changes(tmp_path):
    images, labels = small_arrays(count=10)
    labels[:6] = [0, 3, 0, 1, 2, 3]  # every class has a training example in each version below
    ids = write_per_id_folder(tmp_path / "changing", images, labels)
    (tmp_path / "changing" / "test_id.txt").write_text(f"{ids[0]}\n")
    assert load_dataset(str(tmp_path / "changing")).train_labels[0] == labels[1]

    with h5py.File(tmp_path / "changing" / "data.hdf5", "a") as handle:
        del handle[ids[1]]["label"]
        handle[ids[1]]["label"] = np.eye(4, dtype=np.uint8)[(labels[1] + 1) % 4]
    reloaded = load_dataset(str(tmp_path / "changing"))
    assert reloaded.layout == "per-id (columnar cache built)"
    assert reloaded.train_labels[0] == (labels[1] + 1) % 4

    (tmp_path / "changing" / "id.txt").write_text("".join(f"{identifier}\n" for identifier in ids[:6]))
    shorter = load_dataset(str(tmp_path / "changing"))
    assert shorter.layout == "per-id (columnar cache built)" and len(shorter.train_labels) == 5


def test_a_folder_where_the_cache_cannot_be_written_still_loads(tmp_path, caplog):
    images, labels = small_arrays(count=10)
    write_per_id_folder(tmp_path / "blocked", images, labels)
    (tmp_path / "blocked" / CACHE_FILE).mkdir()  # the cache file's name is taken
    with caplog.at_level(logging.WARNING, logger="keras_frelu.data"):
        dataset = load_dataset(str(tmp_path / "blocked"))
    assert "cannot write" in caplog.text
    assert dataset.layout == "per-id" and len(dataset.train_labels) == 8
    assert sorted(os.listdir(tmp_path / "blocked")) == ["columnar_cache.hdf5", "data.hdf5", "id.txt"]


# ---------------------------------------------------------------------------------------------- bad input

def per_id_with(folder, change):
    """A valid per-id folder of 10 examples 8x8x1, then ``change(handle, ids)`` applied to its data.hdf5."""
    images, labels = small_arrays(count=10, shape=(8, 8, 1))
    ids = write_per_id_folder(folder, images, labels)
    with h5py.File(folder / "data.hdf5", "a") as handle:
        change(handle, ids)


def replace(name, value, index=4):
    """Replace the ``name`` dataset of example ``index``."""
    def change(handle, ids):
        del handle[ids[index]][name]
        handle[ids[index]][name] = value
    return change


def replace_all(name, value):
    """Replace the ``name`` dataset of every example."""
    def change(handle, ids):
        for index in range(len(ids)):
            replace(name, value, index)(handle, ids)
    return change


def float_images_with(bad_value):
    def make(folder):
        images = np.full((10, 4, 4, 1), 0.5, np.float32)
        images[6, 1, 2, 0] = bad_value
        write_per_id_folder(folder, images, np.arange(10) % 3)
    return make


def truncated(folder):
    per_id_with(folder, lambda handle, ids: None)
    content = (folder / "data.hdf5").read_bytes()
    (folder / "data.hdf5").write_bytes(content[:len(content) // 2])


def columnar_with_images(shape):
    def make(folder):
        folder.mkdir()
        with h5py.File(folder / "data.hdf5", "w") as handle:
            handle["images"] = np.zeros(shape, np.uint8)
            handle["labels"] = np.eye(2, dtype=np.uint8)[np.arange(shape[0]) % 2]
            handle["ids"] = np.array([f"{index}".encode() for index in range(shape[0])])
        (folder / "id.txt").write_text("".join(f"{index}\n" for index in range(shape[0])))
    return make


def with_id_file(text, name="id.txt"):
    def make(folder):
        per_id_with(folder, lambda handle, ids: None)
        (folder / name).write_text(text)
    return make


BAD_INPUTS = {
    "missing folder": (None, "unknown dataset 'bad': {parent} holds no dataset; built-in datasets: MNIST"),
    "missing built-in": ("CIFAR10", "does not exist; download it with: python download.py --dataset CIFAR10"),
    "no data file": (lambda folder: folder.mkdir(), "has no data.hdf5 (or data.hy)"),
    "missing id.txt": (lambda folder: (per_id_with(folder, lambda h, i: None), (folder / "id.txt").unlink()),
                       "id.txt is missing"),
    "empty id.txt": (with_id_file("\n  \n"), "id.txt lists no ids"),
    "duplicate id": (with_id_file("example1\nexample2\nexample1\n"), "lists the id 'example1' more than once"),
    "ids absent": (with_id_file("example0\nexample1\nghost\nexample2\nphantom\n"),
                   "2 id(s) listed in id.txt are not in the file (first: 'ghost' on line 3)"),
    "first id absent": (with_id_file("ghost\nexample1\n"), "1 id(s) listed in id.txt are not in the file"),
    "test id absent": (with_id_file("example3\nnowhere\n", name="test_id.txt"),
                       "test_id.txt lists 1 id(s) that are not in"),
    "rank 2 image": (lambda folder: per_id_with(folder, replace("image", np.zeros((8, 8), np.uint8))),
                     "example 'example4': the image has shape (8, 8) (rank 2); images must be [height, width, channels]"),
    "rank 2 first image": (lambda folder: per_id_with(folder, replace("image", np.zeros((8, 8), np.uint8), 0)),
                           "example 'example0': the image has shape (8, 8) (rank 2)"),
    "inconsistent shapes": (lambda folder: per_id_with(folder, replace("image", np.zeros((9, 8, 1), np.uint8))),
                            "the image has shape (9, 8, 1) but the first example's has (8, 8, 1)"),
    "mixed dtypes": (lambda folder: per_id_with(folder, replace("image", np.zeros((8, 8, 1), np.float32))),
                     "the image is float32 but the first example's is uint8"),
    "not one-hot": (lambda folder: per_id_with(folder, replace("label", np.array([0.5, 0.5, 0, 0]))),
                    "example 'example4': the label [0.5, 0.5, 0. , 0. ] is not one-hot"),
    "two ones": (lambda folder: per_id_with(folder, replace("label", np.array([1, 0, 1, 0], np.uint8))),
                 "is not one-hot"),
    "label of other length": (lambda folder: per_id_with(folder, replace("label", np.eye(7, dtype=np.uint8)[2])),
                              "example 'example4': the label has shape (7,)"),
    "NaN": (float_images_with(np.nan), "example 'example6': the image contains NaN or inf values"),
    "inf": (float_images_with(np.inf), "example 'example6': the image contains NaN or inf values"),
    "float above 1": (float_images_with(255.0), "float image values must lie in [0, 1] (found 0.5..255)"),
    "truncated file": (truncated, "is not a readable HDF5 file (truncated file"),
    "not HDF5": (lambda folder: (folder.mkdir(), (folder / "data.hdf5").write_text("id,label\n1,2\n"),
                                 (folder / "id.txt").write_text("1\n2\n")), "(file signature not found)"),
    "columnar rank 3": (columnar_with_images((6, 8, 8)), "'images' has shape (6, 8, 8); it must be [N, height"),
    "one class as indices": (lambda folder: write_per_id_folder(folder, *small_arrays_of_classes([1] * 10), one_hot=False),
                             "holds examples of class 1 only; a classifier needs at least 2 classes"),
    "one class in a 4-wide one-hot": (lambda folder: per_id_with(folder, replace_all("label", np.eye(4)[2])),
                                      "holds examples of class 2 only"),
    "class without training example": (lambda folder: class_only_in_test(folder),
                                       "class 3 has no training example (1 in the test split); add training "
                                       "examples of it, or number the classes 0 to K-1 without gaps"),
    "both data files": (lambda folder: (per_id_with(folder, lambda h, i: None),
                                        (folder / "data.hy").write_bytes((folder / "data.hdf5").read_bytes())),
                        "holds both data.hdf5 and data.hy"),
}


def snapshot(directory):
    """Every file and folder under ``directory`` with the size and mtime of the files."""
    return {(str(path), path.is_dir() or (path.stat().st_size, path.stat().st_mtime_ns)) for path in directory.rglob("*")}


def check_in_process(folder, capsys):
    """``python -m keras_frelu.data check FOLDER`` run in this interpreter (the module's own __main__ and
    cli.run; a real process costs ~6 s of TensorFlow import per case): (exit code, stdout, stderr)."""
    argv = ["python -m keras_frelu.data", "check", str(folder)]
    saved = sys.argv
    try:
        sys.argv = argv
        with pytest.raises(SystemExit) as stopped:
            runpy.run_module("keras_frelu.data", run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved
    captured = capsys.readouterr()
    return stopped.value.code, captured.out, captured.err


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_line_error_exit_2_and_writes_nothing(case, tmp_path, capsys):
    make, expected = BAD_INPUTS[case]
    folder = tmp_path / (make if isinstance(make, str) else "bad")
    if callable(make):
        make(folder)
    before = snapshot(tmp_path)
    code, out, err = check_in_process(folder, capsys)
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("python -m keras_frelu.data: error: "), err
    assert expected.format(parent=tmp_path) in lines[0], lines[0]
    assert out == ""
    assert snapshot(tmp_path) == before  # nothing written: no cache, no temporary file


def run_check(folder):
    return subprocess.run([sys.executable, "-m", "keras_frelu.data", "check", str(folder)], capture_output=True,
                          text=True, env=CLI_ENV, timeout=300)


def test_check_as_a_real_process_summarises_a_valid_folder(tmp_path):
    images, labels = small_arrays(count=50, shape=(8, 6, 1))
    write_per_id_folder(tmp_path / "mine", images, labels, one_hot=False)
    result = run_check(tmp_path / "mine")
    assert result.returncode == 0, result.stderr
    counts = np.bincount(labels, minlength=4)
    assert f"{tmp_path / 'mine'}: valid (per-id (columnar cache built) layout)" in result.stdout
    assert "examples       50" in result.stdout and "images         8x6x1 uint8" in result.stdout
    assert "classes        4" in result.stdout and "train 40, test 10 (from seeded 0.2 (seed 0))" in result.stdout
    dataset = load_dataset(str(tmp_path / "mine"))
    train_counts = np.bincount(dataset.train_labels, minlength=4)
    assert "train balance  " + ", ".join(f"{c}: {n}" for c, n in enumerate(train_counts)) in result.stdout
    assert train_counts.sum() + np.bincount(dataset.test_labels, minlength=4).sum() == counts.sum()
    (note,) = error_lines(result.stderr)
    assert note.startswith("note: ") and "stores class indices, not one-hot vectors" in note


def test_a_class_with_no_test_example_is_warned_about_not_refused(tmp_path, caplog):
    ids = write_per_id_folder(tmp_path / "mine", *small_arrays_of_classes([0, 1, 2] * 4))
    (tmp_path / "mine" / "test_id.txt").write_text("".join(f"{identifier}\n" for identifier in ids[:2]))
    with caplog.at_level(logging.WARNING, logger="keras_frelu.data"):
        dataset = load_dataset(str(tmp_path / "mine"))
    assert sorted(dataset.test_labels) == [0, 1]
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "1 class(es) have no test example (first: 2); their accuracy cannot be measured" in warning


def test_an_id_file_with_a_byte_order_mark_is_read_as_the_same_ids(tmp_path):
    images, labels = small_arrays()
    ids = write_per_id_folder(tmp_path / "mine", images, labels)
    plain = load_dataset(str(tmp_path / "mine"))
    (tmp_path / "mine" / "id.txt").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "mine" / "id.txt").read_bytes())
    with_mark = load_dataset(str(tmp_path / "mine"))
    assert np.array_equal(with_mark.train_labels, plain.train_labels) and len(ids) == 20
    assert np.array_equal(with_mark.test_images, plain.test_images)


def test_check_shows_the_pixel_range(tmp_path):
    images, labels = small_arrays(count=30)
    images[0, 0, 0, 0], images[1, 0, 0, 0] = 3, 250
    images = np.clip(images, 3, 250)
    write_per_id_folder(tmp_path / "mine", images, labels)
    result = run_check(tmp_path / "mine")
    assert result.returncode == 0, result.stderr
    assert "pixel range    3 to 250" in result.stdout


def test_check_of_a_file_that_is_not_hdf5_fails_with_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "data.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    (tmp_path / "broken" / "id.txt").write_text("a\nb\n")
    code, out, err = check_in_process(tmp_path / "broken", capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and out == ""
    assert lines[0].startswith(f"python -m keras_frelu.data: error: {tmp_path / 'broken' / 'data.hdf5'} is not a "
                               "readable HDF5 file (")
    assert sorted(os.listdir(tmp_path / "broken")) == ["data.hdf5", "id.txt"]


def test_a_dot_slash_path_is_a_folder_not_a_name_under_data_dir(tmp_path, monkeypatch):
    images, labels = small_arrays()
    write_per_id_folder(tmp_path / "mine", images, labels)
    monkeypatch.chdir(tmp_path)
    dataset = load_dataset("./mine", data_dir=str(tmp_path / "datasets"))
    assert dataset.name == "mine" and len(dataset.train_labels) + len(dataset.test_labels) == 20
