#!/usr/bin/env python
"""Train a network with one activation function and keep everything in one run directory.

    python trainer.py --activation frelu          # python trainer.py --help for every flag

The same as ``keras-frelu train`` (``python -m keras_frelu train``) of an installed package: the main is
keras_frelu.commands.train's.
"""

from keras_frelu import cli
from keras_frelu.commands.train import main

if __name__ == "__main__":
    cli.run(main)
