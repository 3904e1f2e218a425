"""The run's step and the current logging window's pace, counted during ``fit``; training stops at the last step."""

import time

import keras


class StepCounter(keras.callbacks.Callback):
    """Counts the optimizer steps of ``fit`` on from ``start_step`` (cheaper than reading the optimizer's
    counter every step), and the steps and seconds of the current window (a ``fit`` epoch); stops training
    once ``max_steps`` is reached. Listed before the callbacks that read it, so they see the step just ended."""

    def __init__(self, start_step, max_steps, steps_per_execution):
        super().__init__()
        self.step = start_step
        self.max_steps = max_steps
        self.steps_per_execution = steps_per_execution
        self.window_steps = 0
        self.window_start = time.perf_counter()

    @property
    def last(self):
        """Whether the run has reached its last step."""
        return self.step >= self.max_steps

    def steps_per_s(self):
        """The pace of the current window so far."""
        return self.window_steps / (time.perf_counter() - self.window_start)

    def on_epoch_begin(self, epoch, logs=None):
        self.window_steps = 0
        self.window_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.step += self.steps_per_execution
        self.window_steps += self.steps_per_execution
        if self.last:
            self.model.stop_training = True
