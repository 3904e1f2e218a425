"""Honest evaluation of a trained model: the whole test split, inference mode, per-class figures.

``evaluate(...)`` is what ``evaler.py`` calls. It restores a checkpoint, predicts the test split batch by
batch (dropout off, BatchNorm moving statistics), and writes ``eval.json``, ``confusion.png`` and the
same confusion matrix as an image (plus the scalars) to TensorBoard under ``eval/``.
"""

import contextlib
import io
import os

import numpy as np
import scipy.special
from matplotlib.figure import Figure

from keras_frelu import checkpoints, data, files
from keras_frelu.errors import UsageError
from keras_frelu.rundir import RunDir


def resolve(run_dir=None, checkpoint=None):
    """``(checkpoint_path, RunDir or None)`` for the given flags."""
    if checkpoint:
        if not os.path.isfile(checkpoint):
            raise UsageError(f"--checkpoint {checkpoint!r} does not exist; give a .keras file from a run's "
                             "checkpoints/ folder")
        if run_dir is None:
            parent = RunDir(os.path.dirname(os.path.dirname(os.path.abspath(checkpoint))))
            return checkpoint, parent if parent.is_run() else None
        return checkpoint, RunDir(run_dir)
    if run_dir:
        _check_run_folder(run_dir)
        checkpoint = checkpoints.latest_checkpoint(run_dir)
        if checkpoint is None:
            raise UsageError(f"{run_dir} has no checkpoint yet; train it first (trainer.py) or pass --checkpoint")
        return checkpoint, RunDir(run_dir)
    raise UsageError("give --train_dir RUN_DIR or --checkpoint PATH")


def confusion_matrix(labels, predictions, num_classes):
    """``matrix[true, predicted]`` counts."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def confusion_png(matrix, class_names, title):
    """The confusion matrix drawn as a PNG (bytes): counts in each cell, row-normalised colours."""
    size = max(4.0, 0.45 * len(matrix) + 2.0)
    figure = Figure(figsize=(size + 1.0, size), dpi=100)
    axes = figure.add_subplot()
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    ticks = np.arange(len(matrix))
    axes.set_xticks(ticks, class_names, rotation=45 if len(matrix) > 10 else 0)
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    if len(matrix) <= 20:  # counts stay readable up to CIFAR-10 sizes
        for true, predicted in np.ndindex(matrix.shape):
            axes.text(predicted, true, str(matrix[true, predicted]), ha="center", va="center", fontsize=8,
                      color="white" if rates[true, predicted] > 0.5 else "black")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def predict(model, split_data, labels):
    """``model``'s predictions over ``split_data`` (a ``make_dataset`` of a split, in order), per example:
    ``predicted`` class, ``label``, ``label_probability`` (softmax of the logits at the label), ``logits``."""
    logits = np.asarray(model.predict(split_data, verbose=0), dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = scipy.special.softmax(logits, axis=1)
    return {"predicted": logits.argmax(axis=1).astype(np.int64), "label": labels,
            "label_probability": probabilities[np.arange(len(labels)), labels].astype(np.float32),
            "logits": logits}


def write_predictions(path, predictions, step):
    """``predictions.npz``: ``predicted``, ``label``, ``label_probability`` and the model's ``step``."""
    with files.atomic_write(path, "wb") as handle:
        np.savez(handle, step=np.int64(step), predicted=predictions["predicted"], label=predictions["label"],
                 label_probability=predictions["label_probability"])


def _check_run_folder(run_dir):
    """A ``UsageError`` saying what ``--train_dir`` is when it is not a run, or ``RunLocked`` if a trainer writes
    it: answered before TensorFlow loads."""
    example = "give a run directory made by trainer.py, e.g. train_dir/digits-relu-reference_cnn-seed0"
    if not os.path.exists(run_dir):
        raise UsageError(f"--train_dir {run_dir!r} does not exist; {example}")
    if not os.path.isdir(run_dir):
        raise UsageError(f"--train_dir {run_dir!r} is a file, not a run directory; {example}")
    run = RunDir(run_dir)
    if not run.is_run():
        if os.path.isfile(os.path.join(run_dir, "runs.json")):
            raise UsageError(f"--train_dir {run_dir!r} is a comparison made by script.py, not a run; evaluate one "
                             f"of its runs (--train_dir {os.path.join(run_dir, 'RUN')}) or rebuild its report with "
                             f"script.py --report_only {run_dir}")
        raise UsageError(f"--train_dir {run_dir!r} is not a run (it has no config.json); {example}")
    run.check_unlocked()


