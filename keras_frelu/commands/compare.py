"""``keras-frelu compare``: script.py's comparison, each run a ``python -m keras_frelu train`` child process
(an installed package has no trainer.py file)."""

from keras_frelu.compare import command

# What follows the Python interpreter in each run's command (keras_frelu.compare.runner.Comparison.command).
TRAINER = ("-m", "keras_frelu", "train")


def main(argv=None, prog="keras-frelu compare"):
    return command.main(argv, trainer_script=TRAINER, prog=prog)
