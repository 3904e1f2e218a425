"""The ``keras-frelu`` command (``python -m keras_frelu``): each tool's main behind one dispatcher that loads
no TensorFlow before the flags are read, one version, and comparison runs started as ``python -m keras_frelu
train`` (an installed package has no trainer.py)."""

import os
import runpy
import subprocess
import sys

import pytest
from helpers import CLI_ENV, ROOT

import keras_frelu
from keras_frelu import commands

VERSION_LINE = f"keras-frelu {keras_frelu.__version__}"


def test_python_m_help_loads_no_tensorflow():
    """A real ``python -m keras_frelu train --help``: help text, exit 0, and no TensorFlow or Keras import."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "keras_frelu", "train", "--help"],
                            capture_output=True, text=True, env=CLI_ENV, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m keras_frelu train ")
    assert "--max_training_steps" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "keras_frelu.config" in imported  # the trainer's flags (importlib's own imports are not timed)
    assert not {name for name in imported if name.split(".")[0] in ("tensorflow", "keras", "jax", "torch")}


def test_every_command_answers_help_and_version_without_tensorflow():
    code = ("import contextlib, io, sys\n"
            "from keras_frelu import cli, commands\n"
            "for argv in [['--help'], ['--version'], *([name, flag] for name in commands.COMMANDS\n"
            "                                         for flag in ('--help', '--version'))]:\n"
            "    out = io.StringIO()\n"
            "    with contextlib.redirect_stdout(out):\n"
            "        code = cli.call(commands.main, argv)\n"
            "    print(' '.join(argv), code, out.getvalue().splitlines()[0])\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLI_ENV, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    *lines, loaded = result.stdout.splitlines()
    assert loaded == "False False"
    answers = {line.split(" 0 ")[0]: line.split(" 0 ", 1)[1] for line in lines}
    assert answers.pop("--help").startswith("usage: keras-frelu COMMAND")
    assert answers.pop("--version") == VERSION_LINE
    for name in commands.COMMANDS:
        assert answers.pop(f"{name} --help").startswith(f"usage: keras-frelu {name} "), name
        assert answers.pop(f"{name} --version") == VERSION_LINE, name
    assert not answers


def test_the_version_has_one_home():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "keras_frelu.__version__"}
    assert project["project"]["scripts"]["keras-frelu"] == "keras_frelu.commands:run"


@pytest.mark.parametrize("argv, message", [
    ([], "keras-frelu: error: the following arguments are required: COMMAND (see --help)"),
    (["trian"], "keras-frelu: error: argument COMMAND: invalid choice: 'trian' (choose from 'train', 'eval', "
                "'compare', 'download', 'check') (see --help)"),
    (["train", "--batch_size", "x"], "keras-frelu train: error: argument --batch_size: invalid int value: 'x' "
                                     "(see --help)"),
    (["eval", "--train_dir", "missing"], "keras-frelu eval: error: --train_dir 'missing' does not exist; "),
    (["check", "missing/folder"], "keras-frelu check: error: "),
])
def test_bad_input_is_one_line_naming_the_command(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = keras_frelu.cli.call(commands.main, argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(message), err


def test_the_scripts_and_the_commands_share_their_mains():
    from keras_frelu.commands import download, evaluate, train

    for script, module in [("trainer.py", train), ("evaler.py", evaluate), ("download.py", download)]:
        assert runpy.run_path(str(ROOT / script))["main"] is module.main, script


def test_compare_starts_its_runs_as_python_m_keras_frelu_train(data_dir, tmp_path, monkeypatch, capsys):
    """``keras-frelu compare`` plans and hands the comparison over with trainer children ``python -m
    keras_frelu train``; script.py keeps starting trainer.py."""
    from keras_frelu.compare import runner

    started = {}

    def run(self, pool, tensorboard=None, wait=False, echo=print):
        started[self.trainer_script] = [self.command(config) for config in self.configs]
        return 0

    monkeypatch.setattr(runner.Comparison, "run", run)
    flags = ["--activations", "relu", "lrelu", "--no_tensorboard", "--exit_when_done", "--train_dir", tmp_path,
             "--", "--data_dir", data_dir, "--max_training_steps", 20]
    assert commands.main(["compare", *flags]) == 0
    assert runpy.run_path(str(ROOT / "script.py"))["main"](flags) == 0
    trainer_py = os.path.join(ROOT, "trainer.py")
    assert set(started) == {("-m", "keras_frelu", "train"), trainer_py}
    for trainer, start in [(["-m", "keras_frelu", "train"], started[("-m", "keras_frelu", "train")]),
                           ([trainer_py], started[trainer_py])]:
        assert [command[:len(trainer) + 1] for command in start] == [[sys.executable, *trainer]] * 2
        assert [command[command.index("--activation") + 1] for command in start] == ["relu", "lrelu"]
        assert all("--max_training_steps" in command for command in start)
