"""The comparison report over run folders built by hand to the trainer's contract (config.json, metrics.json,
event files written with tf.summary, predictions.npz): significance against scipy called here, the
verdict, learning speed, the figures, the observations and comparison.json."""

import json

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from helpers import call_cli
from PIL import Image
from tensorboard.plugins.histogram import metadata as histogram_metadata

from keras_frelu import events
from keras_frelu.compare import markdown, report, state, statistics
from keras_frelu.errors import UsageError

RUN = "digits-{}-reference_cnn-seed{}"
LAYERS = ("act_conv1", "act_conv2", "act_conv3", "act_fc1", "act_fc2")
EXAMPLES = 360  # the digits test split
FINAL = 1000
HISTOGRAM = histogram_metadata.create_summary_metadata(display_name="", description="")


def write_events(log_dir, scalars=None, histograms=None, writer=None):
    """Scalars ``{tag: [(step, value)]}`` and histograms ``{tag: [(step, (k, 3) buckets)]}``, as the trainer
    writes them."""
    writer = writer or tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for tag, curve in (scalars or {}).items():
            for step, value in curve:
                tf.summary.scalar(tag, value, step=step)
        for tag, curve in (histograms or {}).items():
            for step, buckets in curve:
                tf.summary.write(tag, tf.constant(buckets, tf.float64), step=step, metadata=HISTOGRAM)
    writer.close()


def labels(seed=0):
    return np.random.default_rng(100 + seed).integers(0, 10, EXAMPLES)


def correctness(accuracy, seed, salt=0):
    """Which of the test examples a run gets right: ``accuracy`` of them, chosen by (seed, salt)."""
    correct = np.zeros(EXAMPLES, dtype=bool)
    correct[np.random.default_rng(1000 * seed + salt).choice(EXAMPLES, round(accuracy * EXAMPLES),
                                                             replace=False)] = True
    return correct


def write_run(folder, activation, seed, correct=None, *, status="complete", accuracy=None, predictions=True,
              validation=None, train_loss=None, monitor=None, histograms=None):
    """One run directory; ``correct`` (per test example) sets the final test accuracy and predictions.npz."""
    name = RUN.format(activation, seed)
    run_dir = folder / name
    run_dir.mkdir(parents=True)
    accuracy = float(correct.mean()) if correct is not None else accuracy
    (run_dir / "config.json").write_text(json.dumps(
        {"flags": {"dataset": "digits", "activation": activation, "seed": seed, "validation_fraction": 0.1},
         "dataset": {"name": "digits", "num_classes": 10, "test_size": EXAMPLES}}))
    (run_dir / "metrics.json").write_text(json.dumps(
        {"complete": status == "complete", "step": FINAL, "test_accuracy": accuracy,
         "test_accuracy_at_best_validation": accuracy - 0.001}))
    write_events(run_dir / "test", {"accuracy": [(500, accuracy - 0.05), (FINAL, accuracy)],
                                    "loss": [(500, 0.5), (FINAL, 1 - accuracy)]})
    write_events(run_dir / "train", {"loss": train_loss or [(50, 2.0), (FINAL, 0.1)],
                                     "images_per_s": [(50, 900.0), (FINAL, 1000.0)]})
    if validation:
        write_events(run_dir / "validation", {"accuracy": validation})
    if monitor or histograms:
        write_events(run_dir / "activations", monitor, histograms)
    if correct is not None and predictions:
        truth = labels()
        np.savez(run_dir / "predictions.npz", predicted=np.where(correct, truth, (truth + 1) % 10), label=truth,
                 label_probability=np.full(EXAMPLES, 0.5, np.float32), step=np.int64(FINAL))
    return name, status


def write_comparison(folder, runs):
    """runs.json for ``runs`` (name, status) in plan order."""
    recorded = {"trainer_args": [], "runs": {}}
    for name, status in runs:
        _, activation, _, seed = name.split("-")
        recorded["runs"][name] = {"dataset": "digits", "activation": activation, "seed": int(seed[4:]),
                                  "status": status, "message": "done" if status == "complete" else "diverged"}
    state.write_state(str(folder), recorded)


