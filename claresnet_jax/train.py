"""Training: the TrainState, jit-compiled steps over a device mesh, and the resumable loop.

One 'data' mesh axis over every device of every process: batches are sharded,
parameters replicated. Each epoch is validated; the best and the latest states
are Orbax checkpoints in the workdir, and a rerun resumes from the latest.
"""
from collections.abc import Callable, Iterator, Mapping
import dataclasses
import json
import pathlib
import time
from typing import Any

from absl import logging
import flax
from flax.training import train_state
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from sklearn.utils import class_weight
import tqdm

from claresnet_jax import data, models, precision
from claresnet_jax.data import fixed_splits

_ITEMS = ("state", "meta")
_PART_NAMES = {"val": "validation", "test": "test"}


class TrainState(train_state.TrainState):
  """Parameters, optimizer state, BatchNorm statistics ({} if none) and the dropout key."""
  batch_stats: Any
  rng: jax.Array  # step t draws dropout from fold_in(rng, t), so a resumed run repeats it


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A scene prepared for a run: the projected cube, the split and zero-based labels."""
  scene: data.Scene
  cube: np.ndarray  # (H, W, pca components) float32
  split: data.Split
  labels: Mapping[str, np.ndarray]  # 'train', 'val', 'test' -> (N,) int32


# ----------------------------------------------------------------------------- data


def load_scene(config: ml_collections.ConfigDict) -> data.Scene:
  """The config's scene, with the classes of `config.exclude_classes` made unlabelled.

  On a fixed split whose `labels` are its own ("split", the default), the
  ground truth is the split's maps: the labels its published results use.
  """
  options = {k: v for k, v in config.scene_options.items() if v is not None}
  scene = data.load_scene(config.scene, **options)
  if config.split.protocol == "fixed":
    labels = config.split.options.get("labels") or "split"
    if labels not in ("split", "scene"):
      raise ValueError(f"config.split.options.labels={labels!r}; use 'split' (the maps' own "
                       "labels, as published) or 'scene' (the scene's ground truth)")
    if labels == "split":
      options = split_options(config)
      gt = fixed_splits.split_labels(options.pop("name", None), scene, **options)
      scene = dataclasses.replace(scene, gt=gt)
  # Workdirs saved before the key existed have no exclude_classes.
  return scene.without_classes(config.get("exclude_classes") or ())


def split_options(config: ml_collections.ConfigDict) -> dict:
  """The options of `data.make_split` that the config sets (unset ones take its defaults).

  A fixed split's maps are kept where the scene is (scene_options.data_dir).
  """
  options = {k: v for k, v in config.split.options.items() if v is not None}
  if config.split.protocol == "fixed":
    options.pop("labels", None)
    if config.scene_options.get("data_dir"):
      options.setdefault("data_dir", config.scene_options.data_dir)
  return options


def test_checkpoint(config: ml_collections.ConfigDict) -> str:
  """'best' (the best validation accuracy) or 'last' (after config.num_epochs)."""
  choice = config.get("test_checkpoint") or "best"  # workdirs saved before the key existed
  if choice not in ("best", "last"):
    raise ValueError(f"config.test_checkpoint={choice!r}; use 'best' (the epoch of the best "
                     "validation accuracy) or 'last' (after config.num_epochs, as the fixed "
                     "splits' published results are)")
  return choice


def prepare_dataset(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Dataset:
  """Loads the scene and projects it; the split and PCA are made once and kept in the workdir.

  A rerun (resume, evaluation) reads `split.npz` and `pca.npz` back, so every
  stage uses the same pixels and the same projection; `classes.json` keeps the
  class ids and names for predicting without the training scene.
  """
  scene = load_scene(config)
  if jax.process_index() == 0 and not (workdir / "classes.json").exists():
    (workdir / "classes.json").write_text(json.dumps(
        {"class_ids": scene.class_ids.tolist(), "class_names": list(scene.class_names)},
        indent=2) + "\n")
  split_path, pca_path = workdir / "split.npz", workdir / "pca.npz"
  if split_path.exists():
    with np.load(split_path) as z:
      split = data.Split(z["train"], z["val"], z["test"])
  else:
    split = data.make_split(scene.gt, config.split.protocol, seed=config.seed,
                            patch_size=config.patch_size, **split_options(config))
    holdout = config.split.get("holdout_fraction") or 0.0
    if holdout:
      split = data.hold_out_validation(split, scene.gt, holdout, config.seed)
    if jax.process_index() == 0:
      np.savez(split_path, train=split.train, val=split.val, test=split.test)
  if pca_path.exists():
    pca = data.PCA.load(pca_path)
  else:
    if config.pca.fit_on not in ("all", "train"):
      raise ValueError(f"config.pca.fit_on={config.pca.fit_on!r}; use 'all' (the paper) or "
                       "'train' (training pixels only)")
    pca = data.fit_pca(scene.cube, config.pca.components, standardize=config.pca.standardize,
                       pixels=split.train if config.pca.fit_on == "train" else None)
    if jax.process_index() == 0:
      pca.save(pca_path)
  _barrier("split and pca written")
  labels = {part: data.labels_of(scene.gt, getattr(split, part), scene.class_ids)
            for part in ("train", "val", "test")}
  return Dataset(scene, pca.transform(scene.cube), split, labels)


# ----------------------------------------------------------------------------- model and steps


def make_mesh(batch_sizes: Mapping[str, int], devices=None) -> jax.sharding.Mesh:
  """One 'data' axis over `devices` (default: every device of every process).

  `batch_sizes` (name -> global size) are the batches sharded over it. CPU devices
  stand for cores (cli.use_one_cpu_device_per_core), so on the CPU the mesh takes
  the most devices per process whose total divides every batch size; a batch size
  that an accelerator mesh does not divide is an error.
  """
  for name, size in batch_sizes.items():
    if size < 1:
      raise ValueError(f"{name}={size} must be positive")
  devices = jax.devices() if devices is None else list(devices)
  available = len(devices)
  if devices[0].platform == "cpu":
    by_process = [[d for d in devices if d.process_index == p]
                  for p in sorted({d.process_index for d in devices})]
    per_process = max((k for k in range(1, min(map(len, by_process)) + 1)
                       if all(size % (k * len(by_process)) == 0 for size in batch_sizes.values())),
                      default=1)
    devices = [d for group in by_process for d in group[:per_process]]
  for name, size in batch_sizes.items():
    if size % len(devices):
      raise ValueError(f"{name}={size} must be a multiple of the {len(devices)} devices it is "
                       "sharded over")
  if len(devices) < available:
    logging.info("Sharding over %d of the %d CPU devices: the most that %s divide.",
                 len(devices), available, ", ".join(f"{k}={v}" for k, v in batch_sizes.items()))
  return jax.make_mesh((len(devices),), ("data",), (jax.sharding.AxisType.Auto,), devices=devices)


def make_optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """AdamW with a linear warmup, then a constant or cosine-decayed learning rate.

  With `config.optimizer.clip_norm` > 0, gradients are first clipped to that
  global norm, which keeps higher learning rates stable (README.md).
  """
  o = config.optimizer
  warmup = round(o.warmup_epochs * steps_per_epoch)
  if o.schedule == "constant":
    schedule = optax.warmup_constant_schedule(0.0, o.learning_rate, warmup) if warmup else (
        optax.constant_schedule(o.learning_rate))
  elif o.schedule == "cosine":
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, o.learning_rate, warmup, decay_steps=max(config.num_epochs * steps_per_epoch,
                                                      warmup + 1))
  else:
    raise ValueError(f"config.optimizer.schedule={o.schedule!r}; use 'constant' or 'cosine'")
  tx = optax.adamw(schedule, weight_decay=o.weight_decay)
  if o.clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(o.clip_norm), tx)
  return tx, schedule


def create_train_state(model: flax.linen.Module, tx: optax.GradientTransformation,
                       patch_shape: tuple[int, int, int], seed: int, mesh: jax.sharding.Mesh,
                       abstract: bool = False) -> TrainState:
  """The initial state, replicated over `mesh` (shapes only when `abstract`, for restoring)."""
  def init(key):
    params_key, dropout_key, train_key = jax.random.split(key, 3)
    variables = model.init({"params": params_key, "dropout": dropout_key},
                           jnp.zeros((1, *patch_shape), jnp.float32), train=False)
    state = TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                              batch_stats=variables.get("batch_stats", {}), rng=train_key)
    # Strong dtypes (no weak types), so a step returns the types it got and compiles once.
    return jax.tree.map(lambda x: jnp.asarray(x).astype(jnp.asarray(x).dtype), state)
  replicated = NamedSharding(mesh, P())
  key = jax.random.PRNGKey(seed)
  if abstract:
    shapes = jax.eval_shape(init, key)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                        shapes)
  return jax.jit(init, out_shardings=replicated)(key)


def _variables(state: TrainState) -> dict:
  return {"params": state.params, "batch_stats": state.batch_stats}


def train_step(state: TrainState, batch: Mapping[str, jax.Array], class_weights: jax.Array
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One AdamW step on the class-weighted cross-entropy (weights all 1: plain)."""
  dropout_key = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, batch["patches"], train=True,
        rngs={"dropout": dropout_key}, mutable=["batch_stats"])
    weights = class_weights[batch["labels"]]
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
    return jnp.sum(weights * losses) / jnp.sum(weights), (logits, updates)

  (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads,
                                batch_stats=updates.get("batch_stats", state.batch_stats))
  accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == batch["labels"])
  return state, {"loss": loss, "accuracy": accuracy}


