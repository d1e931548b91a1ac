"""Every command shown in README.md, BENCHMARKS.md and docs/ parses, and the README's recipes run.

Commands are the lines of ```bash blocks. Each one that starts a command of this
project (train.py, eval.py, predict.py, python -m claresnet_jax.*) has its flags and
`--config.*` overrides parsed against the named config, as the command itself would
parse them, without running it.
"""
import collections
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from claresnet_jax import convert, data

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "BENCHMARKS.md", *sorted((REPO / "docs").glob("*.md"))]

# Parses each command line given (a JSON list of argument lists) with the flags that
# importing the entry point defines; prints the problems as a JSON list.
PARSE_PROGRAM = """
import json, runpy, sys
from absl import flags
target, commands = sys.argv[1], json.loads(sys.argv[2])
if target.endswith(".py"):
  runpy.run_path(target, run_name="docs_check")
else:
  runpy.run_module(target, run_name="docs_check")
default_config = flags.FLAGS["config"].default_as_str if "config" in flags.FLAGS else None
default_config = None if default_config in (None, "'None'") else default_config.strip("'")
problems = []
for args in commands:
  for name in [n for n in flags.FLAGS if n.startswith("config.")]:
    delattr(flags.FLAGS, name)  # the previous command's --config.* overrides
  sys.argv = [target, *args]  # where ml_collections looks for --config.* overrides
  try:
    if default_config and not any(a == "--config" or a.startswith("--config=") for a in args):
      flags.FLAGS["config"].parse(default_config)  # registers the overrides
    rest = flags.FLAGS(sys.argv)
    if len(rest) > 1:
      problems.append(f"{' '.join(args)}: unexpected arguments {rest[1:]}")
  except Exception as e:  # absl and ml_collections raise several error types
    problems.append(f"{' '.join(args)}: {type(e).__name__}: {e}")
  flags.FLAGS.unparse_flags()
print(json.dumps(problems))
"""


def bash_commands(markdown: str) -> list[str]:
  """The command lines of the ```bash blocks: continuations joined, `&&` chains split."""
  commands = []
  for block in re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.M | re.S):
    for line in block.replace("\\\n", " ").splitlines():
      commands += [part.strip() for part in re.split(r"&&|;", line) if part.strip()]
  return commands


def project_command(line: str) -> tuple[str, list[str]] | None:
  """(entry point, arguments) of a line that runs a command of this project, else None.

  Leading VAR=value assignments and wrappers (taskset -c N) are skipped.
  """
  words = shlex.split(line, comments=True)
  while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
    words = words[1:]
  if words[:1] == ["taskset"]:
    words = words[3:]
  if not words or words[0] not in ("python", "python3"):
    return None
  if words[1] == "-m":
    return (words[2], words[3:]) if words[2].startswith("claresnet_jax") else None
  return words[1], words[2:]


