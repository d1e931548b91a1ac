"""Prediction: every pixel of new scenes classified by a trained run, written as GIS rasters.

A scene is read, projected with the run's PCA, classified and written one tile
of rows at a time (read with the patch's halo of rows above and below), so
memory grows with the tile, not with the scene. A scene's outputs are written
into a temporary folder inside the output folder and moved into place only
once all of them are complete.
"""
import contextlib
import dataclasses
import math
import os
import pathlib
import shutil
import tempfile
import time
import warnings

from absl import logging
import numpy as np
import rasterio
from rasterio import windows
from rasterio.enums import Resampling
import tqdm

from claresnet_jax import data, metrics, plots, trained_runs
from claresnet_jax.data import rasters, scenes

# Pixels classified per tile. Each tile holds its raw spectra twice in float64 while
# projecting: 65536 pixels of 200 bands are about 200 MB.
TILE_PIXELS = 65536
# The PNG (about 1000 pixels wide) of a larger scene is drawn from every n-th pixel.
PNG_MAX_SIDE = 1000
# Float rasters mark no data with NaN; the class map with 0.
_FLOAT_NODATA = float("nan")


@dataclasses.dataclass(frozen=True)
class _Output:
  """The pixel type of one raster written per scene, and its no-data value."""
  dtype: str
  nodata: float


