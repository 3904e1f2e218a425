"""The benchmark suite in one command: prints markdown tables and appends them, with the command, to
bench/RESULTS.md.

Sections (``--only`` picks some, comma-separated; default all but the slow monitor and pipeline runs):
  activations  reference_cnn training step (32x32x3, batch 64, Adam) per activation relative to ReLU
  torch        the same network and step in PyTorch (relu, selu, frelu as the official FunnelAct recipe:
               depthwise 3x3 conv + BN + max), keras/torch ratios; skipped with a message without torch
  flops        achieved GFLOP/s of the training step against measured matmul GFLOP/s on the same cores
  evaler       images/s of batched predict as keras_frelu.evaluation runs it
  overheads    monitor overhead and input pipeline: refers to their sections of RESULTS.md
  monitor      runs bench/monitor_overhead.py's measurement (slow; not in the default set)
  pipeline     runs bench/data_pipeline.py's measurement (slow; not in the default set)
  compile      fit() step time with and without XLA and steps_per_execution, relu and frelu
  scaling      step time against batch size and input size for relu and frelu, plotted to bench/scaling.png

Every comparison is measured side by side in this process: configurations alternate (A B B A ...) and
results are medians, so the load of a shared machine hits every side alike. TensorFlow and PyTorch get
the same number of intra-op threads (``--threads``, default every core this process may use).

    python bench/run.py --quick                    # a few minutes on 2 cores
    python bench/run.py --quick --only torch,scaling
    python bench/run.py                            # every activation, more pairs
"""

import argparse
import contextlib
import io
import math
import os
import platform
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CORES = len(os.sched_getaffinity(0))

import keras  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.dirname(BENCH))

import activations  # noqa: E402
from timing import RESULTS, append_results, interleaved, interleaved_times  # noqa: E402

import keras_frelu  # noqa: E402
from keras_frelu import data  # noqa: E402
from keras_frelu.layers.funnel import FunnelCondition  # noqa: E402

SECTIONS = ("activations", "torch", "flops", "evaler", "overheads", "monitor", "pipeline", "compile", "scaling")
DEFAULT_SECTIONS = ("activations", "torch", "flops", "evaler", "overheads", "compile", "scaling")
QUICK_ACTIVATIONS = ("selu", "swish", "gelu", "prelu", "frelu", "frelu_light")
FUNNEL = ("frelu", "frelu_light")
TORCH_ACTIVATIONS = ("relu", "selu", "frelu")
SCALING_PNG = os.path.join(BENCH, "scaling.png")


def log(message):
    print(message, file=sys.stderr, flush=True)


# 1. activations ---------------------------------------------------------------------------------------

def activations_section(names, pairs, jit):
    relu = activations.training_step("relu", jit)
    lines = ["| activation | ms / step | step / relu | target |", "|---|---:|---:|---|"]
    for name in names:
        ratio, base, own = interleaved(relu, activations.training_step(name, jit), pairs, 1)
        target = 1.10 if name in FUNNEL else 1.05
        log(f"  {name}: {ratio:.2f}x relu ({own * 1e3:.1f} vs {base * 1e3:.1f} ms)")
        lines.append(f"| {name} | {own * 1e3:.1f} | {ratio:.2f} | {'met' if ratio <= target else 'missed'} "
                     f"(<= {target:.2f}) |")
    return (f"Training step of reference_cnn {activations.IMAGE_SHAPE}, batch {activations.BATCH}, Adam "
            f"(`train_on_batch`, jit_compile={jit}); median of {pairs} interleaved pairs with ReLU "
            f"(relu itself: {base * 1e3:.1f} ms/step).\n\n" + "\n".join(lines))


# 2. torch ---------------------------------------------------------------------------------------------

