"""Evaluates a trained run on its test pixels: `python eval.py --workdir runs/ip`.

Writes metrics.json, predictions.npz, the figures and report.md into the
workdir; for a workdir of several seeds, also summary.md (mean +- std).
"""
from absl import app
from absl import flags

from claresnet_jax import cli, evaluate

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run of train.py.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  evaluate.evaluate(_WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
