"""script.py's flags and what it does with them."""

import argparse
import contextlib
import logging
import math
import os
import sys

from keras_frelu import cli
from keras_frelu import config as train_config
from keras_frelu.compare import plan, resources, state
from keras_frelu.compare.tensorboard import DEFAULT_PORT
from keras_frelu.errors import UsageError

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
(--exit_when_done stops it and exits once the report is written). Ctrl-C or SIGTERM during the runs
stops every run at the end of its step with a checkpoint of it (a second one kills them; checkpoints stay
loadable either way). A failed run (e.g. a diverged loss) is marked in the report and does not stop the
others. Exit code: 0, 1 if a run failed, 2 for bad flags (nothing is created then), 130 after Ctrl-C and
143 after SIGTERM during the runs.

The report, comparison.md (rendered from comparison.json) and its figures in the comparison folder, and
its summary on the terminal: per dataset, each activation against --baseline on final test accuracy
(difference with a 95% interval, Welch's t-test over seeds and the exact McNemar test on the shared test
set, Holm-corrected, significant below --alpha; a winner only when significantly better), learning speed
(steps to a common validation accuracy, mean training loss), and why: per-layer activation statistics,
final histograms, gradient norms and learned parameters side by side, with observations drawn from them.
It is read from the run folders only, so --report_only rebuilds it for any folder of runs.

Trainer flags after -- (python trainer.py --help) apply to every run, except --activation, --dataset,
--seed and --train_dir, which the comparison sets.

On a cluster: --ray ADDRESS runs each run as a Ray task (pip install -e '.[ray]') that runs trainer.py on a
node with --cpus_per_run CPUs and --gpus_per_run GPUs; every node needs the comparison folder on shared
storage, and the project, Python and datasets at the same paths (checked on each node at the start). A
run whose node dies is retried on another and resumes from its last checkpoint; everything else (logs,
runs.json, Ctrl-C, rerunning to resume, TensorBoard, the report) is as on one machine.
"""


def build_parser(prog="script.py"):
    parser = cli.ArgumentParser(prog=prog, description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [options] [-- TRAINER_FLAGS]")
    add = parser.add_argument
    add("--activations", nargs="+", default=list(plan.DEFAULT_ACTIVATIONS), metavar="NAME",
        help=f"activations to compare (default: {' '.join(plan.DEFAULT_ACTIVATIONS)})")
    add("--datasets", nargs="+", default=list(plan.DEFAULT_DATASETS), metavar="NAME",
        help="datasets: names under the trainer's --data_dir, or folder paths "
             f"(default: {' '.join(plan.DEFAULT_DATASETS)})")
    add("--controls", action="store_true",
        help="also train each activation's compute-matched control (frelu_control beside frelu: the same "
             "parameters and FLOPs without the max with x) and compare the two in the report")
    add("--seeds", type=cli.positive_int, default=1, metavar="N",
        help="train each (dataset, activation) with seeds 0..N-1 (default: %(default)s)")
    add("--parallel", type=cli.positive_int, metavar="K",
        help="train at most K runs at once (default: one per GPU, or one per two CPU cores, each run then "
             "getting its share of the cores as TensorFlow threads; with --ray, as many as the cluster fits)")
    add("--ray", metavar="ADDRESS",
        help="train each run as a task on a Ray cluster: auto (the one started on this machine with ray start), "
             "HOST:PORT or ray://HOST:PORT, or local (a private one on this machine)")
    add("--cpus_per_run", type=cli.positive_int, metavar="N",
        help="with --ray: CPUs each run asks Ray for, and its TensorFlow threads (default: 2)")
    add("--gpus_per_run", type=gpu_count, metavar="G",
        help="with --ray: GPUs each run asks Ray for, e.g. 1, or 0.5 to share one (default: 0)")
    add("--train_dir", type=cli.folder, default=train_config.DEFAULTS.train_dir,
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
        help="only (re)build the report (comparison.json, comparison.md and the figures) of the runs in DIR, "
             "from their event files and predictions")
    add("--baseline", metavar="NAME",
        help="the activation every other one is compared with (default: relu when compared, else the first of "
             "--activations)")
    add("--alpha", type=significance_level, default=0.05,
        help="significance level of the comparisons, after Holm's correction over each dataset's comparisons "
             "(with the baseline, and with the controls) (default: %(default)s)")
    return parser


def significance_level(text):
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}; e.g. 0.05")
    return value


def gpu_count(text):
    """An argparse type: GPUs per run as Ray takes them: 0, a fraction below 1, or a whole number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GPUs, got {text!r}") from None
    if value < 0 or (value > 1 and not value.is_integer()) or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be 0, a fraction below 1 or a whole number, got {text}; e.g. 1")
    return value


