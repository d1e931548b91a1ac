"""A trained run read back from its workdir: config, classes, the dataset where needed, and the
state its protocol tests, restored on a mesh to predict pixels with.
"""
import os
import pathlib

import flax
import jax
from jax.sharding import NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np

from claresnet_jax import data
from claresnet_jax.checkpoints import checkpoint_managers, restore_variables, test_checkpoint
from claresnet_jax.steps import create_model, jit_predict_step, make_mesh, predict_pixels
from claresnet_jax.workdirs import load_classes, load_config, prepare_dataset


class TrainedRun:
  """A run restored from its workdir at the checkpoint its protocol tests, to predict with.

  Without its dataset, only config.json, classes.json, pca.npz's size and the
  checkpoint's variables are read, so a run predicts where its training scene is
  not at hand. The predict steps are compiled once per batch shape (steps.jit_predict_step).
  """

  def __init__(self, workdir: str | os.PathLike, *, with_dataset: bool = False):
    self.workdir = pathlib.Path(workdir).absolute()
    self.config = load_config(self.workdir)
    # The training scene projected with the run's PCA, its split and labels.
    self.dataset = prepare_dataset(self.config, self.workdir) if with_dataset else None
    if self.dataset is None:
      self.class_ids, self.class_names = load_classes(self.config, self.workdir)
    else:
      self.class_ids = self.dataset.scene.class_ids
      self.class_names = list(self.dataset.scene.class_names)
    self.mesh = make_mesh({"config.eval_batch_size": self.config.eval_batch_size})
    # meta: the loop's bookkeeping at that checkpoint (epoch, best epoch and validation accuracy).
    self.model, self.variables, self.meta = restore_tested(
        self.config, self.workdir, len(self.class_ids), self.mesh)

  def predict(self, cube: np.ndarray, pixels: np.ndarray | None, *,
              with_features: bool = False, desc: str | None = None) -> dict[str, np.ndarray]:
    """Class probabilities (N, C) of the (N, 2) `pixels` of `cube`, and with `with_features`
    their (N, D) feature vectors.

    `cube` is a scene projected with the run's PCA; pixels None means every
    pixel, row-major. `desc` names a progress bar.
    """
    return predict_pixels(self.variables, jit_predict_step(self.model, self.mesh, with_features),
                          self.mesh, cube, pixels, patch_size=self.config.patch_size,
                          batch_size=self.config.eval_batch_size, desc=desc)


def restore_tested(config: ml_collections.ConfigDict, workdir: pathlib.Path, num_classes: int,
                   mesh: jax.sharding.Mesh) -> tuple[flax.linen.Module, dict, dict]:
  """The run's model, the variables of the checkpoint its protocol tests (`test_checkpoint`),
  replicated over `mesh`, and that checkpoint's bookkeeping.

  Shared by evaluation, comparison and prediction (`TrainedRun`); only shapes come from
  the config and pca.npz, so the training scene is not needed, and the optimizer state
  is never read.
  """
  last = test_checkpoint(config) == "last"
  folder = workdir / "checkpoints" / ("latest" if last else "best")
  if not folder.is_dir() or not any(p.name.isdigit() for p in folder.iterdir()):
    raise FileNotFoundError(
        f"No checkpoint in {folder}: training in {workdir} has not finished an epoch. "
        f"Run python train.py --config <config> --workdir {workdir} first.")
  model = create_model(config.model.name, num_classes, **config.model.kwargs)
  bands = config.pca.components or data.PCA.load(workdir / "pca.npz").n_components
  patches = jax.ShapeDtypeStruct((1, config.patch_size, config.patch_size, bands), np.float32)
  shapes = jax.eval_shape(lambda x: model.init(
      {"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, train=False), patches)
  replicated = NamedSharding(mesh, P())
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                        {"params": shapes["params"], "batch_stats": shapes.get("batch_stats", {})})
  manager = checkpoint_managers(workdir)["latest" if last else "best"]
  try:
    variables, meta = restore_variables(manager, target)
  finally:
    manager.close()
  if last and meta["epoch"] < config.num_epochs:
    raise ValueError(
        f"{workdir} has trained {meta['epoch']} of its {config.num_epochs} epochs, and its "
        "config tests the last epoch (config.test_checkpoint='last'): rerun the same train.py "
        "command to finish training")
  return model, variables, meta
