"""Scenes: the bundled Salinas-A, users' files, the verified tfds download path."""
import dataclasses
import shutil

import h5py
import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
import scipy.io
from spectral.io import envi

from claresnet_jax import data
from claresnet_jax.data import scenes

SALINAS_A_COUNTS = {1: 391, 10: 1343, 11: 616, 12: 1525, 13: 674, 14: 799}


def test_bundled_salinas_a_has_published_counts(shared_dir):
  scene = data.load_scene("salinas_a")
  assert scene.cube.shape == (83, 86, 204) and scene.cube.dtype == np.float32
  assert scene.gt.shape == (83, 86) and scene.gt.dtype == np.int32
  values, counts = np.unique(scene.gt[scene.gt > 0], return_counts=True)
  assert dict(zip(values.tolist(), counts.tolist())) == SALINAS_A_COUNTS
  assert scene.class_ids.tolist() == [1, 10, 11, 12, 13, 14] and scene.num_classes == 6
  assert scene.class_names[0] == "Brocoli_green_weeds_1"
  # The bundled copy is the shared one, value for value.
  raw = scipy.io.loadmat(shared_dir / "data/salinas_a/SalinasA_corrected.mat")["salinasA_corrected"]
  np.testing.assert_array_equal(scene.cube, raw.astype(np.float32))


def _scene_arrays(seed=0):
  rng = np.random.default_rng(seed)
  cube = rng.integers(0, 1000, (5, 6, 4)).astype(np.int16)
  gt = rng.choice([0, 2, 7], (5, 6)).astype(np.uint8)
  return cube, gt


def _write_mat73(path, **arrays):
  """A MATLAB v7.3 file: HDF5 behind the 128-byte MATLAB header, arrays column-major."""
  with h5py.File(path, "w", userblock_size=512) as f:
    for name, value in arrays.items():
      f[name] = value.T
  header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: test HDF5 schema 1.00 ."
  with open(path, "r+b") as f:
    f.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM")


def _write_raster(path, array, **options):
  """An (H, W, bands) array written with rasterio: ENVI for .img, else GeoTIFF; georeferenced."""
  with rasterio.open(path, "w", driver="ENVI" if path.suffix == ".img" else "GTiff",
                     height=array.shape[0], width=array.shape[1], count=array.shape[2],
                     dtype=array.dtype, crs="EPSG:32610",
                     transform=Affine(3.7, 0.0, 620000.0, 0.0, -3.7, 4060000.0), **options) as f:
    f.write(np.moveaxis(array, -1, 0))


def _write(fmt, folder, cube, gt):
  """Writes cube and ground truth in `fmt`; returns load_scene's path and options."""
  if fmt == "mat":
    scipy.io.savemat(folder / "cube.mat", {"scene": cube})
    scipy.io.savemat(folder / "gt.mat", {"labels": gt})
    return folder / "cube.mat", {"gt": folder / "gt.mat"}
  if fmt == "mat_both":
    scipy.io.savemat(folder / "scene.mat", {"x": cube, "y": gt})
    return folder / "scene.mat", {}
  if fmt == "mat73":
    _write_mat73(folder / "cube.mat", scene=cube, labels=gt)
    return folder / "cube.mat", {}
  if fmt == "npy":
    np.save(folder / "cube.npy", cube)
    np.save(folder / "gt.npy", gt)
    return folder / "cube.npy", {"gt": folder / "gt.npy"}
  if fmt == "npz":
    np.savez(folder / "scene.npz", cube=cube, gt=gt)
    return folder / "scene.npz", {}
  if fmt == "envi":
    envi.save_image(str(folder / "cube.hdr"), cube, interleave="bil", ext=".img")
    envi.save_image(str(folder / "gt.hdr"), gt[..., None], ext=".img")
    return folder / "cube.hdr", {"gt": folder / "gt.img"}
  if fmt in ("tiff", "tiff_planar"):
    _write_raster(folder / "cube.tif", cube,
                  interleave="pixel" if fmt == "tiff" else "band")
    _write_raster(folder / "gt.tif", gt[..., None])
    return folder / "cube.tif", {"gt": folder / "gt.tif"}
  raise AssertionError(fmt)


@pytest.mark.parametrize(
    "fmt", ["mat", "mat_both", "mat73", "npy", "npz", "envi", "tiff", "tiff_planar"])
def test_user_files_load_as_written(tmp_path, fmt):
  cube, gt = _scene_arrays()
  path, options = _write(fmt, tmp_path, cube, gt)
  scene = data.load_scene(path, class_names=["two", "seven"], **options)
  np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
  np.testing.assert_array_equal(scene.gt, gt)
  assert scene.class_ids.tolist() == [2, 7]
  assert scene.class_names == ["two", "seven"]


