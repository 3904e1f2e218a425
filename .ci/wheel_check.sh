#!/usr/bin/env bash
# CI step: the package as a user installs it. Builds the sdist and the wheel (python -m build: the wheel from
# the sdist), twine check --strict, installs the wheel into a fresh virtual environment and, from an empty
# folder outside the checkout, runs every keras-frelu command on the embedded digits dataset: a short
# training run, eval on it, a two-activation comparison and check on the dataset folder. Each command's
# output and the files it writes are checked, not only its exit code.
#
#   .ci/wheel_check.sh            # alone; PYTHON=... picks the Python that builds (default .venv/bin/python,
#                                 # else python3); KEEP=1 keeps the temporary folder for a look afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd -P)
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/keras-frelu-wheel.XXXXXX")
work=$(cd "$work" && pwd -P)
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
case "$work/" in "$checkout"/*) echo "wheel_check: $work lies inside the checkout; set TMPDIR elsewhere"; exit 1;; esac

step() { echo "+ [$((SECONDS - start))s] $*"; }
fail() { echo "wheel_check: FAILED: $*" >&2; exit 1; }

# --- Build and check the distributions -------------------------------------------------------------------
step "$python -m build --outdir $work/dist . && twine check --strict"
"$python" -m pip install --quiet build twine >"$work/pip.log" 2>&1 || { tail -n 30 "$work/pip.log"; fail "pip install build twine"; }
"$python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; fail "python -m build"; }
"$python" -m twine check --strict "$work"/dist/*
version=$("$python" -c 'import ast, sys; tree = ast.parse(open("keras_frelu/__init__.py").read())
print(next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
           and getattr(node.targets[0], "id", "") == "__version__"))')
wheel=$(echo "$work"/dist/keras_frelu-"$version"-py3-none-any.whl)
sdist=$(echo "$work"/dist/keras_frelu-"$version".tar.gz)
[ -f "$wheel" ] && [ -f "$sdist" ] || fail "expected $wheel and $sdist, got: $(ls "$work/dist")"
"$python" - "$wheel" "$sdist" <<'EOF'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
tops = {name.split("/")[0] for name in names}
assert {top for top in tops if not top.endswith(".dist-info")} == {"keras_frelu"}, tops
assert "keras_frelu/commands/__init__.py" in names and "keras_frelu/__main__.py" in names
entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
assert "keras-frelu = keras_frelu.commands:run" in entry_points, entry_points
members = {name.split("/", 1)[-1] for name in tarfile.open(sdist).getnames()}
for needed in ("pyproject.toml", "README.md", "CHANGELOG.md", "keras_frelu/commands/__init__.py", "trainer.py"):
    assert needed in members, needed
print(f"wheel: {len(names)} files, only keras_frelu and its metadata, the keras-frelu entry point; sdist complete")
EOF

# --- A fresh virtual environment with the wheel only -------------------------------------------------------
step "$python -m venv $work/venv && pip install $(basename "$wheel")"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel" >"$work/pip.log" 2>&1 || { tail -n 30 "$work/pip.log"; fail "pip install the wheel"; }
unset PYTHONPATH KERAS_BACKEND
export PATH="$work/venv/bin:$PATH" KERAS_FRELU_VERBOSE=0
[ "$(command -v keras-frelu)" = "$work/venv/bin/keras-frelu" ] || fail "keras-frelu is $(command -v keras-frelu)"

run="$work/empty"
mkdir "$run" && cd "$run"
installed=$(python -c 'import keras_frelu; print(keras_frelu.__file__)')
case "$installed" in "$work/venv/"*) ;; *) fail "keras_frelu imported from $installed, not the wheel";; esac

# --- --version and --help: the version of keras_frelu/__init__.py, help without TensorFlow -----------------
step "keras-frelu --version; every command's --help"
[ "$(keras-frelu --version)" = "keras-frelu $version" ] || fail "keras-frelu --version: $(keras-frelu --version)"
[ "$(python -m keras_frelu train --version)" = "keras-frelu $version" ] || fail "train --version"
python -X importtime -m keras_frelu train --help >"$work/help.out" 2>"$work/imports.err"
head -n 1 "$work/help.out" | grep -q '^usage: python -m keras_frelu train ' \
  || fail "python -m keras_frelu train --help: $(head -n 3 "$work/help.out")"
! grep -E '\| +(tensorflow|keras)(\.|$)' "$work/imports.err" >/dev/null || fail "train --help imported TensorFlow or Keras"
for command in train eval compare download check; do
  keras-frelu "$command" --help >"$work/help.out" || fail "keras-frelu $command --help"
  head -n 1 "$work/help.out" | grep -q "^usage: keras-frelu $command " \
    || fail "keras-frelu $command --help: $(head -n 1 "$work/help.out")"
done
[ -z "$(ls -A)" ] || fail "--help wrote files: $(ls -A)"

# --- train: digits converted into ./datasets, the run in ./train_dir ----------------------------------------
step "keras-frelu train --activation relu --max_training_steps 60 ..."
keras-frelu train --activation relu --max_training_steps 60 --log_step 20 --test_sample_step 60 \
  --output_save_step 60 --no_progress >train.out 2>train.err || { cat train.out train.err; fail "keras-frelu train"; }
cat train.out
run_dir=train_dir/digits-relu-reference_cnn-seed0
python - "$run_dir" <<'EOF'
import json, os, re, sys
run_dir = sys.argv[1]
assert os.path.isfile("datasets/digits/data.hdf5"), os.listdir("datasets")
metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
assert metrics["complete"] is True and metrics["step"] == 60, metrics
assert os.listdir(os.path.join(run_dir, "checkpoints")), "no checkpoint"
last = open("train.out").read().strip().splitlines()[-1]
match = re.fullmatch(rf"{re.escape(run_dir)}: step 60, test accuracy (\S+), test loss (\S+), \S+ images/s", last)
assert match, last
assert float(match[1]) == round(metrics["test_accuracy"], 4) and float(match[2]) == round(metrics["test_loss"], 4)
print(f"ok: metrics.json complete at step 60, test accuracy {metrics['test_accuracy']:.4f} as printed")
EOF

# --- eval on that run ------------------------------------------------------------------------------------
step "keras-frelu eval --train_dir $run_dir"
keras-frelu eval --train_dir "$run_dir" >eval.out 2>eval.err || { cat eval.out eval.err; fail "keras-frelu eval"; }
head -n 2 eval.out
python - "$run_dir" <<'EOF'
import json, os, re, sys
run_dir = sys.argv[1]
report = json.load(open(os.path.join(run_dir, "eval.json")))
first = open("eval.out").read().splitlines()[0]
match = re.fullmatch(r"digits test split \((\d+) images\), step 60: accuracy (\S+), loss (\S+)", first)
assert match, first
assert int(match[1]) == report["test_size"] and report["step"] == 60, report
assert float(match[2]) == round(report["accuracy"], 4), (match[2], report["accuracy"])
assert os.path.isfile(os.path.join(run_dir, "confusion.png"))
assert sum(map(sum, report["confusion_matrix"])) == report["test_size"]
print(f"ok: eval.json accuracy {report['accuracy']:.4f} as printed, confusion.png written")
EOF

# --- compare: two activations, each run a python -m keras_frelu train child -------------------------------
step "keras-frelu compare --activations relu lrelu --exit_when_done --no_tensorboard -- --max_training_steps 40 ..."
keras-frelu compare --activations relu lrelu --exit_when_done --no_tensorboard -- --max_training_steps 40 \
  --log_step 20 --test_sample_step 40 --output_save_step 40 --no_monitor >compare.out 2>compare.err \
  || { tail -n 40 compare.out compare.err; fail "keras-frelu compare"; }
tail -n 5 compare.out
python - <<'EOF'
import glob, json, os
folders = glob.glob("train_dir/compare-digits*")
assert len(folders) == 1, folders
folder = folders[0]
for name in ("comparison.md", "comparison.json", "runs.json"):
    assert os.path.getsize(os.path.join(folder, name)) > 0, name
runs = json.load(open(os.path.join(folder, "runs.json")))["runs"]
assert sorted(run["activation"] for run in runs) == ["lrelu", "relu"], runs
assert all(run["status"] == "complete" and run["exit_code"] == 0 for run in runs), runs
for run in runs:
    metrics = json.load(open(os.path.join(folder, run["name"], "metrics.json")))
    assert metrics["complete"] is True and metrics["step"] == 40, (run["name"], metrics)
comparison = json.load(open(os.path.join(folder, "comparison.json")))
assert comparison["tally"] == {"complete": 2}, comparison["tally"]
assert sorted(run["activation"] for run in comparison["runs"]) == ["lrelu", "relu"]
assert "lrelu" in open(os.path.join(folder, "comparison.md")).read()
print(f"ok: {folder}: comparison.md, comparison.json, both runs complete at step 40")
EOF

# --- check on the dataset folder that train converted -------------------------------------------------------
step "keras-frelu check datasets/digits"
keras-frelu check datasets/digits >check.out || { cat check.out; fail "keras-frelu check"; }
cat check.out
head -n 1 check.out | grep -q "^datasets/digits: valid " || fail "check did not say valid"
grep -q "examples       1,797" check.out || fail "check: not the 1,797 digits"

[ "$(ls -A | LC_ALL=C sort | tr '\n' ' ')" = "check.out compare.err compare.out datasets eval.err eval.out train.err train.out train_dir " ] \
  || fail "unexpected files in the working folder: $(ls -A)"
step "wheel check passed"
