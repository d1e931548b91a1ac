"""The registered fixed split of Indian Pines and the file checksums of the EHU downloads."""
import dataclasses
import hashlib
import pathlib
import re
import shutil
import sys

import numpy as np
import pytest
import rasterio
import scipy.io

from claresnet_jax import data
from claresnet_jax.data import fixed_splits, scenes

REPO = pathlib.Path(__file__).resolve().parents[1]

# SOURCE.txt of the shared folder: the maps' class order -> the EHU ground truth's label.
HONG_TO_EHU = {1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 8, 7: 10, 8: 11, 9: 12, 10: 13, 11: 14, 12: 15,
               13: 16, 14: 1, 15: 7, 16: 9}


@pytest.fixture(scope="module")
def maps_dir(shared_dir):
  return shared_dir / "data/indian_pines_fixed_split"


@pytest.fixture(scope="module")
def raw_maps(maps_dir):
  """The shared maps as rasterio reads them, in their own class order."""
  return tuple(rasterio.open(maps_dir / name).read(1)
               for name in ("IndianTR123_temp123.tif", "IndianTE123_temp123.tif"))


@pytest.fixture(scope="module")
def ehu_gt(shared_dir):
  path = shared_dir / "data/indian_pines/Indian_pines_gt.mat"
  return scipy.io.loadmat(path)["indian_pines_gt"].astype(np.int32)


def _relabelled(raw):
  out = np.zeros(raw.shape, np.int32)
  for own, ehu in HONG_TO_EHU.items():
    out[raw == own] = ehu
  return out


def test_registered_split_equals_the_shared_maps_pixel_for_pixel(maps_dir, raw_maps, ehu_gt):
  train, test = fixed_splits.load_maps("indian_pines_hong", manual_dir=maps_dir)
  np.testing.assert_array_equal(train, _relabelled(raw_maps[0]))
  np.testing.assert_array_equal(test, _relabelled(raw_maps[1]))
  assert (train > 0).sum() == 695 and (test > 0).sum() == 9671
  # The maps' own labels: 695 / 9,671 pixels, as published.
  scene = scenes.Scene("indian_pines", np.zeros((145, 145, 0), np.float32), ehu_gt,
                       np.arange(1, 17, dtype=np.int32), [str(i) for i in range(1, 17)])
  labels = fixed_splits.split_labels("indian_pines_hong", scene, manual_dir=maps_dir)
  split = data.make_split(labels, "fixed", seed=0, patch_size=11, name="indian_pines_hong",
                          manual_dir=str(maps_dir))
  assert (len(split.train), len(split.val), len(split.test)) == (695, 0, 9671)
  np.testing.assert_array_equal(split.train, np.argwhere(raw_maps[0] > 0))
  np.testing.assert_array_equal(split.test, np.argwhere(raw_maps[1] > 0))
  np.testing.assert_array_equal(labels[tuple(split.train.T)],
                                _relabelled(raw_maps[0])[tuple(split.train.T)])
  # On the EHU ground truth: the pixels it labels, 669 / 9,441.
  ehu = data.make_split(ehu_gt, "fixed", seed=0, patch_size=11, name="indian_pines_hong",
                        manual_dir=str(maps_dir))
  assert (len(ehu.train), len(ehu.test)) == (669, 9441)
  # Excluded classes (0 in the ground truth) leave the split.
  without_oats = np.where(labels == 9, 0, labels)
  fewer = data.make_split(without_oats, "fixed", seed=0, patch_size=11,
                          name="indian_pines_hong", manual_dir=str(maps_dir))
  assert len(fewer.train) == 695 - 15 and len(fewer.test) == 9671 - 5


def test_a_map_with_one_changed_pixel_is_refused_naming_the_file(tmp_path, maps_dir, raw_maps):
  manual = tmp_path / "manual"
  shutil.copytree(maps_dir, manual)
  changed = raw_maps[1].copy()
  row, col = np.argwhere(changed == 8)[0]
  changed[row, col] = 9
  path = manual / "IndianTE123_temp123.tif"
  with rasterio.open(path, "w", driver="GTiff", height=145, width=145, count=1,
                     dtype="uint8") as f:
    f.write(changed, 1)
  with pytest.raises(ValueError, match=rf"{re.escape(str(path))} does not hold the published "
                                       "test map"):
    fixed_splits.load_maps("indian_pines_hong", manual_dir=manual)


def test_the_maps_download_checked_then_come_from_the_cache(served, tmp_path, maps_dir,
                                                            raw_maps):
  folder, base = served
  info = fixed_splits.FIXED_SPLITS["indian_pines_hong"]
  local = dataclasses.replace(
      info, train=dataclasses.replace(info.train, url=f"{base}/{info.train.filename}"),
      test=dataclasses.replace(info.test, url=f"{base}/{info.test.filename}"))
  for name in (info.train.filename, info.test.filename):
    shutil.copy(maps_dir / name, folder)
  train, _ = fixed_splits.load_maps(local, data_dir=tmp_path / "tfds")
  np.testing.assert_array_equal(train, _relabelled(raw_maps[0]))
  for f in folder.iterdir():  # the server no longer has them: the download folder serves
    f.unlink()
  train, _ = fixed_splits.load_maps(local, data_dir=tmp_path / "tfds")
  np.testing.assert_array_equal(train, _relabelled(raw_maps[0]))