def _model_and_dataset(checkpoint, run, dataset, data_dir, flag):
    """The checkpoint's model and its dataset (by default the run's), refused if they do not fit each other."""
    flags = run.flags() if run else {}
    dataset_name = dataset or flags.get("dataset")
    if not dataset_name:
        raise UsageError(f"{checkpoint} is not inside a run directory with config.json; pass --dataset")
    loaded = data.load_dataset(dataset_name, data_dir=data_dir or flags.get("data_dir", "datasets"),
                               test_fraction=flags.get("test_fraction", 0.2))
    model = checkpoints.check_loadable(checkpoint, flag=flag)
    if tuple(model.input_shape[1:]) != tuple(loaded.image_shape):
        raise UsageError(f"the model takes images of {tuple(model.input_shape[1:])} but {loaded.name} has "
                         f"{tuple(loaded.image_shape)}; pass the --dataset it was trained on")
    outputs = int(model.output_shape[-1])
    if outputs != loaded.num_classes:
        raise UsageError(f"the model predicts {outputs} classes but {loaded.name} has {loaded.num_classes}; "
                         "pass the --dataset it was trained on")
    return model, loaded


def evaluate(run_dir=None, checkpoint=None, dataset=None, data_dir=None, batch_size=256, output_dir=None):
    """Evaluate a checkpoint on its dataset's test split; return (and write) the eval report. Its files go
    to ``output_dir``, by default the run (under the run's lock) or the checkpoint's folder."""
    import tensorflow as tf  # deferred: ``resolve`` checks the flags without it

    checkpoint, run = resolve(run_dir, checkpoint)
    model, loaded = _model_and_dataset(checkpoint, run, dataset, data_dir,
                                       flag="--checkpoint" if run_dir is None else "the checkpoint")
    test = data.make_dataset(loaded.test_images, loaded.test_labels, batch_size, shuffle=False)
    predicted = predict(model, test, loaded.test_labels)
    labels, predictions = predicted["label"], predicted["predicted"]
    loss = float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, predicted["logits"])))
    matrix = confusion_matrix(labels, predictions, loaded.num_classes)
    class_names = loaded.class_names or [str(index) for index in range(loaded.num_classes)]
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    step = int(model.optimizer.iterations.numpy()) if model.optimizer else 0
    report = {
        "checkpoint": os.path.abspath(checkpoint),
        "dataset": loaded.name,
        "step": step,
        "test_size": int(len(labels)),
        "accuracy": float((predictions == labels).mean()),
        "loss": loss,
        "per_class_accuracy": {name: float(value) for name, value in zip(class_names, per_class)},
        "confusion_matrix": matrix.tolist(),
        "class_names": class_names,
    }
    png = confusion_png(matrix, class_names, f"{loaded.name}, step {step}: accuracy {report['accuracy']:.4f}")
    output = RunDir(output_dir or (run.path if run else os.path.dirname(os.path.abspath(checkpoint))))
    with output.lock() if output_dir is None and run else contextlib.nullcontext():
        files.write_bytes(output.confusion_path, png)
        files.write_json(output.eval_report_path, report)
        write_predictions(output.eval_predictions_path, predicted, step)
        with files.storage_errors(output.events("eval")):
            writer = tf.summary.create_file_writer(output.events("eval"))
            with writer.as_default(step=step):
                tf.summary.image("confusion_matrix", tf.image.decode_png(png)[tf.newaxis], step=step)
                tf.summary.scalar("accuracy", report["accuracy"])
                tf.summary.scalar("loss", loss)
            writer.close()
    return report
