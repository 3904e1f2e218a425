"""Look at the monitor's output as a person would: TensorBoard's dashboards, screenshotted in headless Chromium.

Trains the reference network on the embedded digits dataset with trainer.py (the activation monitor is on by
default) once per ``--activations`` entry, starts TensorBoard on 127.0.0.1 over the runs, and saves PNG
screenshots of its dashboards:

    python bench/screenshot_tensorboard.py              # -> docs/tensorboard_{histograms,images,scalars}.png

Needs Chromium (Debian: ``apt-get install -y chromium``). Everything is served and fetched on 127.0.0.1.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from keras_frelu.cli import ArgumentParser, run  # noqa: E402
from keras_frelu.errors import UsageError  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
STARTUP_SECONDS = 120
# dashboard name -> URL fragment; tagFilter is the dashboards' own tag filter box
DASHBOARDS = {
    "histograms": "#histograms&tagFilter=activations/act_(conv3|fc1)/values",
    "images": "#images&tagFilter=act_conv2/(histogram|visualization)",
    "scalars": "#scalars&tagFilter=activations/act_conv2/",
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out_dir", default=str(ROOT / "docs"), help="where the PNGs go (default: docs/)")
    parser.add_argument("--activations", nargs="+", default=["relu", "selu"],
                        help="one training run per activation (default: relu selu)")
    parser.add_argument("--steps", type=int, default=600, help="training steps per run (default 600)")
    parser.add_argument("--monitor_step", type=int, default=50, help="monitor interval (default 50)")
    parser.add_argument("--window", default="1400,1100", help="browser window WIDTH,HEIGHT (default 1400,1100)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                        help="the Chromium binary (default: chromium on PATH)")
    args = parser.parse_args(argv)
    if not args.chromium:
        raise UsageError("no Chromium found on PATH; install it (Debian: apt-get install -y chromium) or pass "
                         "--chromium PATH")
    if args.steps < 1 or args.monitor_step < 1:
        raise UsageError("--steps and --monitor_step must be at least 1")
    if not re.fullmatch(r"\d+,\d+", args.window):
        raise UsageError(f"--window takes WIDTH,HEIGHT in pixels, e.g. 1400,1000; got {args.window!r}")
    return args


def train(activation, work, args):
    command = [sys.executable, str(ROOT / "trainer.py"), "--dataset", "digits", "--data_dir", str(work / "datasets"),
               "--train_dir", str(work / "train_dir"), "--activation", activation, "--no_progress",
               "--max_training_steps", str(args.steps), "--log_step", str(args.monitor_step),
               "--test_sample_step", str(args.steps), "--output_save_step", str(args.steps),
               "--monitor_step", str(args.monitor_step), "--learning_rate", "1e-3"]
    print(f"training {activation}: {' '.join(command[1:])}", flush=True)
    result = subprocess.run(command, env=ENV, capture_output=True, text=True)
    if result.returncode:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"trainer.py failed for {activation}: {last_line}")


def start_tensorboard(logdir, log_path):
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", "0", "--load_fast", "false"], stdout=log, stderr=subprocess.STDOUT, env=ENV)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", log_path.read_text())
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.5)
    stop(process)
    raise UsageError(f"TensorBoard did not start; its output: {log_path.read_text()[-500:]}")


def wait_until_loaded(url, runs):
    """Until TensorBoard lists image tags for every run (it reads the event files after it starts)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "data/plugin/images/tags", timeout=30) as response:
            listed = response.read().decode()
        if all(run_name in listed for run_name in runs):
            return
        time.sleep(1)
    raise UsageError(f"TensorBoard at {url} did not load the runs {runs} within {STARTUP_SECONDS} s")


def screenshot(chromium, url, path, window, profile):
    """Chromium renders the page, runs its scripts until the virtual-time budget is spent, and saves a PNG."""
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={window}",
                    "--virtual-time-budget=20000", f"--screenshot={path}", url],
                   capture_output=True, text=True, timeout=180)
    if not path.exists() or path.stat().st_size < 10_000:
        raise UsageError(f"Chromium wrote no screenshot of {url} to {path}")


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv=None):
    args = parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        for activation in args.activations:
            train(activation, work, args)
        runs = [f"digits-{activation}-reference_cnn-seed0/activations" for activation in args.activations]
        process, url = start_tensorboard(work / "train_dir", work / "tensorboard.log")
        try:
            wait_until_loaded(url, runs)
            for name, fragment in DASHBOARDS.items():
                path = out_dir / f"tensorboard_{name}.png"
                profile = work / f"chromium-{name}"  # an empty profile per page: nothing cached or remembered
                screenshot(args.chromium, url + fragment, path, args.window, profile)
                print(f"wrote {path}", flush=True)
        finally:
            stop(process)


if __name__ == "__main__":
    run(main)
