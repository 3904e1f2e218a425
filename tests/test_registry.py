"""keras_frelu.get / available: names, aliases, defaults from the issue, helpful errors."""

import pytest

import keras_frelu
from keras_frelu import layers, registry

ISSUE_NAMES = {  # issue 2, "Activation layers": registry name -> class
    "relu": layers.ReLU, "lrelu": layers.LeakyReLU, "prelu": layers.PReLU, "elu": layers.ELU,
    "selu": layers.SELU, "sigmoid": layers.Sigmoid, "tanh": layers.Tanh, "swish": layers.Swish,
    "gelu": layers.GELU, "mish": layers.Mish, "frelu": layers.FunnelReLU, "frelu_light": layers.FunnelReLULight,
    "flexrelu": layers.FlexibleReLU, "pelu": layers.PELU, "srelu": layers.SReLU, "ftswish": layers.FTSwish,
    "ftswishplus": layers.FTSwishPlus, "trelu": layers.TReLU, "lisht": layers.LiSHT,
    "lishtplus": layers.LiSHTPlus, "grelu": layers.GeneralReLU,
}


def test_available_lists_exactly_the_issue_names_sorted():
    assert keras_frelu.available() == sorted(ISSUE_NAMES)


@pytest.mark.parametrize("name", sorted(ISSUE_NAMES))
def test_get_returns_a_new_layer_of_the_right_class_each_call(name):
    first, second = keras_frelu.get(name), keras_frelu.get(name)
    assert type(first) is ISSUE_NAMES[name] and type(second) is ISSUE_NAMES[name]
    assert first is not second and first.name != second.name


@pytest.mark.parametrize("alias, name", [("leaky_relu", "lrelu"), ("silu", "swish"), ("funnel_relu", "frelu"),
                                         ("flexible_relu", "flexrelu"), ("general_relu", "grelu"),
                                         ("funnel_relu_light", "frelu_light"), ("FReLU", "frelu"),
                                         ("Leaky-ReLU", "lrelu")])
def test_aliases_and_spelling_variants(alias, name):
    assert type(keras_frelu.get(alias)) is ISSUE_NAMES[name]
    assert registry.canonical_name(alias) == name


def test_name_kwarg_names_the_layer_and_other_kwargs_reach_the_constructor():
    layer = keras_frelu.get("lrelu", name="act_conv1", alpha=0.3)
    assert layer.name == "act_conv1" and layer.alpha == 0.3


def test_unknown_name_raises_value_error_with_close_matches_and_full_list():
    with pytest.raises(ValueError) as error:
        keras_frelu.get("frelux")
    message = str(error.value)
    assert "'frelux'" in message and "did you mean 'frelu'" in message
    assert message.endswith("available: " + ", ".join(sorted(ISSUE_NAMES)))


def test_unknown_alias_suggestion_names_its_target():
    with pytest.raises(ValueError, match=r"'silu' \(= swish\)"):
        keras_frelu.get("silo")


def test_unknown_name_without_close_match_still_lists_everything():
    with pytest.raises(ValueError, match=r"unknown activation 'zzzz'; available: elu, "):
        keras_frelu.get("zzzz")


def test_is_spatial():
    assert registry.is_spatial("frelu") and registry.is_spatial("funnel_relu_light")
    assert not registry.is_spatial("relu") and not registry.is_spatial("flexrelu")


DEFAULTS = [  # the defaults the issue asks for, read back from the layers
    ("lrelu", {"alpha": 0.2}),
    ("ftswish", {"threshold": -0.2, "mean_shift": 0.0, "maxv": None}),
    ("ftswishplus", {"threshold": -0.25, "mean_shift": -0.1, "maxv": None}),
    ("trelu", {"threshold": -0.25, "mean_shift": -0.03, "maxv": None}),
    ("grelu", {"leak": 0.1, "sub": 0.4, "maxv": 6.0}),
    ("frelu", {"kernel_size": 3, "momentum": 0.9, "epsilon": 1e-5}),
    ("frelu_light", {"kernel_size": 3, "momentum": 0.9, "epsilon": 1e-5}),
]


@pytest.mark.parametrize("name, expected", DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_issue_defaults(name, expected):
    config = keras_frelu.get(name).get_config()
    assert {key: config[key] for key in expected} == expected


@pytest.mark.parametrize("name, weight, shape, value", [
    ("flexrelu", "bias", (), -1.0),        # ONE scalar per layer, -1 as PosSReLU.lua
    ("prelu", "alpha", (7,), 0.25),        # per channel, 0.25 as He et al.
    ("pelu", "a", (), 1.0), ("pelu", "b", (), 1.0),
])
def test_initial_learnable_weights(name, weight, shape, value):
    layer = keras_frelu.get(name)
    layer.build((None, 5, 5, 7))
    variable = getattr(layer, weight)
    assert tuple(variable.shape) == shape
    assert (variable.numpy() == value).all()


def test_flexrelu_bias_initializer_argument():
    layer = keras_frelu.get("flexrelu", bias_initializer=-0.5)
    layer.build((None, 3))
    assert float(layer.bias.numpy()) == -0.5
