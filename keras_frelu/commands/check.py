"""Validate a dataset folder and print a summary (``python -m keras_frelu.data check``).

Prints the example count, image shape and dtype, pixel range, classes, class balance (per class, train and
test) and split sizes, and warns about a class with no test example; a bad folder (fewer than 2 classes, a
class with no training example, ...) gives a one-line error naming the problem and the fix, and exit code 2.
Only a valid per-id folder gets a file written: its columnar cache.

    %(prog)s datasets/digits
"""

from keras_frelu import cli
from keras_frelu.data import summary


def build_parser(prog="keras-frelu check"):
    parser = cli.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    summary.add_check_arguments(parser)
    return parser


def main(argv=None, prog="keras-frelu check"):
    return summary.check(build_parser(prog).parse_args(argv))
