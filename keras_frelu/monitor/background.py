"""One background thread that builds and writes the monitor's summaries while training goes on."""

import collections
import time
from concurrent.futures import ThreadPoolExecutor


class BackgroundThread:
    """Runs jobs one at a time, in the order submitted, in a thread of its own.

    The monitor's hooks only capture the model's state (activations of the sample, weights, norms) and
    queue the rest here: statistics, histograms, images, the matplotlib figures and the event file
    writes. There it overlaps with training (TensorFlow runs its steps without the GIL) instead of
    stopping it, though it still competes for the cores and the GIL. Errors of a job
    are raised by the next ``check`` or ``wait``.
    """

    def __init__(self):
        self._executor = None
        self._futures = collections.deque()  # oldest first
        self.cpu_seconds = 0.0  # CPU time spent in the jobs (bench/monitor_overhead.py)

    def submit(self, function, *args):
        """Queue ``function(*args)``; starts the thread if needed."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="activation-monitor")
        self._futures.append(self._executor.submit(self._timed, function, *args))

    def _timed(self, function, *args):
        start = time.thread_time()
        try:
            return function(*args)
        finally:
            self.cpu_seconds += time.thread_time() - start

    def check(self):
        """Raise the error of a finished job, if any (jobs still running are left alone)."""
        while self._futures and self._futures[0].done():
            self._futures.popleft().result()

    def wait(self):
        """Wait for every job, raise the first error, and end the thread (``submit`` starts a new one)."""
        try:
            while self._futures:
                self._futures.popleft().result()
        finally:
            self._futures.clear()
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None
