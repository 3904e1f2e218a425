"""The validation split: held out of the training split, stratified by class, the same for every seed."""

import dataclasses

import numpy as np
import pytest

from keras_frelu import config, data, training


def prepared(data_dir, **flags):
    return training.prepare(dataclasses.replace(config.TrainConfig(), data_dir=str(data_dir), **flags))


def test_disjoint_stratified_and_the_same_for_every_seed(data_dir):
    whole = data.load_dataset("digits", data_dir=str(data_dir))
    first, second = prepared(data_dir, seed=0), prepared(data_dir, seed=7)
    np.testing.assert_array_equal(first.validation_labels, second.validation_labels)
    np.testing.assert_array_equal(first.validation_images, second.validation_images)
    np.testing.assert_array_equal(first.train_images, second.train_images)

    # Disjoint: every training example of the whole dataset is in exactly one of the two, none in test.
    def keys(images):
        return {image.tobytes() for image in np.asarray(images)}

    train, validation, test = keys(first.train_images), keys(first.validation_images), keys(first.test_images)
    assert not train & validation and not validation & test
    assert len(first.train_labels) + len(first.validation_labels) == len(whole.train_labels)
    assert sorted(train | validation) == sorted(keys(whole.train_images))

    # Stratified: each class gives round(10%) of its training examples.
    for label in range(whole.num_classes):
        expected = round(0.1 * np.sum(whole.train_labels == label))
        assert np.sum(first.validation_labels == label) == expected, label


def test_fraction_zero_keeps_the_training_split_whole(data_dir):
    whole = data.load_dataset("digits", data_dir=str(data_dir))
    dataset = prepared(data_dir, validation_fraction=0.0)
    assert dataset.validation_labels is None and dataset.validation_size == 0
    np.testing.assert_array_equal(dataset.train_labels, whole.train_labels)


def test_a_class_keeps_at_least_one_training_example():
    dataset = data.Dataset("tiny", "tiny", np.arange(6).reshape(6, 1, 1, 1), np.array([0, 0, 0, 0, 1, 1]),
                           np.zeros((1, 1, 1, 1)), np.zeros(1, int), 2, (1, 1, 1))
    split = data.with_validation(dataset, 0.75)
    assert sorted(split.validation_labels.tolist()) == [0, 0, 0, 1]
    assert sorted(split.train_labels.tolist()) == [0, 1]
    with pytest.raises(data.DatasetError, match="at least 0 and below 1"):
        data.with_validation(dataset, 1.0)


@pytest.mark.parametrize("size, batch, log_step, expected", [(144, 64, 50, 50), (5000, 64, 50, 550), (6000, 128, 50, 350)])
def test_auto_interval_keeps_validation_near_five_percent_of_training(size, batch, log_step, expected):
    flags = dataclasses.replace(config.TrainConfig(), batch_size=batch, log_step=log_step)
    interval = config.validation_interval(flags, size)
    assert interval == expected and interval % log_step == 0
    assert size / (3 * interval * batch) <= 0.05  # inference of the split against 3x the training images
    assert config.validation_interval(dataclasses.replace(flags, validation_step=100), size) == 100
