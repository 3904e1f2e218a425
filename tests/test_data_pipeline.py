"""make_dataset: scaling, batching, seeded shuffling, exact resumption, and streaming from HDF5."""

import numpy as np
import pytest

from keras_frelu.data import hdf5, load_dataset, make_dataset, pipeline, scale_images
from keras_frelu.errors import UsageError

COUNT = 30


@pytest.fixture(scope="module")
def arrays():
    """30 distinct random images 4x3x2 (the first pixel tells them apart) and their labels."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (COUNT, 4, 3, 2), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(COUNT)
    return images, rng.integers(0, 7, COUNT).astype(np.int32)


@pytest.fixture(scope="module")
def on_disk(arrays, tmp_path_factory):
    """The same examples as a columnar dataset loaded with memory_limit=0: HDF5Images streamed from disk."""
    images, labels = arrays
    folder = tmp_path_factory.mktemp("streamed") / "streamed"
    folder.mkdir()
    ids = [f"{index:02d}" for index in range(COUNT)]
    hdf5.write_columnar(str(folder / "data.hdf5"), [(ids, images, labels)], num_classes=7)
    (folder / "id.txt").write_text("".join(f"{identifier}\n" for identifier in ids))
    (folder / "test_id.txt").write_text("00\n")
    dataset = load_dataset(str(folder), memory_limit=0)
    assert isinstance(dataset.train_images, hdf5.HDF5Images)
    train = slice(1, None)  # every example but the test one, in file order
    return dataset.train_images, dataset.train_labels, images[train], labels[train]


def batches(dataset, count=None):
    taken = dataset if count is None else dataset.take(count)
    return [(images.numpy(), labels.numpy()) for images, labels in taken]


def identities(batch_list):
    """The example number (the first pixel, scaled) of every example in order."""
    return [int(round(value * 255)) for images, _ in batch_list for value in images[:, 0, 0, 0]]


def test_images_are_scaled_to_float32_and_labels_are_int32(arrays):
    images, labels = arrays
    (batch,) = batches(make_dataset(images, labels, COUNT, shuffle=False))
    assert batch[0].dtype == np.float32 and batch[1].dtype == np.int32
    np.testing.assert_array_equal(batch[0], images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(batch[1], labels)
    floats = images.astype(np.float32) / 255
    (again,) = batches(make_dataset(floats, labels, COUNT, shuffle=False))
    np.testing.assert_array_equal(again[0], floats)  # float images pass through unchanged
    np.testing.assert_array_equal(scale_images(images), batch[0])


def test_batches_keep_order_without_shuffle_and_drop_the_remainder_on_request(arrays):
    images, labels = arrays
    kept = batches(make_dataset(images, labels, 7, shuffle=False))
    assert [len(labels) for _, labels in kept] == [7, 7, 7, 7, 2]
    assert identities(kept) == list(range(COUNT))
    dropped = batches(make_dataset(images, labels, 7, shuffle=False, drop_remainder=True))
    assert [len(labels) for _, labels in dropped] == [7, 7, 7, 7]


def test_every_epoch_is_a_new_seeded_permutation(arrays):
    images, labels = arrays
    stream = identities(batches(make_dataset(images, labels, 10, seed=1, repeat=True), 9))
    epochs = [stream[start:start + COUNT] for start in range(0, 3 * COUNT, COUNT)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(COUNT))
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(COUNT))
    assert stream == identities(batches(make_dataset(images, labels, 10, seed=1, repeat=True), 9))
    assert stream != identities(batches(make_dataset(images, labels, 10, seed=2, repeat=True), 9))
    # Each label stays with its image.
    for images_batch, labels_batch in batches(make_dataset(images, labels, 10, seed=1, repeat=True), 9):
        np.testing.assert_array_equal(labels_batch, labels[np.round(images_batch[:, 0, 0, 0] * 255).astype(int)])


def test_a_finite_shuffled_dataset_is_reshuffled_on_every_iteration(arrays):
    images, labels = arrays
    dataset = make_dataset(images, labels, 8, seed=4)
    first, second = identities(batches(dataset)), identities(batches(dataset))
    assert sorted(first) == sorted(second) == list(range(COUNT)) and first != second
    assert first == identities(batches(make_dataset(images, labels, 8, seed=4)))


@pytest.mark.parametrize("start", [1, 3, 5, 7])  # 3 and 6 batches of 10 end the first and second epochs
def test_start_batch_resumes_the_uninterrupted_stream_exactly(arrays, start):
    images, labels = arrays
    full = batches(make_dataset(images, labels, 10, seed=3, repeat=True, drop_remainder=True), 12)
    resumed = batches(make_dataset(images, labels, 10, seed=3, repeat=True, drop_remainder=True,
                                   start_batch=start), 12 - start)
    assert identities(resumed) == identities(full[start:])
    for (images_a, labels_a), (images_b, labels_b) in zip(full[start:], resumed):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)


def test_autotuning_is_off_in_memory_and_streamed(arrays, on_disk):
    # tf.data's autotuning thread made deleting an iterator (the end of every fit/evaluate) wait for its
    # current sleep, up to a minute (bench/tf_data_autotune.py); the pipeline uses fixed settings instead.
    images, labels = arrays
    disk_images, disk_labels, _, _ = on_disk
    for dataset in (make_dataset(images, labels, 4), make_dataset(disk_images, disk_labels, 4, repeat=True)):
        assert dataset.options().autotune.enabled is False


def test_streamed_hdf5_images_give_every_example_once_per_epoch(on_disk, monkeypatch):
    disk_images, disk_labels, images, labels = on_disk
    count = len(labels)
    monkeypatch.setattr(pipeline, "WINDOW_BYTES", 8 * images[0].nbytes)  # windows of 8 runs of 1 example
    (in_order,) = batches(make_dataset(disk_images, disk_labels, count, shuffle=False))
    np.testing.assert_array_equal(in_order[0], images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(in_order[1], labels)

    stream = identities(batches(make_dataset(disk_images, disk_labels, 4, seed=1, repeat=True), 3 * count // 4 + 1))
    epochs = [stream[start:start + count] for start in range(0, 3 * count, count)]
    assert all(sorted(epoch) == list(range(1, COUNT)) for epoch in epochs)
    assert epochs[0] != epochs[1] and epochs[0] != sorted(epochs[0])
    for images_batch, labels_batch in batches(make_dataset(disk_images, disk_labels, 4, seed=1, repeat=True), 10):
        np.testing.assert_array_equal(labels_batch, disk_labels[np.round(images_batch[:, 0, 0, 0] * 255).astype(int) - 1])


@pytest.mark.parametrize("source", ["hdf5", "large numpy"])
def test_streamed_data_resume_exactly_too(on_disk, monkeypatch, source):
    disk_images, disk_labels, images, labels = on_disk
    if source == "large numpy":  # arrays too big for a tf.data graph take the streaming path as well
        monkeypatch.setattr(pipeline, "IN_GRAPH_LIMIT", 0)
        disk_images = images
    monkeypatch.setattr(pipeline, "WINDOW_BYTES", 16 * images[0].nbytes)
    full = identities(batches(make_dataset(disk_images, disk_labels, 6, seed=7, repeat=True), 15))
    assert sorted(full[:len(labels)]) == list(range(1, COUNT))
    for start in (2, 5, 9):
        resumed = batches(make_dataset(disk_images, disk_labels, 6, seed=7, repeat=True, start_batch=start), 15 - start)
        assert identities(resumed) == full[6 * start:]


@pytest.mark.parametrize("arguments, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"labels": np.zeros(3)}, "one class index per image"),
    ({"start_batch": -1}, "start_batch must be >= 0"),
])
def test_bad_arguments_raise_usage_errors(arrays, arguments, message):
    images, labels = arrays
    with pytest.raises(UsageError, match=message):
        make_dataset(images, arguments.pop("labels", labels), arguments.pop("batch_size", 4), **arguments)
