"""Stop on a non-finite loss or non-finite weights, remembering the step (the run then reports divergence)."""

import math

import keras
import numpy as np


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops ``fit`` at the end of the step whose loss is NaN or infinite; ``diverged_at`` is then that step.
    ``weights_finite()`` is the same check on the weights, for the recorder to call before it saves."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps  # the run's StepCounter
        self.diverged_at = None

    def on_train_batch_end(self, batch, logs=None):
        if not math.isfinite(float(logs["loss"])):
            self._stop()

    def weights_finite(self):
        """Whether every weight is finite; if not, training stops as for a non-finite loss."""
        if all(np.isfinite(weights).all() for weights in self.model.get_weights()):
            return True
        self._stop()
        return False

    def _stop(self):
        self.diverged_at = self.steps.step
        self.model.stop_training = True