def _cube(dtype, shape=(7, 9, 5), seed=1):
  """Spectra of `dtype`, negative too where it is signed, so byte order and sign both show."""
  rng = np.random.default_rng(seed)
  low = -1000 if np.dtype(dtype).kind in "if" else 0
  return rng.integers(low, 30000, shape).astype(dtype)


@pytest.mark.parametrize("interleave,dtype", [("bsq", "int16"), ("bil", "float32"),
                                              ("bip", "uint16")])
def test_envi_interleaves_read_as_the_npy(tmp_path, interleave, dtype):
  cube = _cube(dtype)
  np.save(tmp_path / "cube.npy", cube)
  _write_raster(tmp_path / "cube.img", cube, interleave=interleave.upper())
  assert f"interleave = {interleave}" in (tmp_path / "cube.hdr").read_text()
  expected = scenes.read_array(tmp_path / "cube.npy", ndim=3)
  for given in ("cube.hdr", "cube.img"):  # the header or its data file
    read = scenes.read_array(tmp_path / given, ndim=3)
    assert read.dtype == expected.dtype
    np.testing.assert_array_equal(read, expected)


def test_big_endian_envi_reads_as_stored(tmp_path):
  """Byte order 1, written by another library; the reflectance scale factor is not applied.

  Prediction reads the same values, so a scene scaled for training is never
  classified unscaled.
  """
  cube = _cube("float32")
  envi.save_image(str(tmp_path / "cube.hdr"), cube, ext=".dat", byteorder=1, interleave="bip",
                  metadata={"reflectance scale factor": 10000})
  assert "byte order = 1" in (tmp_path / "cube.hdr").read_text()
  np.testing.assert_array_equal(scenes.read_array(tmp_path / "cube.hdr", ndim=3), cube)


@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_tiled_compressed_geotiff_reads_as_the_npy(tmp_path, interleave):
  cube = _cube("int16", shape=(37, 45, 6))  # tiles of 16 x 16: partial ones at the edges
  np.save(tmp_path / "cube.npy", cube)
  _write_raster(tmp_path / "cube.tif", cube, tiled=True, blockxsize=16, blockysize=16,
                compress="deflate", predictor=2, interleave=interleave)
  with rasterio.open(tmp_path / "cube.tif") as f:
    assert f.profile["tiled"] and f.compression.value == "DEFLATE"
    assert f.interleaving.value == interleave.upper()
  np.testing.assert_array_equal(scenes.read_array(tmp_path / "cube.tif", ndim=3),
                                scenes.read_array(tmp_path / "cube.npy", ndim=3))


