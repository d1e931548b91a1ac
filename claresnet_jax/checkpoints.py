"""Orbax checkpoints of a run's TrainState in its workdir: the latest (to resume) and the best
(by validation accuracy), saved and restored, and which of them the run's protocol tests.
"""
import pathlib

import jax
import numpy as np
import ml_collections
import orbax.checkpoint as ocp

from claresnet_jax.steps import TrainState, variables

_VARIABLES = "variables"  # the 'best' checkpoint's item: what prediction needs


def test_checkpoint(config: ml_collections.ConfigDict) -> str:
  """'best' (the best validation accuracy) or 'last' (after config.num_epochs)."""
  choice = config.get("test_checkpoint") or "best"  # workdirs saved before the key existed
  if choice not in ("best", "last"):
    raise ValueError(f"config.test_checkpoint={choice!r}; use 'best' (the epoch of the best "
                     "validation accuracy) or 'last' (after config.num_epochs, as the fixed "
                     "splits' published results are)")
  return choice


def checkpoint_managers(workdir: pathlib.Path) -> dict[str, ocp.CheckpointManager]:
  """'latest' (the whole state, to resume) and 'best' (the variables of the best validation
  accuracy, to test) managers, one checkpoint each.

  Orbax writes into a temporary directory and renames it when complete, and drops the
  older checkpoint only after that, so a failed save (a full disk) leaves the previous
  checkpoint intact. 'best' holds only what prediction needs (a third of the state: no
  optimizer moments) and is written in the background while training goes on.
  """
  def options(background: bool):
    return ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=background,
                                        cleanup_tmp_directories=True)
  folder = workdir / "checkpoints"
  return {"latest": ocp.CheckpointManager(folder / "latest", options=options(False),
                                          item_names=("state", "meta")),
          "best": ocp.CheckpointManager(folder / "best", options=options(True),
                                        item_names=(_VARIABLES, "meta"))}


def save_checkpoint(manager: ocp.CheckpointManager, state: TrainState, meta: dict) -> None:
  """Saves the whole `state` ('latest') and the loop's bookkeeping as step meta['epoch']."""
  _save(manager, "state", state, meta)


def save_variables(manager: ocp.CheckpointManager, state: TrainState, meta: dict) -> None:
  """Saves what prediction needs of `state` ('best') and the bookkeeping, in the background."""
  _save(manager, _VARIABLES, variables(state), meta)


def _save(manager: ocp.CheckpointManager, item: str, tree, meta: dict) -> None:
  """Saves `tree` as `item`, and `meta`, as step meta['epoch']; says what to do on failure."""
  epoch = meta["epoch"]
  try:
    manager.save(epoch, args=ocp.args.Composite(
        **{item: ocp.args.StandardSave(tree)}, meta=ocp.args.JsonSave(meta)))
  except OSError as e:
    previous = [s for s in manager.all_steps() if s != epoch]
    kept = f"the previous checkpoint (epoch {max(previous)}) is intact" if previous else (
        "no earlier checkpoint exists")
    raise OSError(e.errno, f"Saving the epoch {epoch} checkpoint to {manager.directory} failed "
                  f"({e.strerror or e}); {kept}. Free disk space and rerun the same command "
                  "to resume.") from e


def restore_checkpoint(manager: ocp.CheckpointManager, target: TrainState,
                       step: int | None = None) -> tuple[TrainState, dict]:
  """The whole state (shaped and sharded like `target`) and bookkeeping of a 'latest'
  checkpoint's `step` (default: the latest)."""
  step = manager.latest_step() if step is None else step
  folder = pathlib.Path(manager.directory) / str(step)
  saved = ocp.StandardCheckpointer().metadata(folder / "state").item_metadata.tree
  if "inner_state" in saved["opt_state"]:
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return restored["state"], dict(restored["meta"])
  state = _restore_without_injected_rate(folder / "state", saved, target)
  meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  return state, dict(meta)


def _restore_without_injected_rate(item: pathlib.Path, saved, target: TrainState) -> TrainState:
  """A state saved before the learning rate lived in the optimizer state: the optimizer's own
  state without optax.inject_hyperparams' wrapper, then the step count of its schedule."""
  raw = ocp.PyTreeCheckpointer().restore(item, args=ocp.args.PyTreeRestore(
      restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), saved)))
  inner = target.opt_state.inner_state
  saved_leaves = jax.tree.leaves(raw["opt_state"])
  leaves = jax.tree.leaves(inner)
  if [x.shape for x in saved_leaves[:len(leaves)]] != [x.shape for x in leaves] or (
      len(saved_leaves) > len(leaves) + 1):
    raise ValueError(f"{item} holds an optimizer state this version cannot read: resume it "
                     "with the version that saved it, or train in a new workdir")

  def put(saved, like):
    return jax.device_put(np.asarray(saved, like.dtype), like.sharding)
  hyperparams = jax.tree.map(lambda x: put(np.zeros(x.shape), x),
                             target.opt_state.hyperparams)  # the training step sets them
  return target.replace(
      step=put(raw["step"], target.step), rng=put(raw["rng"], target.rng),
      params=jax.tree.map(put, raw["params"], target.params),
      batch_stats=jax.tree.map(put, raw["batch_stats"], target.batch_stats),
      opt_state=target.opt_state._replace(
          count=put(raw["step"], target.opt_state.count), hyperparams=hyperparams,
          inner_state=jax.tree.unflatten(jax.tree.structure(inner), [
              put(x, like) for x, like in zip(saved_leaves, leaves)])))


def restore_variables(manager: ocp.CheckpointManager, target: dict, step: int | None = None
                      ) -> tuple[dict, dict]:
  """The {'params', 'batch_stats'} (shaped and sharded like `target`) and bookkeeping of
  `step` (default: the latest) of either manager.

  Only these arrays are read: of a 'latest' checkpoint, or of a 'best' one written when it
  held the whole state, the optimizer state stays on disk.
  """
  step = manager.latest_step() if step is None else step
  folder = pathlib.Path(manager.directory) / str(step)
  item = folder / (_VARIABLES if (folder / _VARIABLES).is_dir() else "state")
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  restored = ocp.PyTreeCheckpointer().restore(item, args=ocp.args.PyTreeRestore(
      item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
      partial_restore=True))
  meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  return {"params": restored["params"], "batch_stats": restored["batch_stats"]}, dict(meta)
