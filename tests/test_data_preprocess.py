"""Band removal and PCA, checked against independent numpy computations."""
import numpy as np
import pytest

from claresnet_jax import data


@pytest.fixture(scope="module")
def cube():
  return data.load_scene("salinas_a").cube


def test_pca_matches_the_covariance_eigenvectors(cube):
  pca = data.fit_pca(cube, 5)
  pixels = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
  centred = pixels - pixels.mean(axis=0)
  eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / (len(pixels) - 1))
  top = eigenvectors[:, ::-1][:, :5]
  projected = pca.transform(cube).reshape(-1, 5).astype(np.float64)
  # Same directions up to sign, and the variance along each is its eigenvalue.
  np.testing.assert_allclose(np.abs(centred @ top), np.abs(projected), rtol=1e-4, atol=1e-2)
  np.testing.assert_allclose(projected.var(axis=0, ddof=1), eigenvalues[::-1][:5], rtol=1e-4)
  assert pca.transform(cube).shape == (83, 86, 5)
  assert pca.transform(cube).dtype == np.float32


def test_pca_on_training_pixels_only(cube):
  pixels = np.stack(np.nonzero(data.load_scene("salinas_a").gt == 1), axis=1)
  pca = data.fit_pca(cube, 3, pixels=pixels)
  spectra = cube[pixels[:, 0], pixels[:, 1]].astype(np.float64)
  np.testing.assert_allclose(pca.mean, spectra.mean(axis=0), rtol=1e-6)
  projected = pca.transform(cube)[pixels[:, 0], pixels[:, 1]]
  np.testing.assert_allclose(projected.mean(axis=0), 0, atol=1e-2)
  assert not np.allclose(pca.mean, data.fit_pca(cube, 3).mean)


def test_standardized_components_have_unit_variance_on_fitted_pixels(cube):
  projected = data.fit_pca(cube, 4, standardize=True).transform(cube).reshape(-1, 4)
  np.testing.assert_allclose(projected.mean(axis=0), 0, atol=1e-4)
  np.testing.assert_allclose(projected.std(axis=0), 1, rtol=1e-4)


def test_saved_pca_transforms_new_pixels_identically(cube, tmp_path):
  pca = data.fit_pca(cube, 6, standardize=True)
  pca.save(tmp_path / "pca")
  loaded = data.PCA.load(tmp_path / "pca")
  new_pixels = cube[10:20, 30:40] + 3.0
  np.testing.assert_array_equal(loaded.transform(new_pixels), pca.transform(new_pixels))


def test_pixels_without_data_are_left_out_of_the_fit_and_projected_as_the_mean(cube):
  holes = cube.copy()
  holes[:10, :10, 5] = np.nan
  holes[20:30] = 0.0
  holes[40, 40] = -1.0  # a fill value, given as nodata (some valid bands hold -1 too)
  missing = data.nodata_mask(holes, nodata=-1.0)
  assert missing.sum() == 100 + 10 * 86 + 1 and data.nodata_mask(holes).sum() == 100 + 10 * 86
  pca = data.fit_pca(holes, 3)
  fitted = holes[~data.nodata_mask(holes)].astype(np.float64)
  np.testing.assert_allclose(pca.mean, fitted.mean(axis=0), rtol=1e-9)
  projected = pca.transform(holes, missing)
  np.testing.assert_array_equal(projected[missing], 0.0)
  np.testing.assert_array_equal(projected[~missing], pca.transform(cube)[~missing])


def test_zero_components_keep_the_bands_centred_or_standardised(cube):
  pixels = np.argwhere(np.ones(cube.shape[:2], bool))[::7]
  fitted = cube[pixels[:, 0], pixels[:, 1]].astype(np.float64)
  bands = data.fit_pca(cube, 0, pixels=pixels)
  assert bands.n_components == cube.shape[-1]
  np.testing.assert_allclose(bands.transform(cube), cube - fitted.mean(axis=0), atol=1e-3)
  standardised = data.fit_pca(cube, 0, pixels=pixels, standardize=True).transform(cube)
  np.testing.assert_allclose(standardised, (cube - fitted.mean(0)) / fitted.std(0), atol=1e-4)
  assert bands.explained_variance_ratio.sum() == pytest.approx(1.0)


def test_pca_errors(cube):
  with pytest.raises(ValueError, match="n_components=205 must be between 1 and the cube's 204 "
                                       "bands, or 0"):
    data.fit_pca(cube, 205)
  pca = data.fit_pca(cube, 2)
  with pytest.raises(ValueError, match="fitted on 204 bands but the cube has 200"):
    pca.transform(cube[..., :200])


def test_remove_water_absorption_bands():
  raw = np.broadcast_to(np.arange(224, dtype=np.float32), (2, 3, 224))
  corrected = data.remove_bands(raw, "salinas")
  removed = sorted(set(range(224)) - set(corrected[0, 0].astype(int).tolist()))
  # 1-based 108-112, 154-167 and 224, as published for Salinas.
  assert [b + 1 for b in removed] == [*range(108, 113), *range(154, 168), 224]
  assert data.remove_bands(raw[..., :220], "indian_pines").shape == (2, 3, 200)
  assert data.remove_bands(raw, [0, 5]).shape == (2, 3, 222)
  with pytest.raises(ValueError, match="expects the raw 224-band cube, got 204"):
    data.remove_bands(corrected, "salinas")
  with pytest.raises(ValueError, match=r"Band indices \[224\] are outside"):
    data.remove_bands(raw, [224])
