"""script.py comparisons: planning, the report read back from event files, and real runs that are
interrupted with Ctrl-C, resumed, partly failed, and watched through TensorBoard."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from conftest import popen_cli, run_cli
from PIL import Image

from keras_frelu import checkpoints
from keras_frelu.compare import plan, report, resources, state
from keras_frelu.errors import UsageError
from keras_frelu.config import build_parser as trainer_parser

# Steps are cheap on digits; every run pays ~5-10 s of TensorFlow start-up, so runs are few and short.
TRAINER_FLAGS = ["--max_training_steps", 200, "--log_step", 20, "--test_sample_step", 40, "--output_save_step", 40,
                 "--monitor_step", 100, "--learning_rate", 3e-3]
RUN = "digits-{}-reference_cnn-seed{}"


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def runs_of(folder):
    """runs.json's runs by name (in the file: a list in plan order)."""
    return {run["name"]: run for run in read_json(folder / "runs.json")["runs"]}


def table(markdown, first_header, key=None):
    """The rows of the markdown table whose header starts with ``first_header``, as ``{header: cell}``
    dicts keyed by their ``key`` column (default: the first)."""
    lines = markdown.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    cells = lambda line: [cell.strip() for cell in line.strip().strip("|").split("|")]  # noqa: E731
    header, rows = cells(lines[start]), {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cell_of = dict(zip(header, cells(line)))
        rows[cell_of[key or first_header]] = cell_of
    return rows


def row(table_rows, key, columns):
    return [table_rows[key][column] for column in columns]


SUMMARY = ("seeds", "final test accuracy")
PER_RUN = ("status", "step", "final test accuracy", "best validation accuracy", "steps to target", "mean training loss",
           "images/s")


def mean_std(values, digits):
    """Independent of the report: the ``mean ± sample std`` a reader expects for ``values``."""
    text = f"{np.mean(values):.{digits}f}"
    return text + (f" ± {np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else "")


# ---------------------------------------------------------------------------------------------- planning

def test_plan_folder_names_and_per_run_flags():
    base = plan.trainer_config(trainer_parser(), ["--max_training_steps", "100"])
    assert base.max_training_steps == 100 and base.activation == "relu"
    # Flags that may change on resume keep the folder; experiment flags make a new one.
    assert plan.default_name(base, ["digits"]) == "compare-digits"
    assert plan.default_name(plan.trainer_config(trainer_parser(), ["--learning_rate", "1e-3"]), ["digits"]) \
        == plan.default_name(plan.trainer_config(trainer_parser(), ["--learning_rate", "0.001"]), ["digits"]) \
        != "compare-digits"
    assert plan.default_name(base, ["digits", "/data/MNIST/"]) == "compare-digits+MNIST"
    for flags, instead in ((["--seed", "3"], "--seeds"), (["--activation", "selu"], "--activations"),
                           (["--dataset", "MNIST"], "--datasets")):
        with pytest.raises(UsageError, match=instead):
            plan.trainer_config(trainer_parser(), flags)

    assert plan.activation_names(["ReLU", "leaky_relu", "lrelu", "frelu"]) == ["relu", "lrelu", "frelu"]
    configs = plan.plan(base, "runs/c", ["relu", "frelu"], ["digits"], seeds=2)
    assert [(c.activation, c.seed, c.train_dir) for c in configs] == [
        ("relu", 0, "runs/c"), ("frelu", 0, "runs/c"), ("relu", 1, "runs/c"), ("frelu", 1, "runs/c")]
    assert {c.max_training_steps for c in configs} == {100}

    # CPU: a run per two cores, the cores shared out as TensorFlow threads; GPU: a device per run.
    assert resources.default_parallel(4, cpus=8, gpus=[]) == 4
    assert resources.default_parallel(4, cpus=2, gpus=[]) == 1
    assert resources.default_parallel(2, cpus=32, gpus=[]) == 2
    assert resources.default_parallel(4, cpus=8, gpus=["0", "1"]) == 2
    assert resources.default_parallel(4, cpus=8, gpus=[], strategy="mirrored") == 1
    env = resources.child_environment(1, parallel=4, cpus=8, gpus=[], environ={})
    assert env["TF_NUM_INTRAOP_THREADS"] == "2" and env["TF_NUM_INTEROP_THREADS"] == "1"
    chosen = {"TF_NUM_INTRAOP_THREADS": "6"}  # the user's own setting wins
    assert resources.child_environment(0, 2, 8, [], environ=chosen)["TF_NUM_INTRAOP_THREADS"] == "6"
    assert resources.child_environment(3, 4, 8, ["4", "5"], environ={})["CUDA_VISIBLE_DEVICES"] == "5"


# ------------------------------------------------------------------------- report from written event files

def write_run(folder, name, activation, seed, accuracy, loss, images_per_s, activations):
    run_dir = folder / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(
        {"flags": {"dataset": "digits", "activation": activation, "seed": seed}}))
    splits = {"test": {"accuracy": accuracy, "loss": loss}, "train": {"images_per_s": images_per_s, "loss": loss},
              "activations": activations}
    for split, curves in splits.items():
        writer = tf.summary.create_file_writer(str(run_dir / split))
        with writer.as_default():
            for tag, curve in curves.items():
                for step, value in curve:
                    tf.summary.scalar(tag, value, step=step)
        writer.close()


def test_report_numbers_from_event_files(tmp_path):
    folder = tmp_path / "compare-digits"
    steps = [20, 40, 60, 80]
    runs = {  # name: (activation, seed, status, test accuracy, images/s per window, final act_conv1 mean, std)
        RUN.format("relu", 0): ("relu", 0, "complete", [0.5, 0.875, 0.96875, 0.9375], [100, 1000, 1200, 1100],
                                0.25, 1.5),
        RUN.format("relu", 1): ("relu", 1, "complete", [0.25, 0.5, 0.75, 0.8125], [50, 900, 1000, 1300], 0.75, 0.5),
        RUN.format("frelu", 0): ("frelu", 0, "complete", [0.75, 0.875, 0.9375, 1.0], [80, 700, 800, 600], 0.125, 2.0),
        RUN.format("frelu", 1): ("frelu", 1, "failed", [0.5, 0.25], [90, 10], 9.0, 9.0),
    }
    recorded = {"trainer_args": ["--max_training_steps", "80"], "runs": {}}
    for name, (activation, seed, status, accuracy, speed, final_mean, final_std) in runs.items():
        message = "trainer.py: error: the loss became NaN/inf at step 41" if status == "failed" else "done"
        recorded["runs"][name] = {"dataset": "digits", "activation": activation, "seed": seed, "status": status,
                               "message": message}
        loss = [2.0, 1.0, 0.5, 0.25][:len(accuracy)]
        write_run(folder, name, activation, seed, list(zip(steps, accuracy)), list(zip(steps, loss)),
                  list(zip(steps, speed)),
                  {"activations/act_conv1/mean": [(40, 5.0), (80, final_mean)],
                   "activations/act_conv1/std": [(40, 5.0), (80, final_std)],
                   "activations/act_conv1/zero_fraction": [(80, 0.5)]})
    state.write_state(str(folder), recorded)
    # A run directory that no comparison recorded (e.g. trainer.py run by hand) still counts, as incomplete.
    write_run(folder, RUN.format("selu", 0), "selu", 0, [(20, 0.5)], [(20, 1.0)], [(20, 10.0)], {})

    written = report.write_report(str(folder))
    markdown = (folder / "comparison.md").read_text()
    assert markdown == written.markdown

    summary = table(markdown, "activation")
    assert list(summary) == ["relu (baseline)", "frelu", "selu"]  # the plan's order, the baseline first
    assert row(summary, "relu (baseline)", SUMMARY) == ["2", mean_std([0.9375, 0.8125], 4)]
    assert row(summary, "frelu", SUMMARY) == ["1 of 2 (1 failed)", "1.0000"]
    assert row(summary, "selu", SUMMARY) == ["0 of 1 (1 incomplete)", "–"]
    # One complete frelu seed and no predictions.npz (an older trainer): nothing can be tested, and it says why.
    assert ("- **digits:** nothing could be tested against the baseline relu: frelu (Welch's t-test: needs 2 or "
            "more complete seeds on each side, has 1 and 2; paired exact test: no predictions.npz in "
            f"{RUN.format('frelu', 0)}, {RUN.format('relu', 0)}); selu (selu has no complete run with a final test "
            "accuracy).") in markdown
    assert summary["frelu"]["verdict"] == "not tested"

    # Columns in the plan's order; the failed run's statistics are left out.
    assert table(markdown, "layer") == {"act_conv1": {
        "layer": "act_conv1", "relu": f"{np.mean([0.25, 0.75]):.4g} / {np.mean([1.5, 0.5]):.4g}",
        "frelu": f"{0.125:.4g} / {2.0:.4g}"}}

    per_run = table(markdown, "run")
    assert list(per_run) == [*runs, RUN.format("selu", 0)]  # runs.json's order, then the others
    loss_area = np.trapezoid([2.0, 1.0, 0.5, 0.25], steps) / (steps[-1] - steps[0])
    assert row(per_run, RUN.format("relu", 0), PER_RUN) == ["complete", "80", "0.9375", "–", "–",
                                                           f"{loss_area:.4f}", "1050"]
    assert row(per_run, RUN.format("frelu", 1), PER_RUN) == ["failed", "40", "0.2500", "–", "–",
                                                            f"{np.trapezoid([2.0, 1.0], steps[:2]) / 20:.4f}", "50"]
    assert per_run[RUN.format("relu", 0)]["missing"] == "no validation/ events, no predictions.npz"
    assert f"- {RUN.format('frelu', 1)}: failed: trainer.py: error: the loss became NaN/inf at step 41" in markdown

    with Image.open(folder / "comparison.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 500 and pixels.std() > 0
    assert "| digits | frelu | 1 of 2 (1 failed) | 1.0000 |" in report.report_text(written)


# ----------------------------------------------------------------------------------------- real processes

def free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def wait_for(condition, what, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"script.py ended (exit {process.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def tensorboard_runs(port):
    with urllib.request.urlopen(f"http://localhost:{port}/data/runs", timeout=5) as response:
        return json.load(response)


def poison(run_dir):
    """Make a run diverge when it resumes: NaN weights in its newest checkpoint, saved as the trainer would."""
    step, path = checkpoints.list_checkpoints(str(run_dir))[-1]
    model = checkpoints.load_checkpoint(path)
    model.set_weights([np.full_like(weights, np.nan) for weights in model.get_weights()])
    checkpoints.save_checkpoint(model, str(run_dir), step)


def test_interrupt_resume_failed_run_report_and_tensorboard(data_dir, tmp_path):
    train_dir = tmp_path / "runs"
    comparison = ["--activations", "relu", "lrelu", "--seeds", 2, "--parallel", 2, "--train_dir", train_dir]
    trainer_flags = ["--", "--data_dir", data_dir, *TRAINER_FLAGS]
    names = [RUN.format(activation, seed) for seed in (0, 1) for activation in ("relu", "lrelu")]
    folders = lambda: list(train_dir.glob("compare-digits-*"))  # noqa: E731

    # 1. Ctrl-C as soon as a run has a checkpoint: both running runs stop, their checkpoints load.
    started = names[:2]
    has_checkpoint = lambda name: bool(checkpoints.list_checkpoints(str(folders()[0] / name)))  # noqa: E731
    with open(tmp_path / "first.out", "w") as out:
        process = popen_cli("script.py", *comparison, "--no_tensorboard", *trainer_flags, stdout=out, stderr=out)
        wait_for(lambda: folders() and any(map(has_checkpoint, started)), "a first checkpoint", process)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130, (tmp_path / "first.out").read_text()
    assert "stopping 2 runs" in (tmp_path / "first.out").read_text()
    (folder,) = folders()
    runs = runs_of(folder)
    assert [runs[name]["status"] for name in names] == ["interrupted", "interrupted", "pending", "pending"]
    interrupted_at = {}
    for name in started:
        with pytest.raises(ProcessLookupError):  # stopped and reaped, not left running
            os.kill(runs[name]["pid"], 0)
        if has_checkpoint(name):  # the slower run may not have reached its first one
            step, path = checkpoints.list_checkpoints(str(folder / name))[-1]
            assert int(checkpoints.load_checkpoint(path).optimizer.iterations.numpy()) == step < 200
            interrupted_at[name] = step
    failing = next(iter(interrupted_at))
    poison(folder / failing)
    completing = [name for name in names if name != failing]
    failing_activation = failing.split("-")[1]
    (other_activation,) = {"relu", "lrelu"} - {failing_activation}

    # 2. The same command resumes the comparison in the same folder; TensorBoard serves it (on a free port)
    #    until Ctrl-C.
    port = free_port()
    with open(tmp_path / "second.out", "w") as out:
        process = popen_cli("script.py", *comparison, "--port", port, *trainer_flags, stdout=out, stderr=out)
        try:
            wait_for(lambda: (folder / "comparison.md").exists(), "the report", process)
            listed = tensorboard_runs(port)
            for name in names:
                assert any(run.startswith(name + "/") for run in listed), (name, listed)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 1, (tmp_path / "second.out").read_text()  # one run failed
        finally:
            process.kill()
    with pytest.raises(urllib.error.URLError):
        tensorboard_runs(port)
    assert folders() == [folder]
    runs = runs_of(folder)
    assert {name: runs[name]["status"] for name in names} == {
        name: "failed" if name == failing else "complete" for name in names}
    assert "NaN/inf at step" in runs[failing]["message"]
    for name, step in interrupted_at.items():  # resumed from where Ctrl-C left them (then one diverged)
        assert read_json(folder / name / "config.json")["start_step"] == step

    # 3. The report's numbers are those of each run's metrics.json and predictions.npz; the terminal shows
    #    its summary.
    markdown = (folder / "comparison.md").read_text()
    summary = read_json(folder / "comparison.json")
    per_run = table(markdown, "run")
    metrics = {name: read_json(folder / name / "metrics.json") for name in completing}
    correct = {}
    for name in completing:
        run = metrics[name]
        assert run["complete"] and run["step"] == 200
        *cells, images_per_s = row(per_run, name, ("status", "step", "final test accuracy", "best validation accuracy",
                                                   "test accuracy at best validation", "images/s"))
        assert cells == ["complete", "200", f"{run['test_accuracy']:.4f}", f"{run['best_validation_accuracy']:.4f}",
                         f"{run['test_accuracy_at_best_validation']:.4f}"]
        # Event files hold float32: equal to the display precision.
        assert float(images_per_s) == pytest.approx(run["images_per_s"], abs=0.5 + 1e-6 * run["images_per_s"])
        with np.load(folder / name / "predictions.npz") as predictions:
            correct[name] = predictions["predicted"] == predictions["label"]
        assert correct[name].mean() == pytest.approx(run["test_accuracy"], abs=1e-6)
    assert per_run[failing]["status"] == "failed"

    # The significance table and comparison.json, against scipy on metrics.json's and predictions.npz's numbers.
    significance = table(markdown, "activation")
    label = lambda activation: f"{activation} (baseline)" if activation == "relu" else activation  # noqa: E731
    both_seeds = [metrics[RUN.format(other_activation, seed)] for seed in (0, 1)]
    assert row(significance, label(other_activation), SUMMARY) == [
        "2", mean_std([run["test_accuracy"] for run in both_seeds], 4)]
    (survivor,) = [name for name in completing if name.split("-")[1] == failing_activation]
    assert row(significance, label(failing_activation), SUMMARY) == [
        "1 of 2 (1 failed)", f"{metrics[survivor]['test_accuracy']:.4f}"]
    (comparison,) = summary["datasets"][0]["comparisons"]
    assert comparison["seeds"] == ([1, 2] if failing_activation == "lrelu" else [2, 1])
    assert comparison["test_used"] == "paired" and not comparison["tests"]["welch"]["available"]
    (other_survivor,) = [name for name in completing if name.split("-")[1] == other_activation
                         and name.split("seed")[1] == survivor.split("seed")[1]]  # the survivor's seed pair
    lrelu, relu = (survivor, other_survivor) if failing_activation == "lrelu" else (other_survivor, survivor)
    b, c = int(np.sum(correct[lrelu] & ~correct[relu])), int(np.sum(~correct[lrelu] & correct[relu]))
    expected = scipy.stats.binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    assert comparison["p_value"] == pytest.approx(expected, rel=1e-9)
    assert comparison["significant"] == (expected < 0.05)
    output = (tmp_path / "second.out").read_text()
    assert f"TensorBoard: http://localhost:{port}/" in output
    assert f"| digits | {other_activation} | 2 |" in output and f"{failing}: failed" in output

    # Activation statistics at the last step, read independently with TensorBoard's own event reader.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    final = {}
    for seed in (0, 1):
        log_dir = folder / RUN.format(other_activation, seed) / "activations"
        accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0}).Reload()
        for tag in accumulator.Tags()["tensors"]:
            if tag.endswith(("/mean", "/std")):
                last = max(accumulator.Tensors(tag), key=lambda event: event.step)
                assert last.step == 200
                final.setdefault(tag, []).append(float(make_ndarray(last.tensor_proto)))
    layers = table(markdown, "layer")
    assert list(layers) == ["act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2"]
    for layer, cells in layers.items():
        assert cells[other_activation] == (f"{np.mean(final[f'activations/{layer}/mean']):.4g} / "
                                           f"{np.mean(final[f'activations/{layer}/std']):.4g}"), layer

    with Image.open(folder / "comparison.png") as image:
        assert image.size[0] > 500 and np.asarray(image.convert("RGB")).std() > 0
    # The real monitor's layers: one row each in the figures of activation statistics and histograms.
    figures = summary["datasets"][0]["figures"]
    for kind in ("activations", "histograms"):
        assert figures[kind]["rows"] == list(layers), kind
        with Image.open(folder / figures[kind]["file"]) as image:
            assert image.format == "PNG" and np.asarray(image.convert("RGB")).std() > 0
    assert figures["gradients"]["rows"] and (folder / figures["gradients"]["file"]).exists()

    # 4. --report_only rebuilds the same report from the event files and predictions alone.
    for name in ("comparison.md", "comparison.json", "comparison.png", figures["activations"]["file"]):
        os.remove(folder / name)
    result = run_cli("script.py", "--report_only", folder)
    assert result.returncode == 0, result.stderr
    assert (folder / "comparison.md").read_text() == markdown
    assert read_json(folder / "comparison.json") == summary
    assert (folder / "comparison.png").exists() and (folder / figures["activations"]["file"]).exists()
    assert f"| digits | {other_activation} | 2 |" in result.stdout


def test_clean_removes_only_its_own_folder_and_not_while_its_runs_train(tmp_path):
    mine = tmp_path / "compare-digits"
    (mine / "run").mkdir(parents=True)
    # A trainer left running by a script.py that was killed: its command line names the folder.
    orphan = subprocess.Popen([sys.executable, "-c", "import time; print(flush=True); time.sleep(60)",
                               "--train_dir", str(mine)], stdout=subprocess.PIPE)
    try:
        orphan.stdout.readline()  # it runs: its command line is its own now
        state.write_state(str(mine), {"trainer_args": [], "runs": {"run": {"status": "running", "pid": orphan.pid}}})
        with pytest.raises(UsageError, match=f"process {orphan.pid}"):
            state.clean(str(mine))
    finally:
        orphan.kill()
        orphan.wait()
        orphan.stdout.close()
    other = tmp_path / "compare-MNIST"
    (other / "keep").mkdir(parents=True)
    with pytest.raises(UsageError, match="not a comparison folder"):
        state.clean(str(other))
    state.clean(str(mine))
    assert not mine.exists() and (other / "keep").exists()
    state.clean(str(mine))  # nothing left to remove: no error
