"""Loads scenes: a registered one (bundled, or through the tensorflow-datasets builder) or a
user's files. The builder, and TensorFlow with it, is imported only for the scenes it keeps.
"""
from __future__ import annotations

import importlib.resources
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np

from claresnet_jax.data.scenes import BUNDLED
from claresnet_jax.data.scenes import SCENES
from claresnet_jax.data.scenes import PathLike
from claresnet_jax.data.scenes import Scene
from claresnet_jax.data.scenes import SceneInfo
from claresnet_jax.data.scenes import check_arrays
from claresnet_jax.data.scenes import read_array
from claresnet_jax.data.scenes import scene_from_arrays


def load_scene(
    name_or_path: str | PathLike | SceneInfo,
    *,
    gt: PathLike | None = None,
    cube_key: str | None = None,
    gt_key: str | None = None,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    name: str | None = None,
    data_dir: PathLike | None = None,
    manual_dir: PathLike | None = None,
    download: bool = True,
) -> Scene:
  """Loads a registered scene by name, or a user's cube file and its ground truth.

  Args:
    name_or_path: a name in `SCENES` ("indian_pines", "salinas", "salinas_a",
      "pavia_university"), a `SceneInfo`, or the path of a cube file: .mat
      (v5 or v7.3), .npy, .npz, ENVI (.hdr beside its data file) or GeoTIFF.
    gt: ground-truth raster for a user's file, in any of those formats; may be
      omitted when the cube's .mat/.npz file also holds it.
    cube_key, gt_key: variable names inside .mat/.npz files, needed only when
      the file holds several arrays of the right dimension.
    class_names: names of the classes of a user's scene, in the order of the
      sorted label values, or a mapping label value -> name.
    name: the scene's name (default: the cube file's stem).
    data_dir, manual_dir, download: where tensorflow-datasets keeps a
      registered scene, where it looks for files placed by hand, and whether it
      may download (see `tfds_builders`).

  Returns:
    The scene, verified: shapes, dtypes, data under every label and, for registered scenes,
    the exact published per-class pixel counts.
  """
  registered = isinstance(name_or_path, SceneInfo) or name_or_path in SCENES
  file_options = dict(gt=gt, cube_key=cube_key, gt_key=gt_key, class_names=class_names, name=name)
  if registered:
    given = [k for k, v in file_options.items() if v is not None]
    if given:
      raise ValueError(f"{', '.join(given)} only apply to users' files, not to the registered "
                       f"scene {name_or_path!r}")
    info = name_or_path if isinstance(name_or_path, SceneInfo) else SCENES[name_or_path]
    if info.name == BUNDLED and info is SCENES[BUNDLED]:
      return _load_bundled(info)
    from claresnet_jax.data import tfds_builders  # pylint: disable=g-import-not-at-top
    return tfds_builders.load_prepared(
        info, data_dir=data_dir, manual_dir=manual_dir, download=download)
  path = pathlib.Path(name_or_path)
  if not path.suffix and not path.exists():
    raise ValueError(f"{str(name_or_path)!r} is neither a registered scene "
                     f"({', '.join(SCENES)}) nor an existing file")
  given = [k for k, v in dict(data_dir=data_dir, manual_dir=manual_dir).items() if v is not None]
  if given:
    raise ValueError(f"{' and '.join(given)} given for the file {str(name_or_path)!r}: data_dir "
                     f"and manual_dir apply only to registered scenes ({', '.join(SCENES)})")
  return _load_user_scene(path, gt, cube_key, gt_key, class_names, name)


def bundled_dir() -> pathlib.Path:
  """The folder of the scene files shipped inside the package."""
  return pathlib.Path(str(importlib.resources.files("claresnet_jax.data") / "scenes"))


def _load_bundled(info: SceneInfo) -> Scene:
  folder = bundled_dir()
  cube_path, gt_path = folder / info.cube.filename, folder / info.gt.filename
  return scene_from_arrays(
      info, read_array(cube_path, ndim=3, key=info.cube.key),
      read_array(gt_path, ndim=2, key=info.gt.key),
      cube_source=str(cube_path), gt_source=str(gt_path))


def _load_user_scene(path, gt, cube_key, gt_key, class_names, name) -> Scene:
  cube = read_array(path, ndim=3, key=cube_key)
  gt_path = pathlib.Path(gt) if gt is not None else path
  if gt is None and path.suffix.lower() not in (".mat", ".npz"):
    raise ValueError(f"{path.name} holds only a cube; pass gt= with the ground-truth raster")
  labels = read_array(gt_path, ndim=2, key=gt_key)
  cube, labels = check_arrays(cube, labels, cube_source=path.name, gt_source=gt_path.name)
  ids = np.unique(labels[labels > 0]).astype(np.int32)
  if class_names is None:
    names = [f"class {i}" for i in ids.tolist()]
  elif isinstance(class_names, Mapping):
    missing = [i for i in ids.tolist() if i not in class_names]
    if missing:
      raise ValueError(f"class_names has no name for the label values {missing} of {gt_path.name}")
    names = [str(class_names[i]) for i in ids.tolist()]
  else:
    names = [str(n) for n in class_names]
    if len(names) != len(ids):
      raise ValueError(f"class_names has {len(names)} names but {gt_path.name} has {len(ids)} "
                       f"classes (label values {ids.tolist()})")
  return Scene(name or path.stem, cube, labels, ids, names)
