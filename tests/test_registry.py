"""keras_frelu.get / available / register: names, aliases, classes and instances, defaults from the issue,
helpful errors."""

import keras
import pytest

import keras_frelu
from keras_frelu import activations, layers, registry

ISSUE_NAMES = {  # issue 2, "Activation layers": registry name -> class
    "relu": layers.ReLU, "lrelu": layers.LeakyReLU, "prelu": layers.PReLU, "elu": layers.ELU,
    "selu": layers.SELU, "sigmoid": layers.Sigmoid, "tanh": layers.Tanh, "swish": layers.Swish,
    "gelu": layers.GELU, "mish": layers.Mish, "frelu": layers.FunnelReLU, "frelu_light": layers.FunnelReLULight,
    "flexrelu": layers.FlexibleReLU, "pelu": layers.PELU, "srelu": layers.SReLU, "ftswish": layers.FTSwish,
    "ftswishplus": layers.FTSwishPlus, "trelu": layers.TReLU, "lisht": layers.LiSHT,
    "lishtplus": layers.LiSHTPlus, "grelu": layers.GeneralReLU,
    # issue 27: Funnel ReLU's compute-matched controls
    "frelu_control": layers.FunnelReLUControl, "frelu_light_control": layers.FunnelReLULightControl,
}


def test_available_lists_exactly_the_issue_names_sorted_with_their_classes():
    assert keras_frelu.available() == sorted(ISSUE_NAMES)
    assert {name: type(keras_frelu.get(name)) for name in keras_frelu.available()} == ISSUE_NAMES


@pytest.mark.parametrize("name", keras_frelu.available())
def test_get_returns_a_new_layer_of_the_right_class_each_call(name):
    first, second = keras_frelu.get(name), keras_frelu.get(name)
    assert type(first) is type(second) and isinstance(first, layers.ActivationLayer)
    assert first is not second and first.name != second.name


@pytest.mark.parametrize("name", keras_frelu.available())
def test_every_activation_is_registered_with_keras_serialisation(name):
    cls = type(keras_frelu.get(name))
    assert keras.saving.get_registered_name(cls) == f"keras_frelu>{cls.__name__}"
    assert keras.saving.get_registered_object(f"keras_frelu>{cls.__name__}") is cls


@pytest.mark.parametrize("alias, name", [("leaky_relu", "lrelu"), ("leakyrelu", "lrelu"), ("silu", "swish"),
                                         ("funnel_relu", "frelu"), ("funnel_relu_light", "frelu_light"),
                                         ("flexible_relu", "flexrelu"), ("ftswish_plus", "ftswishplus"),
                                         ("lisht_plus", "lishtplus"), ("general_relu", "grelu"),
                                         ("generalrelu", "grelu"), ("FReLU", "frelu"), ("Leaky-ReLU", "lrelu")])
def test_aliases_and_spelling_variants(alias, name):
    assert type(keras_frelu.get(alias)) is ISSUE_NAMES[name]
    assert activations.canonical_name(alias) == name


def test_name_kwarg_names_the_layer_and_other_kwargs_reach_the_constructor():
    layer = keras_frelu.get("lrelu", name="act_conv1", negative_slope=0.3)
    assert layer.name == "act_conv1" and layer.negative_slope == 0.3


@pytest.mark.parametrize("cls", [layers.LeakyReLU, keras.layers.LeakyReLU])
def test_get_with_a_layer_class_makes_a_new_instance_with_the_kwargs(cls):
    first, second = keras_frelu.get(cls, negative_slope=0.3, name="act"), keras_frelu.get(cls)
    assert type(first) is cls and type(second) is cls and first is not second
    assert first.name == "act" and first.negative_slope == 0.3


def test_get_with_a_layer_instance_returns_it_as_is():
    layer = layers.PReLU(name="act")
    assert keras_frelu.get(layer) is layer
    keras_layer = keras.layers.ReLU()
    assert keras_frelu.get(keras_layer) is keras_layer


