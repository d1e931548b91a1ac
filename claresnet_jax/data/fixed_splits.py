"""The field's fixed training/test maps, registered like scenes: downloaded, checked, relabelled.

A fixed split is two label maps (training, test) in its authors' class order. Papers
report on exactly these pixels, so a result on them sits beside the published tables.
"""
from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping

import numpy as np

from claresnet_jax.data import scenes

_HONG_GCN = ("https://github.com/danfenghong/IEEE_TGRS_GCN/raw/"
             "d53879216c428270476edf0ac966671cdc796477/DataGeneration_Functions")


@dataclasses.dataclass(frozen=True)
class MapFile:
  """One downloadable label map (0 = not in this part) and what it must contain."""
  url: str
  sha256: str  # of the file, checked by the download manager
  size: int
  values_sha256: str  # of its values (scenes.values_sha256), checked for every copy

  @property
  def filename(self) -> str:
    return self.url.rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class FixedSplitInfo:
  """A registered split of a registered scene."""
  name: str
  title: str
  scene: str  # a name in scenes.SCENES
  train: MapFile
  test: MapFile
  scene_labels: Mapping[int, int]  # the maps' class id -> the scene's label value
  reference: str


FIXED_SPLITS: dict[str, FixedSplitInfo] = {
    "indian_pines_hong": FixedSplitInfo(
        name="indian_pines_hong",
        title="Indian Pines, the fixed split of Hong et al.",
        scene="indian_pines",
        train=MapFile(
            f"{_HONG_GCN}/IndianTR123_temp123.tif",
            sha256="9f7cb2caea985577c11bbeea1086c9348aa067ab7e3825d2fa671508b4ae6684",
            size=21248,
            values_sha256="48d0d50ebcc6b434059c351a6b6dc35f5b26a43f373fe6e29e4cfc638bc84fd5"),
        test=MapFile(
            f"{_HONG_GCN}/IndianTE123_temp123.tif",
            sha256="f7a8e34026ce97a4a21918441f7b03dba0718f63ff2619d1a35dcaa33da24ad3",
            size=21248,
            values_sha256="a540ab35d2300ab1f9f4015bfff3bb5dd5a31483f5ed5310b22a1f06abea01f6"),
        # The maps number the classes in their own order, not the EHU ground truth's.
        scene_labels={1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 8, 7: 10, 8: 11, 9: 12, 10: 13, 11: 14,
                      12: 15, 13: 16, 14: 1, 15: 7, 16: 9},
        reference="Hong et al., Graph Convolutional Networks for Hyperspectral Image "
                  "Classification, IEEE TGRS 59(7), 2021; SpectralFormer, IEEE TGRS 60, 2022"),
}


