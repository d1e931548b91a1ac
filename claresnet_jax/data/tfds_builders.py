"""tensorflow-datasets builder for the registered scenes: download, checksums, cache.

One builder config per scene. Files come from `manual_dir` when placed there by
hand (offline machines, either layout of `SceneFile.local_names`), else from
the scene's URL through the download manager, which checks the published
sha256 where one is known, else (URL unreachable) from the archive of the
file's mirror, downloaded, checked and extracted the same way. The arrays are
verified (shape, dtype, exact per-class counts) before anything is written, and
again when read back.
"""
from __future__ import annotations

import dataclasses
import pathlib
import shutil

from absl import logging
import filelock
import numpy as np

from claresnet_jax.data import _tf  # pylint: disable=unused-import  (hides GPUs from TF first)
from claresnet_jax.data import scenes
import tensorflow_datasets as tfds  # pylint: disable=g-bad-import-order
from tensorflow_datasets.core.download import download_manager

_SPLIT = "scene"


@dataclasses.dataclass(eq=False)
class SceneConfig(tfds.core.BuilderConfig):
  scene: scenes.SceneInfo | None = None


class HyperspectralScenes(tfds.core.GeneratorBasedBuilder):
  """A whole scene as one example: {'cube': (H, W, bands) float32, 'gt': (H, W) int32}."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Scenes from the GIC/EHU site, verified against published counts."}
  BUILDER_CONFIGS = [SceneConfig(name=info.name, description=info.title, scene=info)
                     for info in scenes.SCENES.values()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "On a machine without internet access, download the scene's two .mat files "
      "(URLs in claresnet_jax.data.scenes.SCENES) and place them, under their "
      "original names, in the manual directory (default <data_dir>/downloads/manual, "
      "or pass manual_dir= to load_scene). A .npy of the same name (tensorly's layout, "
      "e.g. Indian_pines_corrected.npy) serves as well: copies are verified by their values.")

  @property
  def url_infos(self):
    """Published sha256 digests of this config's files and mirrors, checked when downloaded."""
    info = self.builder_config.scene
    sources = [f for f in (info.cube, info.gt) if f.sha256]
    sources += [f.mirror for f in (info.cube, info.gt) if f.mirror]
    return {f.url: tfds.download.checksums.UrlInfo(
        size=tfds.core.units.Size(f.size), checksum=f.sha256, filename=None) for f in sources}

  def _info(self) -> tfds.core.DatasetInfo:
    height, width, bands = self.builder_config.scene.shape
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "cube": tfds.features.Tensor(shape=(height, width, bands), dtype=np.float32,
                                         encoding=tfds.features.Encoding.ZLIB),
            "gt": tfds.features.Tensor(shape=(height, width), dtype=np.int32,
                                       encoding=tfds.features.Encoding.ZLIB),
        }),
        homepage="https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    info = self.builder_config.scene
    paths, sources, downloaded = {}, {}, []
    for role, file in (("cube", info.cube), ("gt", info.gt)):
      manual = _manual_path(dl_manager, file)
      if manual is not None:
        paths[role], sources[role] = manual, str(manual)
      else:
        paths[role], sources[role], written = _download(dl_manager, file)
        downloaded.append(written)
    try:
      scene = scenes.scene_from_arrays(
          info, info.cube.read(paths["cube"], ndim=3), info.gt.read(paths["gt"], ndim=2),
          cube_source=sources["cube"], gt_source=sources["gt"])
    except (ValueError, KeyError) as e:
      if not downloaded:
        raise ValueError(f"{e}. Replace it with an intact copy.") from None
      # A cached bad download would be reused forever: remove it.
      for path in downloaded:
        if path.is_dir():
          shutil.rmtree(path)
        else:
          path.unlink(missing_ok=True)
          path.with_name(path.name + ".INFO").unlink(missing_ok=True)
      raise ValueError(f"{e}. The downloaded files were removed; try again, or place verified "
                       "copies in the manual directory.") from None
    return {_SPLIT: self._generate_examples(scene)}

  def _generate_examples(self, scene: scenes.Scene):
    yield 0, {"cube": scene.cube, "gt": scene.gt}


