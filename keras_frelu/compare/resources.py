"""What a machine offers a comparison: how many runs to train at once and each one's share of it."""

import os


def cpu_count():
    """CPU cores this process may use (its affinity mask, e.g. a container's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus(environ=os.environ):
    """The ids to put in CUDA_VISIBLE_DEVICES, one per GPU this process may use."""
    import tensorflow as tf  # deferred: only the run needs the device list

    count = len(tf.config.list_physical_devices("GPU"))
    listed = [entry.strip() for entry in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    return (listed or [str(index) for index in range(count)])[:count]


def default_parallel(num_runs, cpus, gpus, strategy="default"):
    """How many runs to train at once: one per GPU; on CPU one per two cores (each run gets two
    intra-op threads: the best throughput measured in bench/parallel.py); one when a run spreads over all
    devices itself."""
    if strategy != "default":
        return 1
    slots = len(gpus) if gpus else max(1, cpus // 2)
    return max(1, min(num_runs, slots))


def child_environment(slot, parallel, cpus, gpus, environ=os.environ):
    """The environment of the child in ``slot`` (0 .. parallel-1): its own GPU, or its share of the CPU
    cores as TensorFlow thread counts (unless the caller set them), and unbuffered output."""
    env = {**environ, "PYTHONUNBUFFERED": "1"}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    else:
        env.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, cpus // parallel)))
        env.setdefault("TF_NUM_INTEROP_THREADS", "1")  # a sequential network: one op at a time suffices
    return env
