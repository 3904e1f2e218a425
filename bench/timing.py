"""Timing helpers shared by the bench scripts: side-by-side medians and appending to RESULTS.md.

Each sample times ``calls`` calls back to back with ``time.perf_counter``; configurations alternate
(A B B A ...) so slow drifts of a shared machine hit every side alike, and results are medians.
"""

import datetime
import os
import statistics
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def _finish(result):
    """Wait for ``result`` (a tensor, a number or a nest of them) so that the work is done when the clock
    stops; TensorFlow may return before its kernels finish."""
    while isinstance(result, (list, tuple, dict)):
        result = next(iter(result.values())) if isinstance(result, dict) else result[0]
    np.asarray(result)


def seconds_per_call(function, calls):
    start = time.perf_counter()
    for _ in range(calls):
        result = function()
    _finish(result)
    return (time.perf_counter() - start) / calls


def alternating(kinds, repeats):
    """The kinds of ``repeats`` rounds of runs, every other round reversed (A B B A ...), so that going first
    or last favours none."""
    for repeat in range(repeats):
        yield from kinds if repeat % 2 == 0 else reversed(kinds)


def interleaved_times(functions, rounds, calls=1):
    """Median seconds per call of each function, measured in ``rounds`` rounds of (f0, f1, ...), every
    other round in reverse order (f0 f1 f1 f0 ...) so that going first or last favours none; and the
    per-round samples (for ratios of pairs)."""
    samples = [[] for _ in functions]
    for round_index in range(rounds):
        order = list(zip(functions, samples))
        for function, times in order if round_index % 2 == 0 else reversed(order):
            times.append(seconds_per_call(function, calls))
    return [statistics.median(times) for times in samples], samples


def interleaved(baseline, candidate, pairs, calls):
    """Median of candidate/baseline over interleaved pairs, and the median seconds of each."""
    (base, own), (baseline_times, candidate_times) = interleaved_times([baseline, candidate], pairs, calls)
    ratios = [c / b for b, c in zip(baseline_times, candidate_times)]
    return statistics.median(ratios), base, own


def figure_process_cpu_seconds():
    """CPU seconds used so far by the monitor's figure process (0 before it starts; Linux's /proc)."""
    from keras_frelu.monitor import figure_process

    process = figure_process.shared()._process
    if process is None:
        return 0.0
    with open(f"/proc/{process.pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def append_results(title, command, body):
    """Append a section (title, today's date, the command in backticks, body) to bench/RESULTS.md."""
    new_file = not os.path.exists(RESULTS)
    with open(RESULTS, "a") as results:
        if new_file:
            results.write("# Benchmark results\n")
        results.write(f"\n## {title} ({datetime.date.today().isoformat()})\n\n`{command.strip()}`\n\n{body}\n")