def torch_reference_cnn(torch, activation, image_shape, num_classes):
    """reference_cnn (keras_frelu.models) written in PyTorch, NCHW as a PyTorch user would run it."""
    nn = torch.nn

    class PerFeature(nn.Module):
        """``w * x + b`` per feature: the funnel condition on a dense layer's output (no neighbourhood)."""

        def __init__(self, features):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(features) * 0.01)
            self.bias = nn.Parameter(torch.zeros(features))

        def forward(self, x):
            return x * self.weight + self.bias

    class FunnelReLU(nn.Module):
        """FunnelAct's resnet/frelu.py: max(x, BN(depthwise 3x3 conv(x)))."""

        def __init__(self, channels, spatial):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels) if spatial else PerFeature(channels)
            self.bn = nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)

        def forward(self, x):
            return torch.max(x, self.bn(self.conv(x)))

    def act(channels, spatial):
        return {"relu": nn.ReLU, "selu": nn.SELU}[activation]() if activation != "frelu" \
            else FunnelReLU(channels, spatial)

    height, width, channels = image_shape
    filters = (32, 64, 128) if channels == 1 else (64, 128, 256)
    layers, previous = [], channels
    for units in filters:
        layers += [nn.Conv2d(previous, units, 5, stride=2, padding=2), act(units, True)]
        if activation != "selu":  # as reference_cnn: SELU normalises itself
            layers.append(nn.BatchNorm2d(units, eps=1e-3, momentum=0.1))
        layers.append(nn.Dropout(0.5))
        previous, height, width = units, math.ceil(height / 2), math.ceil(width / 2)
    layers.append(nn.Flatten())
    features = previous * height * width
    for units in (16 * num_classes, 4 * num_classes):
        layers += [nn.Linear(features, units), act(units, False)]
        features = units
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def torch_training_step(torch, activation, image_shape=activations.IMAGE_SHAPE, batch=activations.BATCH):
    torch.manual_seed(0)
    model = torch_reference_cnn(torch, activation, image_shape, activations.CLASSES).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(batch, image_shape[2], image_shape[0], image_shape[1])
    labels = torch.randint(0, activations.CLASSES, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(3):
        step()
    return step


def torch_section(pairs, jit, threads):
    try:
        import torch
    except ImportError:
        return ("Skipped: PyTorch is not installed (it is a bench-only dependency: "
                "`pip install torch==2.13.0`, the CPU build).")
    torch.set_num_threads(threads)
    lines = ["| activation | keras ms | torch ms | keras / torch |", "|---|---:|---:|---:|"]
    for name in TORCH_ACTIVATIONS:
        ratio, torch_s, keras_s = interleaved(torch_training_step(torch, name),
                                              activations.training_step(name, jit), pairs, 1)
        log(f"  {name}: keras/torch {ratio:.2f} ({keras_s * 1e3:.1f} vs {torch_s * 1e3:.1f} ms)")
        lines.append(f"| {name} | {keras_s * 1e3:.1f} | {torch_s * 1e3:.1f} | {ratio:.2f} |")
    return (f"Same network and step in PyTorch {torch.__version__} (CPU, NCHW); both with {threads} intra-op "
            f"threads, Adam, batch {activations.BATCH}; median of {pairs} "
            f"interleaved pairs. Target: keras / torch <= 1.0.\n\n" + "\n".join(lines))


# 3. flops ---------------------------------------------------------------------------------------------

def training_flops(model, batch):
    """Floating-point operations of one training step, counted from the layer shapes: multiply-adds of the
    convolutions and dense layers (2 FLOPs each) forward, the same again for the weight gradients and for
    the input gradients (except the first layer, whose input needs none). Elementwise work, batch norm and
    the optimiser are left out (a few percent)."""
    total, first = 0, True
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, inputs, outputs = layer.kernel.shape
            forward = 2 * math.prod(layer.output.shape[1:3]) * outputs * kernel_h * kernel_w * inputs
        elif isinstance(layer, keras.layers.Dense):
            forward = 2 * math.prod(layer.kernel.shape)
        elif isinstance(layer, FunnelCondition):
            window = sum(math.prod(kernel.shape[:-2]) if len(kernel.shape) > 1 else 1 for kernel in layer.kernels)
            forward = 2 * window * math.prod(layer.output.shape[1:])
        else:
            continue
        total += forward * (2 if first else 3)
        first = False
    return total * batch


def matmul_functions(size):
    """TF and NumPy float32 ``size x size`` matmuls, and the FLOPs of one."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    a_tf, b_tf = tf.constant(a), tf.constant(b)

    @tf.function(autograph=False)
    def tf_matmul():
        return tf.matmul(a_tf, b_tf)

    def np_matmul():
        return a @ b

    tf_matmul()
    return tf_matmul, np_matmul, 2 * size ** 3


def flops_section(rounds, jit, size=1024):
    tf_matmul, np_matmul, matmul_flops = matmul_functions(size)
    names = ("relu", "frelu")
    steps = [activations.training_step(name, jit) for name in names]
    flops = []
    for name in names:
        keras.utils.set_random_seed(0)
        model = keras_frelu.models.reference_cnn(activations.IMAGE_SHAPE, activations.CLASSES, activation=name)
        flops.append(training_flops(model, activations.BATCH))
    (tf_s, np_s, *step_s), _ = interleaved_times([tf_matmul, np_matmul] + steps, rounds, 1)
    tf_rate, np_rate = matmul_flops / tf_s / 1e9, matmul_flops / np_s / 1e9
    peak = max(tf_rate, np_rate)
    lines = ["| workload | GFLOP per call | ms | GFLOP/s | share of matmul GFLOP/s |", "|---|---:|---:|---:|---:|",
             f"| TF matmul {size}x{size} float32 | {matmul_flops / 1e9:.2f} | {tf_s * 1e3:.1f} | {tf_rate:.1f} | "
             f"{tf_rate / peak:.0%} |",
             f"| NumPy matmul {size}x{size} float32 | {matmul_flops / 1e9:.2f} | {np_s * 1e3:.1f} | {np_rate:.1f} | "
             f"{np_rate / peak:.0%} |"]
    for name, count, seconds in zip(names, flops, step_s):
        rate = count / seconds / 1e9
        log(f"  {name}: {rate:.1f} GFLOP/s of {peak:.1f}")
        lines.append(f"| reference_cnn training step, {name} | {count / 1e9:.2f} | {seconds * 1e3:.1f} | {rate:.1f} | "
                     f"{rate / peak:.0%} |")
    return (f"FLOPs of the step counted analytically (convolutions and dense layers: forward, weight and input "
            f"gradients; elementwise work, batch norm and Adam left out); matmuls and steps interleaved, "
            f"medians of {rounds} rounds.\n\n" + "\n".join(lines))


# 4. evaler and overheads ------------------------------------------------------------------------------

def predict_function(name, images, labels, batch_size):
    """Batched inference as keras_frelu.evaluation.evaluate runs it: make_dataset without shuffling, then
    model.predict (dropout off, moving statistics)."""
    keras.utils.set_random_seed(0)
    model = keras_frelu.models.reference_cnn(images.shape[1:], activations.CLASSES, activation=name)
    test = data.make_dataset(images, labels, batch_size, shuffle=False)
    model.predict(test, verbose=0)
    return lambda: model.predict(test, verbose=0)


def evaler_section(rounds, count=2048, batch_size=256):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, *activations.IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, activations.CLASSES, count).astype(np.int32)
    names = ("relu", "frelu", "frelu_light")
    seconds, _ = interleaved_times([predict_function(name, images, labels, batch_size) for name in names], rounds)
    lines = ["| activation | images/s | relative to relu |", "|---|---:|---:|"]
    for name, value in zip(names, seconds):
        lines.append(f"| {name} | {count / value:,.0f} | {value / seconds[0]:.2f} |")
    return (f"reference_cnn predict of {count} uint8 CIFAR-shaped images through `make_dataset`, batch {batch_size} "
            f"(as evaluation.evaluate); median of {rounds} interleaved rounds.\n\n" + "\n".join(lines))


def overheads_section():
    """Where the monitor and pipeline figures are: their own sections of RESULTS.md, not re-measured."""
    text = open(RESULTS).read() if os.path.exists(RESULTS) else ""
    found = []
    for what, script, section in (("Monitor overhead", "bench/monitor_overhead.py", "monitor"),
                                  ("Input pipeline versus in-memory", "bench/data_pipeline.py", "pipeline")):
        if script in text:
            found.append(f"- {what}: see the `{script}` section of RESULTS.md (not re-measured here).")
        else:
            found.append(f"- {what}: not in RESULTS.md yet; `python bench/run.py --only {section}` "
                         f"or `python {script}` measures it.")
    return "\n".join(found)


def captured(main, argv):
    """Run another bench script's main(argv) and return what it printed."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        main(argv)
    return output.getvalue().strip()


def monitor_section(quick):
    import monitor_overhead
    argv = ["--steps", "200" if quick else "1000", "--repeats", "2" if quick else "3"]
    return f"`bench/monitor_overhead.py {' '.join(argv)}` (target: overhead <= 5%):\n\n" + \
        captured(monitor_overhead.main, argv).splitlines()[-1]


def pipeline_section(quick):
    import data_pipeline
    argv = ["--steps", "100" if quick else "300", "--repeats", "3" if quick else "5",
            "--per_id_count", "5000" if quick else "70000"]
    return f"`bench/data_pipeline.py {' '.join(argv)}` (target: slowdown <= 3%):\n\n" + \
        captured(data_pipeline.main, argv)


# compilation choices ---------------------------------------------------------------------------------

def fit_step(activation, jit, steps_per_execution, steps=16):
    """``model.fit`` over ``steps`` steps of one in-memory batch (no input work), as keras_frelu.training compiles
    the model (Adam, accuracy metric) with ``jit_compile`` and ``steps_per_execution``; one call runs all
    ``steps``."""
    keras.utils.set_random_seed(0)
    model = keras_frelu.models.reference_cnn(activations.IMAGE_SHAPE, activations.CLASSES, activation=activation)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"], jit_compile=jit,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    images = rng.random((activations.BATCH, *activations.IMAGE_SHAPE), dtype=np.float32)
    labels = rng.integers(0, activations.CLASSES, activations.BATCH).astype(np.int32)
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)  # trace and compile
    return lambda: model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False).history["loss"]


