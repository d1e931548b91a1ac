"""A run's workdir: its config, classes, split and PCA, made once and read back, so that every
stage (training, resuming, evaluation, prediction) uses the same ones.

On several processes (hosts on a shared filesystem), process 0 writes each file
atomically, and the others read what it wrote only after a barrier.
"""
from collections.abc import Callable, Mapping
import dataclasses
import json
import os
import pathlib

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from claresnet_jax import data, precision
from claresnet_jax.data import fixed_splits


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A scene prepared for a run: the projected cube, the split and zero-based labels."""
  scene: data.Scene
  cube: np.ndarray  # (H, W, pca components) float32
  split: data.Split
  labels: Mapping[str, np.ndarray]  # 'train', 'val', 'test' -> (N,) int32


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


def prepare_dataset(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Dataset:
  """Loads the scene and projects it; the split and PCA are made once and kept in the workdir.

  A rerun (resume, evaluation) reads `split.npz` and `pca.npz` back, so every
  stage uses the same pixels and the same projection; `classes.json` keeps the
  class ids and names for predicting without the training scene. Every process
  looks for the files before process 0 writes any, so none reads one being written.
  """
  scene = load_scene(config)
  if jax.process_index() == 0 and not (workdir / "classes.json").exists():
    _write_atomically(workdir / "classes.json", lambda partial: partial.write_text(json.dumps(
        {"class_ids": scene.class_ids.tolist(), "class_names": list(scene.class_names)},
        indent=2) + "\n"))
  split_path, pca_path = workdir / "split.npz", workdir / "pca.npz"
  kept = {path: path.exists() for path in (split_path, pca_path)}
  _barrier("split and pca looked up")
  if kept[split_path]:
    with np.load(split_path) as z:
      split = data.Split(z["train"], z["val"], z["test"])
  else:
    split = data.make_split(scene.gt, config.split.protocol, seed=config.seed,
                            patch_size=config.patch_size, **split_options(config))
    holdout = config.split.get("holdout_fraction") or 0.0
    if holdout:
      split = data.hold_out_validation(split, scene.gt, holdout, config.seed)
    if jax.process_index() == 0:
      _write_atomically(split_path, lambda partial: np.savez(
          partial, train=split.train, val=split.val, test=split.test))
  if kept[pca_path]:
    pca = data.PCA.load(pca_path)
  else:
    if config.pca.fit_on not in ("all", "train"):
      raise ValueError(f"config.pca.fit_on={config.pca.fit_on!r}; use 'all' (the paper) or "
                       "'train' (training pixels only)")
    pca = data.fit_pca(scene.cube, config.pca.components, standardize=config.pca.standardize,
                       pixels=split.train if config.pca.fit_on == "train" else None)
    if jax.process_index() == 0:
      _write_atomically(pca_path, pca.save)
  _barrier("split and pca written")
  labels = {part: data.labels_of(scene.gt, getattr(split, part), scene.class_ids)
            for part in ("train", "val", "test")}
  return Dataset(scene, pca.transform(scene.cube), split, labels)


def claim_workdir(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Saves the resolved config as workdir/config.json; refuses a workdir trained with another.

  A workdir of another config that holds no checkpoint yet (a run that failed
  before its first epoch) is started afresh: nothing trained is lost.
  """
  path = workdir / "config.json"
  resolved = json.loads(config.to_json_best_effort())
  saved = json.loads(path.read_text()) if path.exists() else None
  _barrier("config.json read")  # by every process, before process 0 replaces it
  if saved is not None:
    _add_keys_it_predates(saved, resolved)
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
    text = json.dumps(resolved, indent=2) + "\n"
    _write_atomically(path, lambda partial: partial.write_text(text))
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


# Config keys added since runs were first saved, with the value their absence means: a run
# saved before one of them resumes with an unchanged config.
KEYS_ADDED_SINCE = {"exclude_classes": [], "test_checkpoint": "best", "eval_every_epochs": 1,
                    "split.holdout_fraction": 0.0, "model.kwargs.dtype": "float32",
                    "matmul_precision": "default"}


def _add_keys_it_predates(saved: dict, resolved: dict) -> None:
  """Adds to `saved` (a config.json) the KEYS_ADDED_SINCE that `resolved` has and it lacks."""
  for path, value in KEYS_ADDED_SINCE.items():
    *parents, key = path.split(".")
    old, new = saved, resolved
    for parent in parents:
      old, new = old.get(parent, {}), new.get(parent, {})
    if key in new and key not in old:
      old[key] = value


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


def _write_atomically(path: pathlib.Path, write: Callable[[pathlib.Path], object]) -> None:
  """Writes `path` through `write(partial)`, a hidden file beside it, then renames it into place.

  A crash while writing leaves the previous `path` (or none) and no partial file, so a
  rerun never reads a half-written file as complete; `partial` ends as `path` does (.npz:
  np.savez appends no suffix).
  """
  partial = path.with_name(f".{path.stem}.partial{path.suffix}")
  try:
    write(partial)
    with open(partial, "rb") as f:  # the data reaches the disk before the name does
      os.fsync(f.fileno())
    os.replace(partial, path)
  finally:
    partial.unlink(missing_ok=True)


def _barrier(name: str) -> None:
  """Waits until every process got here (files process 0 wrote are then complete)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
