"""Classical baselines: Random Forest, RBF SVM and XGBoost on one pixel's spectrum.

They see the same (PCA) cube and split as the deep models, but only the
centre pixel of each patch, as in the paper's comparison; `svm_patches` is
the RBF SVM on the whole flattened patch that the deep models see, the
strongest cheap baseline on splits where test patches overlap training ones.
"""
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn import ensemble, pipeline, preprocessing, svm
import xgboost

from claresnet_jax import data


def _random_forest(seed: int, **hparams) -> Any:
  return ensemble.RandomForestClassifier(random_state=seed, **hparams)


def _rbf_svm(seed: int, **hparams) -> Any:
  # An RBF kernel's length scale assumes comparable feature scales.
  return pipeline.make_pipeline(
      preprocessing.StandardScaler(),
      svm.SVC(kernel="rbf", random_state=seed, **hparams))


def _xgboost(seed: int, **hparams) -> Any:
  return xgboost.XGBClassifier(random_state=seed, **hparams)


CLASSIFIERS: dict[str, Callable[..., Any]] = {
    "rf": _random_forest,
    "svm": _rbf_svm,
    "svm_patches": _rbf_svm,
    "xgboost": _xgboost,
}
ON_PATCHES = frozenset({"svm_patches"})  # The others see the centre pixel only.


def create_classifier(name: str, seed: int, hparams: Mapping[str, Any]) -> Any:
  """The scikit-learn-style classifier `name`, seeded, with `hparams` from the config."""
  if name not in CLASSIFIERS:
    raise ValueError(f"unknown classical model {name!r}; available: "
                     f'{", ".join(sorted(CLASSIFIERS))}')
  return CLASSIFIERS[name](seed, **hparams)


def centre_spectra(cube: np.ndarray, pixels: np.ndarray) -> np.ndarray:
  """(H, W, bands) cube, (N, 2) (row, col) pixels -> (N, bands) spectra."""
  return np.asarray(cube)[pixels[:, 0], pixels[:, 1]]


def features(name: str, cube: np.ndarray, pixels: np.ndarray, patch_size: int) -> np.ndarray:
  """Classifier `name`'s input for `pixels`: centre spectra, or flattened patches.

  The patches are cut by the deep models' own input pipeline (the same
  reflection-padded edges), as (N, patch_size * patch_size * bands).
  """
  if name not in ON_PATCHES:
    return centre_spectra(cube, pixels)
  batches = data.eval_batches(cube, pixels, patch_size=patch_size, batch_size=1024)
  patches = np.concatenate([b["patches"][b["valid"]] for b in batches])
  return patches.reshape(len(pixels), -1)


def fit_predict(classifier: Any, train_spectra: np.ndarray,
                train_labels: np.ndarray, test_spectra: np.ndarray) -> np.ndarray:
  """Fits on the training spectra and returns the test pixels' class indices.

  Class indices missing from the training pixels (possible with disjoint
  splits) are never predicted; XGBoost needs the present ones renumbered
  0..k-1, so they are renumbered for every classifier and mapped back.
  """
  present, train_codes = np.unique(train_labels, return_inverse=True)
  classifier.fit(train_spectra, train_codes)
  return present[np.asarray(classifier.predict(test_spectra)).astype(int)]