def load_prepared(info: scenes.SceneInfo, *, data_dir=None, manual_dir=None,
                  download: bool = True) -> scenes.Scene:
  """Prepares (downloads or takes from `manual_dir`) a registered scene once, then loads it."""
  config = info.name if scenes.SCENES.get(info.name) is info else SceneConfig(
      name=info.name, description=info.title, scene=info)
  if manual_dir is not None and not pathlib.Path(manual_dir).is_dir():
    raise FileNotFoundError(f"manual_dir={str(manual_dir)!r} is not a folder; it should hold "
                            f"{_local_names(info)}")
  builder = HyperspectralScenes(config=config, data_dir=data_dir)
  if not builder.is_prepared():
    if not download:
      raise FileNotFoundError(
          f"{info.title} is not prepared in {builder.data_dir_root}; call load_scene with "
          f"download=True, or place {_local_names(info)} in a manual directory and pass "
          "manual_dir=")
    # Processes started together (seeds of a sweep) prepare one at a time; the later ones
    # find the scene prepared and read it with a builder made anew.
    root = pathlib.Path(builder.data_dir_root)
    root.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(root / f"{builder.name}.{info.name}.lock"):
      builder = HyperspectralScenes(config=config, data_dir=data_dir)
      if not builder.is_prepared():
        _prepare(builder, info, manual_dir)
  example = next(iter(tfds.as_numpy(builder.as_dataset(split=_SPLIT))))
  return scenes.scene_from_arrays(
      info, example["cube"], example["gt"], cube_source=f"cached {info.name} cube",
      gt_source=f"cached {info.name} ground truth")


def _prepare(builder: HyperspectralScenes, info: scenes.SceneInfo, manual_dir) -> None:
  """Downloads (or takes from `manual_dir`), verifies and writes the scene into the cache."""
  download_dir = pathlib.Path(builder.data_dir_root) / "downloads"
  before = set(download_dir.rglob("*.tmp.*"))
  try:
    builder.download_and_prepare(
        download_dir=download_dir,
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except Exception as e:
    if isinstance(e, download_manager.NonMatchingChecksumError):
      raise ValueError(f"A download of {info.title} does not match its published sha256, so "
                       f"it was discarded (corrupted or changed file).\n{e}") from None
    if isinstance(e, (OSError, tfds.download.DownloadError)):  # no connection, HTTP errors
      raise OSError(f"Could not download {info.title}: {e}\nOn a machine without internet "
                    f"access, place {_local_names(info)} in a folder and pass manual_dir= "
                    f"(default {download_dir / 'manual'})") from None
    raise
  finally:  # failed attempts, also those a mirror made up for
    remove_new_tmp(download_dir, before)


def _local_names(info: scenes.SceneInfo) -> str:
  return " and ".join(" or ".join(f.local_names) for f in (info.cube, info.gt))


def _download(dl_manager, file: scenes.SceneFile) -> tuple[pathlib.Path, str, pathlib.Path]:
  """Downloads `file`, or where its URL fails, extracts it from its mirror's archive.

  Returns the file's path, how errors name it, and what to remove if it is bad.
  """
  try:
    path = pathlib.Path(dl_manager.download(file.url))
    return path, f"{file.filename} ({path})", path
  except (OSError, tfds.download.DownloadError) as e:  # no connection, HTTP errors
    if file.mirror is None:
      raise
    logging.warning("Could not download %s (%s); taking %s from %s instead", file.url, e,
                    file.mirror.member, file.mirror.url)
  # A wheel is a ZIP archive under another name: say how to extract it.
  folder = pathlib.Path(dl_manager.download_and_extract(tfds.download.Resource(
      url=file.mirror.url, extract_method=tfds.download.ExtractMethod.ZIP)))
  path = folder / file.mirror.member
  if not path.is_file():
    raise ValueError(f"{file.mirror.filename} holds no {file.mirror.member}")
  return path, f"{file.mirror.member} of {file.mirror.filename} ({path})", folder


def _manual_path(dl_manager, file: scenes.SceneFile) -> pathlib.Path | None:
  """The hand-placed copy of `file` in either layout (`SceneFile.local_names`), or None.

  It is verified once read, by its values (`SceneFile.values_sha256`), not by
  its bytes: a re-saved .mat or a .npy mirror holds the same values.
  """
  try:
    folder = pathlib.Path(dl_manager.manual_dir)
  except AssertionError:  # no manual directory, or an empty one
    return None
  found = [folder / name for name in file.local_names if (folder / name).is_file()]
  return found[0] if found else None


def remove_new_tmp(download_dir: pathlib.Path, before: set[pathlib.Path]) -> None:
  """Removes the half-written download folders that a failed download left."""
  for tmp in set(download_dir.rglob("*.tmp.*")) - before:
    shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
