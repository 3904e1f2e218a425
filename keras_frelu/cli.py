"""What every front-door script shares: one-line errors and their exit codes."""

import argparse
import os
import sys

from keras_frelu.errors import KerasFreluError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ...``) instead of the usage block; exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text):
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def call(main, argv=None, **kwargs):
    """Run ``main(argv, **kwargs)`` and return its exit code; our errors become ``prog: error: message`` on
    stderr and their exit code, argparse's exits keep theirs."""
    prog = os.path.basename(sys.argv[0])
    try:
        return main(argv, **kwargs) or 0
    except KerasFreluError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except SystemExit as exit_:  # argparse: --help (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)


def run(main, argv=None, **kwargs):
    """The front doors' ``__main__``: ``call`` then exit with its code."""
    sys.exit(call(main, argv, **kwargs))
