"""Reliability in-process: Ctrl-C stops training even when a library swallows it, abandoned download staging
folders are cleaned up, the progress bar's rate leaves out the tracing step. The faults that need real
processes and file systems are in tests/end_to_end/test_faults.py."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import keras
import pytest
from helpers import CLI_ENV, ROOT, call_cli, read_json

from keras_frelu import checkpoints, config, training
from keras_frelu.data import sources


RUN = "digits-relu-reference_cnn-seed0"


@pytest.mark.usefixtures("terminal_signals")
def test_ctrl_c_swallowed_by_a_library_still_stops_training_at_the_next_step(data_dir, tmp_path):
    """Keras's saving code catches every exception with a bare ``except:``: a Ctrl-C that lands there must
    still stop the run (it once trained on past its SIGINT)."""
    run_config = dataclasses.replace(config.TrainConfig(), data_dir=str(data_dir), train_dir=str(tmp_path),
                                     progress=False, no_monitor=True, log_step=10, output_save_step=10,
                                     test_sample_step=10, max_training_steps=1000)

    class SwallowsCtrlC(keras.callbacks.Callback):
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == 15:
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(1)  # the handler runs here
                except BaseException:  # as Keras's ``except:``
                    pass

    swallower = SwallowsCtrlC()
    with pytest.raises(KeyboardInterrupt):
        training.train(run_config, callbacks=[swallower])
    assert swallower.steps == 15  # stopped at the end of the next step
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert [step for step, _ in checkpoints.list_checkpoints(tmp_path / RUN)] == [10]


def test_checkpoint_minutes_writes_checkpoints_between_the_step_based_ones(data_dir, tmp_path):
    run_config = dataclasses.replace(config.TrainConfig(), data_dir=str(data_dir), train_dir=str(tmp_path),
                                     progress=False, no_monitor=True, log_step=5, output_save_step=100,
                                     test_sample_step=100, max_training_steps=7, checkpoint_minutes=1e-9)
    training.train(run_config)
    saved = checkpoints.list_checkpoints(tmp_path / RUN)
    assert [step for step, _ in saved] == [5, 6, 7]  # every step's, as the time is always up; the newest 3 kept
    assert int(checkpoints.load_checkpoint(saved[1][1]).optimizer.iterations.numpy()) == 6


def test_staging_folders_of_dead_downloads_are_removed_and_never_listed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    data_dir = tmp_path / "datasets"
    abandoned = data_dir / f".MNIST.{dead.pid}.k3j2h1g0.incomplete"
    older = data_dir / ".CIFAR10.q8w7e6r5.incomplete"  # a version that did not record its process
    alive = data_dir / f".SVHN.{os.getpid()}.z9x8c7v6.incomplete"  # a conversion still under way
    for folder in (abandoned, older, alive):
        folder.mkdir(parents=True)
        (folder / "data.hdf5").write_bytes(b"partial")
    with pytest.raises(sources.DatasetError) as error:
        sources.find_folder("mine", str(data_dir))
    assert "holds no dataset" in str(error.value) and ".MNIST" not in str(error.value)
    code, _, err = call_cli("download.py", "--dataset", "digits", "--data_dir", data_dir)
    assert code == 0, err
    assert sorted(os.listdir(data_dir)) == [alive.name, "digits"]


def test_the_progress_bar_leaves_the_tracing_step_out_of_its_rate_and_eta(data_dir, tmp_path):
    code, _, err = call_cli("trainer.py", "--data_dir", data_dir, "--train_dir", tmp_path, "--no_monitor",
                            "--max_training_steps", 40, "--log_step", 20, "--test_sample_step", 20,
                            "--output_save_step", 20)
    assert code == 0
    shown = [segment for segment in err.replace("\r", "\n").splitlines() if "/40 [" in segment]
    first = next(segment for segment in shown if " 1/40 [" in segment)
    assert "<?, ?step/s]" in first, first  # no rate or ETA from the step that traced the graph


@pytest.mark.parametrize("backend, expected", [
    ("jaxx", "KERAS_BACKEND='jaxx' is not a Keras backend; set it to one of tensorflow, jax, torch"),
    ("", "KERAS_BACKEND='' is not a Keras backend"),
    ("openvino", "KERAS_BACKEND=openvino needs openvino, which is not installed; pip install openvino"),
])
def test_a_keras_backend_that_is_unknown_or_not_installed_is_one_line(backend, expected, data_dir, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    for script, arguments in (("trainer.py", ["--data_dir", data_dir, "--train_dir", tmp_path]),
                              ("script.py", ["--train_dir", tmp_path, "--", "--data_dir", data_dir])):
        code, out, err = call_cli(script, *arguments)
        assert code == 2 and out == "" and err.splitlines() == [f"{script}: error: {err.split('error: ')[1].strip()}"]
        assert expected in err, err
    assert os.listdir(tmp_path) == []
    # evaler.py on a run with a checkpoint blames the backend, not the checkpoint
    run = tmp_path / RUN
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text('{"flags": {"dataset": "digits"}}')
    (run / "checkpoints" / "ckpt-00000010.keras").write_bytes(b"")
    code, out, err = call_cli("evaler.py", "--train_dir", run)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and expected in err, err


def test_a_run_another_process_writes_is_refused_before_tensorflow_loads(data_dir, tmp_path):
    from keras_frelu.rundir import RunDir

    run = RunDir(tmp_path / RUN)
    with run.lock():  # this process writes the run; the trainer below is another process
        probe = ("import sys; from helpers import CLI_ENV, ROOT, call_cli; "
                 f"code, out, err = call_cli('trainer.py', '--data_dir', {str(data_dir)!r}, '--train_dir', "
                 f"{str(tmp_path)!r}); print(code, 'tensorflow' in sys.modules); print(err, file=sys.stderr)")
        result = subprocess.run([sys.executable, "-c", probe], cwd=os.path.dirname(__file__), capture_output=True,
                                text=True, timeout=300, env={**CLI_ENV, "PYTHONPATH": str(ROOT)})
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert f"{run.path} is being written by process {os.getpid()} on " in result.stderr


def test_a_second_script_py_on_a_live_comparison_names_it(data_dir, tmp_path):
    from keras_frelu.compare import state

    folder = tmp_path / "compare-digits"
    with state.lock(str(folder)):  # as the first script.py holds it
        code, out, err = call_cli("script.py", "--train_dir", tmp_path, "--no_tensorboard", "--", "--data_dir",
                                  data_dir)
    assert code == 2, err
    (line,) = err.splitlines()
    assert line.startswith(f"script.py: error: {folder} is being run by another script.py: process {os.getpid()} ")
    assert sorted(os.listdir(folder)) == [".lock"]  # nothing else written


@pytest.mark.usefixtures("terminal_signals")
@pytest.mark.parametrize("at_step", [17, 20])  # inside a window, and a window's last step
def test_sigterm_stops_after_the_steps_record_and_checkpoint(at_step, data_dir, tmp_path):
    from keras_frelu.errors import Preempted

    run_config = dataclasses.replace(config.TrainConfig(), data_dir=str(data_dir), train_dir=str(tmp_path),
                                     progress=False, no_monitor=True, log_step=10, output_save_step=100,
                                     test_sample_step=100, validation_step=10, max_training_steps=100)

    class Preemption(keras.callbacks.Callback):
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == at_step:
                os.kill(os.getpid(), signal.SIGTERM)

    # The signal comes after the recorder saw the step (this callback runs after it): inside a window the
    # next step is the one that stops; a window's end is handled after the step's record, so it stops there.
    stopped = at_step if at_step % 10 == 0 else at_step + 1
    with pytest.raises(Preempted, match=f"stopped by SIGTERM at step {stopped}, its checkpoint saved"):
        training.train(run_config, callbacks=[Preemption()])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert [step for step, _ in checkpoints.list_checkpoints(tmp_path / RUN)] == [stopped]
    metrics = read_json(tmp_path / RUN / "metrics.json")
    assert metrics["step"] == stopped and not metrics["complete"]
    # The windows before the stop are all recorded, the one it ended included, with its validation.
    assert [record["step"] for record in metrics["history"]] == list(range(10, stopped + 1, 10))
    assert all("validation_accuracy" in record for record in metrics["history"])
