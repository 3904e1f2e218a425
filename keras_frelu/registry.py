"""Activation names (the ``--activation`` values of every CLI) and the layers they make."""

import difflib

from keras_frelu import layers

ACTIVATIONS = {
    "relu": layers.ReLU,
    "lrelu": layers.LeakyReLU,
    "prelu": layers.PReLU,
    "elu": layers.ELU,
    "selu": layers.SELU,
    "pelu": layers.PELU,
    "srelu": layers.SReLU,
    "sigmoid": layers.Sigmoid,
    "tanh": layers.Tanh,
    "swish": layers.Swish,
    "gelu": layers.GELU,
    "mish": layers.Mish,
    "frelu": layers.FunnelReLU,
    "frelu_light": layers.FunnelReLULight,
    "flexrelu": layers.FlexibleReLU,
    "ftswish": layers.FTSwish,
    "ftswishplus": layers.FTSwishPlus,
    "trelu": layers.TReLU,
    "lisht": layers.LiSHT,
    "lishtplus": layers.LiSHTPlus,
    "grelu": layers.GeneralReLU,
}

ALIASES = {
    "leaky_relu": "lrelu",
    "leakyrelu": "lrelu",
    "silu": "swish",
    "funnel_relu": "frelu",
    "funnel_relu_light": "frelu_light",
    "flexible_relu": "flexrelu",
    "ftswish_plus": "ftswishplus",
    "lisht_plus": "lishtplus",
    "general_relu": "grelu",
    "generalrelu": "grelu",
}

SPATIAL = frozenset({"frelu", "frelu_light"})


def available():
    """The activation names, sorted (aliases such as ``silu`` are accepted by ``get`` but not listed)."""
    return sorted(ACTIVATIONS)


def canonical_name(name):
    """The registry name for ``name`` or one of its aliases (case and '-' vs '_' do not matter)."""
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        close = difflib.get_close_matches(key, list(ACTIVATIONS) + list(ALIASES), n=3, cutoff=0.5)
        suggestions = [repr(match) + (f" (= {ALIASES[match]})" if match in ALIASES else "") for match in close]
        hint = f"did you mean {', '.join(suggestions)}? " if close else ""
        raise ValueError(f"unknown activation {name!r}; {hint}available: {', '.join(available())}")
    return key


def get(activation, /, **kwargs):
    """A new layer for the activation named ``activation``; ``kwargs`` go to its constructor
    (``name=`` is the Keras layer name)."""
    return ACTIVATIONS[canonical_name(activation)](**kwargs)


def is_spatial(name):
    """True for activations whose condition looks at a spatial neighbourhood (they also take rank 2)."""
    return canonical_name(name) in SPATIAL
