#!/usr/bin/env python
"""Evaluate a trained run on the whole test split: accuracy, per-class accuracy, confusion matrix.

    python evaler.py --train_dir train_dir/digits-frelu-reference_cnn-seed0
    python evaler.py --checkpoint train_dir/RUN/checkpoints/ckpt-00003000.keras --dataset digits

Writes eval.json and confusion.png next to the run, and the confusion matrix to TensorBoard (eval/). The same
as ``keras-frelu eval`` of an installed package: the main is keras_frelu.commands.evaluate's.
"""

from keras_frelu import cli
from keras_frelu.commands.evaluate import main

if __name__ == "__main__":
    cli.run(main)