def predict_step(state: TrainState, patches: jax.Array, with_features: bool
                 ) -> dict[str, jax.Array]:
  """Class probabilities (B, C), and the (B, D) feature vectors if `with_features`."""
  out = {"probabilities": jax.nn.softmax(state.apply_fn(_variables(state), patches, train=False))}
  if with_features:
    out["features"] = state.apply_fn(_variables(state), patches, train=False, method="features")
  return out


def jit_train_step(mesh: jax.sharding.Mesh) -> Callable:
  """`train_step` compiled for `mesh`: batch sharded, state replicated and donated."""
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  return jax.jit(train_step, in_shardings=(replicated, sharded, replicated),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))


def jit_predict_step(mesh: jax.sharding.Mesh, with_features: bool) -> Callable:
  """`predict_step` compiled for `mesh`; outputs are replicated, so every process has them."""
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  return jax.jit(lambda state, patches: predict_step(state, patches, with_features),
                 in_shardings=(replicated, sharded), out_shardings=replicated)


def predict(state: TrainState, step: Callable, mesh: jax.sharding.Mesh, cube: np.ndarray,
            pixels: np.ndarray | None, *, patch_size: int, batch_size: int,
            desc: str | None = None) -> dict[str, np.ndarray]:
  """`step`'s outputs for each pixel (every pixel of the scene, row-major, if None).

  Batches stream through `data.eval_batches`, so memory holds one batch of
  patches at a time; each process feeds its rows of every global batch.
  """
  sharded = NamedSharding(mesh, P("data"))
  count = cube.shape[0] * cube.shape[1] if pixels is None else len(pixels)
  batches = data.eval_batches(cube, pixels, patch_size=patch_size, batch_size=batch_size,
                              process_index=jax.process_index(),
                              process_count=jax.process_count())
  chunks = []
  for batch in tqdm.tqdm(batches, desc=desc, total=-(-count // batch_size), leave=False,
                         disable=desc is None or jax.process_index() != 0):
    out = step(state, jax.make_array_from_process_local_data(sharded, batch["patches"]))
    chunks.append(jax.tree.map(np.asarray, out))
  return {k: np.concatenate([c[k] for c in chunks])[:count] for k in chunks[0]}


# ----------------------------------------------------------------------------- checkpoints


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


def restore_tested(config: ml_collections.ConfigDict, workdir: pathlib.Path, num_classes: int,
                   mesh: jax.sharding.Mesh) -> tuple[TrainState, dict]:
  """The state the run's protocol tests (`test_checkpoint`), sharded for `mesh`, and its
  bookkeeping.

  Shared by evaluation, comparison and prediction; only shapes come from the
  config, so the training scene is not needed.
  """
  last = test_checkpoint(config) == "last"
  folder = workdir / "checkpoints" / ("latest" if last else "best")
  if not folder.is_dir() or not any(p.name.isdigit() for p in folder.iterdir()):
    raise FileNotFoundError(
        f"No checkpoint in {folder}: training in {workdir} has not finished an epoch. "
        f"Run python train.py --config <config> --workdir {workdir} first.")
  model = models.create_model(config.model.name, num_classes, **config.model.kwargs)
  tx, _ = make_optimizer(config, steps_per_epoch=1)  # the schedule shapes no array
  target = create_train_state(
      model, tx, (config.patch_size, config.patch_size, config.pca.components), config.seed,
      mesh, abstract=True)
  manager = checkpoint_managers(workdir)["latest" if last else "best"]
  try:
    state, meta = restore_checkpoint(manager, target)
  finally:
    manager.close()
  if last and meta["epoch"] < config.num_epochs:
    raise ValueError(
        f"{workdir} has trained {meta['epoch']} of its {config.num_epochs} epochs, and its "
        "config tests the last epoch (config.test_checkpoint='last'): rerun the same train.py "
        "command to finish training")
  return state, meta


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
  workdir/run_<i>, one after the other.
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
  model = models.create_model(config.model.name, dataset.scene.num_classes, **config.model.kwargs)
  tx, schedule = make_optimizer(config, steps_per_epoch)
  state = create_train_state(model, tx, (config.patch_size, config.patch_size,
                                         dataset.cube.shape[-1]), config.seed, mesh)
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
  step_fn, predict_fn = jit_train_step(mesh), jit_predict_step(mesh, with_features=False)
  every = config.get("eval_every_epochs") or 1

  while not _finished(config, meta, selection):
    epoch = meta["epoch"] + 1
    start = time.perf_counter()
    state, train_metrics = _train_epoch(config, dataset, mesh, step_fn, state, weights, epoch,
                                        managers["latest"])
    record = {"epoch": epoch, "step": epoch * steps_per_epoch,
              "learning_rate": float(schedule(epoch * steps_per_epoch - 1)), **train_metrics}
    if epoch % every == 0 or epoch == config.num_epochs:
      probabilities = predict(state, predict_fn, mesh, dataset.cube,
                              getattr(dataset.split, monitored), patch_size=config.patch_size,
                              batch_size=config.eval_batch_size,
                              desc=_PART_NAMES[monitored])["probabilities"]
      labels = dataset.labels[monitored]
      record[f"{monitored}_loss"] = float(-np.mean(np.log(np.maximum(
          probabilities[np.arange(len(labels)), labels], 1e-30))))
      record[f"{monitored}_accuracy"] = float(np.mean(probabilities.argmax(-1) == labels))
    record["epoch_seconds"] = time.perf_counter() - start
    writer.write(record)
    meta = dict(meta, epoch=epoch)
    if selection == "best" and record.get("val_accuracy", -1.0) > meta["best_val_accuracy"]:
      meta.update(best_epoch=epoch, best_val_accuracy=record["val_accuracy"])
      save_checkpoint(managers["best"], state, meta)
    save_checkpoint(managers["latest"], state, meta)
    logging.info("epoch %d/%d: train loss %.4f accuracy %.4f%s, %.1f s", epoch,
                 config.num_epochs, record["train_loss"], record["train_accuracy"],
                 _monitored_summary(record, monitored, meta, selection), record["epoch_seconds"])
  if meta["epoch"] < config.num_epochs:
    logging.info("Stopped early after epoch %d: no better validation accuracy for %d epochs",
                 meta["epoch"], config.patience)
  for manager in managers.values():
    manager.close()


def claim_workdir(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Saves the resolved config as workdir/config.json; refuses a workdir trained with another.

  A workdir of another config that holds no checkpoint yet (a run that failed
  before its first epoch) is started afresh: nothing trained is lost.
  """
  path = workdir / "config.json"
  resolved = json.loads(config.to_json_best_effort())
  if path.exists():
    saved = json.loads(path.read_text())
    precision.fill_unsaved(saved, resolved)
    if not _differences(saved, resolved):  # a key added since, unset (None), is no difference
      return
    if any(workdir.glob("**/checkpoints/latest/[0-9]*")):
      differences = ", ".join(
          f"{k}: {a!r} there, {b!r} now" for k, (a, b) in _differences(saved, resolved).items())
      raise ValueError(
          f"{workdir} holds a run of another config ({differences}). Resuming it with this "
          "config would mix two experiments: use a new --workdir, or rerun with the config "
          f"saved in {path}.")
    logging.warning("%s held an untrained run of another config; starting afresh", workdir)
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("split.npz", "pca.npz", "classes.json", "metrics.jsonl"):
      (workdir / name).unlink(missing_ok=True)
    path.write_text(json.dumps(resolved, indent=2) + "\n")
  _barrier("workdir claimed")


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was trained with; its matmul precision is applied, so that
  evaluation and prediction compute as training did."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    raise FileNotFoundError(f"{path} does not exist: {workdir} is not a training workdir "
                            "(run train.py --workdir on it first)")
  config = ml_collections.ConfigDict(json.loads(path.read_text()))
  precision.use(config)
  return config


def load_classes(config: ml_collections.ConfigDict, workdir: str | pathlib.Path
                 ) -> tuple[np.ndarray, list[str]]:
  """The label values and names of the classes a run in `workdir` predicts.

  From classes.json; a workdir trained before that file existed loads its scene.
  """
  path = pathlib.Path(workdir) / "classes.json"
  if path.exists():
    classes = json.loads(path.read_text())
    return np.array(classes["class_ids"], np.int32), classes["class_names"]
  scene = load_scene(config)
  return scene.class_ids, list(scene.class_names)


def _differences(a: Mapping, b: Mapping, prefix: str = "") -> dict[str, tuple]:
  out = {}
  for key in sorted(set(a) | set(b)):
    x, y = a.get(key), b.get(key)
    if isinstance(x, Mapping) and isinstance(y, Mapping):
      out.update(_differences(x, y, f"{prefix}{key}."))
    elif x != y:
      out[f"{prefix}{key}"] = (x, y)
  return out


def _barrier(name: str) -> None:
  """Waits until every process got here (files process 0 wrote are then complete)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


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


def _train_epoch(config, dataset, mesh, step_fn, state, weights, epoch, latest_manager):
  """One pass over the training pixels; stops the run on a non-finite loss."""
  sharded = NamedSharding(mesh, P("data"))
  batches: Iterator = data.train_batches(
      dataset.cube, dataset.split.train, dataset.labels["train"], patch_size=config.patch_size,
      batch_size=config.batch_size, seed=config.seed, epoch=epoch, augment=config.augment,
      process_index=jax.process_index(), process_count=jax.process_count())
  first_step = int(state.step)
  history = []
  bar = tqdm.tqdm(batches, total=len(dataset.split.train) // config.batch_size,
                  desc=f"epoch {epoch}/{config.num_epochs}",
                  disable=jax.process_index() != 0)
  for i, batch in enumerate(bar):
    batch = jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharded, x), batch)
    state, metrics = step_fn(state, batch, weights)
    history.append(metrics)
    if i % 10 == 9 or i + 1 == bar.total:
      losses = np.array([m["loss"] for m in history])
      _check_finite(losses, first_step, latest_manager)
      bar.set_postfix(loss=f"{losses.mean():.4f}",
                      accuracy=f"{np.mean([m['accuracy'] for m in history]):.4f}")
  bar.close()
  return state, {"train_loss": float(np.mean([m["loss"] for m in history])),
                 "train_accuracy": float(np.mean([m["accuracy"] for m in history]))}


def _check_finite(losses: np.ndarray, first_step: int, latest_manager) -> None:
  bad = np.flatnonzero(~np.isfinite(losses))
  if bad.size:
    last = latest_manager.latest_step()
    kept = (f"the last good checkpoint (epoch {last}) in {latest_manager.directory} is kept"
            if last is not None else "no checkpoint had been saved yet")
    raise FloatingPointError(
        f"The training loss became {losses[bad[0]]} at step {first_step + bad[0] + 1}; training "
        f"stopped and {kept}. Lower config.optimizer.learning_rate or add warmup "
        "(config.optimizer.warmup_epochs), and check the input for NaNs.")
