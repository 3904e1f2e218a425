"""Datasets, one job per module:

- ``dataset``: a dataset folder as a ``Dataset``, its train/test split and the validation split;
- ``hdf5``: the folder's files, reading the columnar layout (``HDF5Images``) and writing both layouts;
- ``per_id``: reading the per-id layout through its columnar cache;
- ``checks``: the checks of images, labels and class names;
- ``sources``: the built-in datasets (download.py's catalogue), preparing them and finding a dataset by name;
- ``converters``: the built-in datasets' published files into arrays;
- ``downloader``: downloading one file over HTTP (resumed, retried, checked);
- ``pipeline``: the tf.data input pipeline (imported on first use: the rest needs no TensorFlow).
- ``summary``: ``check``, a folder validated and summarised (``python -m keras_frelu.data check``,
  ``keras-frelu check``).

    dataset = load_dataset("digits")            # or "MNIST", "CIFAR10", ..., or a folder path
    train = make_dataset(dataset.train_images, dataset.train_labels, batch_size=64, repeat=True)
"""

from keras_frelu.data.dataset import Dataset, read_folder, with_validation
from keras_frelu.data.hdf5 import HDF5Images
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
