"""The monitor's matplotlib panels (keras_frelu.monitor.figures): redrawn figures equal fresh ones."""

import sys

import numpy as np

from keras_frelu.monitor import figures


def test_panels_survive_a_diverged_layer_and_keep_their_size():
    panels = figures.Panels()
    finite = panels.render("act", np.random.default_rng(0).normal(size=(4, 3, 3, 2)))
    diverged = panels.render("act", np.full((4, 3, 3, 2), np.nan))
    assert [picture.shape for picture in diverged] == [picture.shape for picture in finite]
    assert not np.array_equal(diverged[1], finite[1])


def test_panels_painted_after_other_layers_equal_fresh_ones():
    # One figure of each kind paints every layer over a saved frame: nothing of the previous layer (a
    # larger grid, other ticks, a cut zero bin) may remain.
    rng = np.random.default_rng(1)
    conv, dense = np.maximum(rng.normal(size=(4, 6, 6, 5)), 0), rng.normal(size=(4, 7))
    reused = figures.Panels()
    conv_pictures = reused.render("conv", conv)
    after_conv = reused.render("dense", dense)
    fresh = figures.Panels().render("dense", dense)
    for picture, expected, other in zip(after_conv, fresh, conv_pictures):
        np.testing.assert_array_equal(picture, expected)
        assert np.mean(np.any(picture != other, axis=-1)) > 0.01


def test_summary_wraps_after_six_layers():
    top = [np.full((2, 3, 3), index, dtype=np.uint8) for index in range(7)]
    bottom = [np.full((2, 3, 3), 100 + index, dtype=np.uint8) for index in range(7)]
    picture = figures.side_by_side(top, bottom)
    assert picture.shape == (8, 18, 3)
    assert (picture[0:2, 3:6] == 1).all() and (picture[2:4, 3:6] == 101).all()
    assert (picture[4:6, 0:3] == 6).all() and (picture[6:8, 0:3] == 106).all()
    assert (picture[4:, 3:] == 255).all()  # the empty cells of the second band stay white


def test_frames_drawn_without_tfplot_equal_tfplot_ones(monkeypatch):
    # Without TensorFlow (the figure process, JAX, PyTorch) the frames are drawn by the Agg canvas directly
    # (tfplot imports TensorFlow).
    import tensorflow  # noqa: F401

    panel = figures._HistogramPanel()
    panel.update("act", np.random.default_rng(2).normal(size=(4, 9)))
    by_tfplot = figures._to_array(panel.figure)
    assert "tfplot" in sys.modules
    monkeypatch.delitem(sys.modules, "tensorflow")
    by_agg = figures._to_array(panel.figure)
    assert by_agg.shape == by_tfplot.shape and by_agg.shape[-1] == 4
    np.testing.assert_array_equal(by_agg, by_tfplot)