def compile_section(rounds, steps=16):
    variants = [("jit_compile=False, steps_per_execution=1", False, 1),
                ("jit_compile=True (Keras's \"auto\" on TF), steps_per_execution=1", True, 1),
                ("jit_compile=False, steps_per_execution=8", False, 8),
                ("jit_compile=True, steps_per_execution=8", True, 8)]
    lines = ["| activation | variant | ms / step | relative to the first |", "|---|---|---:|---:|"]
    for name in ("relu", "frelu"):
        functions = [fit_step(name, jit, spe, steps) for _, jit, spe in variants]
        seconds, _ = interleaved_times(functions, rounds)
        for (label, _, _), value in zip(variants, seconds):
            log(f"  {name}, {label}: {value / steps * 1e3:.1f} ms/step")
            lines.append(f"| {name} | {label} | {value / steps * 1e3:.1f} | {value / seconds[0]:.2f} |")
    return (f"`model.fit` of {steps} steps on one in-memory batch (Adam, accuracy metric, as keras_frelu.training), "
            f"reference_cnn {activations.IMAGE_SHAPE}, batch {activations.BATCH}; medians of {rounds} interleaved "
            f"rounds of the four variants.\n\n" + "\n".join(lines))


# 5. scaling -------------------------------------------------------------------------------------------