def test_get_with_a_layer_instance_and_kwargs_refuses():
    with pytest.raises(ValueError, match=r"got the layer instance 'act' \(PReLU\) with keyword arguments "
                                         r"\['alpha_initializer', 'name'\]; they would be ignored"):
        keras_frelu.get(layers.PReLU(name="act"), name="other", alpha_initializer=0.1)


@pytest.mark.parametrize("value, shown", [(None, r"None \(NoneType\)"), (3, r"3 \(int\)"),
                                          (int, r"<class 'int'> \(type\)"),
                                          (keras.activations.relu, r"<function relu at .*> \(function\)")])
def test_get_refuses_what_is_neither_name_nor_layer(value, shown):
    with pytest.raises(TypeError, match="an activation is a name, a keras.layers.Layer subclass or a layer "
                                        "instance, got " + shown):
        keras_frelu.get(value)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry's tables and Keras's custom objects as they are, restored after the test."""
    monkeypatch.setattr(registry, "_LAYERS", dict(registry._LAYERS))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    custom_objects = keras.saving.get_custom_objects()
    before = dict(custom_objects)
    yield
    custom_objects.clear()
    custom_objects.update(before)


def test_register_adds_a_name_aliases_and_keras_serialisation(scratch_registry):
    @registry.register("halfrelu", aliases=("half_relu",))
    class HalfReLU(layers.ReLU):
        def call(self, inputs):
            return 0.5 * super().call(inputs)

    assert "halfrelu" in keras_frelu.available() and "half_relu" not in keras_frelu.available()
    assert type(keras_frelu.get("Half-ReLU")) is HalfReLU
    assert keras.saving.get_registered_object("keras_frelu>HalfReLU") is HalfReLU
    clone = keras.layers.deserialize(keras.layers.serialize(HalfReLU(name="half")))
    assert type(clone) is HalfReLU and clone.name == "half"


def test_register_refuses_taken_names(scratch_registry):
    with pytest.raises(ValueError, match="activation name 'lrelu' of Other is taken by LeakyReLU"):
        registry.register("lrelu")(type("Other", (layers.ReLU,), {}))
    with pytest.raises(ValueError, match="activation name 'silu' of Other is taken by Swish"):
        registry.register("other", aliases=("silu",))(type("Other", (layers.ReLU,), {}))
    assert "other" not in keras_frelu.available()


@pytest.mark.parametrize("name, aliases, message", [
    ("Leaky-ReLU", (), "lower-case strings with '_' rather than '-', got 'Leaky-ReLU'"),
    ("", (), "got ''"), ("x", ("x",), r"repeated name among \['x', 'x'\]"),
    ("x", ("x-y",), "got 'x-y'"),
])
def test_register_refuses_malformed_names(name, aliases, message):
    with pytest.raises(ValueError, match=message):
        registry.register(name, aliases=aliases)


def test_register_takes_a_sequence_of_aliases_and_activation_layers_only(scratch_registry):
    with pytest.raises(TypeError, match="aliases must be a sequence of names, got the string 'xy'"):
        registry.register("x", aliases="xy")
    with pytest.raises(TypeError, match="decorates subclasses of keras_frelu.layers.ActivationLayer, got <class"):
        registry.register("x")(keras.layers.ReLU)


def test_unknown_name_raises_value_error_with_close_matches_and_full_list():
    with pytest.raises(ValueError) as error:
        keras_frelu.get("frelux")
    message = str(error.value)
    assert "'frelux'" in message and "did you mean 'frelu'" in message
    assert message.endswith("available: " + ", ".join(keras_frelu.available()))


def test_unknown_alias_suggestion_names_its_target():
    with pytest.raises(ValueError, match=r"'silu' \(= swish\)"):
        keras_frelu.get("silo")


def test_unknown_name_without_close_match_still_lists_everything():
    with pytest.raises(ValueError, match=r"unknown activation 'zzzz'; available: elu, "):
        keras_frelu.get("zzzz")


DEFAULTS = [  # the defaults the issue asks for, read back from the layers
    ("lrelu", {"negative_slope": 0.2}),
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
