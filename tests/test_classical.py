"""Classical baselines on a synthetic scene whose classes differ in their spectra."""
import numpy as np
import pytest

from claresnet_jax import classical

SMALL = {
    "rf": {"n_estimators": 20},
    "svm": {"C": 10.0},
    "svm_patches": {"C": 10.0},
    "xgboost": {"n_estimators": 20, "max_depth": 3},
}


def _scene(seed=0, num_classes=4, size=24, bands=6):
  """A cube whose pixel spectra are their class's mean plus noise, and its labels."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(num_classes, size=(size, size))
  means = rng.normal(scale=3.0, size=(num_classes, bands))
  cube = means[labels] + rng.normal(size=(size, size, bands))
  pixels = np.argwhere(np.ones((size, size), bool))
  rng.shuffle(pixels)
  return cube.astype(np.float32), labels, pixels[:300], pixels[300:]


@pytest.mark.parametrize("name", sorted(classical.CLASSIFIERS))
def test_classifier_learns_the_spectra(name):
  cube, labels, train, test = _scene()
  model = classical.create_classifier(name, seed=0, hparams=SMALL[name])
  train_labels = labels[train[:, 0], train[:, 1]]
  predictions = classical.fit_predict(
      model, classical.centre_spectra(cube, train), train_labels,
      classical.centre_spectra(cube, test))
  assert predictions.shape == (len(test),)
  assert np.mean(predictions == labels[test[:, 0], test[:, 1]]) > 0.9


@pytest.mark.parametrize("name", sorted(classical.CLASSIFIERS))
def test_a_class_missing_from_training_is_never_predicted(name):
  cube, labels, train, test = _scene()
  train = train[labels[train[:, 0], train[:, 1]] != 1]
  model = classical.create_classifier(name, seed=0, hparams=SMALL[name])
  predictions = classical.fit_predict(
      model, classical.centre_spectra(cube, train),
      labels[train[:, 0], train[:, 1]], classical.centre_spectra(cube, test))
  assert set(np.unique(predictions)) == {0, 2, 3}


def test_centre_spectra_are_the_pixels_rows():
  cube = np.arange(3 * 4 * 2).reshape(3, 4, 2)
  np.testing.assert_array_equal(
      classical.centre_spectra(cube, np.array([[2, 1], [0, 3]])),
      [[18, 19], [6, 7]])


def test_svm_patches_sees_the_reflection_padded_patch_and_the_others_the_centre():
  rng = np.random.default_rng(0)
  cube = rng.normal(size=(6, 5, 3)).astype(np.float32)
  pixels = np.array([[0, 0], [2, 3], [5, 4]])
  padded = np.pad(cube, ((1, 1), (1, 1), (0, 0)), mode="reflect")
  expected = np.stack([padded[r:r + 3, c:c + 3].ravel() for r, c in pixels])
  np.testing.assert_array_equal(classical.features("svm_patches", cube, pixels, 3), expected)
  np.testing.assert_array_equal(classical.features("svm", cube, pixels, 3),
                                cube[pixels[:, 0], pixels[:, 1]])


def test_unknown_classifier_lists_the_available_ones():
  with pytest.raises(ValueError, match="available: rf, svm, svm_patches, xgboost"):
    classical.create_classifier("knn", seed=0, hparams={})
