"""Orbax checkpoints of a run's TrainState in its workdir: the latest (to resume) and the best
(by validation accuracy), saved and restored, and which of them the run's protocol tests.
"""
import pathlib

import jax
import ml_collections
import orbax.checkpoint as ocp

from claresnet_jax.steps import TrainState

_ITEMS = ("state", "meta")


def test_checkpoint(config: ml_collections.ConfigDict) -> str:
  """'best' (the best validation accuracy) or 'last' (after config.num_epochs)."""
  choice = config.get("test_checkpoint") or "best"  # workdirs saved before the key existed
  if choice not in ("best", "last"):
    raise ValueError(f"config.test_checkpoint={choice!r}; use 'best' (the epoch of the best "
                     "validation accuracy) or 'last' (after config.num_epochs, as the fixed "
                     "splits' published results are)")
  return choice


def checkpoint_managers(workdir: pathlib.Path) -> dict[str, ocp.CheckpointManager]:
  """'latest' (resume) and 'best' (best validation accuracy) managers, one checkpoint each.

  Orbax writes into a temporary directory and renames it when complete, and
  drops the older checkpoint only after that, so a failed save (a full disk)
  leaves the previous checkpoint intact.
  """
  options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False,
                                         cleanup_tmp_directories=True)
  return {name: ocp.CheckpointManager(workdir / "checkpoints" / name, options=options,
                                      item_names=_ITEMS)
          for name in ("latest", "best")}


def save_checkpoint(manager: ocp.CheckpointManager, state: TrainState, meta: dict) -> None:
  """Saves `state` and the loop's bookkeeping as step meta['epoch']; says what to do on failure."""
  epoch = meta["epoch"]
  try:
    manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                meta=ocp.args.JsonSave(meta)))
  except OSError as e:
    previous = [s for s in manager.all_steps() if s != epoch]
    kept = f"the previous checkpoint (epoch {max(previous)}) is intact" if previous else (
        "no earlier checkpoint exists")
    raise OSError(e.errno, f"Saving the epoch {epoch} checkpoint to {manager.directory} failed "
                  f"({e.strerror or e}); {kept}. Free disk space and rerun the same command "
                  "to resume.") from e


def restore_checkpoint(manager: ocp.CheckpointManager, target: TrainState,
                       step: int | None = None) -> tuple[TrainState, dict]:
  """The state (shaped and sharded like `target`) and bookkeeping of `step` (default: latest)."""
  step = manager.latest_step() if step is None else step
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  return restored["state"], dict(restored["meta"])
