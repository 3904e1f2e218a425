"""Observations: short facts computed from the numbers behind the figures by fixed rules, each naming its
figure and carrying its numbers.

Over the complete runs of one dataset; "at the end" is the last monitored step, averaged over seeds:

- ``dead``: an activation with ``DEAD_FRACTION`` or more of a layer's units dead at the end (the monitor's
  dead fraction: never positive on its sample) while the layer outputs no negative value, so that those units
  output 0 and pass no gradient (a Flexible ReLU unit below its negative bias, or an ELU unit, still does);
  with the other activations' fractions for that layer (figure: activations);
- ``self_normalising``: in every seed, a layer's output keeps its mean within ``±NORMALISED_MEAN`` and its
  std within ``NORMALISED_STD`` from some step to the end, over at least the second half of the monitored
  steps (figure: activations);
- ``bias_positive``: a run whose scalar parameter ``bias`` (Flexible ReLU's layer-wide bias) started at or
  below zero and became positive: the first step it did (figure: parameters); Qiu et al. report that a
  successfully trained Flexible ReLU's bias tends to a negative value;
- ``gradient``: a layer whose gradient norm at the end is ``GRADIENT_RATIO`` times the baseline's or more,
  or that fraction of it or less (figure: gradients).
"""

import numpy as np

from keras_frelu.compare.results import layer_names

DEAD_FRACTION = 0.1
NORMALISED_MEAN = 0.1
NORMALISED_STD = (0.9, 1.1)
GRADIENT_RATIO = 10.0


def observe(groups, baseline, figures):
    """Every observation on ``groups`` (one dataset's); ``figures`` maps a figure kind to its file (or None,
    when the figure was not drawn, whose rules are then skipped)."""
    found = []
    if figures.get("activations"):
        found += dead_units(groups, figures["activations"]) + self_normalising(groups, figures["activations"])
    if figures.get("parameters"):
        found += bias_positive(groups, figures["parameters"])
    if figures.get("gradients"):
        found += gradient_ratios(groups, baseline, figures["gradients"])
    return found


def _observation(rule, activation, layer, figure, text, **values):
    return {"rule": rule, "activation": activation, "layer": layer, "figure": figure, "text": text, "values": values}


def _percent(fraction):
    return f"{fraction:.0%}" if fraction == 0 or fraction >= 0.01 else f"{fraction:.2%}"


def dead_units(groups, figure):
    found = []
    for layer in layer_names(groups, r"activations/(.+)/dead_fraction"):
        finals = {group.activation: group.final_mean("activations", f"activations/{layer}/dead_fraction")
                  for group in groups}
        finals = {activation: value for activation, value in finals.items() if value is not None}
        negative = {group.activation: group.final_mean("activations", f"activations/{layer}/negative_fraction")
                    for group in groups}
        for activation, fraction in finals.items():
            if fraction >= DEAD_FRACTION and negative[activation] == 0:
                others = ", ".join(f"{other} {_percent(value)}" for other, value in finals.items()
                                   if other != activation)
                text = f"{activation}: {_percent(fraction)} of {layer}'s units dead at the end" + \
                       (f" ({others})" if others else "")
                found.append(_observation("dead", activation, layer, figure, text, dead_fraction=fraction,
                                          others=finals))
    return found


def self_normalising(groups, figure):
    found = []
    low_std, high_std = NORMALISED_STD
    for layer in layer_names(groups, r"activations/(.+)/mean"):
        for group in groups:
            mean = group.seed_curve("activations", f"activations/{layer}/mean")
            std = group.seed_curve("activations", f"activations/{layer}/std")
            if mean is None or std is None or not np.array_equal(mean[0], std[0]):
                continue
            steps = mean[0]
            within = (np.maximum(np.abs(mean[2]), np.abs(mean[3])) <= NORMALISED_MEAN) & \
                     (std[2] >= low_std) & (std[3] <= high_std)
            outside = np.flatnonzero(~within)
            start = outside[-1] + 1 if outside.size else 0
            if start < len(steps) and start <= len(steps) // 2:
                text = (f"{group.activation} keeps {layer}'s mean within ±{NORMALISED_MEAN:g} and std within "
                        f"{low_std:g}–{high_std:g} from step {int(steps[start]):,} on (self-normalising)")
                found.append(_observation("self_normalising", group.activation, layer, figure, text,
                                          from_step=int(steps[start]), final_mean=float(mean[1][-1]),
                                          final_std=float(std[1][-1])))
    return found


def bias_positive(groups, figure):
    found = []
    for group in groups:
        for run in group.complete:
            for (layer,), tag in run.tags("activations", r"parameters/([^/]+)/bias").items():
                curve = run.curve("activations", tag)
                first = next((step for step, value in curve if value > 0), None)
                if curve[0][1] <= 0 and first is not None:
                    text = (f"{group.activation} seed {run.seed}: {layer}'s bias became positive at step {first:,} "
                            f"and ends at {curve[-1][1]:.3g} (Qiu et al.: a successfully trained Flexible ReLU's "
                            "bias tends to a negative value)")
                    found.append(_observation("bias_positive", group.activation, layer, figure, text, seed=run.seed,
                                              step=first, initial=curve[0][1], final=curve[-1][1]))
    return found


def gradient_ratios(groups, baseline, figure):
    found = []
    base = next(group for group in groups if group.activation == baseline)
    for layer in layer_names(groups, r"gradient_norm/(.+)"):
        reference = base.final_mean("activations", f"gradient_norm/{layer}")
        if not reference:
            continue
        for group in groups:
            norm = group.final_mean("activations", f"gradient_norm/{layer}")
            if group is base or norm is None:
                continue
            ratio = norm / reference
            if ratio >= GRADIENT_RATIO or ratio <= 1 / GRADIENT_RATIO:
                times = f"{ratio:.3g}×" if ratio >= 1 or ratio == 0 else f"1/{1 / ratio:.3g} of"
                text = (f"{group.activation}: {layer}'s gradient norm at the end is {times} {baseline}'s "
                        f"({norm:.3g} vs {reference:.3g})")
                found.append(_observation("gradient", group.activation, layer, figure, text, gradient_norm=norm,
                                          baseline_gradient_norm=reference, ratio=ratio))
    return found