def read_summary(folder):
    return json.loads((folder / "comparison.json").read_text())


def comparison_of(summary, activation):
    (dataset,) = summary["datasets"]
    return next(entry for entry in dataset["comparisons"] if entry["activation"] == activation)


def holm_of_two(p, q):
    """Holm by hand for two p-values: the smaller doubled, the larger no smaller than that."""
    low = min(1.0, 2 * min(p, q))
    return (low, max(low, max(p, q))) if p <= q else (max(low, max(p, q)), low)


# ------------------------------------------------------------------------------------------- significance

def test_clearly_better_activation_is_named_and_a_failed_run_left_out(tmp_path):
    folder = tmp_path / "compare-digits"
    runs, correct = [], {}
    for seed in range(3):  # seed-major, as the plan; selu predicts exactly as relu
        for activation, accuracy, salt in (("relu", 0.88 + 0.01 * seed, 1), ("lrelu", 0.97 - 0.005 * seed, 2),
                                           ("selu", 0.88 + 0.01 * seed, 1)):
            correct[activation, seed] = correctness(accuracy, seed, salt)
            runs.append(write_run(folder, activation, seed, correct[activation, seed]))
    runs.append(write_run(folder, "lrelu", 3, correctness(0.1, 3), status="failed"))  # diverged: left out
    write_comparison(folder, runs)

    written = report.write_report(str(folder))
    summary = read_summary(folder)
    (dataset,) = summary["datasets"]
    assert dataset["baseline"] == "relu" and dataset["winner"] == "lrelu"
    assert dataset["headline"].startswith("lrelu is significantly better than the baseline relu: +")

    # Final test accuracies as the event files store them (float32), in percentage points.
    points = {activation: [100 * float(np.float32(correct[activation, seed].mean())) for seed in range(3)]
              for activation in ("relu", "lrelu", "selu")}
    welch = {activation: scipy.stats.ttest_ind(points[activation], points["relu"], equal_var=False)
             for activation in ("lrelu", "selu")}
    lrelu, selu = comparison_of(summary, "lrelu"), comparison_of(summary, "selu")
    assert lrelu["seeds"] == [3, 3]  # the failed seed is not among them
    assert lrelu["difference_pp"] == pytest.approx(np.mean(points["lrelu"]) - np.mean(points["relu"]))
    assert lrelu["tests"]["welch"]["p_value"] == pytest.approx(welch["lrelu"].pvalue, rel=1e-9)
    interval = welch["lrelu"].confidence_interval(0.95)
    assert lrelu["interval_pp"] == pytest.approx([interval.low, interval.high], rel=1e-9)
    assert selu["tests"]["welch"]["p_value"] == pytest.approx(1.0)  # identical accuracies
    expected = holm_of_two(welch["lrelu"].pvalue, welch["selu"].pvalue)
    assert (lrelu["tests"]["welch"]["p_corrected"], selu["tests"]["welch"]["p_corrected"]) == pytest.approx(expected)
    assert lrelu["test_used"] == "welch" and lrelu["significant"] and lrelu["p_corrected"] < 0.05
    assert not selu["significant"]

    # The paired test: discordant examples counted here, pooled over the three seed pairs.
    b = sum(int(np.sum(correct["lrelu", seed] & ~correct["relu", seed])) for seed in range(3))
    c = sum(int(np.sum(~correct["lrelu", seed] & correct["relu", seed])) for seed in range(3))
    paired = lrelu["tests"]["paired"]
    assert (paired["a_only"], paired["b_only"], paired["pairs"], paired["examples"]) == (b, c, 3, EXAMPLES)
    assert paired["p_value"] == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
    assert selu["tests"]["paired"]["p_value"] == 1.0  # identical predictions
    assert selu["tests"]["paired"]["p_corrected"] == 1.0

    # comparison.md is rendered from comparison.json, and says the same.
    markdown_text = (folder / "comparison.md").read_text()
    assert markdown_text == written.markdown == markdown.render(summary, report.REPORT_FIGURE, "logs")
    assert "- **digits:** **lrelu** is significantly better than the baseline relu: +" in markdown_text
    rows = table(markdown_text, "activation", "Final test accuracy against the baseline")
    assert rows["lrelu"]["verdict"] == "better (Welch's t-test)" and rows["lrelu"]["seeds"] == "3 of 4 (1 failed)"
    assert rows["selu"]["verdict"] == "no significant difference (Welch's t-test)"
    assert rows["relu (baseline)"]["verdict"] == "baseline"
    terminal = report.report_text(written)
    assert "- **digits:** **lrelu** is significantly better" in terminal and "comparison.json" in terminal


