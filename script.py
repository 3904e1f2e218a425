#!/usr/bin/env python
"""Compare activation functions: the same training with each, side by side, TensorBoard, and a report.

    python script.py --activations relu frelu --seeds 3      # python script.py --help for every flag
"""

import os

from keras_frelu import cli
from keras_frelu.compare import command

TRAINER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainer.py")


def main(argv=None):
    return command.main(argv, trainer_script=TRAINER)


if __name__ == "__main__":
    cli.run(main)