def test_corrupt_and_missing_rasters_are_named(tmp_path):
  (tmp_path / "garbage.tif").write_bytes(b"II*\0 not really a TIFF" * 10)
  with pytest.raises(ValueError, match=r"garbage\.tif could not be read as a GeoTIFF"):
    scenes.read_array(tmp_path / "garbage.tif", ndim=3)
  _write_raster(tmp_path / "whole.tif", _cube("int16", shape=(40, 40, 4)), tiled=True,
                blockxsize=16, blockysize=16, compress="deflate")
  content = (tmp_path / "whole.tif").read_bytes()
  (tmp_path / "short.tif").write_bytes(content[:len(content) // 2])
  with pytest.raises(ValueError, match=r"short\.tif could not be read"):
    scenes.read_array(tmp_path / "short.tif", ndim=3)
  (tmp_path / "bad.hdr").write_text("ENVI\nsamples = many\n")
  (tmp_path / "bad.img").write_bytes(b"\0" * 64)
  with pytest.raises(ValueError, match=r"bad\.hdr could not be read as an ENVI raster"):
    scenes.read_array(tmp_path / "bad.hdr", ndim=3)
  _write_raster(tmp_path / "cut.img", _cube("int16"))
  content = (tmp_path / "cut.img").read_bytes()
  (tmp_path / "cut.img").write_bytes(content[:-10])
  with pytest.raises(ValueError, match=r"cut\.img is truncated: \d+ bytes, but its header "
                                       r"describes 7x9x5 int16"):
    scenes.read_array(tmp_path / "cut.hdr", ndim=3)
  (tmp_path / "cut.img").unlink()
  with pytest.raises(FileNotFoundError, match=r"No ENVI data file beside .*cut\.hdr"):
    scenes.read_array(tmp_path / "cut.hdr", ndim=3)
  with pytest.raises(FileNotFoundError, match=r"nothere\.hdr does not exist"):
    data.load_scene(tmp_path / "nothere.hdr", gt=tmp_path / "gt.tif")


def test_raster_bands_must_fit_the_role(tmp_path):
  cube, gt = _scene_arrays()
  path, options = _write("tiff", tmp_path, cube, gt)
  with pytest.raises(ValueError, match=r"gt\.tif has 1 band; a cube \(height, width, bands\)"):
    data.load_scene(options["gt"], gt=options["gt"])
  with pytest.raises(ValueError, match=r"cube\.tif has 4 bands; a ground truth \(height, width\)"):
    data.load_scene(path, gt=path)
  with pytest.raises(ValueError, match=r"cube_key='x' given for cube\.tif: a raster holds one"):
    data.load_scene(path, cube_key="x", **options)


def test_class_names_mapping_and_default(tmp_path):
  cube, gt = _scene_arrays()
  path, options = _write("npz", tmp_path, cube, gt)
  assert data.load_scene(path, class_names={7: "b", 2: "a"}).class_names == ["a", "b"]
  assert data.load_scene(path).class_names == ["class 2", "class 7"]


def test_ambiguous_variables_need_a_key(tmp_path):
  cube, gt = _scene_arrays()
  scipy.io.savemat(tmp_path / "two.mat", {"a": cube, "b": cube + 1, "gt": gt})
  with pytest.raises(ValueError, match=r"two\.mat.*found 2: a, b.*cube_key="):
    data.load_scene(tmp_path / "two.mat")
  scene = data.load_scene(tmp_path / "two.mat", cube_key="b")
  np.testing.assert_array_equal(scene.cube, cube + 1)


def test_missing_and_unreadable_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="nothere.mat"):
    data.load_scene(tmp_path / "nothere.mat")
  (tmp_path / "broken.mat").write_bytes(b"not a matlab file at all")
  with pytest.raises(ValueError, match=r"broken\.mat could not be read"):
    data.load_scene(tmp_path / "broken.mat")
  with pytest.raises(ValueError, match="neither a registered scene"):
    data.load_scene("indian_pine")


def test_bad_arrays_are_named(tmp_path):
  cube, gt = _scene_arrays()
  np.save(tmp_path / "cube.npy", cube)
  np.save(tmp_path / "narrow.npy", gt[:, :5])
  with pytest.raises(ValueError, match=r"narrow\.npy has shape \(5, 5\), expected \(5, 6\)"):
    data.load_scene(tmp_path / "cube.npy", gt=tmp_path / "narrow.npy")
  gt[1, 2] = 7
  np.save(tmp_path / "gt.npy", gt)
  nan_cube = cube.astype(np.float32)
  nan_cube[1, 2, 3] = np.nan
  np.save(tmp_path / "nan.npy", nan_cube)
  with pytest.raises(ValueError, match=r"nan\.npy has 1 labelled pixels without data.*row 1, "
                     r"column 2.*label them 0 in gt\.npy"):
    data.load_scene(tmp_path / "nan.npy", gt=tmp_path / "gt.npy")
  with pytest.raises(ValueError, match="class_names has 3 names but gt.npy has 2 classes"):
    data.load_scene(tmp_path / "cube.npy", gt=tmp_path / "gt.npy", class_names=["a", "b", "c"])


def test_unlabelled_pixels_without_data_are_kept(tmp_path):
  cube, gt = _scene_arrays()
  gt[0, :3] = 0
  cube = cube.astype(np.float32)
  cube[0, 0, 1], cube[0, 1] = np.inf, 0.0  # an Inf band, an all-zero spectrum
  np.save(tmp_path / "cube.npy", cube)
  np.save(tmp_path / "gt.npy", gt)
  scene = data.load_scene(tmp_path / "cube.npy", gt=tmp_path / "gt.npy")
  np.testing.assert_array_equal(scene.cube, cube)
  np.testing.assert_array_equal(data.nodata_mask(scene.cube)[0, :3], [True, True, False])


def test_without_classes_makes_them_unlabelled():
  scene = data.load_scene("salinas_a")
  reduced = scene.without_classes([10, 13])
  assert reduced.class_ids.tolist() == [1, 11, 12, 14] and reduced.num_classes == 4
  assert reduced.class_names == ["Brocoli_green_weeds_1", "Lettuce_romaine_4wk",
                                 "Lettuce_romaine_5wk", "Lettuce_romaine_7wk"]
  excluded = np.isin(scene.gt, [10, 13])
  assert (reduced.gt[excluded] == 0).all()
  np.testing.assert_array_equal(reduced.gt[~excluded], scene.gt[~excluded])
  assert reduced.gt.dtype == scene.gt.dtype
  np.testing.assert_array_equal(reduced.cube, scene.cube)
  assert scene.class_ids.tolist() == [1, 10, 11, 12, 13, 14]  # the original is untouched
  assert (scene.gt == 10).sum() == 1343
  assert scene.without_classes(()) is scene


def test_without_classes_errors_name_the_values():
  scene = data.load_scene("salinas_a")
  with pytest.raises(ValueError, match=r"Cannot exclude \[2, 99\]: not classes of salinas_a.*"
                     r"1 Brocoli_green_weeds_1, 10 Corn_senesced_green_weeds"):
    scene.without_classes([1, 2, 99])
  with pytest.raises(ValueError, match=r"would leave salinas_a without any class"):
    scene.without_classes(scene.class_ids)


# The download path, against a local HTTP server (the `served` fixture of conftest.py).


def _local_salinas_a(base, name="salinas_a_local"):
  info = scenes.SCENES["salinas_a"]
  return dataclasses.replace(
      info, name=name,
      cube=dataclasses.replace(info.cube, url=f"{base}/SalinasA_corrected.mat"),
      gt=dataclasses.replace(info.gt, url=f"{base}/SalinasA_gt.mat"))


def _assert_nothing_cached(data_dir, name):
  prepared = data_dir / "hyperspectral_scenes" / name
  assert not prepared.exists() or not any(prepared.iterdir()), list(prepared.rglob("*"))
  downloads = data_dir / "downloads"
  left = [p for p in downloads.rglob("*") if p.is_file() or ".tmp." in p.name]
  assert not left, left


def test_download_verifies_then_reads_from_cache(served, tmp_path, shared_dir):
  folder, base = served
  for f in (shared_dir / "data/salinas_a").glob("*.mat"):
    shutil.copy(f, folder)
  info = _local_salinas_a(base)
  scene = data.load_scene(info, data_dir=tmp_path / "tfds")
  np.testing.assert_array_equal(scene.gt, data.load_scene("salinas_a").gt)
  for f in folder.iterdir():  # the server no longer has the files: the cache must serve
    f.unlink()
  cached = data.load_scene(info, data_dir=tmp_path / "tfds", download=False)
  np.testing.assert_array_equal(cached.cube, scene.cube)


def test_corrupted_download_fails_and_leaves_no_cache(served, tmp_path, shared_dir):
  folder, base = served
  for f in (shared_dir / "data/salinas_a").glob("*.mat"):
    content = bytearray(f.read_bytes())
    if "corrected" in f.name:
      content[-100] ^= 0xFF
    (folder / f.name).write_bytes(bytes(content))
  info = _local_salinas_a(base, name="salinas_a_corrupt")
  with pytest.raises(ValueError, match=r"Salinas-A does not match its published sha256"):
    data.load_scene(info, data_dir=tmp_path / "tfds")
  _assert_nothing_cached(tmp_path / "tfds", "salinas_a_corrupt")
  with pytest.raises(FileNotFoundError, match="not prepared"):
    data.load_scene(info, data_dir=tmp_path / "tfds", download=False)


def test_wrong_class_count_fails_and_leaves_no_cache(served, tmp_path):
  folder, base = served
  cube, gt = _scene_arrays()
  scipy.io.savemat(folder / "tiny.mat", {"tiny": cube})
  scipy.io.savemat(folder / "tiny_gt.mat", {"tiny_gt": gt})
  true_count = int((gt == 7).sum())
  info = scenes.SceneInfo(
      name="tiny", title="Tiny", cube=scenes.SceneFile(f"{base}/tiny.mat", "tiny"),
      gt=scenes.SceneFile(f"{base}/tiny_gt.mat", "tiny_gt"), shape=(5, 6, 4),
      classes={2: ("two", int((gt == 2).sum())), 7: ("seven", true_count + 1)})
  with pytest.raises(ValueError, match=rf"tiny_gt\.mat.*class 7: {true_count} pixels, "
                                       rf"expected {true_count + 1}"):
    data.load_scene(info, data_dir=tmp_path / "tfds")
  _assert_nothing_cached(tmp_path / "tfds", "tiny")


def test_manual_dir_serves_offline_and_is_checked(tmp_path, shared_dir):
  manual = tmp_path / "manual"
  manual.mkdir()
  for f in (shared_dir / "data/salinas_a").glob("*.mat"):
    shutil.copy(f, manual)
  offline = _local_salinas_a("http://127.0.0.1:9", name="salinas_a_manual")  # nothing listens
  scene = data.load_scene(offline, data_dir=tmp_path / "tfds", manual_dir=manual)
  assert scene.cube.shape == (83, 86, 204)
  (manual / "SalinasA_gt.mat").write_bytes(b"\0" * 587)
  damaged = _local_salinas_a("http://127.0.0.1:9", name="salinas_a_manual2")
  with pytest.raises(ValueError, match=r"SalinasA_gt\.mat could not be read.*Replace it with an "
                                       r"intact copy"):
    data.load_scene(damaged, data_dir=tmp_path / "tfds", manual_dir=manual)
