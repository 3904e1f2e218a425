"""Faults lose nothing that was saved, in real processes and real file systems: a full and a read-only disk
(tmpfs mounts: the tests run as root, as CI does), a second writer, a corrupt checkpoint, resuming under
other spellings or after a move, a run stopped after its last checkpoint, every step once in the event
files after a resume."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import pytest
from helpers import CLI_ENV, FAST, call_cli, free_port, popen_cli, read_json
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from test_reliability import RUN

from keras_frelu import checkpoints, events, models


def one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@contextlib.contextmanager
def tmpfs(path, size):
    """A real, small file system at ``path`` (unmounted afterwards)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"mounting a tmpfs needs root (as CI runs): {mounted.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def remount(path, options):
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def leftovers(folder):
    """Temporary files of atomic writes under ``folder``."""
    return [os.path.join(parent, name) for parent, _, names in os.walk(folder) for name in names
            if ".tmp" in name]


def test_full_disk_one_line_nothing_half_written_and_the_same_command_resumes(data_dir, tmp_path):
    with tmpfs(tmp_path / "disk", "6m") as disk:  # room for the first checkpoint, not the second
        args = ["--data_dir", data_dir, "--train_dir", disk, "--max_training_steps", 300, *FAST]
        code, _, err = call_cli("trainer.py", *args)
        line = one_line(err)
        assert code == 1, err
        assert "cannot write" in line and "no space left on the device; free some space, then run the same " \
                                         "command again" in line and str(disk / RUN) in line
        assert leftovers(disk) == []
        saved = checkpoints.list_checkpoints(disk / RUN)
        assert [step for step, _ in saved] == [100]
        assert int(checkpoints.load_checkpoint(saved[0][1]).optimizer.iterations.numpy()) == 100

        remount(disk, "size=64m")  # space freed
        code, out, err = call_cli("trainer.py", *args)
        assert code == 0, err
        assert read_json(disk / RUN / "config.json")["start_step"] == 100
        assert read_json(disk / RUN / "metrics.json")["complete"] and leftovers(disk) == []


def write_checkpointed_run(folder, data_dir):
    """A run folder as evaler needs it (config.json and one checkpoint), without training."""
    model = models.reference_cnn((8, 8, 1), 10)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    (folder / "checkpoints").mkdir(parents=True)
    checkpoints.save_checkpoint(model, folder, 0)
    (folder / "config.json").write_text(json.dumps({"flags": {"dataset": "digits", "data_dir": str(data_dir)}}))


@pytest.mark.parametrize("script", ["trainer.py", "script.py", "download.py", "evaler.py"])
def test_read_only_folder_one_line_exit_1(script, data_dir, tmp_path):
    with tmpfs(tmp_path / "disk", "16m") as disk:
        if script == "evaler.py":
            write_checkpointed_run(disk / RUN, data_dir)
        remount(disk, "ro")
        args = {"trainer.py": ["--data_dir", data_dir, "--train_dir", disk, *FAST],
                "script.py": ["--train_dir", disk, "--no_tensorboard", "--", "--data_dir", data_dir],
                "download.py": ["--dataset", "digits", "--data_dir", disk / "datasets"],
                "evaler.py": ["--train_dir", disk / RUN]}[script]
        before = sorted(os.walk(disk))
        code, _, err = call_cli(script, *args)
        line = one_line(err)
        assert code == 1, err
        assert "cannot write" in line and "the file system is read-only; choose a writable folder" in line
        assert sorted(os.walk(disk)) == before


@pytest.mark.usefixtures("terminal_signals")
def test_a_second_trainer_on_the_same_run_is_refused_and_the_first_loses_nothing(data_dir, tmp_path):
    args = ["--data_dir", data_dir, "--train_dir", tmp_path, "--max_training_steps", 100_000, *FAST]
    first = popen_cli("trainer.py", *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = tmp_path / RUN / ".lock"
        deadline = time.monotonic() + 300
        while not (lock.exists() and f"process {first.pid} " in lock.read_text()):
            assert first.poll() is None and time.monotonic() < deadline, "the first trainer did not start"
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "trainer.py", *map(str, args)], capture_output=True, text=True,
                                env=CLI_ENV, timeout=300)
        line = one_line(second.stderr)
        assert second.returncode == 2
        assert f"{tmp_path / RUN} is being written by process {first.pid} on {socket.gethostname()}" in line
        assert first.poll() is None  # untouched
        while not checkpoints.list_checkpoints(tmp_path / RUN):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGINT)
        try:
            assert first.wait(timeout=120) == 130
        finally:
            first.kill()  # never left training after a failed assertion
    saved = checkpoints.list_checkpoints(tmp_path / RUN)
    for step, path in saved:
        assert int(checkpoints.load_checkpoint(path).optimizer.iterations.numpy()) == step
    assert leftovers(tmp_path) == []


