"""trainer.py and evaler.py on the embedded digits dataset: real processes where a process is the point
(the smoke test, kill -9, tf.distribute's devices and workers), in-process otherwise."""

import json
import os
import signal
import socket
import time

import numpy as np
import pytest
from conftest import CLI_ENV, call_cli, popen_cli, run_cli
from tensorflow.python.framework import config as tf_config

from keras_frelu import checkpoints, events

# Small, fast settings shared by the runs below (the digits dataset: 8x8 images, 1,437 train / 360 test).
FAST = ["--no_monitor", "--no_progress", "--learning_rate", "3e-3", "--log_step", "20",
        "--test_sample_step", "100", "--output_save_step", "100"]


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def only_run_dir(train_dir):
    (name,) = os.listdir(train_dir)
    return train_dir / name


def train_losses(run_dir):
    return dict(events.read_scalars(str(run_dir / "train"))["loss"])


def test_frelu_reaches_95_percent_and_evaler_agrees(data_dir, tmp_path):
    train_dir = tmp_path / "runs"
    result = run_cli("trainer.py", "--activation", "frelu", "--data_dir", data_dir, "--train_dir", train_dir,
                     "--max_training_steps", 600, *FAST)
    assert result.returncode == 0, result.stderr
    # The console: one line per test evaluation and the summary, no TensorFlow start-up chatter.
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"step {step}" for step in range(100, 601, 100)]
    assert lines[-1].startswith(f"{train_dir / 'digits-frelu-reference_cnn-seed0'}: step 600, test accuracy ")
    run_dir = train_dir / "digits-frelu-reference_cnn-seed0"
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["complete"] and metrics["step"] == 600
    assert metrics["test_accuracy"] >= 0.95, metrics["test_accuracy"]
    assert metrics["images_per_s"] > 0 and metrics["wall_time_s"] > 0
    config = read_json(run_dir / "config.json")
    assert config["flags"]["activation"] == "frelu" and config["versions"]["tensorflow"]
    test_scalars = events.read_scalars(str(run_dir / "test"))
    assert [step for step, _ in test_scalars["accuracy"]] == [100, 200, 300, 400, 500, 600]
    assert test_scalars["accuracy"][-1][1] == pytest.approx(metrics["test_accuracy"], abs=1e-6)

    result = run_cli("evaler.py", "--train_dir", run_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no TensorFlow start-up chatter
    report = read_json(run_dir / "eval.json")
    assert report["step"] == 600 and report["test_size"] == 360
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert report["loss"] == pytest.approx(metrics["test_loss"], rel=1e-4)
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 360
    assert np.trace(matrix) / 360 == pytest.approx(report["accuracy"])
    assert f"accuracy {report['accuracy']:.4f}" in result.stdout
    with open(run_dir / "confusion.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "confusion_matrix" in events.read_tags(str(run_dir / "eval"))

    # The final model's per-example predictions agree with evaler's confusion matrix of the same checkpoint.
    with np.load(run_dir / "predictions.npz") as saved:
        predictions = {key: saved[key] for key in saved.files}
    assert predictions["step"] == 600 and len(predictions["label"]) == 360
    from_predictions = np.zeros((10, 10), int)
    np.add.at(from_predictions, (predictions["label"], predictions["predicted"]), 1)
    np.testing.assert_array_equal(from_predictions, matrix)
    assert np.mean(predictions["predicted"] == predictions["label"]) == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert np.all((predictions["label_probability"] > 0) & (predictions["label_probability"] <= 1))
    with np.load(run_dir / "eval_predictions.npz") as saved:
        for key in ("predicted", "label", "step"):
            np.testing.assert_array_equal(saved[key], predictions[key])
        np.testing.assert_allclose(saved["label_probability"], predictions["label_probability"], rtol=1e-5)

    # Selection on validation only: the best step is that of the highest validation accuracy (the first of
    # equal ones), and the test split is reported there.
    validation = events.read_scalars(str(run_dir / "validation"))["accuracy"]
    best_step, best = max(validation, key=lambda entry: (entry[1], -entry[0]))
    assert metrics["best_validation_step"] == best_step
    assert metrics["best_validation_accuracy"] == pytest.approx(best, abs=1e-6)
    assert 0.9 <= metrics["test_accuracy_at_best_validation"] <= 1.0
    assert config["dataset"]["train_size"] + config["dataset"]["validation_size"] == 1437
    assert config["dataset"]["validation_size"] == pytest.approx(143.7, abs=5)


@pytest.fixture(scope="module")
def deterministic_reference(data_dir, tmp_path_factory):
    """One uninterrupted deterministic run that other tests compare against (in this process, which
    then leaves deterministic kernels again)."""
    train_dir = tmp_path_factory.mktemp("reference")
    code, _, err = call_cli("trainer.py", "--data_dir", data_dir, "--train_dir", train_dir, "--deterministic",
                            "--seed", 1, "--max_training_steps", 300, *FAST)
    tf_config.disable_op_determinism()
    assert code == 0, err
    return only_run_dir(train_dir)


def test_deterministic_runs_give_identical_losses(data_dir, tmp_path, deterministic_reference):
    # A process of its own: the same losses bit for bit in another process, not only in this one.
    result = run_cli("trainer.py", "--data_dir", data_dir, "--train_dir", tmp_path, "--deterministic",
                     "--seed", 1, "--max_training_steps", 300, *FAST)
    assert result.returncode == 0, result.stderr
    again = train_losses(only_run_dir(tmp_path))
    reference = train_losses(deterministic_reference)
    assert sorted(again) == list(range(20, 301, 20))
    assert again == reference  # bit for bit


def test_sigkill_then_rerun_resumes_where_the_checkpoint_left_off(data_dir, tmp_path, deterministic_reference):
    args = ["--data_dir", data_dir, "--train_dir", tmp_path, "--deterministic", "--seed", 1,
            "--max_training_steps", 300, *FAST]
    process = popen_cli("trainer.py", *args, stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    run_dir = tmp_path / "digits-relu-reference_cnn-seed1"
    deadline = time.monotonic() + 300
    while not checkpoints.list_checkpoints(str(run_dir)):  # the first one (step 100): 200 steps of margin
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = checkpoints.list_checkpoints(str(run_dir))[-1][0]
    assert killed_at < 300

    result = run_cli("trainer.py", *args)
    assert result.returncode == 0, result.stderr
    config = read_json(run_dir / "config.json")
    assert config["start_step"] == killed_at
    model = checkpoints.load_checkpoint(checkpoints.latest_checkpoint(str(run_dir)))
    assert int(model.optimizer.iterations.numpy()) == 300
    losses = train_losses(run_dir)
    assert sorted(losses) == list(range(20, 301, 20))  # no step missing, none twice
    # Same weights, optimiser state and batches as the run that was never interrupted.
    assert losses == train_losses(deterministic_reference)
    metrics = read_json(run_dir / "metrics.json")
    assert [record["step"] for record in metrics["history"]] == list(range(20, 301, 20))
    assert metrics["test_accuracy"] == read_json(deterministic_reference / "metrics.json")["test_accuracy"]


def test_mirrored_strategy_on_two_cpu_devices_matches_single_device(data_dir, tmp_path, deterministic_reference):
    result = run_cli("trainer.py", "--data_dir", data_dir, "--train_dir", tmp_path, "--deterministic",
                     "--seed", 1, "--max_training_steps", 300, "--strategy", "mirrored", "--num_cpu_devices", 2,
                     *FAST)
    assert result.returncode == 0, result.stderr
    mirrored = train_losses(only_run_dir(tmp_path))
    single = train_losses(deterministic_reference)
    assert sorted(mirrored) == sorted(single)
    # Batch norm statistics and dropout masks are per replica, so the curves agree only closely.
    difference = np.abs(np.array([mirrored[s] for s in single]) - np.array(list(single.values())))
    assert difference.mean() < 0.1, (mirrored, single)
    assert mirrored[300] < 0.5 * mirrored[20]  # and it did learn


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_multi_worker_strategy_with_two_processes(data_dir, tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        env = {**CLI_ENV, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                   "task": {"type": "worker", "index": index}})}
        processes.append(popen_cli("trainer.py", "--data_dir", data_dir, "--train_dir", tmp_path / f"w{index}",
                                   "--strategy", "multi_worker", "--max_training_steps", 100, *FAST, env=env,
                                   stdout=open(tmp_path / f"out{index}", "w"), stderr=open(tmp_path / f"err{index}", "w")))
    try:
        codes = [process.wait(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert codes == [0, 0], [(tmp_path / f"err{i}").read_text()[-2000:] for i in range(2)]
    metrics = read_json(only_run_dir(tmp_path / "w0") / "metrics.json")
    assert metrics["complete"] and metrics["step"] == 100
    assert not (tmp_path / "w1").exists()  # only the chief writes


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    code, _, err = call_cli("trainer.py", "--data_dir", data_dir, "--train_dir", tmp_path, "--activation", "relu",
                            "--no_monitor", "--no_progress", "--log_step", 10, "--output_save_step", 10,
                            "--test_sample_step", 10, "--learning_rate", 1e12, "--clip_norm", 1e30,
                            "--max_training_steps", 200)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert len(lines) == 1 and "NaN/inf at step" in lines[0] and "Traceback" not in err
    run_dir = only_run_dir(tmp_path)
    for _, path in checkpoints.list_checkpoints(str(run_dir)):
        model = checkpoints.load_checkpoint(path)
        assert all(np.isfinite(weights).all() for weights in model.get_weights())
