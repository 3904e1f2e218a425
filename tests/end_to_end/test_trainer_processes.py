"""trainer.py end to end in real processes: bit-for-bit determinism across processes, kill -9 and resume,
tf.distribute's mirrored devices and multi-worker processes with the monitor on, checkpointed and resumed."""

import json
import os
import shutil
import signal
import time

import numpy as np
import pytest
from helpers import CLI_ENV, FAST, call_cli, error_lines, free_port, only_run_dir, popen_cli, read_json, run_cli
from tensorflow.python.framework import config as tf_config

from keras_frelu import checkpoints, events


def train_losses(run_dir):
    return dict(events.read_scalars(str(run_dir / "train"))["loss"])


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


@pytest.mark.usefixtures("terminal_signals")
def test_sigterm_checkpoints_the_step_it_stops_at_and_the_rerun_ends_as_an_uninterrupted_run(
        data_dir, tmp_path, deterministic_reference):
    args = ["--data_dir", data_dir, "--train_dir", tmp_path, "--deterministic", "--seed", 1,
            "--max_training_steps", 300, *FAST]
    run_dir = tmp_path / "digits-relu-reference_cnn-seed1"
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        process = popen_cli("trainer.py", *args, stdout=out, stderr=err)
        deadline = time.monotonic() + 300
        while not checkpoints.list_checkpoints(str(run_dir)):  # the first one (step 100): 200 steps of margin
            assert process.poll() is None, "the run ended before SIGTERM"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        time.sleep(0.3)  # into the next window
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 143
    stopped_at = checkpoints.list_checkpoints(str(run_dir))[-1][0]
    assert 100 < stopped_at < 300
    assert error_lines((tmp_path / "err").read_text()) == [
        f"trainer.py: stopped by SIGTERM at step {stopped_at}, its checkpoint saved; rerun the same command to "
        "resume"]
    model = checkpoints.load_checkpoint(checkpoints.latest_checkpoint(str(run_dir)))
    assert int(model.optimizer.iterations.numpy()) == stopped_at

    result = run_cli("trainer.py", *args)
    assert result.returncode == 0, result.stderr
    assert read_json(run_dir / "config.json")["start_step"] == stopped_at
    # Every later window, evaluation and checkpoint falls on the steps of the uninterrupted run, whose final
    # figures it gives bit for bit; only the window cut by SIGTERM has a mean over fewer steps.
    losses, reference_losses = train_losses(run_dir), train_losses(deterministic_reference)
    assert sorted(losses) == list(range(20, 301, 20))
    cut = -(-stopped_at // 20) * 20
    assert {step: loss for step, loss in losses.items() if step != cut} == {
        step: loss for step, loss in reference_losses.items() if step != cut}
    metrics, reference = read_json(run_dir / "metrics.json"), read_json(deterministic_reference / "metrics.json")
    assert [record["step"] for record in metrics["history"]] == list(range(20, 301, 20))
    for key in ("step", "test_accuracy", "test_loss", "validation_accuracy", "validation_loss",
                "best_validation_accuracy", "best_validation_step", "test_accuracy_at_best_validation"):
        assert metrics[key] == reference[key], key
    assert [step for step, _ in checkpoints.list_checkpoints(str(run_dir))][-1] == 300


# The distributed runs: deterministic, with the monitor at its default interval (every 100 steps)
DISTRIBUTED = ["--deterministic", "--seed", 1, *[flag for flag in FAST if flag != "--no_monitor"]]


LAYERS = ("act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2")


def assert_monitor_matches_checkpoint(data_dir, run_dir, step):
    """The monitor's summaries at ``step`` against the run's checkpoint of that step (written right after
    them, with the same weights), computed independently on one device: per layer the gradient and weight
    norms of the loss on the 16 test images, and the activations' mean over the statistics sample."""
    import keras
    import tensorflow as tf

    from keras_frelu import config, data, training

    scalars = {tag: dict(values) for tag, values in events.read_scalars(str(run_dir / "activations")).items()}
    dataset = training.prepare(config.TrainConfig(data_dir=str(data_dir)))
    model = checkpoints.load_checkpoint(str(run_dir / "checkpoints" / f"ckpt-{step:08d}.keras"))
    images, labels = data.scale_images(dataset.test_images[:16]), dataset.test_labels[:16]
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, model(images, training=False))
    gradients = dict(zip(map(id, model.trainable_variables), tape.gradient(loss, model.trainable_variables)))
    weighted = [layer for layer in model.layers if layer.trainable_weights]
    assert len(weighted) >= 8
    for layer in weighted:
        gradient = np.sqrt(sum(np.sum(np.square(gradients[id(weight)].numpy().astype(np.float64)))
                               for weight in layer.trainable_weights))
        norm = np.sqrt(sum(np.sum(np.square(weight.numpy().astype(np.float64))) for weight in layer.trainable_weights))
        assert scalars[f"gradient_norm/{layer.name}"][step] == pytest.approx(gradient, rel=1e-4), layer.name
        assert scalars[f"weight_norm/{layer.name}"][step] == pytest.approx(norm, rel=1e-5), layer.name
    extractor = keras.Model(model.input, [model.get_layer(name).output for name in LAYERS])
    outputs = extractor(training.statistics_sample(dataset, 512), training=False)
    for name, values in zip(LAYERS, outputs):
        expected = np.mean(np.asarray(values, dtype=np.float64))
        assert scalars[f"activations/{name}/mean"][step] == pytest.approx(expected, rel=1e-4, abs=1e-6), name