def test_identical_activations_differ_by_nothing_significant_and_power_is_stated(tmp_path):
    folder = tmp_path / "compare-digits"
    runs, points = [], {}
    accuracies = {"relu": (355, 352), "lrelu": (355, 352), "frelu": (354, 351)}  # out of 360: one image apart
    for seed in range(2):
        for activation, right in accuracies.items():
            correct = np.zeros(EXAMPLES, dtype=bool)
            correct[:right[seed]] = True  # relu and lrelu: the same examples right; frelu one fewer
            points.setdefault(activation, []).append(100 * float(np.float32(correct.mean())))  # as stored
            runs.append(write_run(folder, activation, seed, correct))
    write_comparison(folder, runs)

    report.write_report(str(folder))
    summary = read_summary(folder)
    (dataset,) = summary["datasets"]
    assert dataset["winner"] is None
    assert dataset["headline"].startswith("no activation differs significantly from the baseline relu (α = 0.05")
    lrelu, frelu = comparison_of(summary, "lrelu"), comparison_of(summary, "frelu")
    assert lrelu["difference_pp"] == 0 and lrelu["tests"]["paired"]["p_value"] == 1.0
    assert lrelu["tests"]["welch"]["p_value"] == pytest.approx(1.0)
    assert frelu["tests"]["welch"]["p_value"] == pytest.approx(
        scipy.stats.ttest_ind(points["frelu"], points["relu"], equal_var=False).pvalue, rel=1e-9)

    # What two seeds could detect: the seed std pooled over the three activations; at level alpha / 2 (two
    # comparisons) scipy's simulated t-test finds that difference 80% of the time.
    pooled = np.sqrt(np.mean([np.var(values, ddof=1) for values in points.values()]))
    assert dataset["pooled_seed_std_pp"] == pytest.approx(pooled)
    level, detectable = 0.05 / 2, frelu["detectable_pp"]
    rng = np.random.default_rng(5)
    simulated = scipy.stats.power(scipy.stats.ttest_ind, (lambda size: rng.normal(detectable, pooled, size),
                                                          lambda size: rng.normal(0.0, pooled, size)),
                                  (2, 2), significance=level, n_resamples=40000).power
    assert simulated == pytest.approx(0.8, abs=0.015)
    needed = statistics.seeds_needed(frelu["difference_pp"], pooled, level)
    assert frelu["seeds_needed"] == needed and needed > 2
    assert f"could detect a difference of about {detectable:.2f} pp" in dataset["headline"]
    assert f"frelu's observed {frelu['difference_pp']:+.2f} pp would need about {needed} seeds" in dataset["headline"]


