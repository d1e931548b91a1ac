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

# Parses each entry point's command lines (a JSON list of [entry point, argument lists]) with
# the flags that importing the entry point defines, in one process: each entry point's flags
# replace the previous one's. Prints a JSON list, per entry point, of each command's problem
# or null.
PARSE_PROGRAM = """
import json, runpy, sys
from absl import flags
library_flags = set(flags.FLAGS)
found = []
for target, commands in json.loads(sys.argv[1]):
  for name in [n for n in flags.FLAGS if n not in library_flags]:
    delattr(flags.FLAGS, name)  # the previous entry point's flags and --config.* overrides
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
      problems.append(f"unexpected arguments {rest[1:]}" if len(rest) > 1 else None)
    except Exception as e:  # absl and ml_collections raise several error types
      problems.append(f"{type(e).__name__}: {e}")
    flags.FLAGS.unparse_flags()
  found.append(problems)
print(json.dumps(found))
"""


def _authors_fixed_split_parser():
  sys.path.insert(0, str(REPO / "benchmarks"))
  try:
    import authors_fixed_split  # pylint: disable=g-import-not-at-top  (numpy only at import)
  finally:
    sys.path.remove(str(REPO / "benchmarks"))
  return authors_fixed_split.argument_parser()


# The commands whose flags argparse reads, each with a function that returns its parser.
ARGPARSE_ENTRIES = {"claresnet_jax.convert": convert.argument_parser,
                    "benchmarks/authors_fixed_split.py": _authors_fixed_split_parser}


def bash_commands(markdown: str) -> list[str]:
  """The command lines of the ```bash blocks: continuations joined, `&&` chains split."""
  commands = []
  for block in re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.M | re.S):
    for line in block.replace("\\\n", " ").splitlines():
      commands += [part.strip() for part in re.split(r"&&|;", line) if part.strip()]
  return commands


def settings_and_command(line: str) -> tuple[list[str], list[str]]:
  """The names a line's leading VAR=value assignments set, and the words of its command
  past a taskset -c N wrapper."""
  words = shlex.split(line, comments=True)
  settings = []
  while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
    settings.append(words.pop(0).split("=")[0])
  if words[:1] == ["taskset"]:
    words = words[3:]
  return settings, words


def project_command(line: str) -> tuple[str, list[str]] | None:
  """(entry point, arguments) of a line that runs a command of this project, else None."""
  _, words = settings_and_command(line)
  if not words or words[0] not in ("python", "python3"):
    return None
  if words[1] == "-m":
    return (words[2], words[3:]) if words[2].startswith("claresnet_jax") else None
  return words[1], words[2:]