def load_maps(name_or_info: str | FixedSplitInfo, *, data_dir=None, manual_dir=None,
              download: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """The (H, W) training and test maps in the scene's label values (0 = not in the part).

  Files come from `manual_dir` where placed there by hand, else from their URLs
  through tensorflow-datasets' download manager (file sha256 checked) into
  <data_dir>/downloads; either copy must hold the published values.
  """
  info = _info(name_or_info)
  maps = []
  for part, file in (("training", info.train), ("test", info.test)):
    path = _local_copy(file, manual_dir) or _download(file, data_dir, manual_dir, download)
    raw = scenes.read_array(path, ndim=2)
    integral = raw.dtype.kind in "iu" or (
        raw.dtype.kind == "f" and np.isfinite(raw).all() and np.array_equal(raw, np.round(raw)))
    digest = scenes.values_sha256(raw) if integral else "(not integer labels)"
    if digest != file.values_sha256:
      raise ValueError(f"{path} does not hold the published {part} map of {info.title}: its "
                       f"values differ (sha256 of its values {digest}, expected "
                       f"{file.values_sha256}). Replace it with an intact copy of {file.url}")
    lookup = np.zeros(max(info.scene_labels) + 1, np.int32)
    for own, label in info.scene_labels.items():
      lookup[own] = label
    maps.append(lookup[raw.astype(np.int64)])
  return maps[0], maps[1]


def split_labels(name_or_info: str | FixedSplitInfo, scene: scenes.Scene, **load_options
                 ) -> np.ndarray:
  """The split's own labels of its pixels (training and test maps together), in scene values.

  They must agree with `scene.gt` wherever both label a pixel: this catches a
  wrong class mapping or a split of another scene.
  """
  info = _info(name_or_info)
  if scene.name != info.scene:
    raise ValueError(f"The fixed split {info.name!r} is a split of {info.scene!r}, not of "
                     f"{scene.name!r}; set config.scene={info.scene!r}")
  train, test = load_maps(info, **load_options)
  labels = train + test  # the two parts never overlap (published values)
  if labels.shape != scene.gt.shape:
    raise ValueError(f"The {info.name} maps have shape {labels.shape}, the scene's ground truth "
                     f"{scene.gt.shape}")
  both = (labels > 0) & (scene.gt > 0)
  disagree = both & (labels != scene.gt)
  if disagree.any():
    row, col = np.argwhere(disagree)[0]
    raise ValueError(f"The {info.name} maps and the {scene.name} ground truth disagree on "
                     f"{int(disagree.sum())} pixels (first ({row}, {col}): {labels[row, col]} "
                     f"against {scene.gt[row, col]})")
  return labels


def _info(name_or_info: str | FixedSplitInfo) -> FixedSplitInfo:
  if isinstance(name_or_info, FixedSplitInfo):
    return name_or_info
  if name_or_info not in FIXED_SPLITS:
    raise ValueError(f"Unknown fixed split {name_or_info!r}; registered: "
                     f"{', '.join(FIXED_SPLITS)}")
  return FIXED_SPLITS[name_or_info]


def _local_copy(file: MapFile, manual_dir) -> pathlib.Path | None:
  if manual_dir is None:
    return None
  folder = pathlib.Path(manual_dir)
  if not folder.is_dir():
    raise FileNotFoundError(f"manual_dir={str(manual_dir)!r} is not a folder; it should hold "
                            f"{file.filename}")
  path = folder / file.filename
  return path if path.is_file() else None


def _download(file: MapFile, data_dir, manual_dir, download: bool) -> pathlib.Path:
  from claresnet_jax.data import _tf  # pylint: disable=g-import-not-at-top,unused-import
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core.download import download_manager  # pylint: disable=g-import-not-at-top

  where = f" and it is not in manual_dir={str(manual_dir)!r}" if manual_dir else ""
  if not download:
    raise FileNotFoundError(f"{file.filename} is not at hand{where}; place it in a folder and "
                            "pass manual_dir=, or allow the download")
  from claresnet_jax.data import tfds_builders  # pylint: disable=g-import-not-at-top

  root = data_dir or tfds.core.constants.get_default_data_dir()
  download_dir = pathlib.Path(root) / "downloads"
  before = set(download_dir.rglob("*.tmp.*"))
  manager = tfds.download.DownloadManager(
      download_dir=download_dir,
      url_infos={file.url: tfds.download.checksums.UrlInfo(
          size=tfds.core.units.Size(file.size), checksum=file.sha256, filename=file.filename)})
  try:
    return pathlib.Path(manager.download(file.url))
  except download_manager.NonMatchingChecksumError as e:
    raise ValueError(f"The download of {file.filename} does not match its published sha256, so "
                     f"it was discarded (corrupted or changed file).\n{e}") from None
  except (OSError, tfds.download.DownloadError) as e:
    raise OSError(f"Could not download {file.url}: {e}\nOn a machine without internet access, "
                  f"place {file.filename} in a folder and pass that folder as manual_dir "
                  "(config.split.options.manual_dir)") from None
  finally:
    tfds_builders.remove_new_tmp(download_dir, before)
