"""Training runs: one run directory per (prefix, dataset, activation, model, seed), resumable after a kill.

``train(config)`` (a ``keras_frelu.config.TrainConfig``) is what ``trainer.py`` calls. The loop is Keras
``model.fit`` (so ``tf.distribute`` strategies work unchanged); "epochs" are windows of ``log_step`` steps, at
whose end the window's mean loss and accuracy go to ``train/`` event files, a checkpoint is written every
``output_save_step`` steps and the whole test split is evaluated in inference mode every ``test_sample_step``
steps. The step counter is the optimiser's, saved in every checkpoint, and the order of the training batches
is a function of (seed, step) only, so a resumed run sees exactly the batches the uninterrupted run would have.

Modules, one job each: ``run`` (prepare and train, in phases), ``network`` (build and compile), ``distribute``
(strategies, devices, the chief, multi-worker start), ``resume`` (what a resumed run must agree with), and
the callbacks of ``fit``: ``interrupts`` (Ctrl-C), ``step_counter``, ``non_finite``, ``progress`` and
``recorder`` (evaluations, best weights, checkpoints, metrics.json).
"""

from keras_frelu.rundir import is_chief
from keras_frelu.training.distribute import make_strategy, scope, split_cpu
from keras_frelu.training.network import JIT_COMPILE, build_model, compile_model
from keras_frelu.training.resume import DATASET_IDENTITY, check_resumable, dataset_summary
from keras_frelu.training.run import library_versions, prepare, statistics_sample, train

__all__ = ["DATASET_IDENTITY", "JIT_COMPILE", "build_model", "check_resumable", "compile_model", "dataset_summary",
           "is_chief", "library_versions", "make_strategy", "prepare", "scope", "split_cpu", "statistics_sample",
           "train"]
