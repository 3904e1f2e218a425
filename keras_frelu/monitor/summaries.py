"""TensorBoard summaries built as protocol buffers in Python, on every Keras backend.

Inside a ``tf.function`` every ``tf.summary`` call adds its own conditional write op, and tracing them
costs far more than computing the numbers; and on JAX or PyTorch there is no ``tf.summary`` to call. So
the monitor's graph only computes the numbers; these helpers wrap them into the same summary values that
``tf.summary.scalar``, ``tf.summary.histogram`` and ``tf.summary.image`` write (same plugin metadata and
tensor layout, so TensorBoard and event-file readers see no difference), and
``keras_frelu.monitor.writer`` writes each set as one event.
"""

import struct
import zlib

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata

_SCALAR = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_HISTOGRAM = histogram_metadata.create_summary_metadata(display_name=None, description=None)
_IMAGE = image_metadata.create_summary_metadata(display_name=None, description=None)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scalar(tag, value):
    """A float32 scalar, as ``tf.summary.scalar`` writes it."""
    return _value(tag, _SCALAR, types_pb2.DT_FLOAT, (), float_val=[float(value)])


def histogram(tag, buckets):
    """A ``(k, 3)`` array of ``[left edge, right edge, count]`` rows, as ``tf.summary.histogram`` writes."""
    buckets = np.ascontiguousarray(buckets, dtype="<f8")
    return _value(tag, _HISTOGRAM, types_pb2.DT_DOUBLE, buckets.shape, tensor_content=buckets.tobytes())


def image(tag, pngs, height, width):
    """PNG-encoded images of one size, as ``tf.summary.image`` writes them (width, height, then PNGs)."""
    strings = [str(int(width)).encode(), str(int(height)).encode(), *pngs]
    return _value(tag, _IMAGE, types_pb2.DT_STRING, (len(strings),), string_val=strings)


def png(rgb):
    """PNG bytes of a uint8 ``(height, width, 3)`` picture: rows unfiltered, deflated at zlib level 1.

    Cheaper than ``tf.io.encode_png`` (libpng tries a filter per row) and smaller for these pictures,
    whose flat areas need no filtering; zlib works without the GIL, so the training loop runs meanwhile.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"png takes a uint8 (height, width, 3) array, got {rgb.dtype} {rgb.shape}")
    height, width, _ = rgb.shape
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # each row: filter type 0 (none), pixels
    rows[:, 1:] = rgb.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no interlace
    return b"".join((_PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)), _png_chunk(b"IEND", b"")))


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _value(tag, metadata, dtype, shape, **contents):
    """The summary value holding a tensor proto built directly (tensor_util.make_tensor_proto is generic
    and costly for these small tensors)."""
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]
    tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **contents)
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)
