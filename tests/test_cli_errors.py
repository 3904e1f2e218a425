"""Bad input to the front doors, run in-process through their ``main``: one line naming the problem and the
fix, the documented exit code, no traceback, and nothing written."""

import h5py
import numpy as np
import pytest
from helpers import call_cli


def write_two_channel_dataset(folder):
    folder.mkdir()
    with h5py.File(folder / "data.hdf5", "w") as handle:
        for index in range(20):
            group = handle.create_group(str(index))
            group["image"] = np.zeros((8, 8, 2), np.uint8)
            group["label"] = np.eye(2)[index % 2]
    (folder / "id.txt").write_text("".join(f"{index}\n" for index in range(20)))
    return folder


def half_a_file(folder):
    """A checkpoint cut in half (as a copy that was interrupted)."""
    from keras_frelu import models

    model = models.reference_cnn((8, 8, 1), 10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    folder.mkdir()
    model.save(folder / "whole.keras")
    content = (folder / "whole.keras").read_bytes()
    (folder / "half.keras").write_bytes(content[:len(content) // 2])
    return folder / "half.keras"


def digits_shaped_dataset(folder, num_classes):
    """8x8x1 images (as digits) with ``num_classes`` classes, each with training examples."""
    from keras_frelu.data import hdf5

    folder.mkdir()
    rng = np.random.default_rng(num_classes)
    count = 8 * num_classes
    ids = [str(index) for index in range(count)]
    hdf5.write_per_id(str(folder / "data.hdf5"), ids, rng.integers(0, 256, (count, 8, 8, 1), dtype=np.uint8),
                      np.arange(count) % num_classes)
    (folder / "id.txt").write_text("".join(f"{identifier}\n" for identifier in ids))
    return folder


def text_file(folder):
    folder.mkdir()
    (folder / "notes.keras").write_text("not a checkpoint\n")
    return folder / "notes.keras"


# (front door, its arguments (placeholders filled below), exit code, text the one error line must contain)
CASES = {
    "trainer-unknown-activation": ("trainer.py", ["--activation", "frelux"], 2, "did you mean 'frelu'"),
    "trainer-unknown-dataset": ("trainer.py", ["--dataset", "no_such_dataset"], 2, "no_such_dataset"),
    "trainer-batch-size-0": ("trainer.py", ["--batch_size", "0"], 2, "--batch_size must be at least 1"),
    "trainer-batch-larger-than-split": ("trainer.py", ["--batch_size", "5000"], 2, "--batch_size 5000"),
    "trainer-model-cannot-take-images": ("trainer.py", ["--dataset", "{two_channel}"], 2, "--model"),
    "trainer-learning-rate-inf": ("trainer.py", ["--learning_rate", "inf"], 2, "--learning_rate must be a positive"),
    "trainer-seed-negative": ("trainer.py", ["--seed", "-1"], 2, "--seed must be a whole number from 0 to 4294967295"),
    "trainer-seed-too-large": ("trainer.py", ["--seed", str(2**32)], 2, "(2**32 - 1), got 4294967296"),
    "trainer-checkpoint-minutes-0": ("trainer.py", ["--checkpoint_minutes", "0"], 2,
                                     "--checkpoint_minutes must be a positive"),
    "trainer-learning-rate-negative": ("trainer.py", ["--learning_rate", "-1"], 2, "--learning_rate must be a positive"),
    "trainer-clip-norm-0": ("trainer.py", ["--clip_norm", "0"], 2, "--clip_norm must be a positive"),
    "trainer-prefix-with-slash": ("trainer.py", ["--prefix", "a/b"], 2, "--prefix 'a/b' must be a plain name"),
    "trainer-not-a-number": ("trainer.py", ["--max_training_steps", "many"], 2, "invalid int value: 'many'"),
    "trainer-missing-checkpoint": ("trainer.py", ["--checkpoint", "{tmp}/none.keras"], 2, "does not exist"),
    "trainer-half-a-checkpoint": ("trainer.py", ["--checkpoint", "{half}"], 2, "is not a loadable .keras checkpoint"),
    "trainer-text-checkpoint": ("trainer.py", ["--checkpoint", "{text}"], 2, "is not a loadable .keras checkpoint"),
    "evaler-no-run": ("evaler.py", [], 2, "give --train_dir RUN_DIR or --checkpoint PATH"),
    "evaler-missing-run": ("evaler.py", ["--train_dir", "{tmp}/nothing"], 2, "does not exist"),
    "evaler-batch-size-0": ("evaler.py", ["--train_dir", "{tmp}", "--batch_size", "0"], 2, "must be at least 1"),
    "evaler-5-classes": ("evaler.py", ["--checkpoint", "{whole}", "--dataset", "{five}"], 2,
                         "the model predicts 10 classes but five has 5; pass the --dataset it was trained on"),
    "evaler-20-classes": ("evaler.py", ["--checkpoint", "{whole}", "--dataset", "{twenty}"], 2,
                          "the model predicts 10 classes but twenty has 20"),
    "evaler-half-a-checkpoint": ("evaler.py", ["--checkpoint", "{half}", "--dataset", "digits", "--data_dir",
                                               "{data_dir}"], 2, "is not a loadable .keras checkpoint"),
    "script-unknown-activation": ("script.py", ["--activations", "relu", "frelux"], 2, "did you mean 'frelu'"),
    "script-unknown-dataset": ("script.py", ["--datasets", "no_such_dataset"], 2, "no_such_dataset"),
    "script-seeds-0": ("script.py", ["--seeds", "0"], 2, "--seeds: must be at least 1"),
    "script-per-run-flag": ("script.py", ["--", "--seed", "3"], 2, "use --seeds N"),
    "download-mirror-not-a-url": ("download.py", ["--dataset", "mnist", "--mirror", "not-a-url"], 2,
                                  "'not-a-url' is not a URL; give e.g. https://host/path"),
    "script-report-of-nothing": ("script.py", ["--report_only", "{tmp}/nothing"], 2, "is not a folder"),
    # Folders that are files, or lie under one, in every front door.
    "trainer-train-dir-is-a-file": ("trainer.py", ["--train_dir", "{file}"], 2, "is a file, not a folder"),
    "trainer-train-dir-under-a-file": ("trainer.py", ["--train_dir", "{file}/runs"], 2, "lies under the file"),
    "trainer-data-dir-is-a-file": ("trainer.py", ["--data_dir", "{file}"], 2, "argument --data_dir: "),
    "script-train-dir-is-a-file": ("script.py", ["--train_dir", "{file}"], 2, "is a file, not a folder"),
    "script-trainer-data-dir-under-a-file": ("script.py", ["--", "--data_dir", "{file}/data"], 2,
                                             "lies under the file"),
    "download-data-dir-is-a-file": ("download.py", ["--dataset", "digits", "--data_dir", "{file}"], 2,
                                    "argument --data_dir: "),
    "download-data-dir-under-a-file": ("download.py", ["--dataset", "digits", "--data_dir", "{file}/x"], 2,
                                       "lies under the file"),
    "evaler-train-dir-is-a-file": ("evaler.py", ["--train_dir", "{file}"], 2, "is a file, not a run directory"),
    "evaler-train-dir-not-a-run": ("evaler.py", ["--train_dir", "{tmp}"], 2, "is not a run (it has no config.json)"),
    "evaler-train-dir-a-comparison": ("evaler.py", ["--train_dir", "{comparison}"], 2,
                                      "is a comparison made by script.py, not a run; evaluate one of its runs"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_error_exit_code_nothing_written(case, data_dir, tmp_path):
    script, arguments, expected_code, expected = CASES[case]
    places = {"tmp": tmp_path, "data_dir": data_dir, "file": tmp_path / "a_file", "comparison": tmp_path / "compare"}
    places["file"].write_text("not a folder\n")
    places["comparison"].mkdir()
    (places["comparison"] / "runs.json").write_text('{"runs": []}\n')
    if "{two_channel}" in arguments:
        places["two_channel"] = write_two_channel_dataset(tmp_path / "two_channel")
    if "{half}" in arguments or "{whole}" in arguments:
        places["half"] = half_a_file(tmp_path / "checkpoints")
        places["whole"] = tmp_path / "checkpoints" / "whole.keras"
    for name, classes in (("five", 5), ("twenty", 20)):
        if f"{{{name}}}" in arguments:
            places[name] = digits_shaped_dataset(tmp_path / name, classes)
    if "{text}" in arguments:
        places["text"] = text_file(tmp_path / "checkpoints")
    arguments = [argument.format(**places) for argument in arguments]
    train_dir = tmp_path / "runs"
    before = sorted(path.name for path in tmp_path.iterdir())
    common = {"trainer.py": ["--data_dir", data_dir, "--train_dir", train_dir],
              "script.py": ["--train_dir", train_dir, "--no_tensorboard"]}.get(script, [])
    if script == "script.py" and "--report_only" not in arguments:  # trainer flags go after --
        arguments += ["--data_dir", str(data_dir)] if "--" in arguments else ["--", "--data_dir", str(data_dir)]
    code, out, err = call_cli(script, *common, *arguments)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code, err
    assert len(lines) == 1 and "error: " in lines[0] and expected in lines[0], lines
    assert "Traceback" not in err and out == ""
    assert not train_dir.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == before
