"""The model's state and its compiled steps: the TrainState on a device mesh, the training and
prediction steps, and the prediction of pixels in streamed batches.

One 'data' mesh axis over every device of every process: batches are sharded,
parameters replicated.
"""
from collections.abc import Callable, Mapping
import collections
import functools
from typing import Any

from absl import logging
import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import optax
import tqdm

from claresnet_jax import data, models


class TrainState(train_state.TrainState):
  """Parameters, optimizer state, BatchNorm statistics ({} if none) and the dropout key."""
  batch_stats: Any
  rng: jax.Array  # step t draws dropout from fold_in(rng, t), so a resumed run repeats it


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


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW (after clipping to `config.optimizer.clip_norm`, where > 0) whose learning rate is
  a hyperparameter in its state, set by the training step from `learning_rate_schedule`.

  The schedule stays out of the compiled step, so one program serves every run length and
  training-set size (the seeds of a disjoint split). Clipping keeps higher learning rates
  stable (docs/training.md).
  """
  o = config.optimizer
  return _adamw(o.weight_decay, o.clip_norm)


@functools.lru_cache
def _adamw(weight_decay: float, clip_norm: float) -> optax.GradientTransformation:
  """One object per setting: the state's structure, and so the compiled step, is shared."""
  def adamw(learning_rate):
    tx = optax.adamw(learning_rate, weight_decay=weight_decay)
    return optax.chain(optax.clip_by_global_norm(clip_norm), tx) if clip_norm > 0 else tx
  return optax.inject_hyperparams(adamw)(learning_rate=0.0)


def learning_rate_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int
                           ) -> optax.Schedule:
  """A linear warmup, then a constant or cosine-decayed learning rate, by step."""
  o = config.optimizer
  warmup = round(o.warmup_epochs * steps_per_epoch)
  if o.schedule == "constant":
    return optax.warmup_constant_schedule(0.0, o.learning_rate, warmup) if warmup else (
        optax.constant_schedule(o.learning_rate))
  if o.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, o.learning_rate, warmup, decay_steps=max(config.num_epochs * steps_per_epoch,
                                                      warmup + 1))
  raise ValueError(f"config.optimizer.schedule={o.schedule!r}; use 'constant' or 'cosine'")


@functools.lru_cache
def create_model(name: str, num_classes: int, **kwargs) -> flax.linen.Module:
  """models.create_model, one object per setting: states built on it share compiled steps."""
  return models.create_model(name, num_classes, **kwargs)


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


def variables(state: TrainState) -> dict:
  """What prediction needs of a state: {'params', 'batch_stats'}."""
  return {"params": state.params, "batch_stats": state.batch_stats}


def train_step(state: TrainState, batch: Mapping[str, jax.Array], class_weights: jax.Array,
               learning_rate: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
  """One AdamW step at `learning_rate` on the class-weighted cross-entropy (weights all 1:
  plain)."""
  dropout_key = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, batch["patches"], train=True,
        rngs={"dropout": dropout_key}, mutable=["batch_stats"])
    weights = class_weights[batch["labels"]]
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
    return jnp.sum(weights * losses) / jnp.sum(weights), (logits, updates)

  (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  hyperparams = dict(state.opt_state.hyperparams, learning_rate=learning_rate)
  state = state.replace(opt_state=state.opt_state._replace(hyperparams=hyperparams))
  state = state.apply_gradients(grads=grads,
                                batch_stats=updates.get("batch_stats", state.batch_stats))
  accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == batch["labels"])
  return state, {"loss": loss, "accuracy": accuracy}


def predict_step(model: flax.linen.Module, variables: Mapping, patches: jax.Array,
                 with_features: bool) -> dict[str, jax.Array]:
  """Class probabilities (B, C), and the (B, D) feature vectors if `with_features`, from one
  forward pass."""
  features = model.apply(variables, patches, train=False, method="features")
  logits = model.apply(variables, features, train=False, method="classify")
  out = {"probabilities": jax.nn.softmax(logits)}
  if with_features:
    out["features"] = features
  return out


@functools.lru_cache
def jit_train_step(mesh: jax.sharding.Mesh) -> Callable:
  """`train_step` compiled for `mesh`: batch sharded, state replicated and donated.

  One function per mesh, so the program compiles once per state structure and batch shape.
  """
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  return jax.jit(train_step, in_shardings=(replicated, sharded, replicated, replicated),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))


@functools.lru_cache
def jit_predict_step(model: flax.linen.Module, mesh: jax.sharding.Mesh, with_features: bool
                     ) -> Callable:
  """`predict_step` of `model` compiled for `mesh`, one function per (model, mesh, outputs);
  outputs are replicated, so every process has them."""
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  return jax.jit(functools.partial(predict_step, model, with_features=with_features),
                 in_shardings=(replicated, sharded), out_shardings=replicated)


def predict_pixels(variables: Mapping, step: Callable, mesh: jax.sharding.Mesh,
                   cube: np.ndarray, pixels: np.ndarray | None, *, patch_size: int,
                   batch_size: int, desc: str | None = None) -> dict[str, np.ndarray]:
  """`step`'s outputs for each (row, column) of `pixels` (every pixel of `cube`, row-major,
  if None).

  Batches stream through `data.eval_batches`, so memory holds a few batches of
  patches at a time; each process feeds its rows of every global batch. The
  device computes batch i while batch i - 2's outputs come back to the host.
  """
  sharded = NamedSharding(mesh, P("data"))
  count = cube.shape[0] * cube.shape[1] if pixels is None else len(pixels)
  batches = data.eval_batches(cube, pixels, patch_size=patch_size, batch_size=batch_size,
                              process_index=jax.process_index(),
                              process_count=jax.process_count())
  pending, chunks = collections.deque(), []
  for batch in tqdm.tqdm(batches, desc=desc, total=-(-count // batch_size), leave=False,
                         disable=desc is None or jax.process_index() != 0):
    pending.append(step(variables, jax.make_array_from_process_local_data(sharded,
                                                                           batch["patches"])))
    if len(pending) > _IN_FLIGHT:
      chunks.append(jax.device_get(pending.popleft()))
  chunks += jax.device_get(list(pending))
  return {k: np.concatenate([c[k] for c in chunks])[:count] for k in chunks[0]}


# Batches dispatched ahead of the one being fetched: enough to keep the device busy while
# the host cuts the next patches and copies outputs back.
_IN_FLIGHT = 2
