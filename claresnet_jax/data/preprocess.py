"""Spectral preprocessing: water-absorption band removal, no-data pixels and PCA.

The fitted PCA is a plain set of arrays saved with a run, so that inference on
new pixels projects them exactly as the training pixels were.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import sklearn.decomposition

# Water-absorption bands of the raw AVIRIS files (0-based), whose removal gives
# the "corrected" cubes: Indian Pines 220 -> 200 bands (1-based 104-108,
# 150-163, 220), Salinas 224 -> 204 bands (108-112, 154-167, 224).
WATER_ABSORPTION_BANDS = {
    "indian_pines": (*range(103, 108), *range(149, 163), 219),
    "salinas": (*range(107, 112), *range(153, 167), 223),
}
_RAW_BANDS = {"indian_pines": 220, "salinas": 224}


def remove_bands(cube: np.ndarray, bands: Sequence[int] | str) -> np.ndarray:
  """Drops bands (0-based indices, or a scene name of `WATER_ABSORPTION_BANDS`)."""
  if isinstance(bands, str):
    if bands not in WATER_ABSORPTION_BANDS:
      raise ValueError(f"No water-absorption list for {bands!r}; known: "
                       f"{', '.join(WATER_ABSORPTION_BANDS)}, or pass band indices")
    if cube.shape[-1] != _RAW_BANDS[bands]:
      raise ValueError(f"remove_bands({bands!r}) expects the raw {_RAW_BANDS[bands]}-band cube, "
                       f"got {cube.shape[-1]} bands (already corrected?)")
    bands = WATER_ABSORPTION_BANDS[bands]
  bands = np.asarray(bands, dtype=np.int64)
  out_of_range = bands[(bands < 0) | (bands >= cube.shape[-1])]
  if out_of_range.size:
    raise ValueError(f"Band indices {out_of_range.tolist()} are outside the cube's "
                     f"{cube.shape[-1]} bands (0-based)")
  return np.delete(cube, bands, axis=-1)


def nodata_mask(cube: np.ndarray, nodata: float | None = None) -> np.ndarray:
  """(...,) True where a pixel of a (..., bands) cube holds no measurement.

  That is a NaN or Inf in any band, or the same fill value in every band:
  zero (the blank margins of real flight lines) or `nodata`.
  """
  mask = ~np.isfinite(cube).all(axis=-1) if cube.dtype.kind == "f" else np.zeros(
      cube.shape[:-1], bool)
  mask |= ~cube.any(axis=-1)
  if nodata is not None:
    mask |= (cube == nodata).all(axis=-1)
  return mask


@dataclasses.dataclass(frozen=True, eq=False)
class PCA:
  """A fitted projection: ((x - mean) @ components.T - offset) / scale per pixel.

  `offset` and `scale` are 0 and 1 unless the components were standardised.
  """
  mean: np.ndarray  # (bands,)
  components: np.ndarray  # (n_components, bands)
  explained_variance_ratio: np.ndarray  # (n_components,)
  offset: np.ndarray  # (n_components,)
  scale: np.ndarray  # (n_components,)

  @property
  def n_components(self) -> int:
    return self.components.shape[0]

  def transform(self, cube: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """Projects (..., bands) pixels to (..., n_components) float32.

    No-data pixels (`nodata`, default `nodata_mask(cube)`) are projected as the
    mean spectrum: the value a patch sees there, in training and prediction alike.
    """
    bands = self.components.shape[1]
    if cube.shape[-1] != bands:
      raise ValueError(f"The PCA was fitted on {bands} bands but the cube has {cube.shape[-1]}")
    nodata = nodata_mask(cube) if nodata is None else nodata
    spectra = np.asarray(cube, np.float64)
    if nodata.any():
      spectra = np.where(nodata[..., None], self.mean, spectra)
    projected = (spectra - self.mean) @ self.components.T
    return ((projected - self.offset) / self.scale).astype(np.float32)

  def save(self, path: str | os.PathLike) -> None:
    with open(path, "wb") as file:  # a file object: savez would otherwise append ".npz"
      np.savez(file, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

  @classmethod
  def load(cls, path: str | os.PathLike) -> PCA:
    with np.load(path, allow_pickle=False) as z:
      return cls(**{f.name: z[f.name] for f in dataclasses.fields(cls)})


def fit_pca(cube: np.ndarray, n_components: int, *, pixels: np.ndarray | None = None,
            standardize: bool = False) -> PCA:
  """Fits PCA on the raw values of all pixels (the paper) or of the given (N, 2) pixels.

  No-data pixels (`nodata_mask`) are left out. Fitting on training pixels only
  keeps test spectra out of the projection. `n_components=0` keeps the bands
  themselves, centred (the input of the classical baselines and SpectralFormer in
  their papers). `standardize` rescales each component to zero mean and unit
  variance on the fitted pixels.
  """
  height, width, bands = cube.shape
  if not 0 <= n_components <= bands:
    raise ValueError(f"n_components={n_components} must be between 1 and the cube's {bands} "
                     "bands, or 0 for the bands themselves")
  if pixels is None:
    samples = cube[~nodata_mask(cube)]
  else:
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 2:
      raise ValueError(f"pixels has shape {pixels.shape}; expected (N, 2) (row, col) pairs")
    if ((pixels < 0) | (pixels >= (height, width))).any():
      raise ValueError(f"pixels holds (row, col) pairs outside the {height}x{width} cube")
    samples = cube[pixels[:, 0], pixels[:, 1]]
    samples = samples[~nodata_mask(samples)]
  if len(samples) < max(n_components, 2):
    raise ValueError(f"n_components={n_components} needs at least {max(n_components, 2)} "
                     f"pixels; got {len(samples)}")
  samples = np.asarray(samples, np.float64)
  if n_components == 0:
    mean, components = samples.mean(axis=0), np.eye(bands)
    variance = samples.var(axis=0)
    ratio = variance / variance.sum()
  else:
    # The eigendecomposition of the (bands x bands) covariance: exact, deterministic, fast.
    pca = sklearn.decomposition.PCA(n_components=n_components, svd_solver="covariance_eigh")
    pca.fit(samples)
    mean, components, ratio = pca.mean_, pca.components_, pca.explained_variance_ratio_
  projected = (samples - mean) @ components.T
  if standardize:
    offset, scale = projected.mean(axis=0), projected.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
  else:
    offset, scale = np.zeros(len(components)), np.ones(len(components))
  return PCA(mean, components, ratio, offset, scale)
