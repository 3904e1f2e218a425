"""Resumability: what a run directory must agree with to be resumed, and the state a run starts from."""

import dataclasses
import os

from keras_frelu import checkpoints
from keras_frelu.config import RESUMABLE_CHANGES
from keras_frelu.errors import UsageError

# What identifies a dataset for resuming: not how its folder was spelled, but what it holds.
DATASET_IDENTITY = ("name", "image_shape", "num_classes", "train_size", "test_size")


def dataset_summary(dataset):
    """The dataset as config.json records it."""
    return {"name": dataset.name, "path": os.path.abspath(dataset.path), "image_shape": list(dataset.image_shape),
            "num_classes": dataset.num_classes, "train_size": len(dataset.train_labels),
            "validation_size": dataset.validation_size,
            "test_size": len(dataset.test_labels)}


def check_resumable(run, config, dataset):
    """Refuse to resume a run that was made with different experiment flags or another dataset. Folder
    paths (--train_dir, --data_dir, --dataset as a path) may be spelled differently or have moved."""
    saved = run.config()
    if not saved:
        return
    flags = saved.get("flags", {})
    for key, value in dataclasses.asdict(config).items():
        if key not in RESUMABLE_CHANGES and key != "dataset" and key in flags and flags[key] != value:
            raise UsageError(f"{run} was trained with --{key} {flags[key]!r}, not {value!r}; rerun with "
                             "the same flags to resume it, or pick another --prefix for a new run")
    recorded, current = saved.get("dataset", {}), dataset_summary(dataset)
    for key in DATASET_IDENTITY:
        if key in recorded and recorded[key] != current[key]:
            raise UsageError(f"{run} was trained on {recorded.get('name')} ({key} {recorded[key]!r}), but "
                             f"--dataset {config.dataset} has {key} {current[key]!r}; give the same dataset "
                             "to resume it, or pick another --prefix for a new run")


def saved_start(config, run):
    """``(model, path)`` the run starts from: its newest checkpoint, else ``--checkpoint``, else (None, None)."""
    model, resume_from = checkpoints.load_latest(run)
    if model is None and config.checkpoint:
        model, resume_from = checkpoints.check_loadable(config.checkpoint), config.checkpoint
    return model, resume_from
