"""``python -m keras_frelu.data check datasets/NAME``: validate a dataset folder and summarise it.

Prints the example count, image shape and dtype, pixel range, classes, class balance (per class, train and
test) and split sizes, and warns about a class with no test example; a bad folder (fewer than 2 classes, a
class with no training example, ...) gives a one-line error naming the problem and the fix, and exit code 2.
Only a valid per-id folder gets a file written: its columnar cache. (``keras-frelu check`` is the same.)
"""

import sys

from keras_frelu import cli
from keras_frelu.data import summary


def build_parser():
    parser = cli.ArgumentParser(prog="python -m keras_frelu.data", description=__doc__,
                                formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    summary.add_check_arguments(commands.add_parser("check", help="validate a dataset folder and print a summary"))
    return parser


def main(argv=None):
    return summary.check(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.argv[0] = "python -m keras_frelu.data"
    cli.run(main)
