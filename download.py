#!/usr/bin/env python
"""Download the built-in datasets and convert them into DATA_DIR/NAME (layout: datasets/README.md).

    python download.py --dataset MNIST SVHN CIFAR10
    python download.py --dataset digits                  # bundled with scikit-learn: no network needed

The same as ``keras-frelu download`` of an installed package: the main and the flags are
keras_frelu.commands.download's (python download.py --help).
"""

from keras_frelu import cli
from keras_frelu.commands.download import build_parser, main  # noqa: F401 (build_parser: for callers)

if __name__ == "__main__":
    cli.run(main)
