"""script.py comparisons: planning, the report read back from event files, and real runs that are
interrupted with Ctrl-C, resumed, partly failed, and watched through TensorBoard."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import read_json, run_cli
from PIL import Image

from keras_frelu import checkpoints
from keras_frelu.compare import plan, report, resources, state
from keras_frelu.config import build_parser as trainer_parser
from keras_frelu.errors import UsageError


# Steps are cheap on digits; every run pays ~5-10 s of TensorFlow start-up, so runs are few and short.
TRAINER_FLAGS = ["--max_training_steps", 200, "--log_step", 20, "--test_sample_step", 40, "--output_save_step", 40,
                 "--monitor_step", 100, "--learning_rate", 3e-3]
RUN = "digits-{}-reference_cnn-seed{}"


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

def poison(run_dir):
    """Make a run diverge when it resumes: NaN weights in its newest checkpoint, saved as the trainer would."""
    step, path = checkpoints.list_checkpoints(str(run_dir))[-1]
    model = checkpoints.load_checkpoint(path)
    model.set_weights([np.full_like(weights, np.nan) for weights in model.get_weights()])
    checkpoints.save_checkpoint(model, str(run_dir), step)


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


def test_script_runs_a_comparison_of_real_trainer_processes_and_reports_it(data_dir, tmp_path):
    # The smoke test of the front door (the whole story, interrupted and resumed, is in tests/end_to_end).
    result = run_cli("script.py", "--activations", "relu", "selu", "--seeds", 1, "--parallel", 2, "--train_dir",
                     tmp_path, "--no_tensorboard", "--", "--data_dir", data_dir, "--max_training_steps", 40,
                     "--log_step", 20, "--test_sample_step", 40, "--output_save_step", 40, "--monitor_step", 20,
                     "--learning_rate", 3e-3)
    assert result.returncode == 0, result.stdout + result.stderr
    (folder,) = tmp_path.glob("compare-digits*")
    summary = read_json(folder / "comparison.json")
    assert summary["tally"] == {"complete": 2}
    for activation in ("relu", "selu"):
        run = folder / RUN.format(activation, 0)
        assert read_json(run / "metrics.json")["complete"] and read_json(run / "metrics.json")["step"] == 40
        assert checkpoints.list_checkpoints(str(run))[-1][0] == 40
    assert (folder / "comparison.md").read_text().startswith("#")
    assert "selu" in result.stdout and "relu" in result.stdout


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


@pytest.mark.parametrize("code, complete, expected", [
    (130, True, "complete"), (-15, True, "complete"), (143, False, "interrupted"), (0, True, "complete"),
    (1, False, "interrupted")])  # while stopping, any other end is an interruption
def test_runs_json_says_what_the_run_folder_holds_when_a_run_ends(code, complete, expected, tmp_path):
    """A run that completed just as it was stopped (its exit code that of the signal) is complete."""
    from types import SimpleNamespace

    from keras_frelu import config as trainer_config
    from keras_frelu.compare.pool import Output
    from keras_frelu.compare.runner import Comparison

    folder = tmp_path / "compare-digits"
    run_config = trainer_config.TrainConfig(train_dir=str(folder), max_training_steps=200)
    (folder / run_config.run_name()).mkdir(parents=True)
    (folder / run_config.run_name() / "metrics.json").write_text(json.dumps({"complete": complete, "step": 200}))
    comparison = Comparison(str(folder), [run_config], "trainer.py", [])
    run_state = {"runs": {run_config.run_name(): {"status": "running"}}}
    handle = SimpleNamespace(name=run_config.run_name(), never_started=False, message=None,
                             output=Output(run_config.run_name(), print))
    comparison._finished(run_state, handle, code, stopping=True, say=print)
    assert run_state["runs"][run_config.run_name()]["status"] == expected
    assert state.read_state(folder)["runs"][run_config.run_name()]["status"] == expected
