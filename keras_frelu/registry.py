"""The table of activation names (the ``--activation`` values of every CLI) and the decorator that fills it.

Each activation layer class registers itself with ``@register(name, aliases=...)``, which adds it to the table
and registers the class with Keras serialisation. This module imports no layer (the layer modules import it);
looking names up is ``keras_frelu.activations``, which imports the layers so that the table is complete.
"""

PACKAGE = "keras_frelu"  # the Keras serialisation package: saved configs name the classes "keras_frelu>Class"

_LAYERS = {}  # registry name -> layer class
_ALIASES = {}  # alias -> registry name
_CONTROLS = {}  # registry name -> the registry name of its compute-matched control


def key(name):
    """How names are compared: case, surrounding spaces and '-' vs '_' do not matter."""
    return str(name).strip().lower().replace("-", "_")


def register(name, *, aliases=(), control_of=None):
    """Class decorator: make an activation layer available as ``name`` (and each of ``aliases``) and register
    it with Keras serialisation (``keras.saving.register_keras_serializable(package="keras_frelu")``), so
    that ``keras.models.load_model`` restores it after ``import keras_frelu``.

    Names are lower case, with '_' rather than '-' (lookups ignore case and '-' vs '_'); a name or alias
    taken by another class raises ``ValueError``. ``control_of`` names the activation this one is the
    compute-matched control of (``script.py --controls`` adds it beside that activation). Example::

        @register("lrelu", aliases=("leaky_relu", "leakyrelu"))
        class LeakyReLU(ActivationLayer):
            ...
    """
    if isinstance(aliases, str):
        raise TypeError(f"aliases must be a sequence of names, got the string {aliases!r}; "
                        f"write aliases=({aliases!r},)")
    names = [name, *aliases]
    for each in names:
        if not isinstance(each, str) or not each or key(each) != each:
            raise ValueError(f"activation names are non-empty lower-case strings with '_' rather than '-', "
                             f"got {each!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"repeated name among {names!r}")

    def decorator(cls):
        import keras  # loaded already, as the layer module being decorated imports it

        # ActivationLayer's own method, checked by name so that this module imports no layer.
        if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
                and callable(getattr(cls, "add_activation_weight", None))):
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
        if control_of is not None:
            _CONTROLS[control_of] = name
        return cls

    return decorator


def classes():
    """``{registry name: layer class}`` of every activation registered so far."""
    return dict(_LAYERS)


def aliases():
    """``{alias: registry name}`` of every alias registered so far."""
    return dict(_ALIASES)


def controls():
    """``{activation: its compute-matched control}`` of every control registered so far."""
    return dict(_CONTROLS)


def resolve(name):
    """The registry name of ``name`` or of the alias ``name`` (case and '-' vs '_' do not matter), else None."""
    wanted = key(name)
    wanted = _ALIASES.get(wanted, wanted)
    return wanted if wanted in _LAYERS else None