def monitor_steps(run_dir):
    """The steps of the monitor's scalars and histograms (a restart's replayed steps counted once)."""
    scalars = events.read_scalars(str(run_dir / "activations"))
    tags = events.read_tags(str(run_dir / "activations"))
    assert {f"activations/{name}/values" for name in LAYERS} <= {tag for tag, kind in tags.items()
                                                                  if kind == "histograms"}
    assert {f"activations/{name}/image" for name in LAYERS} <= {tag for tag, kind in tags.items() if kind == "images"}
    return [step for step, _ in scalars["activations/act_fc1/mean"]]


@pytest.fixture(scope="module")
def mirrored_run(data_dir, tmp_path_factory):
    """A deterministic run of 300 steps on two logical CPU devices, with the monitor."""
    train_dir = tmp_path_factory.mktemp("mirrored")
    result = run_cli("trainer.py", "--data_dir", data_dir, "--train_dir", train_dir, "--strategy", "mirrored",
                     "--num_cpu_devices", 2, "--max_training_steps", 300, *DISTRIBUTED)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return only_run_dir(train_dir)


def test_mirrored_strategy_on_two_cpu_devices_matches_single_device(data_dir, mirrored_run, deterministic_reference):
    mirrored = train_losses(mirrored_run)
    single = train_losses(deterministic_reference)
    assert sorted(mirrored) == sorted(single)
    # Batch norm statistics and dropout masks are per replica, so the curves agree only closely.
    difference = np.abs(np.array([mirrored[s] for s in single]) - np.array(list(single.values())))
    assert difference.mean() < 0.1, (mirrored, single)
    assert mirrored[300] < 0.5 * mirrored[20]  # and it did learn
    assert monitor_steps(mirrored_run) == [100, 200, 300]
    for step in (100, 300):
        assert_monitor_matches_checkpoint(data_dir, mirrored_run, step)


