"""The trainer's statistics sample: numbers that describe the data, not the 16 picture images."""

import dataclasses

import numpy as np
import pytest

from keras_frelu import config, data, training


def flags(data_dir, **changes):
    return dataclasses.replace(config.TrainConfig(), data_dir=str(data_dir), progress=False, **changes)


@pytest.mark.parametrize("validation_fraction, split", [(0.1, "validation"), (0.0, "test")])
def test_the_statistics_sample_is_the_same_for_every_seed_and_every_restart(data_dir, validation_fraction, split):
    samples = [training.statistics_sample(training.prepare(flags(data_dir, seed=seed,
                                                                 validation_fraction=validation_fraction)), 100)
               for seed in (0, 3, 3)]
    for other in samples[1:]:
        np.testing.assert_array_equal(other, samples[0])
    dataset = training.prepare(flags(data_dir, validation_fraction=validation_fraction))
    np.testing.assert_array_equal(samples[0], data.scale_images(getattr(dataset, f"{split}_images")[:100]))
