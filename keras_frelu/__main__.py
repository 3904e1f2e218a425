"""``python -m keras_frelu COMMAND``: the ``keras-frelu`` command (train, eval, compare, download, check)."""

import sys

from keras_frelu import cli, commands

if __name__ == "__main__":
    sys.argv[0] = "python -m keras_frelu"
    cli.run(commands.main, prog="python -m keras_frelu")