def scaling_section(batches, sizes, rounds, jit):
    names = ("relu", "frelu")
    configs = [(batch, 32) for batch in batches] + [(activations.BATCH, size) for size in sizes if size != 32]
    results = {}
    for batch, size in configs:
        shape = (size, size, 3)
        steps = [activations.training_step(name, jit, shape, batch) for name in names]
        calls = max(1, 128 // batch)  # several small steps per sample, so each sample lasts about as long
        results[(batch, size)], _ = interleaved_times(steps, rounds, calls)
        log(f"  batch {batch}, {size} px: " +
            ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in zip(names, results[(batch, size)])))
    lines = ["| batch | px | relu ms/step | frelu ms/step | relu us/image | frelu us/image | frelu / relu |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for (batch, size), (relu_s, frelu_s) in sorted(results.items()):
        lines.append(f"| {batch} | {size} | {relu_s * 1e3:.1f} | {frelu_s * 1e3:.1f} | {relu_s / batch * 1e6:.0f} | "
                     f"{frelu_s / batch * 1e6:.0f} | {frelu_s / relu_s:.2f} |")
    plot_scaling(results, batches, sorted({32, *sizes}), names)
    return (f"Training step time against batch size (32 px) and input size (batch {activations.BATCH}); medians of "
            f"{rounds} interleaved rounds (relu, frelu). Plot: bench/scaling.png.\n\n" + "\n".join(lines))


def plot_scaling(results, batches, sizes, names):
    figure = Figure(figsize=(10, 4), dpi=100)
    by_batch, by_size = figure.subplots(1, 2)
    for index, name in enumerate(names):
        by_batch.plot(batches, [results[(batch, 32)][index] * 1e3 for batch in batches], "o-", label=name)
        by_size.plot(sizes, [results[(activations.BATCH, size)][index] * 1e3 for size in sizes], "o-", label=name)
    by_batch.set(xscale="log", yscale="log", xlabel="batch size (32x32x3)", ylabel="ms per training step",
                 title="step time against batch size")
    by_batch.set_xticks(batches, [str(batch) for batch in batches])
    by_batch.set_xticks([], minor=True)  # the log axis's minor labels would overlap the batch sizes
    by_size.set(xlabel=f"input size, px (batch {activations.BATCH})", ylabel="ms per training step",
                title="step time against input size")
    by_size.set_xticks(sizes)
    for axes in (by_batch, by_size):
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(SCALING_PNG)


# ------------------------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer pairs, activations {', '.join(QUICK_ACTIVATIONS)}, fewer scaling points")
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated sections of {', '.join(SECTIONS)} (default: %(default)s)")
    parser.add_argument("--activations", nargs="+", help="activations of the first section (default: all; "
                        "--quick: a subset)")
    parser.add_argument("--pairs", type=int, help="interleaved pairs / rounds per measurement (default 15, --quick 5)")
    parser.add_argument("--threads", type=int, default=CORES,
                        help="intra-op threads of TensorFlow and of PyTorch alike (default %(default)s: the cores "
                             "this process may use)")
    parser.add_argument("--jit", action="store_true", help="compile the Keras steps with XLA (jit_compile=True)")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    args.sections = [section.strip() for section in args.only.split(",") if section.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)} in --only; choose from {', '.join(SECTIONS)}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.pairs is not None and args.pairs < 1:
        parser.error(f"--pairs must be at least 1, got {args.pairs}")
    args.pairs = args.pairs or (5 if args.quick else 15)
    if args.activations is None:
        args.activations = list(QUICK_ACTIVATIONS) if args.quick else \
            [name for name in keras_frelu.available() if name != "relu"]
    try:
        args.activations = [keras_frelu.activations.canonical_name(name) for name in args.activations]
    except ValueError as error:
        parser.error(str(error).splitlines()[0])
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads != CORES:  # TensorFlow's default is every core; set only when asked, before the first op
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    batches = (16, 64, 256, 512) if args.quick else (16, 32, 64, 128, 256, 512)
    sizes = (28, 32, 64)
    makers = {
        "activations": ("Training step per activation, relative to ReLU",
                        lambda: activations_section(args.activations, args.pairs, args.jit)),
        "torch": ("Keras versus PyTorch", lambda: torch_section(args.pairs, args.jit, args.threads)),
        "flops": ("Achieved GFLOP/s against matmul", lambda: flops_section(args.pairs, args.jit)),
        "evaler": ("Evaler throughput", lambda: evaler_section(args.pairs)),
        "overheads": ("Monitor and input pipeline overheads", overheads_section),
        "monitor": ("Monitor overhead", lambda: monitor_section(args.quick)),
        "pipeline": ("Input pipeline versus in-memory", lambda: pipeline_section(args.quick)),
        "compile": ("XLA and steps_per_execution", lambda: compile_section(3, 8 if args.quick else 16)),
        "scaling": ("Cost growth", lambda: scaling_section(batches, sizes, max(3, args.pairs // 3), args.jit)),
    }
    load_before = os.getloadavg()[0]
    parts = []
    for section in args.sections:
        title, make = makers[section]
        log(f"{section} ...")
        parts.append(f"### {title}\n\n{make()}")
        print(parts[-1] + "\n", flush=True)
    header = (f"{platform.processor() or platform.machine()}, {CORES} cores, {args.threads} intra-op threads, "
              f"TensorFlow {tf.__version__}, Keras {keras.__version__}; load average {load_before:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end (shared machine: compare ratios, not absolute times).")
    print(header)
    if not args.no_append:
        append_results("bench/run.py suite", "python bench/run.py " + shlex.join(argv),
                       header + "\n\n" + "\n\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
