"""Planning a comparison: the runs (activation x dataset x seed) with their shared trainer flags, and the
comparison folder's name."""

import dataclasses
import hashlib
import json
import os

from keras_frelu import config as train_config
from keras_frelu import data
from keras_frelu.errors import UsageError

DEFAULT_ACTIVATIONS = ("relu", "lrelu", "selu", "frelu")
DEFAULT_DATASETS = ("digits",)
# Trainer flags that the comparison sets for each run; the others after -- are shared by all runs.
PER_RUN_FLAGS = ("activation", "dataset", "seed", "train_dir")


def trainer_config(parser, argv):
    """The ``TrainConfig`` of the trainer flags after ``--``, parsed by trainer.py's ``parser``.

    The flags each run gets from the comparison are refused, naming the comparison flag to use instead.
    """
    parser.prog = f"{parser.prog} (trainer flags after --)"
    parser.set_defaults(**{flag: None for flag in PER_RUN_FLAGS})
    values = vars(parser.parse_args(argv))
    instead = {"activation": "--activations", "dataset": "--datasets", "seed": "--seeds N",
               "train_dir": "--train_dir (before --)"}
    for flag in PER_RUN_FLAGS:
        if values.pop(flag) is not None:
            raise UsageError(f"--{flag} after -- is set by the comparison for each run; use {instead[flag]}")
    return train_config.TrainConfig(**values)


def with_controls(activations):
    """``activations`` with each one's compute-matched control after it (once); UsageError if none has one."""
    from keras_frelu.activations import controls

    known = controls()
    if not any(name in known for name in activations):
        raise UsageError(f"--controls: none of {', '.join(activations)} has a compute-matched control; "
                         f"{', '.join(f'{name} has {control}' for name, control in known.items())}")
    return list(dict.fromkeys(name for activation in activations
                              for name in (activation, known.get(activation)) if name))


def activation_names(names):
    """The registry names of ``names`` (aliases resolved), each once, in the given order."""
    from keras_frelu import activations  # loads Keras and the layers, once the flags have been read

    canonical = []
    for name in names:
        try:
            canonical.append(activations.canonical_name(name))
        except ValueError as error:
            raise UsageError(f"--activations: {error}") from None
    return list(dict.fromkeys(canonical))


def dataset_label(dataset):
    """How a dataset (name or folder path) appears in run and folder names, as trainer.py names runs."""
    return os.path.basename(os.path.normpath(dataset))


def default_name(base, datasets):
    """``compare-<datasets>``, plus a hash of the experiment-defining trainer flags that differ from the
    defaults; the same command always gives the same name."""
    defaults = dataclasses.asdict(train_config.TrainConfig())
    changed = {key: value for key, value in dataclasses.asdict(base).items()
               if key not in train_config.RESUMABLE_CHANGES and key not in PER_RUN_FLAGS and value != defaults[key]}
    name = "compare-" + "+".join(dataset_label(dataset) for dataset in datasets)
    if changed:
        name += "-" + hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]
    return name


def plan(base, folder, activations, datasets, seeds):
    """One ``TrainConfig`` per run, seed-major so that the first runs to finish cover every activation."""
    return [dataclasses.replace(base, activation=activation, dataset=dataset, seed=seed, train_dir=folder)
            for seed in range(seeds) for dataset in datasets for activation in activations]


def check_plan(configs):
    """Every check that needs no training, before anything is written; UsageError naming the problem."""
    for config in configs:
        train_config.validate(config)
    for dataset in dict.fromkeys(config.dataset for config in configs):
        try:
            data.find_folder(dataset, configs[0].data_dir)
        except UsageError as error:
            raise UsageError(f"--datasets: {error}") from None
