"""Activation names (the ``--activation`` values of every CLI) and the layers they make.

Each activation layer class registers itself with ``@register(name, aliases=...)``; that one decorator fills
the table read by ``available``, ``canonical_name`` and ``get`` and registers the class with Keras
serialisation. This module imports no layer at its top (the layer modules import ``register`` from here);
the lookup functions import ``keras_frelu.layers`` so that the table is complete whoever calls them first.
Keras itself is imported on first use, so that ``--help`` and flag checks of the CLIs need no TensorFlow.
"""

import difflib

PACKAGE = "keras_frelu"  # the Keras serialisation package: saved configs name the classes "keras_frelu>Class"

_LAYERS = {}  # registry name -> layer class
_ALIASES = {}  # alias -> registry name


def _key(name):
    return str(name).strip().lower().replace("-", "_")


def register(name, *, aliases=()):
    """Class decorator: make an activation layer available as ``name`` (and each of ``aliases``) and register
    it with Keras serialisation (``keras.saving.register_keras_serializable(package="keras_frelu")``), so
    that ``keras.models.load_model`` restores it after ``import keras_frelu``.

    Names are lower case, with '_' rather than '-' (lookups ignore case and '-' vs '_'); a name or alias
    taken by another class raises ``ValueError``. Example::

        @register("lrelu", aliases=("leaky_relu", "leakyrelu"))
        class LeakyReLU(ActivationLayer):
            ...
    """
    if isinstance(aliases, str):
        raise TypeError(f"aliases must be a sequence of names, got the string {aliases!r}; "
                        f"write aliases=({aliases!r},)")
    names = [name, *aliases]
    for each in names:
        if not isinstance(each, str) or not each or _key(each) != each:
            raise ValueError(f"activation names are non-empty lower-case strings with '_' rather than '-', "
                             f"got {each!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"repeated name among {names!r}")

    def decorator(cls):
        import keras  # loaded already, as the layer module being decorated imports it

        from keras_frelu.layers.base import ActivationLayer

        if not (isinstance(cls, type) and issubclass(cls, ActivationLayer)):
            raise TypeError(f"@register({name!r}) decorates subclasses of keras_frelu.layers.ActivationLayer, "
                            f"got {cls!r}")
        for each in names:
            owner = _LAYERS.get(each) or _LAYERS.get(_ALIASES.get(each))
            # The same class defined again (a module reloaded) replaces its old self.
            if owner is not None and (owner.__module__, owner.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(f"activation name {each!r} of {cls.__qualname__} is taken by {owner.__qualname__}")
        keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        _LAYERS[name] = cls
        _ALIASES.update(dict.fromkeys(aliases, name))
        return cls

    return decorator


def _table():
    """The filled table: importing the layers runs their ``@register`` decorators."""
    import keras_frelu.layers  # noqa: F401

    return _LAYERS


def available():
    """The activation names, sorted (aliases such as ``silu`` are accepted by ``get`` but not listed)."""
    return sorted(_table())


def canonical_name(name):
    """The registry name for ``name`` or one of its aliases (case and '-' vs '_' do not matter)."""
    table = _table()
    key = _key(name)
    key = _ALIASES.get(key, key)
    if key not in table:
        close = difflib.get_close_matches(key, list(table) + list(_ALIASES), n=3, cutoff=0.5)
        suggestions = [repr(match) + (f" (= {_ALIASES[match]})" if match in _ALIASES else "") for match in close]
        hint = f"did you mean {', '.join(suggestions)}? " if close else ""
        raise ValueError(f"unknown activation {name!r}; {hint}available: {', '.join(available())}")
    return key


def get(activation, /, **kwargs):
    """A layer for ``activation``, as timm's ``get_act_layer``:

    - a name or alias (see ``canonical_name``): a new layer of its class, ``kwargs`` to its constructor
      (``name=`` is the Keras layer name);
    - a layer class (any ``keras.layers.Layer`` subclass): a new instance, ``cls(**kwargs)``;
    - a layer instance: that same layer, as is; ``kwargs`` are then an error (they would be ignored).

    Anything else raises ``TypeError``; an unknown name raises ``ValueError`` with the closest names.
    """
    table = _table()  # imports Keras, which this module leaves to its first use
    import keras

    if isinstance(activation, keras.layers.Layer):
        if kwargs:
            raise ValueError(f"got the layer instance {activation.name!r} ({type(activation).__name__}) with "
                             f"keyword arguments {sorted(kwargs)}; they would be ignored: pass a name or a layer "
                             f"class to make a new layer with them")
        return activation
    if isinstance(activation, type) and issubclass(activation, keras.layers.Layer):
        return activation(**kwargs)
    if isinstance(activation, str):
        return table[canonical_name(activation)](**kwargs)
    raise TypeError(f"an activation is a name, a keras.layers.Layer subclass or a layer instance, got "
                    f"{activation!r} ({type(activation).__name__})")
