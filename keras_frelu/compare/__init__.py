"""Comparison runs: the same training with several activations side by side, TensorBoard, and a report.

``script.py`` is the front door (``keras_frelu.compare.command``). A comparison lives in one folder,
``train_dir/compare-<datasets>[-<hash>]`` (or ``train_dir/NAME`` with ``--name``), holding

- one run directory per (dataset, activation, seed), written by a ``trainer.py`` child process started
  with the same trainer flags for every run except ``--activation``, ``--dataset`` and ``--seed``;
- ``runs.json`` (``state``): the trainer flags and each run's status (pending, running, complete, failed,
  interrupted), exit code, process id and last output line. It marks the folder as made by script.py:
  ``clean`` removes no folder without it;
- ``logs/<run>.log``, ``logs/tensorboard.log``: the output of each child (appended on every attempt);
- ``comparison.json`` (docs/comparison_json.md), ``comparison.md`` rendered from it, ``comparison.png`` and
  the per-dataset figures: built from the runs' event files, metrics.json and predictions.npz only.

One job per module: ``plan`` (the runs and the folder name), ``resources`` (runs at once, threads and
GPUs per run), ``state`` (runs.json), ``tensorboard``, ``runner`` (one scheduling loop; the local process
pool), ``pool`` (what a pool and its run handles offer), ``ray_runner`` and ``ray_node`` (the runs as Ray
tasks on a cluster: the driver's side and the node's), ``command`` (script.py's flags and main); the
report: ``results`` (reading the runs), ``statistics``, ``speed``, ``comparisons`` and ``observations`` (the
numbers), ``figures``, ``summary`` (comparison.json), ``markdown`` (comparison.md) and ``report`` (the entry
points).

The default folder name hashes the trainer flags that define the experiment (those ``trainer.py`` refuses
to change when it resumes a run), so rerunning a command finds its folder and resumes its runs, while
changing e.g. the learning rate starts a new comparison beside the old one. Activations and seeds are not
in the name: adding some to a comparison adds runs to the same folder.
"""
