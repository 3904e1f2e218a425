"""trainer.py and evaler.py on the embedded digits dataset: the real-process smoke test (a run reaching 95%,
evaler agreeing with it) and in-process checks; kill -9, determinism across processes and tf.distribute are
in tests/end_to_end/test_trainer_processes.py."""


import numpy as np
import pytest
from helpers import FAST, call_cli, only_run_dir, read_json, run_cli

from keras_frelu import checkpoints, events


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
