"""``keras-frelu COMMAND`` (and ``python -m keras_frelu COMMAND``): the tools of the repository's front-door
scripts, for an installed package.

    keras-frelu train --activation frelu                  # trainer.py
    keras-frelu eval --train_dir train_dir/RUN            # evaler.py
    keras-frelu compare --activations relu frelu          # script.py (its runs: python -m keras_frelu train)
    keras-frelu download --dataset MNIST                  # download.py
    keras-frelu check datasets/digits                     # python -m keras_frelu.data check

Each command is the same ``main`` as its script, with the same flags. Nothing here imports more than the
command's own module before its flags are parsed, so ``--help`` and ``--version`` answer without TensorFlow.
"""

import collections
import importlib
import sys

from keras_frelu import cli

Command = collections.namedtuple("Command", "module summary")
COMMANDS = {
    "train": Command("keras_frelu.commands.train", "train a network with one activation function (trainer.py)"),
    "eval": Command("keras_frelu.commands.evaluate", "evaluate a trained run on its test split (evaler.py)"),
    "compare": Command("keras_frelu.commands.compare",
                       "compare activation functions: runs, TensorBoard and a report (script.py)"),
    "download": Command("keras_frelu.commands.download", "download and convert built-in datasets (download.py)"),
    "check": Command("keras_frelu.commands.check", "validate a dataset folder and print a summary"),
}
PROG = "keras-frelu"


def build_parser(prog=PROG):
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items())
    parser = cli.ArgumentParser(
        prog=prog, usage="%(prog)s COMMAND [flags]  (%(prog)s COMMAND --help for its flags)",
        description="Keras activation functions: train, evaluate and compare them, download and check datasets.",
        formatter_class=cli.argparse.RawDescriptionHelpFormatter, epilog=f"commands:\n{listing}")
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help=", ".join(COMMANDS))
    return parser


def main(argv=None, prog=PROG):
    """Run ``COMMAND``'s main on the rest of ``argv``; returns its exit code. The command's errors are
    prefixed with ``prog COMMAND`` (sys.argv is the command's while it runs, as for its script)."""
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        build_parser(prog).parse_args(argv[:1])  # --help, --version, or a one-line error naming the commands
        return 0
    name, rest = argv[0], argv[1:]
    command_prog = f"{prog} {name}"
    module = importlib.import_module(COMMANDS[name].module)
    saved, sys.argv = sys.argv, [command_prog, *rest]
    try:
        return cli.call(module.main, rest, prog=command_prog)
    finally:
        sys.argv = saved


def run():
    """The ``keras-frelu`` console command."""
    cli.run(main)
