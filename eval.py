"""Evaluates a trained run on its test pixels: `python eval.py --workdir runs/ip`.

Writes metrics.json, predictions.npz, the figures and report.md into the
workdir; for a workdir of several seeds, also summary.md (mean +- std).
"""
from absl import app
from absl import flags
from absl import logging

from claresnet_jax import evaluate

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run of train.py.")
flags.mark_flag_as_required("workdir")


def _quiet_orbax(record) -> bool:
  """Drops Orbax's INFO lines (several per checkpoint), keeping its warnings and errors."""
  return record.levelno >= logging.converter.STANDARD_WARNING or "/orbax/" not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(_quiet_orbax)
  evaluate.evaluate(_WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
