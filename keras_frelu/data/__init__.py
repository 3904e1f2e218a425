"""Datasets: folders on disk (``hdf5``), built-in sources and download.py's machinery (``sources``), and the
tf.data input pipeline (``pipeline``, imported on first use: the rest needs no TensorFlow).

    dataset = load_dataset("digits")            # or "MNIST", "CIFAR10", ..., or a folder path
    train = make_dataset(dataset.train_images, dataset.train_labels, batch_size=64, repeat=True)
"""

from keras_frelu.data.hdf5 import Dataset, HDF5Images, read_folder, with_validation
from keras_frelu.data.sources import BUILTIN, SOURCES, canonical_name, find_folder, load_dataset, prepare
from keras_frelu.errors import DatasetError, DownloadError

_PIPELINE = ("make_dataset", "scale_images")

__all__ = ["BUILTIN", "SOURCES", "Dataset", "DatasetError", "DownloadError", "HDF5Images", "canonical_name",
           "find_folder", "load_dataset", "prepare", "read_folder", "with_validation", *_PIPELINE]


def __getattr__(name):
    if name in _PIPELINE:
        from keras_frelu.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
