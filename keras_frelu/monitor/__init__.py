"""TensorBoard activation monitoring: the ActivationMonitor callback, its statistics, images and figures."""

from keras_frelu.monitor.callback import ActivationMonitor

__all__ = ["ActivationMonitor"]