def test_a_corrupt_newest_checkpoint_is_moved_aside_and_the_one_before_used(data_dir, tmp_path):
    args = ["--data_dir", data_dir, "--train_dir", tmp_path, *FAST]
    assert call_cli("trainer.py", *args, "--max_training_steps", 200)[0] == 0
    newest = tmp_path / RUN / "checkpoints" / "ckpt-00000200.keras"
    content = newest.read_bytes()
    newest.write_bytes(content[:len(content) // 2])
    code, out, err = call_cli("trainer.py", *args, "--max_training_steps", 300)
    assert code == 0, err
    assert f"{newest} does not load (" in out and "moved aside as ckpt-00000200.keras.corrupt" in out
    assert (tmp_path / RUN / "checkpoints" / "ckpt-00000200.keras.corrupt").read_bytes() == content[:len(content) // 2]
    assert read_json(tmp_path / RUN / "config.json")["start_step"] == 100
    assert [record["step"] for record in read_json(tmp_path / RUN / "metrics.json")["history"]] == \
        list(range(20, 301, 20))


def test_a_run_resumes_under_any_spelling_of_its_folders_and_after_a_move(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert call_cli("trainer.py", "--data_dir", data_dir, "--train_dir", tmp_path / "runs", *FAST,
                    "--max_training_steps", 100)[0] == 0
    # Relative and with a trailing slash, the dataset as a folder path and its parent spelled otherwise.
    code, _, err = call_cli("trainer.py", "--data_dir", "elsewhere", "--dataset", f"{data_dir}/./digits/",
                            "--train_dir", "./runs/", *FAST, "--max_training_steps", 200)
    assert code == 0, err
    assert read_json(tmp_path / "runs" / RUN / "config.json")["start_step"] == 100
    os.rename(tmp_path / "runs", tmp_path / "moved")
    code, _, err = call_cli("trainer.py", "--data_dir", data_dir, "--train_dir", "moved", *FAST,
                            "--max_training_steps", 300)
    assert code == 0, err
    assert read_json(tmp_path / "moved" / RUN / "config.json")["start_step"] == 200
    # Another experiment under the same name is still refused.
    code, _, err = call_cli("trainer.py", "--data_dir", data_dir, "--train_dir", "moved", *FAST,
                            "--max_training_steps", 400, "--batch_size", 32)
    assert code == 2 and "was trained with --batch_size 64, not 32" in one_line(err)


def event_steps(log_dir, tag):
    """Steps of ``tag`` as TensorBoard's own reader keeps them (it drops steps orphaned by a restart)."""
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Tensors(tag)]


def test_after_a_resume_every_step_is_in_the_event_files_once(data_dir, tmp_path):
    args = ["--data_dir", data_dir, "--train_dir", tmp_path, *FAST[1:], "--monitor_step", 50]
    assert call_cli("trainer.py", *args, "--max_training_steps", 200)[0] == 0
    # As if killed just before the checkpoint of step 200: steps 101-200 are in the event files already.
    os.remove(tmp_path / RUN / "checkpoints" / "ckpt-00000200.keras")
    assert call_cli("trainer.py", *args, "--max_training_steps", 300)[0] == 0
    run = tmp_path / RUN
    assert len(events.event_files(run / "train")) == 2
    windows = list(range(20, 301, 20))
    assert event_steps(run / "train", "loss") == windows
    assert [step for step, _ in events.read_scalars(str(run / "train"))["loss"]] == windows
    assert event_steps(run / "test", "accuracy") == [100, 200, 300]
    assert event_steps(run / "activations", "activations/act_fc1/mean") == [50, 100, 150, 200, 250, 300]

    # TensorBoard's Python data path (--load_fast=false) shows each step once too.
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--port", str(port),
                              "--host", "127.0.0.1", "--load_fast=false", "--reload_interval", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CLI_ENV)
    try:
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run={RUN}/train&tag=loss"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    served = [step for _, step, _ in json.load(response)]
                if served == windows or time.monotonic() > deadline:
                    break
            except OSError:
                assert time.monotonic() < deadline and board.poll() is None, "TensorBoard did not answer"
            time.sleep(0.5)
        assert served == windows
    finally:
        board.terminate()
        board.wait(timeout=30)


def test_a_run_stopped_after_its_last_checkpoint_is_completed_without_training(data_dir, tmp_path):
    args = ["--data_dir", data_dir, "--train_dir", tmp_path, *FAST, "--max_training_steps", 200]
    assert call_cli("trainer.py", *args)[0] == 0
    run = tmp_path / RUN
    finished = read_json(run / "metrics.json")
    # As if stopped between the checkpoint of step 200 and the completion: the metrics of step 100.
    (run / "metrics.json").write_text(json.dumps({**finished, "complete": False, "step": 100,
                                                  "history": finished["history"][:5]}))
    os.remove(run / "predictions.npz")
    code, out, err = call_cli("trainer.py", *args)
    assert code == 0, err
    completed = read_json(run / "metrics.json")
    assert completed["complete"] and completed["step"] == 200
    assert completed["test_accuracy"] == finished["test_accuracy"]  # the same weights, evaluated again
    assert completed["history"][-1]["step"] == 200 and (run / "predictions.npz").exists()
    assert "is already trained to step 200" in call_cli("trainer.py", *args)[1]  # and now it stays so