def test_one_seed_gets_a_verdict_from_the_paired_test_and_baseline_alpha_flags(tmp_path):
    folder = tmp_path / "compare-digits"
    relu, frelu = correctness(0.85, 0, 1), correctness(0.97, 0, 2)
    write_comparison(folder, [write_run(folder, "relu", 0, relu), write_run(folder, "frelu", 0, frelu)])

    report.write_report(str(folder))
    summary = read_summary(folder)
    entry = comparison_of(summary, "frelu")
    assert not entry["tests"]["welch"]["available"] and "has 1 and 1" in entry["tests"]["welch"]["reason"]
    b, c = int(np.sum(frelu & ~relu)), int(np.sum(~frelu & relu))
    assert entry["test_used"] == "paired" and entry["significant"]
    assert entry["p_value"] == entry["p_corrected"] == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue)
    assert summary["datasets"][0]["winner"] == "frelu"

    # --baseline frelu through script.py: relu is then significantly worse, frelu the winner as the baseline;
    # --alpha reaches the report.
    code, out, err = call_cli("script.py", "--report_only", folder, "--baseline", "frelu", "--alpha", "0.01")
    assert code == 0, err
    summary = read_summary(folder)
    (dataset,) = summary["datasets"]
    assert summary["alpha"] == 0.01 and dataset["baseline"] == "frelu" and dataset["winner"] == "frelu"
    assert dataset["headline"].startswith("the baseline frelu is significantly better than every other activation")
    assert "- **digits:** the baseline **frelu** is significantly better than every other activation" in out

    with pytest.raises(UsageError, match="--baseline selu is not an activation of this comparison; choose one of"):
        report.write_report(str(folder), baseline="selu")
    for alpha in (0, 1.5, float("nan")):
        with pytest.raises(UsageError, match="--alpha must be a number between 0 and 1"):
            report.write_report(str(folder), alpha=alpha)
    code, out, err = call_cli("script.py", "--report_only", folder, "--alpha", "2")
    assert code == 2 and err.strip().splitlines() == [
        "script.py: error: argument --alpha: must be between 0 and 1 (exclusive), got 2; e.g. 0.05 (see --help)"]
    code, out, err = call_cli("script.py", "--baseline", "nope", "--no_tensorboard")
    assert code == 2 and "--baseline: " in err and len(err.strip().splitlines()) == 1
    code, out, err = call_cli("script.py", "--activations", "relu", "frelu", "--baseline", "selu")
    assert code == 2 and "--baseline selu is not among --activations (relu frelu)" in err


def table(text, first_header, after):
    """The markdown table whose header starts with ``first_header``, first after the line starting ``after``,
    as ``{first cell: {header: cell}}``."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if after in line)
    start = next(index for index in range(start, len(lines)) if lines[index].startswith(f"| {first_header} |"))
    cells = lambda line: [cell.strip() for cell in line.strip().strip("|").split("|")]  # noqa: E731
    header, rows = cells(lines[start]), {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows[cells(line)[0]] = dict(zip(header, cells(line)))
    return rows


# -------------------------------------------------------------------- learning speed, figures, observations

def monitor_scalars(activation, seed):
    """The ActivationMonitor's scalars at steps 100..1000 for one run, with features the rules must find."""
    steps = range(100, FINAL + 1, 100)
    scalars = {}
    for index, layer in enumerate(LAYERS):
        for step in steps:
            progress = step / FINAL
            if activation == "selu":  # settles at mean 0, std 1 from step 500 on
                mean, std = (0.02 * (-1) ** seed, 1.0 + 0.03 * seed) if step >= 500 else (0.5, 1.6)
            else:
                mean, std = 0.3 + 0.1 * index, 0.5 + progress
            dead = 0.38 * progress if activation == "relu" and layer == "act_conv2" else 0.0
            if activation == "flexrelu" and layer == "act_conv1":
                dead = 0.9  # never positive below its bias of about -1, yet not dead: no observation
            for name, value in (("mean", mean), ("std", std), ("dead_fraction", dead),
                                ("negative_fraction", 0.4 if activation != "relu" else 0.0)):
                scalars.setdefault(f"activations/{layer}/{name}", []).append((step, value))
    for layer, norm in (("conv1", 0.05), ("fc1", 0.2), ("logits", 0.5)):
        scale = 15.0 if activation == "selu" and layer == "conv1" else 1.0
        scalars[f"gradient_norm/{layer}"] = [(step, norm * scale * (1 + seed) / (1 + step / 500)) for step in steps]
    if activation == "flexrelu":
        for layer in LAYERS:
            # act_fc1's bias crosses zero at step 1,200 of a longer run; here it crosses at 700 in seed 1 only.
            crosses = layer == "act_fc1" and seed == 1
            scalars[f"parameters/{layer}/bias"] = [(step, -1.0 + (step / 600 if crosses else 0.1 * step / FINAL))
                                                   for step in steps]
    return scalars


