"""The network a run trains: built from ``--model`` and ``--activation``, compiled with the run's optimiser."""

import keras

from keras_frelu import models

# No XLA: on CPU it makes these networks' training steps slower (its convolutions); measured in bench/.
JIT_COMPILE = False


def build_model(config, image_shape, num_classes):
    """The model named by ``config.model`` for images of ``image_shape``."""
    if config.model == "reference_cnn":
        return models.reference_cnn(image_shape, num_classes, activation=config.activation)
    depth = int(config.model[len("cifar_resnet"):])
    return models.cifar_resnet(depth, num_classes, input_shape=image_shape, activation=config.activation)


def compile_model(model, config):
    """Adam with global gradient clipping; sparse cross-entropy on logits; accuracy."""
    learning_rate = config.learning_rate
    if config.lr_weight_decay:  # as the original project: halve every 10,000 steps
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=10000, decay_rate=0.5, staircase=True)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=config.clip_norm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
        jit_compile=JIT_COMPILE,
    )
