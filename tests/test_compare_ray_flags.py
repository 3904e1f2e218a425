"""script.py's --ray flags without Ray: one-line errors, exit code 2, nothing written (in-process, fast).
The cluster itself is tested in tests/cluster."""

import sys

import pytest
from helpers import call_cli

INSTALL_LINE = "script.py: error: --ray needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]')"


def check_refused(tmp_path, data_dir, arguments, expected):
    before = sorted(path.name for path in tmp_path.iterdir())
    code, out, err = call_cli("script.py", "--train_dir", tmp_path / "runs", "--no_tensorboard", *arguments,
                              "--", "--data_dir", data_dir)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "", err
    assert len(lines) == 1 and expected in lines[0], lines
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    return lines[0]


@pytest.mark.parametrize("address", ["local", "auto", "ray://127.0.0.1:10001"])
def test_ray_without_ray_installed_says_how_to_install_it(address, tmp_path, data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as when it is not installed
    assert check_refused(tmp_path, data_dir, ["--ray", address], "--ray needs Ray") == INSTALL_LINE


@pytest.mark.parametrize("arguments, expected", [
    (["--cpus_per_run", "2"], "--cpus_per_run is for --ray"),
    (["--gpus_per_run", "1"], "--gpus_per_run is for --ray"),
    (["--ray", "local", "--gpus_per_run", "1.5"], "must be 0, a fraction below 1 or a whole number, got 1.5"),
    (["--ray", "local", "--gpus_per_run", "-1"], "must be 0, a fraction below 1 or a whole number"),
    (["--ray", "local", "--cpus_per_run", "0"], "--cpus_per_run: must be at least 1"),
])
def test_ray_flags_refused_in_one_line(arguments, expected, tmp_path, data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # a bad flag answers before Ray is needed
    check_refused(tmp_path, data_dir, arguments, expected)
