"""script.py's flags and what it does with them."""

import argparse
import logging
import os
import sys

from keras_frelu import cli
from keras_frelu import config as train_config
from keras_frelu.compare import plan, resources, state
from keras_frelu.compare.tensorboard import DEFAULT_PORT

DESCRIPTION = """\
Compare activation functions: the same training with each, side by side, TensorBoard, and a report.

    python script.py                                    # relu, lrelu, selu, frelu on digits; TensorBoard :7007
    python script.py --activations relu frelu --seeds 3 --datasets digits MNIST
    python script.py -- --max_training_steps 10000 --lr_weight_decay      # trainer.py flags after --
    python script.py --report_only train_dir/compare-digits             # rebuild a report

Each run is a trainer.py process with the same flags except --activation, --dataset and --seed, in its own
run directory under one comparison folder, train_dir/compare-<datasets>[-<hash of the trainer flags>]
(or train_dir/NAME with --name). Rerunning the same command finds that folder: complete runs are kept,
interrupted and failed ones resume from their last checkpoint. Nothing outside that folder is ever
deleted; --clean removes only the folder itself (and only if script.py made it) before starting again.

TensorBoard serves the folder on localhost while the runs train and, after the report, until Ctrl-C
(--exit_when_done stops it and exits once the report is written). Ctrl-C during the runs stops every
run cleanly (a second Ctrl-C kills them; checkpoints stay loadable either way). A failed run (e.g. a
diverged loss) is marked in the report and does not stop the others. Exit code: 0, 1 if a run failed,
2 for bad flags (nothing is created then), 130 after Ctrl-C during the runs.

The report, comparison.md and comparison.png in the comparison folder (and the summary on the terminal):
per activation, final test accuracy mean ± std over seeds, best accuracy, steps to reach 95% of the
best, images/s, the per-layer mean/std of the activations at the end, and test accuracy and loss curves.
It is read from the event files, so --report_only rebuilds it for any folder of runs.

Trainer flags after -- (python trainer.py --help) apply to every run, except --activation, --dataset,
--seed and --train_dir, which the comparison sets.
"""


def build_parser():
    parser = cli.ArgumentParser(prog="script.py", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [options] [-- TRAINER_FLAGS]")
    add = parser.add_argument
    add("--activations", nargs="+", default=list(plan.DEFAULT_ACTIVATIONS), metavar="NAME",
        help=f"activations to compare (default: {' '.join(plan.DEFAULT_ACTIVATIONS)})")
    add("--datasets", nargs="+", default=list(plan.DEFAULT_DATASETS), metavar="NAME",
        help="datasets: names under the trainer's --data_dir, or folder paths "
             f"(default: {' '.join(plan.DEFAULT_DATASETS)})")
    add("--seeds", type=cli.positive_int, default=1, metavar="N",
        help="train each (dataset, activation) with seeds 0..N-1 (default: %(default)s)")
    add("--parallel", type=cli.positive_int, metavar="K",
        help="train at most K runs at once (default: one per GPU, or one per two CPU cores, each run then "
             "getting its share of the cores as TensorFlow threads)")
    add("--train_dir", default=train_config.DEFAULTS.train_dir,
        help="parent folder of the comparison folder (default: %(default)s)")
    add("--name", help="comparison folder name under --train_dir (default: compare-<datasets>[-<hash of the "
                       "trainer flags>], the same for the same command)")
    add("--clean", action="store_true",
        help="remove this comparison's folder (only that, only if script.py made it) and start afresh")
    add("--port", type=int, default=DEFAULT_PORT, help="TensorBoard port on localhost (default: %(default)s)")
    add("--no_tensorboard", action="store_true", help="do not launch TensorBoard")
    add("--exit_when_done", action="store_true",
        help="stop TensorBoard and exit once the report is written, instead of serving until Ctrl-C")
    add("--report_only", metavar="DIR",
        help="only (re)build comparison.md and comparison.png of the runs in DIR, from their event files")
    return parser


def main(argv=None, trainer_script="trainer.py"):
    """script.py: plan, train (``trainer_script`` per run) and report; returns the exit code."""
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    ours, trainer_argv = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = build_parser().parse_args(ours)
    if args.report_only:
        cli.quiet_tensorflow()
        from keras_frelu.compare import report  # deferred: reading event files imports TensorFlow

        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # the event file reader's deprecation notice
        print(report.report_text(report.write_report(args.report_only)))
        return 0

    base = plan.trainer_config(train_config.build_parser(prog="script.py (trainer flags after --)"), trainer_argv)
    train_config.validate(base, activation=False)  # bad flags answer before TensorFlow is loaded
    cli.quiet_tensorflow(base.verbose)  # knowing the activation names loads the layers
    activations = plan.activation_names(args.activations)
    folder = os.path.join(args.train_dir, args.name or plan.default_name(base, args.datasets))
    configs = plan.plan(base, folder, activations, args.datasets, args.seeds)
    plan.check_plan(configs)
    from keras_frelu.compare import runner, tensorboard

    board = None if args.no_tensorboard else tensorboard.TensorBoard(folder, args.port)
    if board:
        board.check_port()
    state.owned_folder(folder)  # refuse a folder script.py did not make before anything is removed
    if args.clean:
        state.clean(folder)

    cpus = resources.cpu_count()
    gpus = resources.visible_gpus() if base.strategy == "default" else []
    parallel = args.parallel or resources.default_parallel(len(configs), cpus, gpus, base.strategy)
    comparison = runner.Comparison(folder, configs, trainer_script, trainer_argv)
    failed = comparison.run(parallel, cpus, gpus, board, wait=not args.exit_when_done)
    return 1 if failed else 0

