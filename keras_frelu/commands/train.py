"""``keras-frelu train`` and trainer.py: train a network with one activation function."""

from keras_frelu import cli, config
from keras_frelu.rundir import RunDir, is_chief


def main(argv=None, prog="trainer.py"):
    run_config = config.TrainConfig(**vars(config.build_parser(prog=prog).parse_args(argv)))
    config.validate(run_config, activation=False)  # bad flags answer before TensorFlow is loaded
    if is_chief():  # only the chief takes the run's lock (the other workers of a multi-worker run write nothing)
        RunDir(run_config.run_dir()).check_unlocked()  # a run that another process writes answers at once too
    cli.quiet_tensorflow(run_config.verbose)
    from keras_frelu import training  # deferred: TensorFlow is imported only when there is work to do

    training.split_cpu(run_config.num_cpu_devices)
    strategy = training.make_strategy(run_config)
    dataset = training.prepare(run_config)
    metrics = training.train(run_config, dataset, strategy)
    if metrics:
        print(f"{run_config.run_dir()}: step {metrics['step']}, test accuracy {metrics['test_accuracy']:.4f}, "
              f"test loss {metrics['test_loss']:.4f}, {metrics['images_per_s']:.0f} images/s")
