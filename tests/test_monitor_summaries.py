"""The monitor's numbers and event writing: statistics, histogram buckets, PNGs, summary protos and the
background thread, each against an independent reference."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from keras_frelu.monitor import background, summaries
from keras_frelu.monitor.background import BackgroundThread
from keras_frelu import events
from keras_frelu.monitor.statistics import HISTOGRAM_EDGES, StreamingStatistics, batch_reductions, histogram_buckets
from keras_frelu.monitor.writer import open_writer


def streamed(values, batch_size):
    statistics = StreamingStatistics()
    for start in range(0, len(values), batch_size):
        reductions = batch_reductions(values[start:start + batch_size])
        statistics.add({key: np.asarray(value) for key, value in reductions.items()})
    return statistics


def test_statistics_follow_their_definitions_whatever_the_batches():
    # units (columns): never positive (dead), positive once, always positive, negative once
    values = np.array([[0.0, 0.0, 2.0, -1.0], [0.0, 1.0, 3.0, 4.0], [-2.0, 0.0, 5.0, 6.0]], dtype=np.float32)
    expected = {"mean": values.mean(), "std": float(np.std(values.astype(np.float64))), "min": -2.0, "max": 6.0,
                "zero_fraction": 4 / 12, "negative_fraction": 2 / 12, "dead_fraction": 1 / 4}
    for batch_size in (1, 2, 3):
        assert streamed(values, batch_size).result() == pytest.approx(expected), batch_size


def test_dead_channels_are_never_positive_at_any_position():
    values = np.zeros((3, 2, 2, 3), np.float32)
    values[0, 1, 1, 0] = 0.5  # channel 0 lives at one position of one image
    values[:, :, :, 1] = -1.0  # channel 1 is negative everywhere: dead
    values[2, 0, 0, 2] = 2.0  # channel 2 too lives once
    result = streamed(values, 2).result()
    assert result["dead_channel_fraction"] == pytest.approx(1 / 3)
    assert result["dead_fraction"] == pytest.approx(1 - 2 / 12)


def numpy_buckets(values, edges):
    """Bucket counts by the documented rule, independently: left <= v < right for v >= 0 (-0 and the negative
    subnormals above -2^-133 included), left < v <= right below zero, values beyond the outer edges in the
    outer buckets, non-finite ones in none."""
    finite = values[np.isfinite(values)].astype(np.float64)
    finite[(finite < 0) & (finite > -(2.0 ** -133))] = 0.0
    index = np.where(finite < 0, np.searchsorted(edges, finite, side="left"),
                     np.searchsorted(edges, finite, side="right")) - 1
    return np.bincount(np.clip(index, 0, len(edges) - 2), minlength=len(edges) - 1)


def test_activation_histogram_edges_are_as_documented():
    edges = HISTOGRAM_EDGES
    linear = edges[(edges >= -4) & (edges <= 4)]
    np.testing.assert_array_equal(linear, np.arange(-128, 129) / 32)
    outer = edges[edges > 4]
    np.testing.assert_allclose(outer, 4 * 2.0 ** (np.arange(1, 45) / 4), rtol=2.0 ** -8)  # 16-bit prefixes
    assert outer[-1] == 8192 and np.array_equal(edges, -edges[::-1])
    bits = edges.astype(np.float32).view(np.uint32)
    assert np.all(edges.astype(np.float32) == edges) and not np.any(bits & 0xFFFF)


def test_activation_histograms_count_every_value_in_its_bucket_exactly():
    rng = np.random.default_rng(3)
    edges32 = HISTOGRAM_EDGES.astype(np.float32)
    # every edge and its two float32 neighbours, where a search and a bit trick would part ways
    ties = np.concatenate([edges32, np.nextafter(edges32, np.float32(np.inf)),
                           np.nextafter(edges32, np.float32(-np.inf))])
    values = np.concatenate([rng.normal(0, 2, 5000), rng.standard_cauchy(5000) * 50, ties,
                             [0.0, -0.0, 1e5, -1e6, 3e38, -3e38, np.nan, np.inf, -np.inf]]).astype(np.float32)
    rng.shuffle(values)
    buckets = streamed(values.reshape(-1, 1), 1000).histogram()
    np.testing.assert_array_equal(buckets[:, 0], HISTOGRAM_EDGES[:-1])
    np.testing.assert_array_equal(buckets[:, 1], HISTOGRAM_EDGES[1:])
    np.testing.assert_array_equal(buckets[:, 2], numpy_buckets(values, HISTOGRAM_EDGES))
    assert buckets[:, 2].sum() == values.size - 3  # the finite values
    zero = np.searchsorted(HISTOGRAM_EDGES, 0.0)
    only_zeros = streamed(np.array([[0.0], [-0.0], [-1e-41]], np.float32), 1).histogram()[:, 2]
    assert only_zeros[zero] == 3 and only_zeros.sum() == 3  # -0 and -1e-41 (prefix of -0) in [0, 1/32)
    assert streamed(np.array([[-1e-3]], np.float32), 1).histogram()[zero - 1, 2] == 1
    assert streamed(np.array([[-1e-39]], np.float32), 1).histogram()[zero - 1, 2] == 1  # a subnormal below -2^-133


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


# TensorFlow's writer, and the Python one of the JAX and PyTorch backends
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_summary_protos_read_back_as_what_tf_summary_writes(tmp_path, backend):
    # The monitor builds its summaries as protos (keras_frelu.monitor.summaries); TensorBoard must see the
    # same plugin, dtype, shape and values as from tf.summary's own ops, whichever writer wrote them.
    rng = np.random.default_rng(2)
    buckets = histogram_buckets(rng.normal(size=50))
    picture = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    with tf.summary.create_file_writer(str(tmp_path / "tf")).as_default(step=4):
        tf.summary.scalar("s", 0.25)
        tf.summary.histogram("h", rng.normal(size=50))  # only plugin, dtype and shape are compared
        tf.summary.image("i", picture[np.newaxis])
    writer = open_writer(str(tmp_path / "ours"), backend)
    writer.write(4, [summaries.scalar("s", 0.25), summaries.histogram("h", buckets),
                     summaries.image("i", [summaries.png(picture)], 5, 7)])
    writer.close()
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


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_resumed_writer_marks_the_restart_so_replayed_steps_count_once(tmp_path, backend):
    # A run writes steps 100..300, is resumed from its checkpoint of step 200 and writes 300 and 400 again:
    # TensorFlow's own reader (keras_frelu.events) keeps one value per step, the resumed run's.
    first = open_writer(str(tmp_path), backend, resumed_at=0)
    for step in (100, 200, 300):
        first.write(step, [summaries.scalar("s", step)])
    first.close()
    (path,) = events.event_files(str(tmp_path))  # from a run a minute earlier, as a resume is
    name = os.path.basename(path).split(".")
    name[3] = str(int(name[3]) - 60)
    os.rename(path, os.path.join(tmp_path, ".".join(name)))
    second = open_writer(str(tmp_path), backend, resumed_at=200)
    for step in (300, 400):
        second.write(step, [summaries.scalar("s", -step)])
    second.close()
    assert len(events.event_files(str(tmp_path))) == 2
    assert events.read_scalars(str(tmp_path))["s"] == [(100, 100), (200, 200), (300, -300), (400, -400)]


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
