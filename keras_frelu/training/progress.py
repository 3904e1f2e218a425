"""The training progress bar: steps, rate and ETA (the graph-tracing first step left out), loss, accuracy, images/s."""

import time

import keras
from tqdm import tqdm


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar over the run's steps, from the step it starts at (hidden unless ``enabled``)."""

    def __init__(self, steps, batch_size, enabled):
        super().__init__()
        self.steps = steps  # the run's StepCounter
        self.batch_size = batch_size
        self.enabled = enabled
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.bar is not None:  # a run's later ``fit`` continues its bar
            return
        # smoothing=0: the rate (and the ETA) is the average since the first step ended, leaving out the
        # first step, which traces the graph.
        self.bar = tqdm(total=self.steps.max_steps, initial=self.steps.step, unit="step",
                        disable=not self.enabled, dynamic_ncols=True, mininterval=0.5, smoothing=0)
        self.first_step = True

    def on_train_batch_end(self, batch, logs=None):
        if self.bar.disable:
            return
        done = self.steps.steps_per_execution
        if self.first_step:
            # The first step traces the graph: counted, but left out of the rate and the ETA from the start.
            self.bar.n = self.bar.last_print_n = self.bar.initial = self.bar.n + done
            self.bar.start_t = self.bar.last_print_t = time.time()
            self.bar.refresh()
            self.first_step = False
        else:
            self.bar.update(done)
        if self.bar.n % 10 == 0 or self.steps.last:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", acc=f"{float(logs['accuracy']):.3f}",
                                 img_s=f"{self.steps.steps_per_s() * self.batch_size:.0f}", refresh=False)

    @staticmethod
    def write(text):
        """Print ``text`` on its own line, above the bar if one is showing."""
        tqdm.write(text)

    def close(self):
        """Close the bar once the run's last ``fit`` has ended."""
        if self.bar is not None:
            self.bar.close()
