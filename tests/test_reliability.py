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
from helpers import call_cli

from keras_frelu import checkpoints, config, training
from keras_frelu.data import sources


RUN = "digits-relu-reference_cnn-seed0"


@pytest.mark.usefixtures("terminal_sigint")
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
                                     progress=False, no_monitor=True, log_step=20, output_save_step=100,
                                     test_sample_step=100, max_training_steps=25, checkpoint_minutes=1e-9)
    training.train(run_config)
    saved = checkpoints.list_checkpoints(tmp_path / RUN)
    assert [step for step, _ in saved] == [23, 24, 25]  # every step's, as the time is always up; the newest 3 kept
    assert int(checkpoints.load_checkpoint(saved[0][1]).optimizer.iterations.numpy()) == 23


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
