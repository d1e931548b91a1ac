"""Whether this checkout and another compile the model's steps into the same work on the CPU.

  python benchmarks/compare_programs.py --other /path/to/worktree [--config configs/ip.py]

Runs `python -m claresnet_jax.bench --config CONFIG --repeats 1 --warmup 0` in both
checkouts (`git worktree add /path/to/worktree COMMIT` makes the other) with XLA's dumps
on, and compares the training step's and the inference step's programs after XLA:CPU's
optimizations as multisets of instructions: result shape, opcode, fusion kind and
custom-call target, with names, metadata and the order of parameters left out. Rounds of
`bench` on a shared machine vary by up to 15%, too much to tell a 10% slowdown from noise;
programs that do the same instructions rule one out. Prints one JSON line per step.
"""
import collections
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

_OTHER = flags.DEFINE_string("other", None, "The other checkout (a git worktree).", required=True)
_CONFIG = flags.DEFINE_string("config", "configs/ip.py", "The config bench runs, in both.")

_INSTRUCTION = re.compile(r"\s*(?:ROOT )?%?[\w.\-]+ = (.*?) ([a-z\-]+)\((.*)$")
_ELEMENT = re.compile(r"[a-z]+[0-9]*\[")  # one array shape of a tuple: f32[, s32[, pred[


def instructions(program: str) -> collections.Counter:
  """The program's instructions as (shape, opcode[, kind or target]) strings, counted."""
  found = collections.Counter()
  for line in program.splitlines():
    match = _INSTRUCTION.match(re.sub(r", metadata=\{[^}]*\}", "", line))
    if not match or match.group(2) == "parameter":
      continue
    shape, opcode, rest = match.groups()
    if shape.startswith("("):  # a tuple: its element count, not hundreds of shapes
      shape = f"tuple of {len(_ELEMENT.findall(shape))}"
    detail = re.search(r'(?:kind|custom_call_target)=("?[\w$.\-]+)', rest)
    found[f"{shape} {opcode}" + (f" {detail.group(1)}" if detail else "")] += 1
  return found


def step_programs(checkout: pathlib.Path, config: str) -> dict[str, str]:
  """bench's training and inference programs in `checkout`, after optimization.

  The training step is the module named train_step; the inference step is the largest of
  the others but the initialisation (its name changed across commits)."""
  with tempfile.TemporaryDirectory() as dump:
    flags_set = os.environ.get("XLA_FLAGS", "")
    env = dict(os.environ, XLA_FLAGS=f"{flags_set} --xla_dump_to={dump} --xla_dump_hlo_as_text")
    result = subprocess.run([sys.executable, "-m", "claresnet_jax.bench", "--config", config,
                             "--repeats", "1", "--warmup", "0"], cwd=checkout, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode:
      raise RuntimeError(f"bench failed in {checkout}:\n{result.stderr[-3000:]}")
    files = [f for f in pathlib.Path(dump).glob("*.cpu_after_optimizations.txt")
             if "jit_init" not in f.name]
    train = [f for f in files if "train_step" in f.name]
    others = sorted((f for f in files if f not in train), key=lambda f: f.stat().st_size)
    return {"train": train[0].read_text(), "inference": others[-1].read_text()}


def main(argv):
  del argv
  here = step_programs(pathlib.Path.cwd(), _CONFIG.value)
  other = step_programs(pathlib.Path(_OTHER.value), _CONFIG.value)
  for step in ("train", "inference"):
    ours, theirs = instructions(here[step]), instructions(other[step])
    differ = {k: [theirs[k], ours[k]] for k in sorted(set(ours) | set(theirs))
              if ours[k] != theirs[k]}
    print(json.dumps({"step": step, "other_instructions": sum(theirs.values()),
                      "our_instructions": sum(ours.values()),
                      "differing_other_ours": differ}))


if __name__ == "__main__":
  app.run(main)
