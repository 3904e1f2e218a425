"""How fast a run learns, from its curves (``[(step, value), ...]`` sorted by step).

- ``steps_to_reach``: the step at which validation accuracy first reaches a target, linearly interpolated
  between the last evaluation below the target and the first at or above it (the first evaluation's own
  step if that one already reaches it). Evaluations are tens of steps apart, so runs whose curves differ
  get different numbers, unlike a count of evaluations.
- ``common_target``: the lowest best-validation accuracy among the complete runs of a dataset, so that
  every complete run reaches it and all are timed against the same bar.
- ``mean_loss``: the area under the training-loss curve (trapezoid rule) divided by the steps it spans, i.e.
  the training loss averaged over training: lower for a run whose loss falls sooner.
"""

import numpy as np
import scipy.integrate


def steps_to_reach(curve, target):
    """The interpolated step at which ``curve`` first reaches ``target``; None if it never does."""
    for index, (step, value) in enumerate(curve):
        if value >= target:
            if index == 0:
                return float(step)
            (previous_step, previous_value) = curve[index - 1]
            return float(np.interp(target, [previous_value, value], [previous_step, step]))
    return None


def common_target(best_accuracies):
    """The lowest of the best accuracies (None for none)."""
    values = [value for value in best_accuracies if value is not None]
    return min(values) if values else None


def mean_loss(curve):
    """The trapezoid area under ``curve`` per step it spans; None for fewer than two points."""
    if len(curve) < 2:
        return None
    steps, values = np.array(curve, dtype=np.float64).T
    return float(scipy.integrate.trapezoid(values, steps) / (steps[-1] - steps[0]))
