"""GeoTIFF and ENVI files through rasterio (GDAL), the one reader of both.

Loading a scene reads a raster whole, prediction a window of rows at a time;
both open it here, so a missing, damaged or truncated file fails the same way.
"""
from __future__ import annotations

import os
import pathlib
import warnings

import numpy as np
import rasterio
from rasterio import windows

ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip")
TIFF_SUFFIXES = (".tif", ".tiff")
_FORMATS = {"ENVI": "an ENVI raster", "GTiff": "a GeoTIFF"}  # by GDAL driver


def driver(path: str | os.PathLike) -> str | None:
  """GDAL's driver for `path`: "ENVI" for a .hdr or the data file beside one, "GTiff", or None."""
  path = pathlib.Path(path)
  suffix = path.suffix.lower()
  if suffix == ".hdr" or (suffix in ENVI_DATA_SUFFIXES and path.with_suffix(".hdr").exists()):
    return "ENVI"
  return "GTiff" if suffix in TIFF_SUFFIXES else None


def open_raster(path: str | os.PathLike) -> rasterio.io.DatasetReader:
  """Opens a GeoTIFF, or an ENVI scene by its .hdr or data file; close it when done.

  Raises FileNotFoundError naming a missing header or data file, ValueError
  naming a file GDAL cannot read or an ENVI data file shorter than its header.
  """
  path = pathlib.Path(path)
  name = driver(path)
  if name is None:
    raise ValueError(f"{path.name} is not a GeoTIFF (.tif) or ENVI (.hdr beside its data) file")
  data_file = _envi_data_file(path) if path.suffix.lower() == ".hdr" else path
  if not data_file.is_file():
    raise FileNotFoundError(f"{data_file} does not exist")
  try:
    with warnings.catch_warnings():  # pixel coordinates are fine for a scene without a CRS
      warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
      raster = rasterio.open(data_file, driver=name)
  except rasterio.errors.RasterioIOError as e:
    raise ValueError(f"{path} could not be read as {_FORMATS[name]}: {e}") from e
  if name == "ENVI":  # GDAL would read a short data file's missing rows as zeros
    offset = int(raster.tags(ns="ENVI").get("header_offset", 0))
    expected = offset + raster.height * raster.width * raster.count * np.dtype(
        raster.dtypes[0]).itemsize
    size = data_file.stat().st_size
    if size < expected:
      raster.close()
      raise ValueError(f"{data_file} is truncated: {size} bytes, but its header describes "
                       f"{raster.height}x{raster.width}x{raster.count} {raster.dtypes[0]} "
                       f"({expected} bytes)")
  return raster


def read_rows(raster: rasterio.io.DatasetReader, start: int = 0,
              stop: int | None = None) -> np.ndarray:
  """Rows [start, stop) of an open raster as (rows, width, bands), in the file's dtype."""
  stop = raster.height if stop is None else stop
  window = windows.Window(0, start, raster.width, stop - start)
  return np.moveaxis(raster.read(window=window), 0, -1)


def read_raster(path: str | os.PathLike) -> np.ndarray:
  """A whole GeoTIFF or ENVI raster as (height, width, bands), in the file's dtype."""
  with open_raster(path) as raster:
    try:
      return read_rows(raster)
    except rasterio.errors.RasterioError as e:  # a damaged tile or strip; GDAL's words in the cause
      raise ValueError(f"{path} could not be read (a truncated or damaged file?): "
                       f"{e.__cause__ or e}") from e


def _envi_data_file(header: pathlib.Path) -> pathlib.Path:
  if not header.is_file():
    raise FileNotFoundError(f"{header} does not exist")
  for suffix in ENVI_DATA_SUFFIXES:
    candidate = header.with_suffix(suffix)
    if candidate.is_file():
      return candidate
  raise FileNotFoundError(f"No ENVI data file beside {header} (looked for "
                          f"{', '.join(header.stem + s for s in ENVI_DATA_SUFFIXES)})")
