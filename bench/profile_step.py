"""Where a training step's time goes: TensorFlow profiler kernel time per op type, activations side by side.

Traces ``--steps`` training steps of reference_cnn (CIFAR-shaped, batch 64, Adam; the step of
bench/activations.py) per activation with ``tf.profiler``, reads the host trace back from its ``.xplane.pb``
and sums the duration of every TensorFlow op event by op type (``name:Type``). Kernels of one step run on
several threads at once, so the sums add up to more than the step's wall time; compare them between
activations, not with the step. Prints a markdown table of milliseconds and op counts per step, most
expensive first; what bench/RESULTS.md's "Profile of the Funnel ReLU training step" rests on.
``--layer N H W C`` profiles the activation layer alone instead: its forward and backward pass in training
mode on a tensor of that shape (bench/activations.py's fwd+bwd), which shows each tensor-sized pass.

    python bench/profile_step.py --activations relu frelu --steps 30
    python bench/profile_step.py --activations relu frelu srelu mish --layer 64 16 16 64 --steps 100
"""

import collections
import glob
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from keras_frelu.cli import ArgumentParser, run  # noqa: E402
from keras_frelu.errors import UsageError  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from activations import activation_step, training_step  # noqa: E402

HOST_PLANE = "/host:CPU"


def op_times(activation, steps, layer_shape=None):
    """``{op type: (milliseconds per step, ops per step)}`` of ``steps`` traced training steps (or, with
    ``layer_shape``, forward and backward passes of the activation alone)."""
    step = training_step(activation, jit=False) if layer_shape is None else activation_step(
        activation, False, layer_shape)
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        for _ in range(steps):
            step()
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as trace:
            space.ParseFromString(trace.read())
    picoseconds, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        if plane.name != HOST_PLANE:
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # TensorFlow op events are "name:Type"; the executor's own ("ExecutorState::Process",
                # "EagerLocalExecute: function") contain the ops and would count them twice
                if ":" in name and "::" not in name and ": " not in name:
                    op_type = name.rsplit(":", 1)[1]
                    picoseconds[op_type] += event.duration_ps
                    counts[op_type] += 1
    return {op: (picoseconds[op] / 1e9 / steps, counts[op] / steps) for op in picoseconds}


def table(profiles, rows):
    """Markdown: one row per op type (the ``rows`` most expensive over all activations), ms and count per
    step for each activation."""
    total = collections.Counter()
    for times in profiles.values():
        for op, (milliseconds, _) in times.items():
            total[op] += milliseconds
    names = list(profiles)
    lines = ["| op type | " + " | ".join(f"{name} ms (n) / step" for name in names) + " |",
             "|---|" + "---:|" * len(names)]
    for op, _ in total.most_common(rows):
        cells = []
        for name in names:
            milliseconds, count = profiles[name].get(op, (0.0, 0))
            cells.append(f"{milliseconds:.2f} ({count:.0f})" if count else "-")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activations", nargs="+", default=["relu", "frelu"], help="registry names")
    parser.add_argument("--steps", type=int, default=30, help="traced steps per activation (default 30)")
    parser.add_argument("--rows", type=int, default=25, help="op types shown (default 25)")
    parser.add_argument("--layer", type=int, nargs=4, metavar=("N", "H", "W", "C"),
                        help="profile the activation layer alone on a tensor of this shape")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rows < 1:
        raise UsageError(f"--steps and --rows must be at least 1, got {args.steps} and {args.rows}")
    if args.layer and min(args.layer) < 1:
        raise UsageError(f"--layer takes four positive sizes, got {args.layer}")
    profiles = {name: op_times(name, args.steps, args.layer and tuple(args.layer)) for name in args.activations}
    print(table(profiles, args.rows))


if __name__ == "__main__":
    run(main)
