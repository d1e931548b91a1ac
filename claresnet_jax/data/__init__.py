"""Scenes, preprocessing, splits and the tf.data patch pipeline.

The pipeline (`train_batches`, `eval_batches`) lives in `pipeline.py` and is
imported on first use, so that TensorFlow loads only where input is fed.
"""
from claresnet_jax.data.fixed_splits import FIXED_SPLITS
from claresnet_jax.data.loading import load_scene
from claresnet_jax.data.preprocess import PCA
from claresnet_jax.data.preprocess import WATER_ABSORPTION_BANDS
from claresnet_jax.data.preprocess import fit_pca
from claresnet_jax.data.preprocess import nodata_mask
from claresnet_jax.data.preprocess import remove_bands
from claresnet_jax.data.scenes import SCENES
from claresnet_jax.data.scenes import Scene
from claresnet_jax.data.scenes import SceneInfo
from claresnet_jax.data.scenes import ground_truth_scene
from claresnet_jax.data.splits import PROTOCOLS
from claresnet_jax.data.splits import Split
from claresnet_jax.data.splits import check_patch_size
from claresnet_jax.data.splits import hold_out_validation
from claresnet_jax.data.splits import labels_of
from claresnet_jax.data.splits import leakage
from claresnet_jax.data.splits import make_split

_PIPELINE = ("train_batches", "eval_batches")


def __getattr__(name):
  if name in _PIPELINE:
    from claresnet_jax.data import pipeline  # pylint: disable=g-import-not-at-top
    return getattr(pipeline, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
