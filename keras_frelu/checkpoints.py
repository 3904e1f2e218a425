"""Checkpoints that survive ``kill -9``: written under a temporary name, then renamed into place.

A checkpoint is a whole ``.keras`` file (architecture, weights and optimiser state, so the step counter
is ``model.optimizer.iterations``) named ``ckpt-<step>.keras`` in ``<run_dir>/checkpoints``. A file with
that name is always complete: ``os.replace`` is atomic, and a crash before it leaves only a ``.tmp``
file, which nothing ever loads and the next save removes.
"""

import json
import os
import re
import zipfile

import keras

CHECKPOINT_DIR = "checkpoints"
# Keras does not save the state of random seed generators (dropout masks), so a resumed run would draw
# other masks than the uninterrupted one; we keep them in an extra entry of the same .keras archive.
RNG_ENTRY = "keras_frelu_seed_generators.json"
_NAME = re.compile(r"^ckpt-(\d+)\.keras$")


def checkpoint_dir(run_dir):
    return os.path.join(run_dir, CHECKPOINT_DIR)


def list_checkpoints(run_dir):
    """``[(step, path), ...]`` of the complete checkpoints of a run, oldest first."""
    directory = checkpoint_dir(run_dir)
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found)


def latest_checkpoint(run_dir):
    """Path of the newest complete checkpoint, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(model, run_dir, step, keep=3):
    """Save ``model`` as the checkpoint of ``step``; keep the newest ``keep`` checkpoints."""
    directory = checkpoint_dir(run_dir)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".tmp.keras"):  # left by a run killed while saving
            os.remove(os.path.join(directory, name))
    final_path = os.path.join(directory, f"ckpt-{step:08d}.keras")
    temp_path = final_path[: -len(".keras")] + ".tmp.keras"
    model.save(temp_path)
    with zipfile.ZipFile(temp_path, "a") as archive:
        archive.writestr(RNG_ENTRY, json.dumps(
            {name: generator.state.numpy().tolist() for name, generator in _seed_generators(model)}))
    with open(temp_path, "rb") as handle:  # the rename must not overtake the data on a power cut
        os.fsync(handle.fileno())
    os.replace(temp_path, final_path)
    for _, old_path in list_checkpoints(run_dir)[:-keep]:
        os.remove(old_path)
    return final_path


def load_checkpoint(path):
    """Load a checkpoint (the model, compiled, with its optimiser state and seed generator states)."""
    model = keras.models.load_model(path)
    with zipfile.ZipFile(path) as archive:
        if RNG_ENTRY in archive.namelist():
            states = json.loads(archive.read(RNG_ENTRY))
            for name, generator in _seed_generators(model):
                if name in states:
                    generator.state.assign(states[name])
    return model


def _seed_generators(model):
    """``(layer_name/index, SeedGenerator)`` for every random seed generator of the model's layers."""
    for layer in model._flatten_layers():
        for index, generator in enumerate(getattr(layer, "_seed_generators", ())):
            yield f"{layer.name}/{index}", generator
