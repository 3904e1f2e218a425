"""TensorBoard activation monitoring: the ActivationMonitor callback, its statistics, images and figures.

``ActivationMonitor`` loads on first use, so that the figure process (``figure_process``) imports this
package without Keras."""

__all__ = ["ActivationMonitor"]


def __getattr__(name):
    if name == "ActivationMonitor":
        from keras_frelu.monitor.callback import ActivationMonitor

        return ActivationMonitor
    raise AttributeError(f"module 'keras_frelu.monitor' has no attribute {name!r}")