def test_a_corrupted_download_is_refused_and_not_kept(served, tmp_path, maps_dir):
  folder, base = served
  info = fixed_splits.FIXED_SPLITS["indian_pines_hong"]
  local = dataclasses.replace(
      info, train=dataclasses.replace(info.train, url=f"{base}/{info.train.filename}"))
  content = bytearray((maps_dir / info.train.filename).read_bytes())
  content[-10] ^= 0xFF
  (folder / info.train.filename).write_bytes(bytes(content))
  with pytest.raises(ValueError, match="IndianTR123_temp123.tif does not match its published "
                                       "sha256"):
    fixed_splits.load_maps(local, data_dir=tmp_path / "tfds")
  left = [p for p in (tmp_path / "tfds/downloads").rglob("*") if p.is_file()
          and p.suffix == ".tif"]
  assert not left, left


def test_without_a_copy_or_the_download_the_error_says_where_to_place_it(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match="IndianTR123_temp123.tif is not at hand and it is "
                                              "not in manual_dir=.*pass manual_dir="):
    fixed_splits.load_maps("indian_pines_hong", data_dir=tmp_path / "tfds", manual_dir=empty,
                           download=False)
  with pytest.raises(FileNotFoundError, match="manual_dir='.*missing' is not a folder"):
    fixed_splits.load_maps("indian_pines_hong", manual_dir=tmp_path / "missing")
  with pytest.raises(ValueError, match="Unknown fixed split 'indian_pine'; registered: "
                                       "indian_pines_hong"):
    fixed_splits.load_maps("indian_pine")


def test_split_of_another_scene_or_mapping_is_refused(maps_dir, ehu_gt):
  other = scenes.Scene("salinas_a", np.zeros((145, 145, 0), np.float32), ehu_gt,
                       np.arange(1, 17, dtype=np.int32), [str(i) for i in range(1, 17)])
  with pytest.raises(ValueError, match="a split of 'indian_pines', not of 'salinas_a'"):
    fixed_splits.split_labels("indian_pines_hong", other, manual_dir=maps_dir)
  info = fixed_splits.FIXED_SPLITS["indian_pines_hong"]
  swapped = dataclasses.replace(info, scene_labels={**info.scene_labels, 1: 3, 2: 2})
  scene = dataclasses.replace(other, name="indian_pines")
  with pytest.raises(ValueError, match="maps and the indian_pines ground truth disagree"):
    fixed_splits.split_labels(swapped, scene, manual_dir=maps_dir)


def test_ehu_downloads_are_registered_with_the_file_checksums_of_shared_source(shared_dir):
  """The cubes' 'NAME  SIZE bytes  sha256 HEX' lines of the shared SOURCE.txt files, and the
  shared ground-truth files' own bytes, are what the registry checks downloads against."""
  recorded = {}
  for source in (shared_dir / "data").glob("*/SOURCE.txt"):
    text = source.read_text()
    for name, size, digest in re.findall(
        r"^\s*(\S+\.mat)\s+([\d,]+) bytes\s+sha256 ([0-9a-f]{64})", text, re.M):
      recorded[name] = (int(size.replace(",", "")), digest)
  registered = {f.filename: (f.size, f.sha256) for info in scenes.SCENES.values()
                for f in (info.cube, info.gt)}
  for name in ("Indian_pines_corrected.mat", "Salinas_corrected.mat", "PaviaU.mat"):
    assert registered[name] == recorded[name], name
  shared = {p.name: p for p in (shared_dir / "data").glob("*/*.mat")}  # byte-for-byte copies
  assert {"Indian_pines_gt.mat", "Salinas_gt.mat", "PaviaU_gt.mat"} <= set(shared)
  for path in shared.values():
    size, digest = registered[path.name]
    assert (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()) == (size, digest)
  # The download manager checks every one of them.
  from claresnet_jax.data import tfds_builders  # pylint: disable=g-import-not-at-top
  for name in ("indian_pines", "salinas", "pavia_university"):
    builder = tfds_builders.HyperspectralScenes(config=name, data_dir="/nonexistent")
    info = scenes.SCENES[name]
    assert builder.url_infos[info.cube.url].checksum == info.cube.sha256
    assert builder.url_infos[info.gt.url].checksum == info.gt.sha256


def test_the_authors_loop_trains_and_tests_on_the_same_pixels_and_labels(maps_dir, ehu_gt):
  """benchmarks/authors_fixed_split.py reads the maps without this package: the same split."""
  sys.path.insert(0, str(REPO / "benchmarks"))
  try:
    import authors_fixed_split  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(REPO / "benchmarks"))
  info = fixed_splits.FIXED_SPLITS["indian_pines_hong"]
  assert authors_fixed_split.MAP_TO_EHU == dict(info.scene_labels)
  theirs = authors_fixed_split.fixed_split_samples(maps_dir)
  scene = scenes.Scene("indian_pines", np.zeros((145, 145, 0), np.float32), ehu_gt,
                       np.arange(1, 17, dtype=np.int32), [str(i) for i in range(1, 17)])
  labels = fixed_splits.split_labels(info, scene, manual_dir=maps_dir)
  ours = data.make_split(labels, "fixed", seed=0, patch_size=11, name=info.name,
                         manual_dir=str(maps_dir))
  for part in ("train", "test"):
    pixels = getattr(ours, part)
    np.testing.assert_array_equal(theirs[part][:, :2], pixels)
    np.testing.assert_array_equal(theirs[part][:, 2], labels[tuple(pixels.T)])
  # Their per-class metrics, against hand-counted ones.
  m = authors_fixed_split.metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), num_classes=2)
  assert (m["overall_accuracy"], m["balanced_accuracy"], m["per_class_accuracy"]) == (
      0.75, 0.75, [0.5, 1.0])
  assert m["kappa"] == pytest.approx(0.5)  # p_o 0.75, p_e (1*2 + 3*2) / 16 = 0.5
