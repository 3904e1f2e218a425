"""The flags of one training run: ``TrainConfig``, the trainer's argument parser and the checks that need
no data. Imports no TensorFlow, so ``--help`` and usage errors answer at once."""

import argparse
import dataclasses
import math
import os

from keras_frelu import cli
from keras_frelu.errors import UsageError

MODELS = ("reference_cnn", "cifar_resnet20", "cifar_resnet32", "cifar_resnet56", "cifar_resnet110")
STRATEGIES = ("default", "mirrored", "multi_worker")
MAX_SEED = 2**32 - 1  # NumPy's and Keras's seeds are unsigned 32-bit
# Flags that may change between a run and its resumption; any other change is a different experiment.
RESUMABLE_CHANGES = frozenset(
    {"max_training_steps", "log_step", "test_sample_step", "output_save_step", "checkpoint_minutes", "monitor_step",
     "validation_step", "no_monitor", "checkpoint", "progress", "num_cpu_devices", "strategy", "steps_per_execution",
     "train_dir", "data_dir", "verbose"}
)


@dataclasses.dataclass
class TrainConfig:
    dataset: str = "digits"
    data_dir: str = "datasets"
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    activation: str = "relu"
    model: str = "reference_cnn"
    batch_size: int = 64
    learning_rate: float = 1e-4
    lr_weight_decay: bool = False
    clip_norm: float = 20.0
    max_training_steps: int = 3000
    log_step: int = 50
    validation_step: int = None  # None: auto, see validation_interval
    test_sample_step: int = 500
    output_save_step: int = 500
    monitor_step: int = 100
    monitor_statistics_size: int = 512
    no_monitor: bool = False
    train_dir: str = "train_dir"
    prefix: str = ""
    seed: int = 0
    checkpoint: str = None
    checkpoint_minutes: float = 10.0
    strategy: str = "default"
    num_cpu_devices: int = 1
    deterministic: bool = False
    steps_per_execution: int = 1
    progress: bool = True
    verbose: bool = False

    def run_name(self):
        parts = [self.prefix] if self.prefix else []
        parts += [os.path.basename(os.path.normpath(self.dataset)), self.activation, self.model,
                  f"seed{self.seed}"]
        return "-".join(parts)

    def run_dir(self):
        return os.path.join(self.train_dir, self.run_name())


DEFAULTS = TrainConfig()


