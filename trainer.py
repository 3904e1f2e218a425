#!/usr/bin/env python
"""Train a network with one activation function and keep everything in one run directory.

    python trainer.py --activation frelu                      # embedded digits dataset
    python trainer.py --dataset CIFAR10 --activation selu --lr_weight_decay

Re-running the same command resumes from the newest checkpoint.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from keras_frelu import cli, training  # noqa: E402

DEFAULTS = training.TrainConfig()


def build_parser():
    parser = cli.ArgumentParser(description=__doc__, formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--dataset", default=DEFAULTS.dataset,
        help="dataset name under --data_dir (digits, MNIST, SVHN, CIFAR10, ... or your own) or a path to a "
             "dataset folder (default: %(default)s, embedded, no download needed)")
    add("--data_dir", default=DEFAULTS.data_dir, help="folder holding the datasets (default: %(default)s)")
    add("--test_fraction", type=float, default=DEFAULTS.test_fraction,
        help="test share for custom datasets that have no test_id.txt (default: %(default)s)")
    add("--activation", default=DEFAULTS.activation,
        help="activation registry name, e.g. relu, lrelu, prelu, elu, selu, frelu, flexrelu, ftswishplus "
             "(python -c 'import keras_frelu; print(keras_frelu.available())' lists all; default: %(default)s)")
    add("--model", default=DEFAULTS.model, choices=training.MODELS, help="network (default: %(default)s)")
    add("--batch_size", type=int, default=DEFAULTS.batch_size, help="global batch size (default: %(default)s)")
    add("--learning_rate", type=float, default=DEFAULTS.learning_rate, help="Adam learning rate (default: %(default)s)")
    add("--lr_weight_decay", action="store_true",
        help="halve the learning rate every 10,000 steps (exponential staircase decay, as the original)")
    add("--clip_norm", type=float, default=DEFAULTS.clip_norm,
        help="clip gradients to this global norm (default: %(default)s)")
    add("--max_training_steps", type=int, default=DEFAULTS.max_training_steps,
        help="train until this global step (default: %(default)s)")
    add("--log_step", type=int, default=DEFAULTS.log_step,
        help="write training loss/accuracy (mean over the window) every N steps (default: %(default)s)")
    add("--test_sample_step", type=int, default=DEFAULTS.test_sample_step,
        help="evaluate on the whole test split every N steps, a multiple of --log_step (default: %(default)s)")
    add("--output_save_step", type=int, default=DEFAULTS.output_save_step,
        help="write a checkpoint every N steps, a multiple of --log_step (default: %(default)s)")
    add("--monitor_step", type=int, default=DEFAULTS.monitor_step,
        help="write activation histograms/images/statistics every N steps (default: %(default)s)")
    add("--no_monitor", action="store_true", help="do not write activation summaries")
    add("--train_dir", default=DEFAULTS.train_dir, help="parent folder of run directories (default: %(default)s)")
    add("--prefix", default=DEFAULTS.prefix, help="run name prefix: <prefix>-<dataset>-<activation>-<model>-seed<N>")
    add("--seed", type=int, default=DEFAULTS.seed, help="random seed of initialisation and data order (default: %(default)s)")
    add("--checkpoint", default=DEFAULTS.checkpoint,
        help="start a new run from this .keras checkpoint (weights and optimiser state)")
    add("--strategy", default=DEFAULTS.strategy, choices=training.STRATEGIES,
        help="default: one device; mirrored: all local GPUs (or logical CPU devices); multi_worker: the "
             "cluster in TF_CONFIG (default: %(default)s)")
    add("--num_cpu_devices", type=int, default=DEFAULTS.num_cpu_devices,
        help="split the CPU into N logical devices (for --strategy mirrored without GPUs; default: %(default)s)")
    add("--steps_per_execution", type=int, default=DEFAULTS.steps_per_execution,
        help="training steps per call into TensorFlow; larger is faster for small models (default: %(default)s)")
    add("--deterministic", action="store_true", help="bitwise-reproducible kernels (slower)")
    add("--no_progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv=None):
    config = training.TrainConfig(**vars(build_parser().parse_args(argv)))
    training.split_cpu(config.num_cpu_devices)
    strategy = training.make_strategy(config)
    dataset = training.prepare(config)
    metrics = training.train(config, dataset, strategy)
    if metrics:
        print(f"{config.run_dir()}: step {metrics['step']}, test accuracy {metrics['test_accuracy']:.4f}, "
              f"test loss {metrics['test_loss']:.4f}, {metrics['images_per_s']:.0f} images/s")


if __name__ == "__main__":
    cli.run(main)
