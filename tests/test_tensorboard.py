"""A real TensorBoard serves what ActivationMonitor writes: started on 127.0.0.1 over the monitor's log
folder, its HTTP data API must list the run with the histogram, scalar and image tags, and hand out the
pictures as PNGs."""

import io
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import keras
import numpy as np
import pytest
from PIL import Image

from keras_frelu import models
from keras_frelu.monitor import ActivationMonitor

RUN = "reference_cnn_prelu"
LAYERS = ("act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2")
STARTUP_SECONDS = 90  # a loaded 2-core CI machine needs ~10 s to import TensorBoard and read the files


def train_with_monitor(log_dir):
    """The reference network (PReLU, digits-sized images) trained 4 steps with the monitor."""
    rng = np.random.default_rng(0)
    images = rng.random((32, 8, 8, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 32).astype(np.int32)
    keras.utils.set_random_seed(0)
    model = models.reference_cnn((8, 8, 1), 10, activation="prelu")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = ActivationMonitor(log_dir, sample=images[:8], labels=labels[:8], every_n_steps=2)
    model.fit(images, labels, batch_size=8, epochs=1, callbacks=[monitor], verbose=0)


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory):
    """The base URL of a TensorBoard on 127.0.0.1 (a port the system picks) over a log folder with one
    monitored run; the process is killed afterwards. TensorBoard starts first and finds the run while it
    is being written (it rescans every second), so its start-up overlaps the training."""
    log_root = tmp_path_factory.mktemp("logs")
    stderr_path = tmp_path_factory.mktemp("tensorboard") / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_root), "--host", "127.0.0.1",
             "--port", "0", "--load_fast", "false", "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        train_with_monitor(log_root / RUN)
        yield _served_url(process, stderr_path)
    finally:
        ActivationMonitor.close_figure_process()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.poll() is not None


def _served_url(process, stderr_path):
    """TensorBoard prints 'TensorBoard <version> at http://127.0.0.1:<port>/' on stderr once it serves."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        printed = stderr_path.read_text()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", printed)
        if match:
            return match.group(1)
        if process.poll() is not None:
            pytest.fail(f"tensorboard exited with code {process.returncode}: {printed[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"tensorboard printed no URL within {STARTUP_SECONDS} s: {stderr_path.read_text()[-2000:]}")


def get(base, path, **query):
    url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def get_json(base, path, **query):
    return json.loads(get(base, path, **query))


def wait_for_tags(base, plugin, expected):
    """The plugin's tags of RUN once they include ``expected`` (TensorBoard loads files in the background)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        tags = get_json(base, f"data/plugin/{plugin}/tags").get(RUN, {})
        if expected <= set(tags) or time.monotonic() > deadline:
            return set(tags)
        time.sleep(0.5)


def test_tensorboard_lists_the_run_and_every_layers_tags(tensorboard):
    histograms = {f"activations/{layer}/values" for layer in LAYERS} | \
        {f"parameters/{layer}/alpha" for layer in LAYERS}
    scalars = {f"activations/{layer}/{statistic}" for layer in LAYERS
               for statistic in ("mean", "std", "min", "max", "zero_fraction", "dead_fraction", "negative_fraction")}
    scalars |= {f"parameters/{layer}/alpha_norm" for layer in LAYERS} | \
        {f"{norm}/{layer}" for norm in ("weight_norm", "gradient_norm") for layer in ("conv1", "fc2", "logits")}
    images = {f"activations/{layer}/{picture}" for layer in LAYERS
              for picture in ("image", "visualization", "histogram")}
    images.add("activations/summary")
    for plugin, expected in (("histograms", histograms), ("scalars", scalars), ("images", images)):
        missing = expected - wait_for_tags(tensorboard, plugin, expected)
        assert not missing, f"TensorBoard's {plugin} plugin does not list {sorted(missing)}"
    assert RUN in get_json(tensorboard, "data/runs")


def test_tensorboard_serves_the_scalar_series_and_the_pictures(tensorboard):
    wait_for_tags(tensorboard, "images", {"activations/act_conv1/image"})
    series = get_json(tensorboard, "data/plugin/scalars/scalars", run=RUN, tag="activations/act_fc1/mean")
    assert [step for _, step, _ in series] == [2, 4]
    pictures = get_json(tensorboard, "data/plugin/images/images", run=RUN, tag="activations/act_conv1/image",
                        sample=0)
    assert [picture["step"] for picture in pictures] == [2, 4]
    png = get(tensorboard, "data/plugin/images/individualImage?" + pictures[-1]["query"])
    # act_conv1 of 8x8 inputs: 32 maps of 4x4 in a 6 x 6 grid with 1-pixel separators
    assert np.asarray(Image.open(io.BytesIO(png))).shape == (6 * 5 - 1, 6 * 5 - 1, 3)