def build_parser(prog=None):
    """trainer.py's argument parser (script.py parses the trainer flags after ``--`` with it too)."""
    parser = cli.ArgumentParser(prog=prog, description=TRAINER_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for add_flags in (_add_data_flags, _add_model_flags, _add_schedule_flags, _add_run_flags):
        add_flags(parser.add_argument)
    return parser


def _add_data_flags(add):
    add("--dataset", default=DEFAULTS.dataset,
        help="dataset name under --data_dir (digits, MNIST, SVHN, CIFAR10, ... or your own) or a path to a "
             "dataset folder (default: %(default)s, embedded, no download needed)")
    add("--data_dir", type=cli.folder, default=DEFAULTS.data_dir,
        help="folder holding the datasets (default: %(default)s)")
    add("--test_fraction", type=float, default=DEFAULTS.test_fraction,
        help="test share for custom datasets that have no test_id.txt (default: %(default)s)")
    add("--validation_fraction", type=float, default=DEFAULTS.validation_fraction,
        help="share of each class of the training split held out for validation, the same examples for every "
             "seed; the best step is chosen on it; 0: no validation split (default: %(default)s)")
    add("--activation", default=DEFAULTS.activation,
        help="activation registry name, e.g. relu, lrelu, prelu, elu, selu, frelu, flexrelu, ftswishplus "
             "(python -c 'import keras_frelu; print(keras_frelu.available())' lists all; default: %(default)s)")


def _add_model_flags(add):
    add("--model", default=DEFAULTS.model, choices=MODELS, help="network (default: %(default)s)")
    add("--batch_size", type=int, default=DEFAULTS.batch_size, help="global batch size (default: %(default)s)")
    add("--learning_rate", type=float, default=DEFAULTS.learning_rate, help="Adam learning rate (default: %(default)s)")
    add("--lr_weight_decay", action="store_true",
        help="halve the learning rate every 10,000 steps (exponential staircase decay, as the original)")
    add("--clip_norm", type=float, default=DEFAULTS.clip_norm,
        help="clip gradients to this global norm, a positive number (default: %(default)s)")


def _add_schedule_flags(add):
    add("--max_training_steps", type=int, default=DEFAULTS.max_training_steps,
        help="train until this global step (default: %(default)s)")
    add("--log_step", type=int, default=DEFAULTS.log_step,
        help="write training loss/accuracy (mean over the window) every N steps (default: %(default)s)")
    add("--validation_step", type=int, default=DEFAULTS.validation_step,
        help="evaluate on the whole validation split every N steps, a multiple of --log_step (default: as "
             "often as keeps it within 5%% of the training compute, at most every --log_step)")
    add("--test_sample_step", type=int, default=DEFAULTS.test_sample_step,
        help="evaluate on the whole test split every N steps, a multiple of --log_step (default: %(default)s)")
    add("--output_save_step", type=int, default=DEFAULTS.output_save_step,
        help="write a checkpoint every N steps, a multiple of --log_step (default: %(default)s)")
    add("--monitor_step", type=int, default=DEFAULTS.monitor_step,
        help="write activation histograms/images/statistics every N steps (default: %(default)s)")
    add("--monitor_statistics_size", type=int, default=DEFAULTS.monitor_statistics_size,
        help="activation statistics and histograms are over the first N images of the validation split (the "
             "test split without one), the same in every run of a comparison (default: %(default)s)")
    add("--no_monitor", action="store_true", help="do not write activation summaries")


def _add_run_flags(add):
    add("--train_dir", type=cli.folder, default=DEFAULTS.train_dir,
        help="parent folder of run directories (default: %(default)s)")
    add("--prefix", default=DEFAULTS.prefix, help="run name prefix: <prefix>-<dataset>-<activation>-<model>-seed<N>")
    add("--seed", type=int, default=DEFAULTS.seed,
        help="random seed of initialisation and data order, 0 to 2**32 - 1 (default: %(default)s)")
    add("--checkpoint_minutes", type=float, default=DEFAULTS.checkpoint_minutes,
        help="also write a checkpoint once this many minutes have passed since the last one, so that a kill -9 "
             "loses at most that much (default: %(default)s)")
    add("--checkpoint", default=DEFAULTS.checkpoint,
        help="start a new run from this .keras checkpoint (weights and optimiser state)")
    add("--strategy", default=DEFAULTS.strategy, choices=STRATEGIES,
        help="default: one device; mirrored: all local GPUs (or logical CPU devices); multi_worker: the "
             "cluster in TF_CONFIG (default: %(default)s)")
    add("--num_cpu_devices", type=int, default=DEFAULTS.num_cpu_devices,
        help="split the CPU into N logical devices (for --strategy mirrored without GPUs; default: %(default)s)")
    add("--steps_per_execution", type=int, default=DEFAULTS.steps_per_execution,
        help="training steps per call into TensorFlow; larger is faster for small models (default: %(default)s)")
    add("--deterministic", action="store_true", help="bitwise-reproducible kernels (slower)")
    add("--no_progress", dest="progress", action="store_false", help="no progress bar")
    add("--verbose", action="store_true", help="show TensorFlow's own start-up and log messages")


TRAINER_DESCRIPTION = """\
Train a network with one activation function and keep everything in one run directory.

    %(prog)s --activation frelu                      # embedded digits dataset
    %(prog)s --dataset CIFAR10 --activation selu --lr_weight_decay

Re-running the same command resumes from the newest checkpoint. Ctrl-C stops at once (exit 130); SIGTERM
(what Slurm, Kubernetes and Ray send before preemption) stops at the end of the current step with a
checkpoint of it (exit 143). Under nohup or as a background job SIGINT is ignored: use SIGTERM.
"""


def validate(config, activation=True):
    """Check the flags that need no data; raise UsageError naming the flag and the fix. The activation
    name is checked last, and only with ``activation``: knowing the names loads the layers (TensorFlow)."""
    if config.model not in MODELS:
        raise UsageError(f"unknown --model {config.model!r}; choose one of {', '.join(MODELS)}")
    if config.strategy not in STRATEGIES:
        raise UsageError(f"unknown --strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    for flag in ("batch_size", "max_training_steps", "log_step", "test_sample_step", "output_save_step",
                 "monitor_step", "monitor_statistics_size", "num_cpu_devices", "steps_per_execution"):
        if getattr(config, flag) < 1:
            raise UsageError(f"--{flag} must be at least 1, got {getattr(config, flag)}")
    if config.validation_step is not None and config.validation_step < 1:
        raise UsageError(f"--validation_step must be at least 1, got {config.validation_step}")
    for flag in ("test_sample_step", "output_save_step", "validation_step"):
        if getattr(config, flag) and getattr(config, flag) % config.log_step:
            raise UsageError(f"--{flag} ({getattr(config, flag)}) must be a multiple of --log_step "
                             f"({config.log_step}): both happen at the end of a logging window")
    if config.log_step % config.steps_per_execution:
        raise UsageError(f"--log_step ({config.log_step}) must be a multiple of --steps_per_execution "
                         f"({config.steps_per_execution})")
    for flag in ("learning_rate", "clip_norm", "checkpoint_minutes"):
        value = getattr(config, flag)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{flag} must be a positive finite number, got {value}")
    if not 0 <= config.seed <= MAX_SEED:
        raise UsageError(f"--seed must be a whole number from 0 to {MAX_SEED} (2**32 - 1), got {config.seed}")
    if not 0 < config.test_fraction < 1:
        raise UsageError(f"--test_fraction must be between 0 and 1, got {config.test_fraction}")
    if not 0 <= config.validation_fraction < 1:
        raise UsageError(f"--validation_fraction must be at least 0 and below 1, got {config.validation_fraction}")
    if os.sep in config.prefix or (os.altsep and os.altsep in config.prefix) or config.prefix in (".", ".."):
        raise UsageError(f"--prefix {config.prefix!r} must be a plain name (no {os.sep}); it starts the run "
                         "folder's name, --train_dir chooses its parent")
    if config.checkpoint and not os.path.isfile(config.checkpoint):
        raise UsageError(f"--checkpoint {config.checkpoint!r} does not exist; give the path of a .keras "
                         "checkpoint (e.g. train_dir/RUN/checkpoints/ckpt-00001000.keras)")
    if activation:
        from keras_frelu import activations  # loads Keras and the layers

        try:
            activations.canonical_name(config.activation)
        except ValueError as error:
            raise UsageError(f"--activation: {error}") from None


# Inference costs about a third of a training step's work per image; one pass over the validation split every
# ``VALIDATION_COST_STEPS * size / batch_size`` steps keeps it near 5% of the training compute.
VALIDATION_COST_STEPS = 1 / (3 * 0.05)


def validation_interval(config, validation_size):
    """Steps between two validations: ``--validation_step``, or the auto interval rounded up to a multiple
    of ``--log_step``."""
    if config.validation_step:
        return config.validation_step
    steps = VALIDATION_COST_STEPS * validation_size / config.batch_size
    return max(1, math.ceil(steps / config.log_step)) * config.log_step
