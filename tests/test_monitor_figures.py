"""The monitor's matplotlib panels (keras_frelu.monitor.figures): redrawn figures equal fresh ones; the figure
process draws the same, survives Ctrl-C and its own errors, and ends with its parent."""

import io
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image

from keras_frelu.monitor import figure_process, figures


def png_pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)))


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


@pytest.mark.usefixtures("terminal_signals")
def test_the_figure_process_draws_what_figure_sets_draw_and_ignores_ctrl_c(capfd):
    arrays = [np.random.default_rng(4).normal(size=(3, 4, 4, 2)).astype(np.float32),
              np.random.default_rng(5).normal(size=(3, 7)).astype(np.float32)]
    names = ["conv", "dense"]
    process = figure_process.FigureProcess()
    try:
        process.draw(names, None)
        child = process._process
        child.send_signal(signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
        values = process.draw(names, arrays)
    finally:
        process.close()
    assert child.returncode == 0  # ended by its closed pipe, not by the Ctrl-C
    expected = figures.FigureSets(names).draw(arrays)
    assert [value.tag for value in values] == [value.tag for value in expected]
    for got, drawn_here in zip(values, expected):
        assert got.tensor.string_val[:2] == drawn_here.tensor.string_val[:2]  # width, height
        np.testing.assert_array_equal(png_pixels(got.tensor.string_val[2]), png_pixels(drawn_here.tensor.string_val[2]))
    assert "Traceback" not in capfd.readouterr().err


def test_a_figure_process_error_is_raised_in_the_parent_with_the_childs_traceback():
    process = figure_process.FigureProcess()
    try:
        with pytest.raises(RuntimeError, match="drawing the monitor's figures failed in their process:(.|\n)*Traceback"):
            process.draw(["act"], [np.array(["not", "numbers"])])
        assert len(process.draw(["act"], [np.zeros((2, 3), np.float32)])) == 3  # the child lives on
    finally:
        process.close()


def test_the_figure_process_ends_when_its_parent_is_killed():
    parent = subprocess.run([sys.executable, "-c", (
        "import os, signal\n"
        "from keras_frelu.monitor import figure_process\n"
        "process = figure_process.shared()\n"
        "process.draw(['act'], None)\n"
        "print(process._process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    child = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 30
    while running(child):
        assert time.monotonic() < deadline, "the figure process outlived its parent"
        time.sleep(0.05)


def running(pid):
    """Whether the process exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_figure_process_starts_when_a_monitor_with_figures_is_made():
    # Started at construction, its imports overlap building the model; without figures none is started.
    from keras_frelu.monitor import ActivationMonitor

    process = figure_process.shared()
    process.close()
    sample = np.zeros((2, 3), np.float32)
    ActivationMonitor("unused", sample=sample, figures=False)
    assert process._process is None
    ActivationMonitor("unused", sample=sample)
    child = process._process.pid
    assert running(child)
    ActivationMonitor("unused", sample=sample)  # the process is shared: no second child
    assert process._process.pid == child
    process.close()
    assert not running(child)


def test_a_figure_process_that_dies_during_a_set_is_reported_and_the_next_set_starts_a_new_one():
    process = figure_process.FigureProcess()
    # A child that reads the start of the request and exits without a reply
    process._process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.buffer.read(8)"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with pytest.raises(RuntimeError, match=r"figure process ended \(exit code 0\)"):
            process.draw(["act"], [np.zeros((2, 3), np.float32)])
        drawn = []  # in a thread: a lock left held by the failure would hang here
        worker = threading.Thread(target=lambda: drawn.append(process.draw(["act"], [np.zeros((2, 3), np.float32)])))
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive() and len(drawn[0]) == 3
    finally:
        process.close()
