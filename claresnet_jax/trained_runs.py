"""A trained run read back from its workdir: config, classes, the dataset where needed, and the
state its protocol tests, restored on a mesh to predict pixels with.
"""
import os
import pathlib

import jax
import ml_collections
import numpy as np

from claresnet_jax import models
from claresnet_jax.checkpoints import checkpoint_managers, restore_checkpoint, test_checkpoint
from claresnet_jax.steps import TrainState, create_train_state, jit_predict_step, make_mesh
from claresnet_jax.steps import make_optimizer, predict_pixels
from claresnet_jax.workdirs import load_classes, load_config, prepare_dataset


class TrainedRun:
  """A run restored from its workdir at the checkpoint its protocol tests, to predict with.

  Without its dataset, only config.json, classes.json and the checkpoint are
  read, so a run predicts where its training scene is not at hand. Each
  predict step compiles on its first use; later calls reuse the program (the
  batch shape never changes).
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
    self.state, self.meta = restore_tested(self.config, self.workdir, len(self.class_ids),
                                           self.mesh)
    self._steps = {with_features: jit_predict_step(self.mesh, with_features)
                   for with_features in (False, True)}

  def predict(self, cube: np.ndarray, pixels: np.ndarray | None, *,
              with_features: bool = False, desc: str | None = None) -> dict[str, np.ndarray]:
    """Class probabilities (N, C) of the (N, 2) `pixels` of `cube`, and with `with_features`
    their (N, D) feature vectors.

    `cube` is a scene projected with the run's PCA; pixels None means every
    pixel, row-major. `desc` names a progress bar.
    """
    return predict_pixels(self.state, self._steps[with_features], self.mesh, cube, pixels,
                          patch_size=self.config.patch_size,
                          batch_size=self.config.eval_batch_size, desc=desc)


def restore_tested(config: ml_collections.ConfigDict, workdir: pathlib.Path, num_classes: int,
                   mesh: jax.sharding.Mesh) -> tuple[TrainState, dict]:
  """The state the run's protocol tests (`test_checkpoint`), sharded for `mesh`, and its
  bookkeeping.

  Shared by evaluation, comparison and prediction (`TrainedRun`); only shapes
  come from the config, so the training scene is not needed.
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