def buckets(low, high, counts):
    edges = np.linspace(low, high, len(counts) + 1)
    return np.stack([edges[:-1], edges[1:], np.asarray(counts, np.float64)], axis=1)


def final_buckets(activation, seed, layer):
    """Empty outer buckets, as the monitor's fixed edges leave them."""
    return buckets(-1.0 - seed, 2.0 + LAYERS.index(layer),
                   [0, 1 + seed, 5, 40 if activation == "relu" else 9, 3, 2 * (activation != "selu"), 0])


def test_learning_speed_figures_and_observations(tmp_path):
    folder = tmp_path / "compare-digits"
    runs, validation, losses = [], {}, {}
    activations = ("relu", "selu", "flexrelu")
    for seed in range(2):
        for number, activation in enumerate(activations):
            # Validation every 100 steps, rising at its own pace to its own best: the target is the lowest best.
            best, pace = 0.93 + 0.01 * number + 0.004 * seed, 150 + 40 * number + 10 * seed
            validation[activation, seed] = [(step, best * (1 - np.exp(-step / pace)))
                                            for step in range(100, FINAL + 1, 100)]
            losses[activation, seed] = [(step, 2.0 / (1 + (number + 1) * step / 200))
                                        for step in range(50, FINAL + 1, 50)]
            histograms = {f"activations/{layer}/values": [(500, buckets(0, 1, [1, 1, 1, 1, 1])),
                                                           (FINAL, final_buckets(activation, seed, layer))]
                          for layer in LAYERS}
            runs.append(write_run(folder, activation, seed, correctness(0.9, seed, number),
                                  predictions=activation != "selu" or seed == 0,
                                  validation=validation[activation, seed],
                                  train_loss=losses[activation, seed], monitor=monitor_scalars(activation, seed),
                                  histograms=histograms))
    write_comparison(folder, runs)
    # flexrelu seed 0 was resumed from step 800: its final histograms were rewritten after the restart.
    log_dir = folder / RUN.format("flexrelu", 0) / "activations"
    write_events(log_dir, histograms={f"activations/{layer}/values": [(900, buckets(0, 9, [1, 1])),
                                                                      (FINAL, final_buckets("flexrelu", 0, layer))]
                                      for layer in LAYERS}, writer=events.resumed_writer(str(log_dir), 800))

    written = report.write_report(str(folder))
    summary = read_summary(folder)
    (dataset,) = summary["datasets"]

    # Learning speed: the common target, interpolated steps (different curves, different steps), loss area.
    stored = {key: [(step, float(np.float32(value))) for step, value in curve]  # event files hold float32
              for key, curve in validation.items()}
    target = min(max(value for _, value in curve) for curve in stored.values())
    assert dataset["target_validation_accuracy"] == target
    by_name = {run["name"]: run for run in summary["runs"]}
    steps = {}
    for (activation, seed), curve in stored.items():
        first = next(index for index, (_, value) in enumerate(curve) if value >= target)
        assert first > 0
        (step0, value0), (step1, value1) = curve[first - 1], curve[first]
        steps[activation, seed] = step0 + (target - value0) / (value1 - value0) * (step1 - step0)
        run = by_name[RUN.format(activation, seed)]
        assert run["steps_to_target"] == pytest.approx(steps[activation, seed], rel=1e-9)
        loss_steps, loss = np.array(losses[activation, seed], dtype=np.float32).astype(np.float64).T
        assert run["mean_training_loss"] == pytest.approx(np.trapezoid(loss, loss_steps) / (FINAL - 50), rel=1e-9)
    assert len({round(value, 3) for value in steps.values()}) == len(steps)  # every run its own step
    groups = {group["activation"]: group for group in dataset["groups"]}
    assert groups["selu"]["steps_to_target"]["mean"] == pytest.approx(np.mean([steps["selu", 0], steps["selu", 1]]))
    assert groups["selu"]["steps_to_target"]["std"] == pytest.approx(np.std([steps["selu", 0], steps["selu", 1]],
                                                                            ddof=1))
    # A run without predictions.npz: the paired test says why; Welch's still decides.
    selu = comparison_of(summary, "selu")
    assert selu["tests"]["paired"]["reason"] == f"no predictions.npz in {RUN.format('selu', 1)}"
    assert f"{RUN.format('selu', 1)}: no predictions.npz" in dataset["notes"]
    assert f"selu: paired exact test unavailable: no predictions.npz in {RUN.format('selu', 1)}" in written.markdown

    # Figures: files that decode as PNG, as large as their figure, one row per monitored layer.
    figures = dataset["figures"]
    assert figures["activations"]["rows"] == list(LAYERS) == figures["histograms"]["rows"]
    assert figures["activations"]["columns"] == ["mean", "std", "dead_fraction", "negative_fraction"]
    assert figures["gradients"]["rows"] == ["conv1", "fc1", "logits"]
    assert figures["parameters"]["rows"] == list(LAYERS) and figures["parameters"]["columns"] == [["flexrelu", "bias"]]
    for kind, plan in figures.items():
        figure = report.draw(kind, "digits", written.groups["digits"], plan, {name: "C0" for name in activations})
        grid = figure.axes[0].get_subplotspec().get_gridspec()
        assert (grid.nrows, grid.ncols) == (len(plan["rows"]), len(plan["columns"])), kind
        with Image.open(folder / plan["file"]) as image:
            assert image.format == "PNG"
            assert image.size == tuple(round(inches * 100) for inches in figure.get_size_inches())
            assert np.asarray(image.convert("RGB")).std() > 0
        assert f"]({plan['file']})" in written.markdown
    with Image.open(folder / "comparison.png") as image:
        assert image.format == "PNG" and image.size[0] > 500

    # The histograms are the final step's buckets at full resolution (the resumed run's rewritten ones), as
    # densities: one outline per run, in its activation's colour.
    palette = {"relu": "#ff0000", "selu": "#00ff00", "flexrelu": "#0000ff"}
    histogram_figure = report.draw("histograms", "digits", written.groups["digits"], figures["histograms"], palette)
    for row, layer in enumerate(LAYERS):
        outlines = histogram_figure.axes[row].patches
        assert len(outlines) == 6
        for outline, (activation, seed) in zip(outlines, [(name, seed) for name in activations for seed in range(2)]):
            expected = final_buckets(activation, seed, layer)
            widths = expected[:, 1] - expected[:, 0]
            data = outline.get_data()
            density = expected[:, 2] / (expected[:, 2].sum() * widths)
            assert np.allclose(data.values, np.where(density > 0, density, np.nan), equal_nan=True)
            assert np.allclose(data.edges, np.append(expected[:, 0], expected[-1, 1]))
            assert outline.get_edgecolor()[:3] == pytest.approx(
                tuple(int(palette[activation][i:i + 2], 16) / 255 for i in (1, 3, 5)))
        # The value axis spans the buckets that hold values, over every run.
        occupied = [final_buckets(name, seed, layer) for name in activations for seed in range(2)]
        low = min(edges[edges[:, 2] > 0, 0].min() for edges in occupied)
        high = max(edges[edges[:, 2] > 0, 1].max() for edges in occupied)
        assert histogram_figure.axes[row].get_xlim() == pytest.approx((low, high))

    # Observations: each from its rule, with its number and figure.
    texts = [entry["text"] for entry in dataset["observations"]]
    activations_file, parameters_file = figures["activations"]["file"], figures["parameters"]["file"]
    assert "relu: 38% of act_conv2's units dead at the end (selu 0%, flexrelu 0%)" in texts
    assert not any(text.startswith("flexrelu: 90%") for text in texts)  # negative outputs: units still alive
    for layer in LAYERS:
        assert (f"selu keeps {layer}'s mean within ±0.1 and std within 0.9–1.1 from step 500 on (self-normalising)"
                in texts)
    assert not any(text.startswith(("relu keeps", "flexrelu keeps")) for text in texts)
    assert any(text.startswith("flexrelu seed 1: act_fc1's bias became positive at step 700 and ends at 0.667")
               for text in texts)
    assert not any("seed 0:" in text and "bias" in text for text in texts)
    ratio = 15.0
    assert f"selu: conv1's gradient norm at the end is {ratio:.3g}× relu's" in " ".join(texts)
    figure_of = {entry["rule"]: entry["figure"] for entry in dataset["observations"]}
    assert figure_of == {"dead": activations_file, "self_normalising": activations_file,
                         "bias_positive": parameters_file, "gradient": figures["gradients"]["file"]}
    dead = next(entry for entry in dataset["observations"] if entry["rule"] == "dead")
    assert dead["values"]["dead_fraction"] == pytest.approx(0.38, rel=1e-6)
    assert f"- relu: 38% of act_conv2's units dead at the end (selu 0%, flexrelu 0%) ([{activations_file}]" \
           in written.markdown