def parse_problems(commands: list[tuple[str, list[str]]]) -> list[str | None]:
  """What is wrong with each command's arguments (None for a correct one), in its order.

  One process parses the commands of every entry point.
  """
  by_entry = collections.defaultdict(list)
  for k, (entry, _) in enumerate(commands):
    by_entry[entry].append(k)
  problems = [None] * len(commands)
  found, parsed = {}, []  # parsed: the (entry point, argument lists) for PARSE_PROGRAM
  for entry, indices in by_entry.items():
    arg_lists = [commands[k][1] for k in indices]
    if entry in ARGPARSE_ENTRIES:  # argparse, not absl
      found[entry] = []
      for args in arg_lists:
        try:
          ARGPARSE_ENTRIES[entry]().parse_args(args)
          found[entry].append(None)
        except SystemExit:
          found[entry].append("not accepted by its argument parser")
    elif entry.endswith(".py") and not (REPO / entry).is_file():
      found[entry] = ["no such script"] * len(indices)
    else:
      parsed.append((entry, arg_lists))
  if parsed:
    result = subprocess.run([sys.executable, "-c", PARSE_PROGRAM, json.dumps(parsed)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found.update(zip([entry for entry, _ in parsed], json.loads(result.stdout.splitlines()[-1])))
  for entry, indices in by_entry.items():
    for k, problem in zip(indices, found[entry]):
      if problem is not None:
        problems[k] = f"{entry} {' '.join(commands[k][1])}: {problem}"
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
  assert [p for p in parse_problems(commands) if p] == []


def script_problems(line: str) -> list[str]:
  """For a line that runs a shell script of the project (benchmarks/*.sh): a missing script,
  or a leading VAR=value the script never reads (its setting would be silently ignored)."""
  settings, words = settings_and_command(line)
  if not words or not words[0].endswith(".sh"):
    return []
  script = REPO / words[0]
  if not script.is_file():
    return [f"{line}: no such script"]
  text = script.read_text()
  return [f"{line}: {words[0]} does not read {name}" for name in settings
          if not re.search(r"\$\{" + name + r"\b", text)]


def test_every_documented_script_exists_and_reads_its_settings():
  lines = [line for path in DOCS for line in bash_commands(path.read_text())]
  assert any("benchmarks/table3.sh" in shlex.split(line, comments=True) for line in lines)
  assert [p for line in lines for p in script_problems(line)] == []
  assert script_problems("OUT=x SEED=3 benchmarks/table3.sh") == [
      "OUT=x SEED=3 benchmarks/table3.sh: benchmarks/table3.sh does not read SEED"]
  assert script_problems("OUT=x SEED=3 taskset -c 1 benchmarks/table3.sh") == [
      "OUT=x SEED=3 taskset -c 1 benchmarks/table3.sh: benchmarks/table3.sh does not read SEED"]


def test_a_misspelt_flag_or_config_key_is_caught():
  good = ("```bash\npython train.py --config configs/ip.py --workdir runs/ip "
          "--config.num_epochs=5 \\\n    --config.optimizer.learning_rate=3e-4\n"
          "python eval.py --workdir runs/ip   # a comment\n```\n")
  wrong = [(good.replace("--workdir runs/ip --", "--work_dir runs/ip --"), "work_dir"),
           (good.replace("num_epochs=5", "num_epoch=5"), "num_epoch"),
           (good.replace("configs/ip.py", "configs/ipp.py"), "ipp.py")]
  blocks = [good] + [markdown for markdown, _ in wrong]
  commands = [[c for c in map(project_command, bash_commands(b)) if c] for b in blocks]
  assert [entry for entry, _ in commands[0]] == ["train.py", "eval.py"]
  problems = parse_problems([c for block in commands for c in block])  # two processes
  good_problems, *wrong_problems = [problems[2 * k:2 * k + 2] for k in range(len(blocks))]
  assert good_problems == [None, None]
  for (_, name), (train_problem, eval_problem) in zip(wrong, wrong_problems):
    assert name in train_problem and eval_problem is None, (train_problem, eval_problem)


def _readme_line(*words: str) -> str:
  lines = [line for line in bash_commands((REPO / "README.md").read_text())
           if all(w in line for w in words)]
  assert len(lines) == 1, lines
  return lines[0]


@pytest.fixture(scope="module")
def own_scene_run(tmp_path_factory, tiny_flags, compile_cache):
  """The README's own-scene recipe, on Salinas-A saved as a .npy cube and a .mat ground
  truth, with a tiny model: train.py (its eval.py line is parsed above; test_train runs
  eval.py on a run). Returns the folder.
  """
  folder = tmp_path_factory.mktemp("own_scene")
  scene = data.load_scene("salinas_a")
  np.save(folder / "cube.npy", scene.cube)
  scipy.io.savemat(folder / "gt.mat", {"gt": scene.gt.astype(np.uint8)})
  line = (_readme_line("train.py", "--config.scene_options.gt=")
          .replace("path/to/cube.npy", str(folder / "cube.npy"))
          .replace("path/to/gt.mat", str(folder / "gt.mat"))
          .replace("runs/my_scene", str(folder / "run")))
  # With the batches of the tiny config (conftest.py), whose programs test_train.py compiles.
  args = shlex.split(line)[1:] + [*tiny_flags, "--config.num_epochs=1", "--config.batch_size=16",
                                  "--config.eval_batch_size=64"]
  result = subprocess.run([sys.executable, *args], cwd=REPO, env={**os.environ, **compile_cache},
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-5000:]
  return folder


def test_own_scene_recipe_trains(own_scene_run):
  folder = own_scene_run
  config = json.loads((folder / "run" / "config.json").read_text())
  assert config["scene"] == str(folder / "cube.npy")
  assert config["scene_options"]["gt"] == str(folder / "gt.mat")
  classes = json.loads((folder / "run" / "classes.json").read_text())
  assert classes["class_ids"] == [1, 10, 11, 12, 13, 14]
  with np.load(folder / "run" / "split.npz") as split:
    assert len(split["test"]) == 1070  # the paper split of Salinas-A's 5,348 pixels
