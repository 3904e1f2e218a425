"""The monitor's numbers and event writing: statistics, histogram buckets, PNGs, summary protos and the
background thread, each against an independent reference."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from keras_frelu.monitor import background, summaries
from keras_frelu.monitor.background import BackgroundThread
from keras_frelu.monitor.statistics import activation_statistics, histogram_buckets


def test_statistics_follow_their_definitions():
    # units (columns): always zero (dead), once zero, never zero
    values = np.array([[0.0, 0.0, 2.0], [0.0, -1.0, 3.0]], dtype=np.float32)
    got = {name: float(value) for name, value in activation_statistics(values).items()}
    assert got == pytest.approx({"mean": 4 / 6, "std": float(np.std(values)), "min": -1.0, "max": 3.0,
                                 "zero_fraction": 3 / 6, "dead_fraction": 1 / 3, "negative_fraction": 1 / 6})


def test_histogram_buckets_of_constant_and_non_finite_values():
    constant = histogram_buckets(np.full(7, 2.0))
    assert constant[0, 0] == 1.5 and constant[-1, 1] == 2.5 and constant[:, 2].sum() == 7
    mixed = histogram_buckets(np.array([np.nan, np.inf, 1.0, 3.0]))
    assert mixed[0, 0] == 1.0 and mixed[-1, 1] == 3.0 and mixed[0, 2] == 1 and mixed[-1, 2] == 1
    assert mixed[:, 2].sum() == 2
    assert histogram_buckets(np.array([np.nan]))[:, 2].sum() == 0


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3), (230, 288, 3)])
def test_png_decodes_to_the_same_pixels_in_two_independent_decoders(shape):
    picture = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    picture[: shape[0] // 2] = 255  # flat areas as in the panels, and noise
    blob = summaries.png(picture)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(blob))), picture)
    np.testing.assert_array_equal(tf.io.decode_png(blob).numpy(), picture)


def test_png_refuses_what_is_not_a_uint8_rgb_picture():
    for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8)):
        with pytest.raises(ValueError, match="uint8 \\(height, width, 3\\)"):
            summaries.png(bad)


def test_summary_protos_read_back_as_what_tf_summary_writes(tmp_path):
    # The monitor builds its summaries as protos (keras_frelu.monitor.summaries); TensorBoard must see the
    # same plugin, dtype, shape and values as from tf.summary's own ops.
    rng = np.random.default_rng(2)
    buckets = histogram_buckets(rng.normal(size=50))
    picture = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    with tf.summary.create_file_writer(str(tmp_path / "tf")).as_default(step=4):
        tf.summary.scalar("s", 0.25)
        tf.summary.histogram("h", rng.normal(size=50))  # only plugin, dtype and shape are compared
        tf.summary.image("i", picture[np.newaxis])
    writer = tf.summary.create_file_writer(str(tmp_path / "ours"))
    summaries.write(writer, 4, [summaries.scalar("s", 0.25), summaries.histogram("h", buckets),
                                summaries.image("i", [summaries.png(picture)], 5, 7)])
    writer.flush()
    theirs, ours = (event_accumulator.EventAccumulator(str(tmp_path / name), size_guidance={"tensors": 0})
                    for name in ("tf", "ours"))
    theirs.Reload()
    ours.Reload()
    for tag in ("s", "h", "i"):
        (their_event,), (our_event,) = theirs.Tensors(tag), ours.Tensors(tag)
        assert our_event.step == their_event.step == 4
        assert ours.SummaryMetadata(tag).plugin_data.plugin_name == theirs.SummaryMetadata(tag).plugin_data.plugin_name
        their_value, our_value = tf.make_ndarray(their_event.tensor_proto), tf.make_ndarray(our_event.tensor_proto)
        assert our_value.dtype == their_value.dtype and our_value.shape == their_value.shape, tag
    assert tf.make_ndarray(ours.Tensors("s")[0].tensor_proto) == np.float32(0.25)
    np.testing.assert_array_equal(tf.make_ndarray(ours.Tensors("h")[0].tensor_proto), buckets)
    their_image, our_image = (tf.make_ndarray(accumulator.Tensors("i")[0].tensor_proto)
                              for accumulator in (theirs, ours))
    assert list(our_image[:2]) == list(their_image[:2]) == [b"7", b"5"]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(our_image[2]))), picture)


def test_background_thread_runs_jobs_in_order_and_raises_their_errors(monkeypatch):
    clock = iter(range(0, 100, 2))  # each job starts and ends one tick of 2 CPU seconds apart
    monkeypatch.setattr(background.time, "thread_time", lambda: float(next(clock)))
    thread = BackgroundThread()
    done = []
    for index in range(5):
        thread.submit(done.append, index)
    thread.wait()
    assert done == list(range(5)) and thread.cpu_seconds == 5 * 2.0  # the CPU time of the jobs, summed

    def fail():
        raise OSError("disk full")

    thread.submit(fail)
    thread.submit(done.append, 5)
    with pytest.raises(OSError, match="disk full"):
        thread.wait()
    assert done[-1] == 5  # later jobs still ran; the thread is ended, a new submit starts another
    thread.submit(done.append, 6)
    thread.wait()
    assert done[-1] == 6
