"""Reading TensorBoard event files back: the scalars of one run folder (e.g. ``RUN/train``).

A resumed run replays the steps after its last checkpoint, so a step may appear in two event files; the
newer file (event file names start with their creation time) wins, as TensorBoard shows it.
"""

import glob
import os

import tensorflow as tf


def event_files(log_dir):
    """The event files directly inside ``log_dir``, oldest first."""
    return sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*")), key=_creation_time)


def _creation_time(path):
    # events.out.tfevents.<seconds>.<host>.<pid>.<counter>.v2
    return float(os.path.basename(path).split(".")[3])


def read_scalars(log_dir):
    """``{tag: [(step, value), ...]}`` sorted by step, one value per step."""
    by_tag = {}
    for path in event_files(log_dir):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars" or value.HasField("simple_value"):
                    number = value.simple_value if value.HasField("simple_value") else \
                        float(tf.make_ndarray(value.tensor))
                    by_tag.setdefault(value.tag, {})[event.step] = number
    return {tag: sorted(steps.items()) for tag, steps in by_tag.items()}


def read_tags(log_dir):
    """``{tag: plugin_name}`` of every summary in ``log_dir``'s event files."""
    tags = {}
    for path in event_files(log_dir):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags[value.tag] = value.metadata.plugin_data.plugin_name or "scalars"
    return tags
