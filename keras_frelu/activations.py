"""Looking up activations by name: ``get``, ``available``, ``canonical_name`` (with suggestions for a typo) and
each activation's compute-matched control (``controls``).

Imports every layer, so that the table ``keras_frelu.registry`` keeps is complete whoever asks first.
"""

import difflib

import keras

import keras_frelu.layers  # noqa: F401  (their @register decorators fill the table)
from keras_frelu import registry


def available():
    """The activation names, sorted (aliases such as ``silu`` are accepted by ``get`` but not listed)."""
    return sorted(registry.classes())


def controls():
    """``{activation: the registry name of its compute-matched control}`` (``script.py --controls``)."""
    return registry.controls()


def canonical_name(name):
    """The registry name for ``name`` or one of its aliases (case and '-' vs '_' do not matter)."""
    canonical = registry.resolve(name)
    if canonical is None:
        aliases = registry.aliases()
        close = difflib.get_close_matches(registry.key(name), [*registry.classes(), *aliases], n=3, cutoff=0.5)
        suggestions = [repr(match) + (f" (= {aliases[match]})" if match in aliases else "") for match in close]
        hint = f"did you mean {', '.join(suggestions)}? " if close else ""
        raise ValueError(f"unknown activation {name!r}; {hint}available: {', '.join(available())}")
    return canonical


def get(activation, /, **kwargs):
    """A layer for ``activation``, as timm's ``get_act_layer``:

    - a name or alias (see ``canonical_name``): a new layer of its class, ``kwargs`` to its constructor
      (``name=`` is the Keras layer name);
    - a layer class (any ``keras.layers.Layer`` subclass): a new instance, ``cls(**kwargs)``;
    - a layer instance: that same layer, as is; ``kwargs`` are then an error (they would be ignored).

    Anything else raises ``TypeError``; an unknown name raises ``ValueError`` with the closest names.
    """
    if isinstance(activation, keras.layers.Layer):
        if kwargs:
            raise ValueError(f"got the layer instance {activation.name!r} ({type(activation).__name__}) with "
                             f"keyword arguments {sorted(kwargs)}; they would be ignored: pass a name or a layer "
                             f"class to make a new layer with them")
        return activation
    if isinstance(activation, type) and issubclass(activation, keras.layers.Layer):
        return activation(**kwargs)
    if isinstance(activation, str):
        return registry.classes()[canonical_name(activation)](**kwargs)
    raise TypeError(f"an activation is a name, a keras.layers.Layer subclass or a layer instance, got "
                    f"{activation!r} ({type(activation).__name__})")
