"""TensorBoard event files: writers that keep a resumed run's steps unique, and reading scalars back.

A resumed run replays the steps between its last checkpoint and the moment it stopped. Every writer
starts its file with a ``SessionLog.START`` event, at the first step it will write: TensorBoard takes a
START after the first as a restart and (like ``read_scalars`` here) drops whatever older event files
hold from that step on, so every step appears once.
"""

import glob
import os
import time

import tensorflow as tf
from tensorboard.compat.proto import event_pb2
from tensorflow.python.ops import summary_ops_v2


def event_files(log_dir):
    """The event files directly inside ``log_dir``, oldest first."""
    return sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*")), key=_creation_time)


def _creation_time(path):
    # events.out.tfevents.<seconds>.<host>.<pid>.<counter>.v2
    return float(os.path.basename(path).split(".")[3])


def resumed_writer(log_dir, resumed_at):
    """A summary writer for ``log_dir`` whose earlier files' steps after ``resumed_at`` (the step of the
    checkpoint the run resumes from, 0 for a new run) no longer count."""
    writer = tf.summary.create_file_writer(log_dir)
    start = event_pb2.Event(wall_time=time.time(), step=resumed_at + 1 if resumed_at else 0,
                            session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))
    with writer.as_default():
        summary_ops_v2.import_event(tf.constant(start.SerializeToString()))
    writer.flush()
    return writer


def _events(log_dir):
    """Every event of ``log_dir``, oldest file first, with a restart's orphaned steps left out."""
    kept = []
    for path in event_files(log_dir):
        for event in tf.compat.v1.train.summary_iterator(path):
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                kept = [earlier for earlier in kept if earlier.step < event.step]
            elif event.HasField("summary"):
                kept.append(event)
    return kept


def read_scalars(log_dir):
    """``{tag: [(step, value), ...]}`` sorted by step, one value per step (the last written)."""
    by_tag = {}
    for event in _events(log_dir):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "scalars" or value.HasField("simple_value"):
                number = value.simple_value if value.HasField("simple_value") else \
                    float(tf.make_ndarray(value.tensor))
                by_tag.setdefault(value.tag, {})[event.step] = number
    return {tag: sorted(steps.items()) for tag, steps in by_tag.items()}


def read_tags(log_dir):
    """``{tag: plugin_name}`` of every summary in ``log_dir``'s event files."""
    tags = {}
    for event in _events(log_dir):
        for value in event.summary.value:
            tags[value.tag] = value.metadata.plugin_data.plugin_name or "scalars"
    return tags