def test_report_of_old_run_folders_says_what_is_missing(tmp_path):
    """Runs from before validation/ and predictions.npz: the report still works and says what it lacks."""
    folder = tmp_path / "compare-digits"
    runs = [write_run(folder, activation, seed, accuracy=accuracy)
            for seed, pair in enumerate(((0.9, 0.95), (0.91, 0.97)))
            for activation, accuracy in zip(("relu", "lrelu"), pair)]
    write_comparison(folder, runs)
    written = report.write_report(str(folder))
    summary = read_summary(folder)
    (dataset,) = summary["datasets"]
    entry = comparison_of(summary, "lrelu")
    assert entry["tests"]["paired"]["reason"].startswith("no predictions.npz in ")
    assert entry["test_used"] == "welch"
    assert dataset["target_validation_accuracy"] is None
    assert all(run["steps_to_target"] is None for run in summary["runs"])
    assert "learning speed (steps to target) unavailable: no complete run has validation/ events" in dataset["notes"]
    assert dataset["figures"] == {"activations": None, "histograms": None, "gradients": None, "parameters": None}
    assert "(no gradient_norm/ events in the complete runs)" in written.markdown
    assert dataset["observations"] == []


def test_report_only_refuses_runs_of_different_experiments(tmp_path):
    folder = tmp_path / "mixed"
    write_comparison(folder, [write_run(folder, "relu", 0, correctness(0.9, 0)),
                              write_run(folder, "selu", 0, correctness(0.8, 0))])
    config_path = folder / RUN.format("selu", 0) / "config.json"
    config = json.loads(config_path.read_text())
    config["flags"]["learning_rate"] = 0.01  # trained otherwise than the relu run
    config_path.write_text(json.dumps(config))
    before = sorted(path.name for path in folder.iterdir())
    code, out, err = call_cli("script.py", "--report_only", folder)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert f"{folder} holds runs of different experiments: {RUN.format('relu', 0)} has --learning_rate None, " \
           f"{RUN.format('selu', 0)} has 0.01" in line
    assert sorted(path.name for path in folder.iterdir()) == before  # no report written