class SceneReader:
  """Rows of a scene file, read a window at a time, with its georeferencing.

  GeoTIFF and ENVI through rasterio (windowed reads); .npy mapped one window
  at a time; .mat read whole (convert a large scene to .npy, GeoTIFF or ENVI).
  """

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    self.crs, self.transform, self.nodata = None, None, None
    self._raster, self._array, self._npy = None, None, None
    suffix = self.path.suffix.lower()
    self.driver = rasters.driver(self.path)
    if self.driver is not None:
      self._open_raster()
    elif suffix == ".npy":
      self.driver = "GTiff"
      self._open_npy()
    elif suffix == ".mat":
      self.driver = "GTiff"
      self._array = scenes.read_array(self.path, ndim=3)
      self.height, self.width, self.bands = self._array.shape
    else:
      raise ValueError(f"{self.path.name}: unsupported scene file type {suffix!r}; use GeoTIFF "
                       "(.tif), ENVI (.hdr beside its data file), .npy or .mat")

  def _open_raster(self) -> None:
    self._raster = r = rasters.open_raster(self.path)
    self.height, self.width, self.bands = r.height, r.width, r.count
    if r.crs is not None or not r.transform.is_identity:
      self.crs, self.transform = r.crs, r.transform
    self.nodata = r.nodata

  def _open_npy(self) -> None:
    if not self.path.is_file():
      raise FileNotFoundError(f"{self.path} does not exist")
    try:
      mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:  # a short file fails to map
      raise ValueError(f"{self.path} could not be read as a .npy file (truncated?): {e}") from e
    if mapped.ndim != 3:
      raise ValueError(f"{self.path.name} holds an array of shape {mapped.shape}; a scene must "
                       "be (height, width, bands)")
    if not mapped.flags.c_contiguous:
      raise ValueError(f"{self.path.name} is stored in Fortran order; save it with "
                       "np.save(path, np.ascontiguousarray(cube)) to read it a window at a time")
    self.height, self.width, self.bands = mapped.shape
    self._npy = (mapped.dtype, mapped.offset)
    del mapped

  def read(self, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) as (rows, width, bands), in the file's dtype."""
    try:
      if self._raster is not None:
        return rasters.read_rows(self._raster, start, stop)
      if self._npy is not None:  # mapped for this window only, so pages read are released
        dtype, offset = self._npy
        row_bytes = self.width * self.bands * dtype.itemsize
        rows = np.memmap(self.path, dtype, "r", offset=offset + start * row_bytes,
                         shape=(stop - start, self.width, self.bands))
        return np.array(rows)
      return self._array[start:stop]
    except (OSError, ValueError, rasterio.errors.RasterioError) as e:
      raise ValueError(f"Rows {start}-{stop - 1} of {self.path} could not be read (a truncated "
                       f"or damaged file?): {e}") from e

  def close(self) -> None:
    if self._raster is not None:
      self._raster.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class Predictor(trained_runs.TrainedRun):
  """A trained run, ready to classify scene files one after the other.

  Built once, it compiles its step on the first scene; later scenes of any
  size reuse the program (the batch shape never changes).
  """

  def __init__(self, workdir: str | os.PathLike):
    super().__init__(workdir)
    self.epoch = self.meta["epoch"]
    self.pca = data.PCA.load(self.workdir / "pca.npz")
    self._outputs = {
        "classes": _Output("uint8" if self.class_ids.max() < 256 else "uint16", 0),
        "max_probability": _Output("float32", _FLOAT_NODATA),
        "entropy": _Output("float32", _FLOAT_NODATA),
        "probabilities": _Output("float32", _FLOAT_NODATA),
    }

  def predict_scene(self, scene: str | os.PathLike, output: str | os.PathLike, *,
                    nodata: float | None = None, probabilities: bool = False,
                    overwrite: bool = False, tile_pixels: int = TILE_PIXELS
                    ) -> dict[str, pathlib.Path]:
    """Classifies every pixel of `scene` and writes its rasters and PNG into `output`.

    Args:
      scene: a GeoTIFF, ENVI (.hdr or its data file), .npy or .mat cube with the
        bands the run was trained on.
      output: folder of the outputs, named after the scene file's stem:
        _classes (class ids, 0 = no data), _max_probability, _entropy and,
        with `probabilities`, _probabilities (one band per class) as GeoTIFF
        (ENVI for an ENVI scene), and _classes.png.
      nodata: the value that every band of a pixel without data holds (default:
        the one the file declares, if any); NaN, Inf and all-zero spectra are no
        data too.
      probabilities: also write every class's probability.
      overwrite: replace outputs of an earlier run instead of refusing.
      tile_pixels: pixels classified per tile; memory grows with it.

    Returns:
      The path of each output, by name.
    """
    if tile_pixels < 1:
      raise ValueError(f"tile_pixels={tile_pixels} must be positive")
    scene, output = pathlib.Path(scene), pathlib.Path(output)
    with SceneReader(scene) as reader:
      self._check_scene(reader)
      nodata = reader.nodata if nodata is None else nodata
      extension = ".img" if reader.driver == "ENVI" else ".tif"
      names = [n for n in self._outputs if probabilities or n != "probabilities"]
      paths = {n: output / f"{scene.stem}_{n}{extension}" for n in names}
      paths["png"] = output / f"{scene.stem}_classes.png"
      taken = [p for p in paths.values() if p.exists()]
      if reader.driver == "ENVI":
        taken += [p.with_suffix(".hdr") for p in paths.values() if p.with_suffix(".hdr").exists()]
      if taken and not overwrite:
        raise FileExistsError(f"{', '.join(map(str, taken))} already exist: pass --overwrite "
                              "(overwrite=True) to replace them, or choose another --output")
      output.mkdir(parents=True, exist_ok=True)
      partial = pathlib.Path(tempfile.mkdtemp(prefix=f".{scene.stem}.partial-", dir=output))
      try:
        start = time.perf_counter()
        valid = self._classify(reader, {n: partial / paths[n].name for n in names}, nodata,
                               tile_pixels)
        seconds = time.perf_counter() - start
        self._draw(partial / paths["classes"].name, partial / paths["png"].name, scene.stem)
        for path in sorted(partial.iterdir()):  # complete: move every file into place
          os.replace(path, output / path.name)
      except (OSError, rasterio.errors.RasterioError) as e:
        raise OSError(f"Writing the outputs of {scene} into {output} failed ({e}); none of them "
                      "was kept. Free disk space (or fix the folder) and rerun.") from e
      finally:
        shutil.rmtree(partial, ignore_errors=True)
    pixels = reader.height * reader.width
    logging.info("%s: %d pixels (%d with data) classified in %.1f s, %.0f pixels/s; outputs in "
                 "%s", scene, pixels, valid, seconds, pixels / seconds, output)
    return paths

  def _check_scene(self, reader: SceneReader) -> None:
    bands = self.pca.components.shape[1]
    if reader.bands != bands:
      raise ValueError(
          f"{reader.path.name} has {reader.bands} bands, but the run in {self.workdir} was "
          f"trained on {bands} bands: its scene {self.config.scene} as stored, with no bands "
          "removed by the run. Give a scene of the same sensor and bands (data.remove_bands "
          "drops the water-absorption bands of a raw AVIRIS cube).")
    data.check_patch_size(self.config.patch_size, reader.height, reader.width)

  def _classify(self, reader: SceneReader, paths: dict[str, pathlib.Path],
                nodata: float | None, tile_pixels: int) -> int:
    """Writes every output raster a tile of rows at a time; returns the pixels with data."""
    height, width = reader.height, reader.width
    pad = self.config.patch_size // 2
    rows_per_tile = max(1, tile_pixels // width)
    georeference = {} if reader.transform is None else {"crs": reader.crs,
                                                        "transform": reader.transform}
    options = {"compress": "deflate", "BIGTIFF": "IF_SAFER"} if reader.driver == "GTiff" else {}
    valid_count = 0
    # A small GDAL block cache: written rows go to disk instead of piling up in memory.
    with contextlib.ExitStack() as stack, rasterio.Env(GDAL_CACHEMAX=64):
      files = {}
      for name, path in paths.items():
        spec = self._outputs[name]
        count = len(self.class_ids) if name == "probabilities" else 1
        files[name] = stack.enter_context(rasterio.open(
            path, "w", driver=reader.driver, height=height, width=width, count=count,
            dtype=spec.dtype, nodata=spec.nodata, **georeference, **options))
      bar = stack.enter_context(tqdm.tqdm(total=height * width, unit="px", unit_scale=True,
                                          desc=reader.path.name))
      for start in range(0, height, rows_per_tile):
        stop = min(height, start + rows_per_tile)
        first, last = max(0, start - pad), min(height, stop + pad)
        raw = reader.read(first, last)
        missing = data.nodata_mask(raw, nodata)
        valid = ~missing[start - first:stop - first]
        tile = {name: np.full((files[name].count, *valid.shape), self._outputs[name].nodata,
                              self._outputs[name].dtype) for name in files}
        pixels = np.argwhere(valid)
        if len(pixels):  # else a blank stretch of the scene: nothing to project
          cube = self.pca.transform(raw, missing)
          del raw
          # The rows of the tile's patches; beyond the scene's edges, reflected as in training.
          rows = np.abs(np.arange(start - pad, stop + pad))
          rows = np.where(rows >= height, 2 * (height - 1) - rows, rows) - first
          probs = self.predict(cube[rows], pixels + (pad, 0))["probabilities"]
          tile["classes"][0][valid] = self.class_ids[probs.argmax(-1)]
          tile["max_probability"][0][valid] = probs.max(-1)
          tile["entropy"][0][valid] = metrics.prediction_entropy(probs)
          if "probabilities" in tile:
            tile["probabilities"][:, valid] = probs.T
        window = windows.Window(0, start, width, stop - start)
        for name, values in tile.items():
          _write(files[name], values, window)
        valid_count += len(pixels)
        bar.update((stop - start) * width)
      self._describe(files)
    if reader.driver == "ENVI":
      self._envi_headers(paths, reader.path.name)
    return valid_count

  def _describe(self, files: dict) -> None:
    """Colour table, class names and provenance, where the format holds them."""
    colors = _class_colors(len(self.class_ids))
    classes = files["classes"]
    classes.set_band_description(1, "class id (0: no data)")
    if classes.driver == "GTiff":
      classes.write_colormap(1, {0: (0, 0, 0, 0), **{
          int(i): tuple(c) for i, c in zip(self.class_ids, colors)}})
      classes.update_tags(1, **{f"class_{i}": n for i, n in zip(self.class_ids, self.class_names)})
    files["max_probability"].set_band_description(1, "probability of the predicted class")
    files["entropy"].set_band_description(1, "prediction entropy (nats)")
    if "probabilities" in files:
      for k, name in enumerate(self.class_names):
        files["probabilities"].set_band_description(k + 1, f"{self.class_ids[k]} {name}")
    for f in files.values():
      f.update_tags(run=str(self.workdir), checkpoint_epoch=str(self.epoch))

  def _envi_headers(self, paths: dict[str, pathlib.Path], scene: str) -> None:
    """Describes each ENVI output and makes the class map an ENVI classification.

    GDAL's description would be the temporary path; a classification names and
    colours every value from 0 to the largest class id. GDAL's ENVI driver
    writes `class names` and `class lookup` only from a band's category names,
    which rasterio cannot set (only a hand-written VRT, copied whole, could), so
    spectral edits the header that GDAL wrote.
    """
    from spectral.io import envi  # pylint: disable=g-import-not-at-top
    values = range(int(self.class_ids.max()) + 1)
    names = dict(zip(self.class_ids.tolist(), self.class_names))
    colors = dict(zip(self.class_ids.tolist(), _class_colors(len(self.class_ids))[:, :3]))
    for name, path in paths.items():
      header = str(path.with_suffix(".hdr"))
      fields = envi.read_envi_header(header)
      fields["description"] = (f"{name} of {scene}, predicted by {self.workdir} (checkpoint "
                               f"epoch {self.epoch})")
      if name == "classes":
        fields.update({
            "file type": "ENVI Classification",
            "classes": len(values),
            "class names": [names.get(v, "no data" if v == 0 else f"unused {v}") for v in values],
            "class lookup": [int(c) for v in values for c in colors.get(v, (0, 0, 0))],
        })
      envi.write_envi_header(header, fields)

  def _draw(self, classes_path: pathlib.Path, png: pathlib.Path, title: str) -> None:
    """The class map as a PNG with a legend; a large scene is drawn from every n-th pixel."""
    with warnings.catch_warnings(), rasterio.open(classes_path) as src:
      warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
      step = math.ceil(max(src.height, src.width) / PNG_MAX_SIDE)
      ids = src.read(1, out_shape=(math.ceil(src.height / step), math.ceil(src.width / step)),
                     resampling=Resampling.nearest)
    index = np.where(ids > 0, np.searchsorted(self.class_ids, ids), -1)
    plots.class_map(png, index, self.class_names, f"{title} (black: no data)")


def predict_scenes(workdir: str | os.PathLike, scene_paths, output: str | os.PathLike,
                   **options) -> list[dict[str, pathlib.Path]]:
  """`Predictor(workdir).predict_scene(scene, output, **options)` for each scene, in order."""
  stems = [pathlib.Path(s).stem for s in scene_paths]
  repeated = sorted({s for s in stems if stems.count(s) > 1})
  if repeated:
    raise ValueError(f"Several scenes are named {', '.join(repeated)}: their outputs would "
                     "share names; predict them into different --output folders")
  predictor = Predictor(workdir)
  return [predictor.predict_scene(s, output, **options) for s in scene_paths]


def _write(file, values: np.ndarray, window: windows.Window) -> None:
  """One windowed write of a tile (where the tests make the disk fill up)."""
  file.write(values, window=window)


def _class_colors(num_classes: int) -> np.ndarray:
  """The figures' class colours (plots.class_colors) as 0-255 RGBA integers."""
  return np.round(plots.class_colors(num_classes) * 255).astype(int)