def check_ray_flags(args):
    """--cpus_per_run and --gpus_per_run need --ray; ``ray`` must be installed (UsageError otherwise)."""
    if args.ray is None:
        for flag in ("cpus_per_run", "gpus_per_run"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag} is for --ray; on this machine alone --parallel K shares the cores "
                                 "and GPUs among K runs")
        return
    from keras_frelu.compare import ray_runner

    ray_runner.import_ray(args.ray)
    args.cpus_per_run = args.cpus_per_run or 2  # local mode's default share (bench/parallel.py)
    args.gpus_per_run = args.gpus_per_run or 0.0


def check_baseline(name, activations):
    """``name`` as its registry name, which must be one of ``activations`` (None stays None); UsageError
    otherwise."""
    if name is None:
        return None
    from keras_frelu.activations import canonical_name  # loads Keras and the layers, once the flags have been read

    try:
        canonical = canonical_name(name)
    except ValueError as error:
        raise UsageError(f"--baseline: {error}") from None
    if canonical not in activations:
        raise UsageError(f"--baseline {name} is not among --activations ({' '.join(activations)}); add it there or "
                         "choose one of them")
    return canonical


def main(argv=None, trainer_script="trainer.py", prog="script.py"):
    """script.py: plan, train (``trainer_script`` per run: a file, or the arguments after the interpreter, e.g.
    ``("-m", "keras_frelu", "train")``) and report; returns the exit code."""
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    ours, trainer_argv = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = build_parser(prog).parse_args(ours)
    check_ray_flags(args)  # before TensorFlow loads: a missing Ray answers at once
    if args.report_only:
        cli.quiet_tensorflow()
        from keras_frelu.compare import report  # deferred: reading event files imports TensorFlow

        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # the event file reader's deprecation notice
        print(report.report_text(report.write_report(args.report_only, args.baseline, args.alpha)))
        return 0

    base = plan.trainer_config(train_config.build_parser(prog=f"{prog} (trainer flags after --)"), trainer_argv)
    train_config.validate(base, activation=False)  # bad flags answer before TensorFlow is loaded
    cli.quiet_tensorflow(base.verbose)  # knowing the activation names loads the layers
    activations = plan.activation_names(args.activations)
    if args.controls:
        activations = plan.with_controls(activations)
    check_baseline(args.baseline, activations)  # before anything trains; the report compares with it
    folder = os.path.join(args.train_dir, args.name or plan.default_name(base, args.datasets))
    configs = plan.plan(base, folder, activations, args.datasets, args.seeds)
    plan.check_plan(configs)
    from keras_frelu.compare import runner, tensorboard

    board = None if args.no_tensorboard else tensorboard.TensorBoard(folder, args.port)
    if board:
        board.check_port()
    state.owned_folder(folder)  # refuse a folder script.py did not make before anything is removed
    with contextlib.ExitStack() as stack:
        if args.ray:
            pool = ray_pool(args, folder, trainer_script, configs)
            stack.callback(pool.close)
        if args.clean:
            state.clean(folder)
        if not args.ray:
            cpus = resources.cpu_count()
            gpus = resources.visible_gpus() if base.strategy == "default" else []
            parallel = args.parallel or resources.default_parallel(len(configs), cpus, gpus, base.strategy)
            pool = runner.LocalPool(parallel, cpus, gpus)
        comparison = runner.Comparison(folder, configs, trainer_script, trainer_argv, args.baseline, args.alpha)
        failed = comparison.run(pool, board, wait=not args.exit_when_done)
    return 1 if failed else 0


def ray_pool(args, folder, trainer_script, configs):
    """Join (or start) the Ray cluster of --ray and check that every node that can take a run sees the
    comparison folder and this machine's Python, trainer.py, working directory and datasets."""
    from keras_frelu import data
    from keras_frelu.compare import ray_runner

    ray = ray_runner.connect(args.ray, resources.cpu_count())
    try:
        pool = ray_runner.RayPool(ray, args.ray, args.cpus_per_run, args.gpus_per_run, args.parallel)
        datasets = {os.path.abspath(data.find_folder(config.dataset, config.data_dir)) for config in configs}
        trainer = [os.path.abspath(trainer_script)] if isinstance(trainer_script, str) else []  # a file, or -m
        pool.check_nodes(folder, [sys.executable, *trainer, os.getcwd(), *sorted(datasets)])
    except BaseException:
        ray.shutdown()
        raise
    return pool

