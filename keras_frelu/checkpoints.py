"""Checkpoints that survive ``kill -9``, a full disk and a file cut in half.

A checkpoint is a whole ``.keras`` file (architecture, weights and optimiser state, so the step counter
is ``model.optimizer.iterations``) named ``ckpt-<step>.keras`` in the run's ``checkpoints/`` folder,
written with ``files.atomic_path``: a file with that name is always complete. A file that still does not
load (damaged on disk, cut by a copy) is moved aside as ``*.corrupt`` and the one before it is used.
"""

import json
import os
import re
import zipfile

from keras_frelu import files
from keras_frelu.errors import UsageError, first_line
from keras_frelu.rundir import RunDir

# Keras does not save the state of random seed generators (dropout masks), so a resumed run would draw
# other masks than the uninterrupted one; we keep them in an extra entry of the same .keras archive.
RNG_ENTRY = "keras_frelu_seed_generators.json"
CORRUPT_SUFFIX = ".corrupt"
_NAME = re.compile(r"^ckpt-(\d+)\.keras$")


def list_checkpoints(run):
    """``[(step, path), ...]`` of the checkpoints of a run (a RunDir or its path), oldest first."""
    directory = RunDir.of(run).checkpoint_dir
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found)


def latest_checkpoint(run):
    """Path of the newest checkpoint, or None."""
    found = list_checkpoints(run)
    return found[-1][1] if found else None


def save_checkpoint(model, run, step, keep=3):
    """Save ``model`` as the checkpoint of ``step``; keep the newest ``keep`` checkpoints."""
    directory = RunDir.of(run).checkpoint_dir
    files.makedirs(directory)
    final_path = os.path.join(directory, f"ckpt-{step:08d}.keras")
    with files.atomic_path(final_path, suffix=".keras") as temporary:
        with files.storage_errors(final_path):
            model.save(temporary)
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(RNG_ENTRY, json.dumps(
                    {name: generator.state.numpy().tolist() for name, generator in _seed_generators(model)}))
    for _, old_path in list_checkpoints(run)[:-keep]:
        os.remove(old_path)
    return final_path


def load_checkpoint(path):
    """Load a checkpoint (the model, compiled, with its optimiser state and seed generator states)."""
    import keras  # deferred: finding and listing checkpoints needs no TensorFlow

    model = keras.models.load_model(path)
    with zipfile.ZipFile(path) as archive:
        if RNG_ENTRY in archive.namelist():
            states = json.loads(archive.read(RNG_ENTRY))
            for name, generator in _seed_generators(model):
                if name in states:
                    generator.state.assign(states[name])
    return model


def load_latest(run, say=print):
    """``(model, path)`` of the newest undamaged checkpoint of ``run``, or ``(None, None)``. Each newer one
    whose archive is damaged is renamed ``*.corrupt`` (kept for inspection) with a one-line note via ``say``;
    any other loading error (a bug, a collective that failed) is raised, and no checkpoint is touched."""
    for _, path in reversed(list_checkpoints(run)):
        damage = _damage(path)
        if damage is None:
            return load_checkpoint(path), path
        os.replace(path, path + CORRUPT_SUFFIX)
        say(f"{path} does not load ({damage}); moved aside as {os.path.basename(path)}{CORRUPT_SUFFIX}, using "
            "the checkpoint before it")
    return None, None


def _damage(path):
    """Why the ``.keras`` archive at ``path`` is damaged (cut short, overwritten, a failing CRC), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            failing = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"not a whole .keras archive: {first_line(error, limit=200, empty='no message')}"
    return None if failing is None else f"its member {failing} fails its checksum"


def check_loadable(path, flag="--checkpoint"):
    """Load ``path`` or raise a one-line ``UsageError`` saying why it cannot be used."""
    try:
        return load_checkpoint(path)
    except Exception as error:  # noqa: BLE001 - any damage means: not a usable checkpoint
        raise UsageError(f"{flag} {path!r} is not a loadable .keras checkpoint ({type(error).__name__}: "
                         f"{first_line(error, limit=200, empty='no message')}); give a ckpt-*.keras file from a run's "
                         "checkpoints/ folder") from None


def _seed_generators(model):
    """``(layer_name/index, SeedGenerator)`` for every random seed generator of the model's layers."""
    for layer in model._flatten_layers():
        for index, generator in enumerate(getattr(layer, "_seed_generators", ())):
            yield f"{layer.name}/{index}", generator
