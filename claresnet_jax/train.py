"""Training: the resumable loop over epochs, each validated, and its per-epoch metrics.

The compiled steps are in steps.py; the best and the latest states are Orbax
checkpoints in the workdir (checkpoints.py), and a rerun resumes from the latest.
"""
from collections.abc import Iterator, Mapping
import json
import pathlib
import time

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
from sklearn.utils import class_weight
import tqdm

from claresnet_jax import data, precision
from claresnet_jax.checkpoints import checkpoint_managers, restore_checkpoint, save_checkpoint
from claresnet_jax.checkpoints import save_variables, test_checkpoint
from claresnet_jax.steps import create_model, create_train_state, jit_predict_step
from claresnet_jax.steps import jit_train_step, learning_rate_schedule, make_mesh
from claresnet_jax.steps import make_optimizer, predict_pixels, variables
from claresnet_jax.workdirs import claim_workdir, prepare_dataset

_PART_NAMES = {"val": "validation", "test": "test"}


# ----------------------------------------------------------------------------- logging


class MetricWriter:
  """Per-epoch metrics as JSON lines (metrics.jsonl) and TensorBoard events (tensorboard/).

  Written by process 0 only. Lines of epochs after `last_epoch` (from an
  interrupted run) are dropped, so a resumed run's history has each epoch once.
  """

  def __init__(self, workdir: pathlib.Path, last_epoch: int):
    self.path = workdir / "metrics.jsonl"
    self.enabled = jax.process_index() == 0
    if not self.enabled:
      return
    kept = [r for r in read_history(workdir) if r["epoch"] <= last_epoch]
    self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    from claresnet_jax.data._tf import tf  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top
    self._tf = tf
    self._summary = tf.summary.create_file_writer(str(workdir / "tensorboard"))
    # What tf.summary.scalar writes, without the tensorboard package it would import.
    self._scalar = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

  def write(self, record: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    with self.path.open("a") as f:
      f.write(json.dumps(dict(record)) + "\n")
    with self._summary.as_default():
      for name, value in record.items():
        if name != "epoch":
          self._tf.summary.write(name, self._tf.constant(value, self._tf.float32),
                                 step=record["epoch"], metadata=self._scalar)
    self._summary.flush()


def read_history(workdir: pathlib.Path) -> list[dict]:
  """The records of metrics.jsonl, one per epoch ([] before the first epoch)."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line]


# ----------------------------------------------------------------------------- the loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> None:
  """Trains with validation every epoch and early stopping; resumes a run left in `workdir`.

  With `config.num_runs` > 1, runs `num_runs` seeds (seed, seed + 1, ...) into
  workdir/run_<i>, one after the other; they share one compiled training step.
  """
  workdir = pathlib.Path(workdir).absolute()
  precision.use(config)
  claim_workdir(config, workdir)
  if config.num_runs > 1:
    for i in range(config.num_runs):
      run_config = config.copy_and_resolve_references()
      with run_config.unlocked():
        run_config.seed, run_config.num_runs = config.seed + i, 1
      train_and_evaluate(run_config, workdir / f"run_{i}")
    return

  dataset = prepare_dataset(config, workdir)
  mesh = make_mesh({"config.batch_size": config.batch_size,
                    "config.eval_batch_size": config.eval_batch_size})
  num_train = len(dataset.split.train)
  steps_per_epoch = num_train // config.batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"config.batch_size={config.batch_size} is larger than the {num_train} "
                     "training pixels; lower it")
  selection = test_checkpoint(config)
  if selection == "best" and len(dataset.split.val) == 0:
    raise ValueError(
        f"The {config.split.protocol!r} split of {config.scene} has no validation pixels, and "
        "config.test_checkpoint='best' selects the checkpoint by validation accuracy. Hold out "
        "a stratified share of the training pixels (config.split.holdout_fraction=0.1), test "
        "the last epoch (config.test_checkpoint='last', as fixed splits are published), or set "
        "the split's validation option (val_size, val_fraction or val_per_class)")
  # The monitored part: validation pixels, or on a split without any, the test pixels (seen,
  # never used to choose anything, when the last epoch is tested).
  monitored = "val" if len(dataset.split.val) else "test"
  model = create_model(config.model.name, dataset.scene.num_classes, **config.model.kwargs)
  schedule = learning_rate_schedule(config, steps_per_epoch)
  state = create_train_state(model, make_optimizer(config), (config.patch_size, config.patch_size,
                                                             dataset.cube.shape[-1]),
                             config.seed, mesh)
  managers = checkpoint_managers(workdir)
  meta = {"epoch": 0, "best_epoch": 0, "best_val_accuracy": -1.0}
  if managers["latest"].latest_step() is not None:
    state, meta = restore_checkpoint(managers["latest"], state)
    for step in managers["best"].all_steps():  # saved by an epoch the latest state never saw
      if step > meta["epoch"]:
        managers["best"].delete(step)
    logging.info("Resuming %s from epoch %d (best validation accuracy %.4f at epoch %d)",
                 workdir, meta["epoch"], meta["best_val_accuracy"], meta["best_epoch"])
  writer = MetricWriter(workdir, meta["epoch"])

  weights = np.ones(dataset.scene.num_classes, np.float32)
  if config.class_weights:
    weights = class_weight.compute_class_weight(
        "balanced", classes=np.arange(dataset.scene.num_classes), y=dataset.labels["train"])
  weights = jax.device_put(jnp.asarray(weights, jnp.float32), NamedSharding(mesh, P()))
  predict_fn = jit_predict_step(model, mesh, with_features=False)
  every = config.get("eval_every_epochs") or 1

  while not _finished(config, meta, selection):
    epoch = meta["epoch"] + 1
    start = time.perf_counter()
    counts = np.arange((epoch - 1) * steps_per_epoch, epoch * steps_per_epoch)
    rates = np.broadcast_to(np.asarray(schedule(counts), np.float32), counts.shape)
    state, train_metrics = _train_epoch(config, dataset, mesh, state, weights, rates, epoch,
                                        managers["latest"])
    record = {"epoch": epoch, "step": epoch * steps_per_epoch,
              "learning_rate": float(rates[-1]), **train_metrics}
    if epoch % every == 0 or epoch == config.num_epochs:
      probabilities = predict_pixels(variables(state), predict_fn, mesh, dataset.cube,
                                     getattr(dataset.split, monitored),
                                     patch_size=config.patch_size,
                                     batch_size=config.eval_batch_size,
                                     desc=_PART_NAMES[monitored])["probabilities"]
      labels = dataset.labels[monitored]
      record[f"{monitored}_loss"] = float(-np.mean(np.log(np.maximum(
          probabilities[np.arange(len(labels)), labels], 1e-30))))
      record[f"{monitored}_accuracy"] = float(np.mean(probabilities.argmax(-1) == labels))
    meta = dict(meta, epoch=epoch)
    improved = selection == "best" and record.get("val_accuracy", -1.0) > meta["best_val_accuracy"]
    if improved:
      meta.update(best_epoch=epoch, best_val_accuracy=record["val_accuracy"])
    record["epoch_seconds"] = time.perf_counter() - start
    # The line first, then the checkpoint: a run stopped between the two redoes the epoch and
    # its line is replaced (MetricWriter keeps the lines of checkpointed epochs only).
    writer.write(record)
    saving = time.perf_counter()
    if improved:
      save_variables(managers["best"], state, meta)
    save_checkpoint(managers["latest"], state, meta)
    logging.info("epoch %d/%d: train loss %.4f accuracy %.4f%s, %.1f s, checkpoint %.1f s",
                 epoch, config.num_epochs, record["train_loss"], record["train_accuracy"],
                 _monitored_summary(record, monitored, meta, selection), record["epoch_seconds"],
                 time.perf_counter() - saving)
  if meta["epoch"] < config.num_epochs:
    logging.info("Stopped early after epoch %d: no better validation accuracy for %d epochs",
                 meta["epoch"], config.patience)
  for manager in managers.values():
    manager.wait_until_finished()
    manager.close()


def _finished(config: ml_collections.ConfigDict, meta: Mapping, selection: str) -> bool:
  """After num_epochs, or (selecting the best) patience epochs without a better validation."""
  return (meta["epoch"] >= config.num_epochs
          or selection == "best" and meta["epoch"] - meta["best_epoch"] >= config.patience)


def _monitored_summary(record: Mapping, monitored: str, meta: Mapping, selection: str) -> str:
  """The epoch's log line after the training figures: what the monitored part gave."""
  if f"{monitored}_accuracy" not in record:
    return ""
  line = (f", {_PART_NAMES[monitored]} loss {record[f'{monitored}_loss']:.4f} accuracy "
          f"{record[f'{monitored}_accuracy']:.4f}")
  if selection == "best":
    line += f" (best {meta['best_val_accuracy']:.4f} at epoch {meta['best_epoch']})"
  return line


def _train_epoch(config, dataset, mesh, state, weights, rates, epoch, latest_manager):
  """One pass over the training pixels at the learning rates `rates`, one a step; stops the
  run on a non-finite loss.

  Steps are dispatched ahead: the losses are checked (and shown) a few steps behind the
  one being computed, so the host never waits for the device mid-epoch.
  """
  sharded = NamedSharding(mesh, P("data"))
  step_fn = jit_train_step(mesh)
  batches: Iterator = data.train_batches(
      dataset.cube, dataset.split.train, dataset.labels["train"], patch_size=config.patch_size,
      batch_size=config.batch_size, seed=config.seed, epoch=epoch, augment=config.augment,
      process_index=jax.process_index(), process_count=jax.process_count())
  first_step = (epoch - 1) * len(rates)
  metrics, fetched = [], []
  bar = tqdm.tqdm(batches, total=len(rates), desc=f"epoch {epoch}/{config.num_epochs}",
                  disable=jax.process_index() != 0)
  for i, batch in enumerate(bar):
    batch = jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharded, x), batch)
    state, step_metrics = step_fn(state, batch, weights, rates[i])
    metrics.append(step_metrics)
    if i % 10 == 9:  # the steps up to two behind this one have finished or nearly
      fetched += jax.device_get(metrics[len(fetched):i - 1])
      _check_finite(fetched, first_step, latest_manager)
      bar.set_postfix(loss=f"{np.mean([m['loss'] for m in fetched]):.4f}",
                      accuracy=f"{np.mean([m['accuracy'] for m in fetched]):.4f}")
  bar.close()
  fetched += jax.device_get(metrics[len(fetched):])
  _check_finite(fetched, first_step, latest_manager)
  return state, {"train_loss": float(np.mean([m["loss"] for m in fetched])),
                 "train_accuracy": float(np.mean([m["accuracy"] for m in fetched]))}


def _check_finite(metrics: list[dict], first_step: int, latest_manager) -> None:
  losses = np.array([m["loss"] for m in metrics])
  bad = np.flatnonzero(~np.isfinite(losses))
  if bad.size:
    last = latest_manager.latest_step()
    kept = (f"the last good checkpoint (epoch {last}) in {latest_manager.directory} is kept"
            if last is not None else "no checkpoint had been saved yet")
    raise FloatingPointError(
        f"The training loss became {losses[bad[0]]} at step {first_step + bad[0] + 1}; training "
        f"stopped and {kept}. Lower config.optimizer.learning_rate or add warmup "
        "(config.optimizer.warmup_epochs), and check the input for NaNs.")