def test_histogram_value_axis_is_symmetric_log_when_values_reach_far():
    """The monitor's fixed bucket edges run to ±8192: a few far values must not squash the rest."""
    from keras_frelu.compare import figures, results

    near = buckets(-1.0, 1.0, [1, 5, 5, 1])
    far = np.concatenate([near, [[1.0, 5.0, 0.0], [5.0, 1e3, 2.0]]])
    for histogram, scale, high in ((near, "linear", 1.0), (far, "symlog", 1e3)):
        run = results.RunResult("run", "digits", "relu", 0, "complete", histograms={"act_fc1": (FINAL, histogram)})
        figure = figures.histograms_figure("digits", [results.Group("digits", "relu", [run])], ["act_fc1"],
                                           {"relu": "C0"})
        assert figure.axes[0].get_xscale() == scale and figure.axes[0].get_xlim() == pytest.approx((-1.0, high))


# ------------------------------------------------------------------------------------ controls and costs

def test_an_activation_against_its_control_and_the_cost_table(tmp_path):
    """frelu clearly above its control and relu: the control comparison is Holm-corrected with the baseline
    comparisons, its finding says the gain is the condition, and the cost table holds the runs' own figures."""
    from keras_frelu import costs, models

    folder = tmp_path / "controls"
    accuracy = {"relu": 0.80, "frelu": 0.90, "frelu_control": 0.81}
    speed = {"relu": (1000.0, 980.0, 1020.0), "frelu": (800.0, 760.0, 790.0), "frelu_control": (780.0, 770.0, 800.0)}
    memory = {"relu": 500.0, "frelu": 650.0, "frelu_control": 640.0}
    runs = []
    for activation in accuracy:
        for seed in range(3):
            runs.append(write_run(folder, activation, seed,
                                  correctness(accuracy[activation] + 0.01 * seed, seed, salt=len(activation))))
            run_dir = folder / RUN.format(activation, seed)
            config = json.loads((run_dir / "config.json").read_text())
            config["flags"].update(model="reference_cnn", batch_size=64)
            config["dataset"].update(image_shape=[8, 8, 1])
            (run_dir / "config.json").write_text(json.dumps(config))
            metrics = json.loads((run_dir / "metrics.json").read_text())
            metrics.update(images_per_s=speed[activation][seed], peak_memory_mb=memory[activation] + seed)
            (run_dir / "metrics.json").write_text(json.dumps(metrics))
    write_comparison(folder, runs)
    report.write_report(str(folder))
    (dataset,) = read_summary(folder)["datasets"]

    # Holm over the three comparisons together (relu is the baseline), by hand.
    entries = [*dataset["comparisons"], *dataset["controls"]]
    assert [(entry["activation"], entry["baseline"]) for entry in entries] == [
        ("frelu", "relu"), ("frelu_control", "relu"), ("frelu", "frelu_control")]
    p = [entry["tests"]["welch"]["p_value"] for entry in entries]
    order = np.argsort(p)
    expected, running = [0.0] * 3, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p[index]))
        expected[index] = running
    assert [entry["tests"]["welch"]["p_corrected"] for entry in entries] == pytest.approx(expected, rel=1e-12)
    (control,) = dataset["controls"]
    assert control["significant"] and control["difference_pp"] > 0
    assert control["finding"].startswith("frelu beats its control frelu_control by +")
    assert "the gain is frelu's own condition (the max with x), not the extra convolution" in control["finding"]

    rows = {row["activation"]: row for row in dataset["costs"]}
    for activation, row in rows.items():
        model = models.reference_cnn((8, 8, 1), 10, activation=activation)
        assert (row["parameters"], row["activation_parameters"]) == costs.trainable_parameters(model)
        assert row["flops_per_image"] == costs.forward_flops(model)
        assert row["peak_memory_mb"] == memory[activation] + 1  # the median seed's
        step_times = [64 / value for value in speed[activation]]
        assert row["step_time_s"] == pytest.approx(float(np.median(step_times)), rel=1e-12)
    assert rows["frelu"]["step_time_ratio"] == pytest.approx(
        np.median([64 / value for value in speed["frelu"]]) / np.median([64 / value for value in speed["relu"]]))
    assert rows["frelu"]["parameters"] == rows["frelu_control"]["parameters"] > rows["relu"]["parameters"]

    markdown_text = (folder / "comparison.md").read_text()
    ratio = rows["frelu"]["step_time_ratio"]
    extra = 100 * (rows["frelu"]["parameters"] / rows["relu"]["parameters"] - 1)
    assert f"at {ratio:.2f}x the step time and {extra:+.1f}% parameters" in markdown_text  # the verdict's price
    assert "### Each activation against its compute-matched control" in markdown_text
    assert "### What each activation costs" in markdown_text
    cost_rows = table(markdown_text, "activation", "What each activation costs")
    assert cost_rows["frelu"]["step time vs relu"] == f"{ratio:.2f}x"
    assert cost_rows["relu"]["step time vs relu"] == "1.00x"
    assert "- frelu beats its control frelu_control by +" in report.report_text(report.build_report(str(folder)))
