"""What every front-door script shares: one-line errors and their exit codes."""

import argparse
import os
import sys

from keras_frelu.errors import KerasFreluError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ...``) instead of the usage block; exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main, argv=None):
    """Run ``main(argv)``; turn our errors into ``prog: error: message`` and their exit code."""
    prog = os.path.basename(sys.argv[0])
    try:
        code = main(argv)
    except KerasFreluError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
