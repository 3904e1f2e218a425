"""Checks of the values of a dataset file: images, labels, image shapes and class names.

Each returns what it checked in the form the rest of the package uses, or raises a one-line
``DatasetError`` naming the file (``source``), the first bad example and the fix.
"""

import numpy as np

from keras_frelu.errors import DatasetError


def check_images(block, ids, source):
    """A block of images as uint8 or float32, after checking their values; DatasetError naming the first bad
    example."""
    if block.dtype == np.uint8:
        return block
    flat = block.reshape(len(block), -1)
    if block.dtype.kind in "iu":
        bad = (flat < 0).any(axis=1) | (flat > 255).any(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise DatasetError(f"{source}: example {ids[first]!r}: integer image values must lie in 0..255 "
                               f"(found {flat[first].min()}..{flat[first].max()}); rescale them or store uint8")
        return block.astype(np.uint8)
    if block.dtype.kind != "f":
        raise DatasetError(f"{source}: images are {block.dtype}; store uint8 (0..255) or float (0..1) images")
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        first = int(np.argmin(finite))
        raise DatasetError(f"{source}: example {ids[first]!r}: the image contains NaN or inf values; replace them "
                           "(e.g. numpy.nan_to_num) or drop the example from id.txt")
    low, high = flat.min(axis=1), flat.max(axis=1)
    bad = (low < 0) | (high > 1)
    if bad.any():
        first = int(np.argmax(bad))
        raise DatasetError(f"{source}: example {ids[first]!r}: float image values must lie in [0, 1] (found "
                           f"{low[first]:g}..{high[first]:g}); divide by 255 or store uint8 images")
    return block.astype(np.float32, copy=False)


def check_labels(block, ids, source):
    """A block of labels (one-hot rows, or class indices when 1-D) as int32 class indices."""
    if block.ndim == 1:
        integral = np.isfinite(block) & (block == np.round(block)) & (block >= 0) if block.dtype.kind == "f" \
            else block >= 0
        if not integral.all():
            first = int(np.argmin(integral))
            raise DatasetError(f"{source}: example {ids[first]!r}: the label {block[first]!r} is not a class index "
                               "(an integer >= 0); store a one-hot vector or a class index")
        return block.astype(np.int32)
    values = block.astype(np.float64, copy=False)
    one_hot = ((values == 0) | (values == 1)).all(axis=1) & (values.sum(axis=1) == 1)
    if not one_hot.all():
        first = int(np.argmin(one_hot))
        shown = np.array2string(block[first], separator=", ", threshold=12, edgeitems=4)
        raise DatasetError(f"{source}: example {ids[first]!r}: the label {shown} is not one-hot; store a vector "
                           "with a single 1 and 0 elsewhere (or a class index)")
    return np.argmax(values, axis=1).astype(np.int32)


def check_image_shape(shape, identifier, source, expected=None):
    """An image shape must be [height, width, channels], and ``expected`` (the first example's) when given."""
    if len(shape) != 3:
        raise DatasetError(f"{source}: example {identifier!r}: the image has shape {tuple(shape)} (rank "
                           f"{len(shape)}); images must be [height, width, channels] (grayscale: image[..., None])")
    if expected is not None and tuple(shape) != tuple(expected):
        raise DatasetError(f"{source}: example {identifier!r}: the image has shape {tuple(shape)} but the first "
                           f"example's has {tuple(expected)}; give all images one shape (resize or crop them)")


def check_class_names(handle, num_classes, source):
    """The names in the ``class_names`` attribute of the HDF5 file ``handle`` (None without one), one per class."""
    names = handle.attrs.get("class_names")
    if names is None:
        return None
    names = [name.decode() if isinstance(name, bytes) else str(name) for name in np.atleast_1d(names)]
    if len(names) != num_classes:
        raise DatasetError(f"{source}: the class_names attribute names {len(names)} classes but the labels have "
                           f"{num_classes}; fix or delete the attribute")
    return names