def parse_problems(commands: list[tuple[str, list[str]]]) -> list[str]:
  """What is wrong with each command's arguments (nothing, for a correct one)."""
  by_entry = collections.defaultdict(list)
  for entry, args in commands:
    by_entry[entry].append(args)
  problems = []
  for entry, arg_lists in by_entry.items():
    if entry == "claresnet_jax.convert":  # argparse, not absl
      for args in arg_lists:
        try:
          convert.argument_parser().parse_args(args)
        except SystemExit:
          problems.append(f"{entry} {' '.join(args)}: not accepted by its argument parser")
      continue
    if entry.endswith(".py") and not (REPO / entry).is_file():
      problems.append(f"{entry}: no such script")
      continue
    result = subprocess.run([sys.executable, "-c", PARSE_PROGRAM, entry, json.dumps(arg_lists)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    if result.returncode:
      problems.append(f"{entry}: {result.stderr[-2000:]}")
    else:
      problems += [f"{entry} {p}" for p in json.loads(result.stdout.splitlines()[-1])]
  return problems


def documented_commands() -> list[tuple[str, list[str]]]:
  commands = []
  for path in DOCS:
    commands += [c for c in map(project_command, bash_commands(path.read_text())) if c]
  return commands


def test_every_documented_command_parses():
  commands = documented_commands()
  entries = {entry for entry, _ in commands}
  # The front page and the docs show every command of the project.
  assert {"train.py", "eval.py", "predict.py", "claresnet_jax.bench", "claresnet_jax.compare",
          "claresnet_jax.convert", "claresnet_jax.data.audit"} <= entries
  assert parse_problems(commands) == []


def test_a_misspelt_flag_or_config_key_is_caught():
  good = ("```bash\npython train.py --config configs/ip.py --workdir runs/ip "
          "--config.num_epochs=5 \\\n    --config.optimizer.learning_rate=3e-4\n"
          "python eval.py --workdir runs/ip   # a comment\n```\n")
  commands = [c for c in map(project_command, bash_commands(good)) if c]
  assert [entry for entry, _ in commands] == ["train.py", "eval.py"]
  assert parse_problems(commands) == []
  for wrong, name in ((good.replace("--workdir runs/ip --", "--work_dir runs/ip --"), "work_dir"),
                      (good.replace("num_epochs=5", "num_epoch=5"), "num_epoch"),
                      (good.replace("configs/ip.py", "configs/ipp.py"), "ipp.py")):
    problems = parse_problems([c for c in map(project_command, bash_commands(wrong)) if c])
    assert len(problems) == 1 and name in problems[0], problems


def _readme_line(*words: str) -> str:
  lines = [line for line in bash_commands((REPO / "README.md").read_text())
           if all(w in line for w in words)]
  assert len(lines) == 1, lines
  return lines[0]


@pytest.fixture(scope="module")
def own_scene_runs(tmp_path_factory):
  """The README's own-scene recipe, on Salinas-A saved as a .npy cube and a .mat ground
  truth, with a tiny model: train.py, eval.py, then train.py again into a second workdir.

  The commands get a fresh user cache directory, so the second training run can only
  find its compiled programs where the first one left them.
  """
  folder = tmp_path_factory.mktemp("own_scene")
  scene = data.load_scene("salinas_a")
  np.save(folder / "cube.npy", scene.cube)
  scipy.io.savemat(folder / "gt.mat", {"gt": scene.gt.astype(np.uint8)})
  tiny = ["--config.model.kwargs.emb_dim=16", "--config.model.kwargs.base_channels=8",
          "--config.model.kwargs.num_layers=1", "--config.pca.components=6",
          "--config.patch_size=5", "--config.num_epochs=1"]
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
  env["XDG_CACHE_HOME"] = str(folder / "cache")

  def run(line, workdir):
    line = (line.replace("path/to/cube.npy", str(folder / "cube.npy"))
            .replace("path/to/gt.mat", str(folder / "gt.mat"))
            .replace("runs/my_scene", str(folder / workdir)))
    args = shlex.split(line)[1:] + (tiny if "train.py" in line else [])
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    return result.stderr

  train_line = _readme_line("train.py", "--config.scene_options.gt=")
  logs = [run(train_line, "first"), run(_readme_line("eval.py", "runs/my_scene"), "first"),
          run(train_line, "second")]
  return folder, logs


def test_own_scene_recipe_trains_and_evaluates(own_scene_runs):
  folder, _ = own_scene_runs
  config = json.loads((folder / "first" / "config.json").read_text())
  assert config["scene"] == str(folder / "cube.npy")
  assert config["scene_options"]["gt"] == str(folder / "gt.mat")
  metrics = json.loads((folder / "first" / "metrics.json").read_text())
  assert metrics["class_ids"] == [1, 10, 11, 12, 13, 14]
  assert metrics["num_test_pixels"] == 1070  # the paper split of Salinas-A's 5,348 pixels


def _compile_log(log: str) -> tuple[float, int, str]:
  """Seconds compiling, programs loaded from the cache and its folder, from the log."""
  match = re.search(r"XLA compilation: ([\d.]+) s of [\d.]+ s for \d+ programs, (\d+) loaded "
                    r"from the persistent cache in (\S+)", log)
  assert match, log[-3000:]
  return float(match.group(1)), int(match.group(2)), match.group(3)


def test_a_rerun_loads_compiled_programs_from_the_user_cache(own_scene_runs):
  folder, (first, _, second) = own_scene_runs
  first_seconds, first_hits, cache_dir = _compile_log(first)
  second_seconds, second_hits, _ = _compile_log(second)
  assert cache_dir == str(folder / "cache" / "claresnet_jax" / "xla")
  assert any((folder / "cache" / "claresnet_jax" / "xla").iterdir())
  assert first_hits == 0 and second_hits >= 2  # at least the train and predict steps
  assert second_seconds < first_seconds