def test_mirrored_strategy_resumes_with_the_monitor(data_dir, mirrored_run, tmp_path):
    run_dir = tmp_path / mirrored_run.name
    shutil.copytree(mirrored_run, run_dir)
    result = run_cli("trainer.py", "--data_dir", data_dir, "--train_dir", tmp_path, "--strategy", "mirrored",
                     "--num_cpu_devices", 2, "--max_training_steps", 400, *DISTRIBUTED)
    assert result.returncode == 0, result.stderr
    assert read_json(run_dir / "config.json")["start_step"] == 300
    losses = train_losses(run_dir)
    assert sorted(losses) == list(range(20, 401, 20))
    assert {step: losses[step] for step in range(20, 301, 20)} == train_losses(mirrored_run)
    assert monitor_steps(run_dir) == [100, 200, 300, 400]
    assert_monitor_matches_checkpoint(data_dir, run_dir, 400)


def run_workers(data_dir, train_dirs, logs, steps, *extra, codes=(0, 0)):
    """Workers on 127.0.0.1, each with its own --train_dir, that must exit with ``codes``; their stderr."""
    workers = [f"127.0.0.1:{free_port()}" for _ in train_dirs]
    processes = []
    for index, train_dir in enumerate(train_dirs):
        env = {**CLI_ENV, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                   "task": {"type": "worker", "index": index}})}
        processes.append(popen_cli("trainer.py", "--data_dir", data_dir, "--train_dir", train_dir,
                                   "--strategy", "multi_worker", "--max_training_steps", steps, *DISTRIBUTED, *extra,
                                   env=env,
                                   stdout=open(logs / f"out{index}", "w"), stderr=open(logs / f"err{index}", "w")))
    try:
        exits = [process.wait(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    errors = [(logs / f"err{index}").read_text() for index in range(len(train_dirs))]
    assert exits == list(codes), [error[-2000:] for error in errors]
    return errors


def test_multi_worker_strategy_with_two_processes_monitors_and_resumes_from_per_worker_folders(
        data_dir, tmp_path, mirrored_run):
    folders = [tmp_path / "w0", tmp_path / "w1"]
    run_workers(data_dir, folders, tmp_path, 200)
    run_dir = only_run_dir(folders[0])
    assert read_json(run_dir / "metrics.json")["step"] == 200
    assert not folders[1].exists()  # only the chief writes
    assert monitor_steps(run_dir) == [100, 200]
    assert_monitor_matches_checkpoint(data_dir, run_dir, 100)

    # Rerun: the chief resumes from its checkpoint of step 200 and the other worker, whose folder holds
    # nothing, from the chief's state: together they train on exactly as an uninterrupted run.
    run_workers(data_dir, folders, tmp_path, 300)
    assert read_json(run_dir / "config.json")["start_step"] == 200
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["complete"] and metrics["step"] == 300
    assert not folders[1].exists()
    # Two workers of one CPU device each compute what two devices of one process do: the same losses, bit
    # for bit, as the uninterrupted mirrored run
    assert train_losses(run_dir) == train_losses(mirrored_run)
    assert monitor_steps(run_dir) == [100, 200, 300]
    assert_monitor_matches_checkpoint(data_dir, run_dir, 300)


def test_multi_worker_refuses_on_every_worker_a_checkpoint_the_flags_do_not_build(data_dir, tmp_path):
    import keras

    from keras_frelu import models

    other = models.reference_cnn((8, 8, 1), 10, activation="frelu")
    other.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    other.optimizer.build(other.trainable_variables)
    path = checkpoints.save_checkpoint(other, str(tmp_path / "frelu_run"), 0)
    folders = [tmp_path / "w0", tmp_path / "w1"]
    chief, worker = run_workers(data_dir, folders, tmp_path, 100, "--activation", "relu", "--checkpoint", path,
                                codes=(2, 2))
    assert error_lines(chief) == [f"trainer.py: error: {path} holds another model than --model reference_cnn "
                                  "--activation relu builds; under --strategy multi_worker the model is built from "
                                  "the flags: give the flags it was trained with"]
    assert error_lines(worker) == ["trainer.py: error: the chief worker cannot start from its saved model (its error "
                                   "says why); fix the chief's flags and rerun every worker"]
    assert not any(folders[0].iterdir()) and not folders[1].exists()  # no run folder is left behind
