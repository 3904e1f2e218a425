"""The trainer's statistics sample: numbers that describe the data, not the 16 picture images."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_frelu import checkpoints, config, data, events, training

LAYERS = ("act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2")


def flags(data_dir, **changes):
    return dataclasses.replace(config.TrainConfig(), data_dir=str(data_dir), progress=False, **changes)


def dead_units(model, images):
    """NumPy, independently of the monitor: per layer, the fraction of units never positive for any image."""
    extractor = keras.Model(model.input, [model.get_layer(name).output for name in LAYERS])
    return np.array([np.mean(np.all(np.asarray(outputs) <= 0, axis=0))
                     for outputs in extractor(data.scale_images(images), training=False)])


def test_dead_fractions_on_the_statistics_sample_hold_for_the_whole_test_split(data_dir, tmp_path):
    # A validation split about the size of the test split (431 and 360 images): a unit's "never positive"
    # depends on how many images try it, so the two samples are compared at a like size.
    run_flags = flags(data_dir, train_dir=str(tmp_path), max_training_steps=1000, learning_rate=1e-3,
                      validation_fraction=0.3, monitor_step=500, output_save_step=500, test_sample_step=500)
    training.train(run_flags)
    run_dir = run_flags.run_dir()
    scalars = events.read_scalars(f"{run_dir}/activations")
    written = np.array([dict(scalars[f"activations/{name}/dead_fraction"])[1000] for name in LAYERS])

    model = checkpoints.load_checkpoint(checkpoints.latest_checkpoint(run_dir))
    dataset = training.prepare(run_flags)
    sample = dataset.validation_images[:512]
    np.testing.assert_allclose(written, dead_units(model, sample), atol=1e-6)  # what the monitor wrote
    on_test = dead_units(model, dataset.test_images)
    assert np.abs(written - on_test).max() <= 0.01, (written, on_test)
    assert np.abs(dead_units(model, dataset.test_images[:16]) - on_test).max() > 0.01  # 16 images would not do


@pytest.mark.parametrize("validation_fraction, split", [(0.1, "validation"), (0.0, "test")])
def test_the_statistics_sample_is_the_same_for_every_seed_and_every_restart(data_dir, validation_fraction, split):
    samples = [training.statistics_sample(training.prepare(flags(data_dir, seed=seed,
                                                                 validation_fraction=validation_fraction)), 100)
               for seed in (0, 3, 3)]
    for other in samples[1:]:
        np.testing.assert_array_equal(other, samples[0])
    dataset = training.prepare(flags(data_dir, validation_fraction=validation_fraction))
    np.testing.assert_array_equal(samples[0], data.scale_images(getattr(dataset, f"{split}_images")[:100]))
