"""The monitor's event files, on every Keras backend.

On TensorFlow the summaries go through TensorFlow's own writer (``tf.summary``: records written and
checksummed in C++, without the GIL). On JAX and PyTorch the same records are written here in Python with
tensorboard's record format (``tensorboard.summary.writer.record_writer``), so that TensorFlow is neither
needed nor loaded; the file names, the file-version event and the ``SessionLog.START`` of a resumed run
(``keras_frelu.events``) are the same, and TensorBoard reads both alike.
"""

import itertools
import os
import socket
import time

from tensorboard.compat.proto import event_pb2, summary_pb2

_FILE_NUMBERS = itertools.count()


def open_writer(log_dir, backend, resumed_at=None):
    """A writer of events into ``log_dir`` (created if missing). ``resumed_at``: the step the run starts
    from (0 for a new one), marked with a ``SessionLog.START`` so TensorBoard drops the steps a resumed run
    replays (as ``keras_frelu.events.resumed_writer``); None for a writer that continues the step axis."""
    writer = _TensorFlowWriter(log_dir) if backend == "tensorflow" else _PythonWriter(log_dir)
    if resumed_at is not None:
        writer.write_event(event_pb2.Event(
            wall_time=time.time(), step=resumed_at + 1 if resumed_at else 0,
            session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
        writer.flush()
    return writer


class _Writer:
    def write(self, step, values):
        """Write the summary ``values`` (``keras_frelu.monitor.summaries``) at ``step`` as one event."""
        if values:
            self.write_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                             summary=summary_pb2.Summary(value=values)))


class _TensorFlowWriter(_Writer):
    def __init__(self, log_dir):
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(log_dir)

    def write(self, step, values):
        if values:  # one op for the whole set (the event's wall time is set by TensorFlow)
            with self._writer.as_default():
                self._tf.summary.experimental.write_raw_pb(
                    summary_pb2.Summary(value=values).SerializeToString(), step=int(step))

    def write_event(self, event):
        from tensorflow.python.ops import summary_ops_v2

        with self._writer.as_default():
            summary_ops_v2.import_event(self._tf.constant(event.SerializeToString()))

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


class _PythonWriter(_Writer):
    def __init__(self, log_dir):
        from tensorboard.summary.writer.record_writer import RecordWriter

        os.makedirs(log_dir, exist_ok=True)
        # TensorFlow's naming: events.out.tfevents.<seconds>.<host>.<pid>.<number>.v2
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_NUMBERS)}.v2"
        self.path = os.path.join(log_dir, name)
        self._records = RecordWriter(open(self.path, "wb"))
        self.write_event(event_pb2.Event(wall_time=now, file_version="brain.Event:2"))

    def write_event(self, event):
        self._records.write(event.SerializeToString())

    def flush(self):
        self._records.flush()

    def close(self):
        if not self._records.closed:
            self._records.close()
