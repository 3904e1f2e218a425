"""The monitor's statistics describe the data: on a trained reference network the dead fractions over the
default statistics sample hold for the whole test split."""

import keras
import numpy as np
from test_monitor_statistics_sample import flags

from keras_frelu import checkpoints, data, events, training


LAYERS = ("act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2")


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
