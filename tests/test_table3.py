"""benchmarks/table3.sh end to end on the CPU: a tiny CLAReSNet seed stopped by its time limit
after two epochs, and RF.

The GPU script must run where a GPU is lent without being debugged there: this runs
every step of it (train.py, eval.py, compare, table3.py) on Indian Pines' paper split.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_script(out: pathlib.Path, **settings: str) -> subprocess.CompletedProcess:
  env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "PYTHONPATH": str(REPO),
         **settings}
  return subprocess.run(["bash", "benchmarks/table3.sh"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_extra(tiny_flags) -> str:
  """table3.sh's EXTRA: the tiny model, with the batches and rate of a quick epoch."""
  return " ".join([*tiny_flags, "--config.batch_size=128", "--config.eval_batch_size=1024",
                   "--config.optimizer.learning_rate=3e-3"])


def process_ends(out: pathlib.Path) -> list[tuple[str, str]]:
  """(process, exit status) of each line of times.tsv, in the order they ended."""
  lines = (out / "times.tsv").read_text().splitlines()
  return [(name, status) for name, _, status in (line.split("\t") for line in lines)]


# Stands in for `timeout` running out: train.py gets SIGTERM mid-epoch once its metrics.jsonl
# holds two epochs, and the exit status is timeout's 124; every other command runs as usual.
STOPPED_AFTER_TWO_EPOCHS = """#!/usr/bin/env bash
[[ "$1" == train.py ]] || exec "$REAL_PYTHON" "$@"
for ((i = 1; i < $#; i++)); do [[ "${!i}" == --workdir ]] && { j=$((i + 1)); dir=${!j}; }; done
"$REAL_PYTHON" "$@" & pid=$!
while (( $(cat "$dir/metrics.jsonl" 2> /dev/null | wc -l) < 2 )); do
  kill -0 $pid 2> /dev/null || { wait $pid; exit; }
  sleep 0.2
done
sleep 1; kill -TERM $pid; wait $pid; exit 124
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory, shared_dir, tiny_extra):
  """table3.sh with one CLAReSNet seed of 100 epochs that TRAIN_SECONDS stops after two, and
  a Random Forest seed."""
  folder = tmp_path_factory.mktemp("table3")
  python = folder / "python"
  python.write_text(STOPPED_AFTER_TWO_EPOCHS)
  python.chmod(0o755)
  out = folder / "out"
  result = run_script(out, PYTHON=str(python), REAL_PYTHON=sys.executable, TRAIN_SECONDS="3600",
                      SEEDS="1", EPOCHS="100", MODELS="rf", COMPARE_SEEDS="1", EXTRA=tiny_extra,
                      MANUAL_DIR=str(shared_dir / "data" / "indian_pines"))
  # The run was cut short, so the script reports failure, but the seed is still tested.
  assert result.returncode == 1, result.stderr[-3000:] + (out / "times.tsv").read_text()
  return out


def test_each_run_writes_its_files(out):
  seed = out / "claresnet" / "seed_42"
  for name in ("metrics.json", "metrics.jsonl", "report.md", "train.log", "eval.log"):
    assert (seed / name).is_file(), name
  assert (out / "baselines" / "rf" / "comparison.md").is_file()
  assert sorted(process_ends(out)) == [("claresnet seed 42", "exit 124"), ("rf", "exit 0")]


def test_table_has_a_row_per_model_with_its_seeds_and_the_papers_numbers(out):
  rows = json.loads((out / "table3.json").read_text())
  assert list(rows) == ["claresnet", "rf"]
  for name, row in rows.items():
    assert [s["run"] for s in row["seeds"]] == ["seed_42"]
    for key in ("overall_accuracy", "balanced_accuracy", "kappa"):
      assert 0.0 <= row[key]["mean"] <= 1.0 and row[key]["std"] == 0.0, (name, key)
      assert row[key]["mean"] == row["seeds"][0][key]
  # RF on the centre pixel's 6 components is far above chance (1/16) on Indian Pines.
  assert rows["rf"]["overall_accuracy"]["mean"] > 0.5
  table = (out / "table3.md").read_text()
  oa = 100 * rows["claresnet"]["overall_accuracy"]["mean"]
  assert f"| claresnet | 1 | {oa:.2f} ± 0.00 | 99.71 ± 0.11 |" in table
  assert "| rf | 1 |" in table and "88.45 ± 0.52" in table


def test_a_seed_stopped_by_train_seconds_is_tested_at_its_best_checkpoint(out):
  seed_dir = out / "claresnet" / "seed_42"
  epochs = len((seed_dir / "metrics.jsonl").read_text().splitlines())
  assert 2 <= epochs < 100
  tested = json.loads((seed_dir / "metrics.json").read_text())
  seed = json.loads((out / "table3.json").read_text())["claresnet"]["seeds"][0]
  assert (seed["epochs"], seed["best_epoch"]) == (epochs, tested["checkpoint_epoch"])
  assert 1 <= seed["best_epoch"] <= epochs and seed["epoch_seconds"] > 0
  oa = 100 * seed["overall_accuracy"]
  assert (f"- claresnet: seed_42 {oa:.2f} ({epochs} epochs, best {seed['best_epoch']}, "
          in (out / "table3.md").read_text())


@pytest.mark.parametrize("settings, message", [
    (dict(SEEDS="0"), "positive integers, got '0'"),
    (dict(EPOCHS="forty"), "positive integers, got 'forty'"),
    (dict(TRAIN_SECONDS="10m"), "positive integers, got '10m'"),
    (dict(MANUAL_DIR="/nonexistent"), "MANUAL_DIR=/nonexistent is not a folder"),
])
def test_bad_settings_are_refused_before_anything_runs(tmp_path, settings, message):
  result = run_script(tmp_path / "out", **settings)
  assert result.returncode == 2 and message in result.stderr
  assert not (tmp_path / "out").exists()
