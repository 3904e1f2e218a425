"""script.py end to end: a comparison of real trainer processes interrupted with Ctrl-C and resumed, a failed
run, the report and a live TensorBoard."""

import json
import os
import signal
import urllib.error
import urllib.request

import numpy as np
import pytest
import scipy.stats
from helpers import free_port, popen_cli, read_json, run_cli, wait_for
from PIL import Image
from test_compare import RUN, SUMMARY, TRAINER_FLAGS, mean_std, poison, row, runs_of, table

from keras_frelu import checkpoints


def tensorboard_runs(port):
    with urllib.request.urlopen(f"http://localhost:{port}/data/runs", timeout=5) as response:
        return json.load(response)


@pytest.mark.usefixtures("terminal_signals")
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


@pytest.mark.usefixtures("terminal_signals")
def test_sigterm_to_script_py_checkpoints_every_training_run_and_the_rerun_completes_them(data_dir, tmp_path):
    train_dir = tmp_path / "runs"
    command = ["--activations", "relu", "lrelu", "--seeds", 1, "--parallel", 2, "--train_dir", train_dir,
               "--no_tensorboard", "--exit_when_done", "--", "--data_dir", data_dir, *TRAINER_FLAGS]
    names = [RUN.format(activation, 0) for activation in ("relu", "lrelu")]
    folders = lambda: list(train_dir.glob("compare-digits-*"))  # noqa: E731
    steps = lambda name: [step for step, _ in checkpoints.list_checkpoints(str(folders()[0] / name))]  # noqa: E731
    with open(tmp_path / "first.out", "w") as out:
        process = popen_cli("script.py", *command, stdout=out, stderr=out)
        wait_for(lambda: folders() and all(steps(name) for name in names), "a checkpoint of both runs", process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 143, (tmp_path / "first.out").read_text()
    output = (tmp_path / "first.out").read_text()
    assert "script.py: stopped by SIGTERM" in output
    (folder,) = folders()
    runs = runs_of(folder)
    for name in names:  # each stopped at the end of a step, with the checkpoint of that step
        assert runs[name]["status"] == "interrupted" and runs[name]["exit_code"] == 143
        stopped = [line for line in (folder / "logs" / f"{name}.log").read_text().splitlines()
                   if "stopped by SIGTERM at step" in line]
        assert len(stopped) == 1, stopped
        assert steps(name)[-1] == int(stopped[0].split("at step ")[1].split(",")[0]) < 200

    result = run_cli("script.py", *command)
    assert result.returncode == 0, result.stderr
    runs = runs_of(folder)
    for name in names:
        assert runs[name]["status"] == "complete"
        assert read_json(folder / name / "metrics.json")["step"] == 200
