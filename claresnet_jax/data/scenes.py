"""Hyperspectral scenes: the `Scene`, the benchmark registry, reading and verifying files.

Every loader (`loading.load_scene`, the tensorflow-datasets builder) returns a `Scene` whose
arrays were checked here the same way, so a bad file fails with a message naming it, not later
inside training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.io

from claresnet_jax.data import rasters
from claresnet_jax.data.preprocess import nodata_mask

PathLike = str | os.PathLike

_EHU = "https://www.ehu.eus/ccwintco/uploads"


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
  """A labelled scene: cube (H, W, bands) float32, gt (H, W) int32, 0 = unlabelled."""
  name: str
  cube: np.ndarray
  gt: np.ndarray
  class_ids: np.ndarray  # sorted label values that are classes
  class_names: list[str]  # aligned with class_ids

  @property
  def num_classes(self) -> int:
    return len(self.class_ids)

  def without_classes(self, label_values: Sequence[int]) -> Scene:
    """This scene with the classes of `label_values` made unlabelled (gt 0) everywhere.

    Splits, training, metrics and maps then never see them (DeepHyperX's
    "ignored labels"), e.g. fields too small to split disjointly.
    """
    values = sorted({int(v) for v in label_values})
    if not values:
      return self
    known = self.class_ids.tolist()
    unknown = [v for v in values if v not in known]
    if unknown:
      classes = ", ".join(f"{i} {n}" for i, n in zip(known, self.class_names))
      raise ValueError(f"Cannot exclude {unknown}: not classes of {self.name}, whose label "
                       f"values are {classes}")
    keep = [k for k, v in enumerate(known) if v not in values]
    if not keep:
      raise ValueError(f"Excluding {values} would leave {self.name} without any class; keep "
                       "at least one")
    gt = np.where(np.isin(self.gt, values), 0, self.gt).astype(self.gt.dtype)
    return dataclasses.replace(self, gt=gt, class_ids=self.class_ids[keep],
                               class_names=[self.class_names[k] for k in keep])


@dataclasses.dataclass(frozen=True)
class ArchiveMember:
  """A copy of a scene file inside a ZIP archive elsewhere: the source where the first fails."""
  url: str
  sha256: str  # of the archive, checked by the download manager
  size: int
  member: str  # the file's path inside the archive

  @property
  def filename(self) -> str:
    return self.url.rsplit("/", 1)[-1]


# tensorly 0.10.0 on PyPI (BSD-3) ships the corrected Indian Pines cube and ground truth as .npy.
_TENSORLY_WHEEL = dict(
    url="https://files.pythonhosted.org/packages/17/02/"
        "0269a1573b9f2ea6365e12b87debaf8b2cdad8e3fc4f84d9f4dc6be68adb/"
        "tensorly-0.10.0-py3-none-any.whl",
    sha256="90becb3d28023638ec60d19fbf8d87735b4ce1537fe3eb881897d69e107b882d",
    size=7431542)


@dataclasses.dataclass(frozen=True)
class SceneFile:
  """One downloadable .mat file of a scene, the variable it holds and what that must contain."""
  url: str
  key: str
  sha256: str | None = None  # of the file, with size, where a verified copy is known
  size: int | None = None
  # Of the array's values (`values_sha256`), where known: the same for every copy of the
  # array, whatever its container, so a .npy mirror or a re-saved .mat verifies too.
  values_sha256: str | None = None
  mirror: ArchiveMember | None = None  # where the URL cannot be reached

  @property
  def filename(self) -> str:
    return self.url.rsplit("/", 1)[-1]

  @property
  def local_names(self) -> tuple[str, str]:
    """Names a copy placed by hand may have: the EHU .mat, or a .npy of the same stem.

    The .npy is the layout of tensorly's datasets (Indian_pines_corrected.npy).
    """
    return self.filename, pathlib.Path(self.filename).with_suffix(".npy").name

  def read(self, path: PathLike, *, ndim: int) -> np.ndarray:
    """Reads a copy of this file in either layout of `local_names`."""
    key = self.key if pathlib.Path(path).suffix.lower() == ".mat" else None
    return read_array(path, ndim=ndim, key=key)


@dataclasses.dataclass(frozen=True)
class SceneInfo:
  """What a registered scene is and what its files must contain once loaded."""
  name: str
  title: str
  cube: SceneFile
  gt: SceneFile
  shape: tuple[int, int, int]  # (height, width, bands)
  classes: Mapping[int, tuple[str, int]]  # label value -> (name, published pixel count)
  description: str = ""


SCENES: dict[str, SceneInfo] = {
    "indian_pines": SceneInfo(
        name="indian_pines",
        title="Indian Pines",
        description="AVIRIS, Indiana 1992; corrected: 20 water-absorption bands removed.",
        cube=SceneFile(
            f"{_EHU}/6/67/Indian_pines_corrected.mat", "indian_pines_corrected",
            sha256="ec2f8808710919d566f70f0d4aa885aae1ddfd42b734aba71c5e12ca65450939",
            size=5953527,
            values_sha256="60c8ec2f8b40b7b3d5d221a4c86bca4506dd0181fbc26c107334f1313bb65f25",
            mirror=ArchiveMember(
                **_TENSORLY_WHEEL, member="tensorly/datasets/data/Indian_pines_corrected.npy")),
        gt=SceneFile(
            f"{_EHU}/c/c4/Indian_pines_gt.mat", "indian_pines_gt",
            sha256="65c4687a8ab04f6da4789799bc3bc4f6e88bccac3ed6a2e6ae367e5e6b9e429c",
            size=1125,
            values_sha256="3f6c028dceffedf3727ed44f1cb5e00a92debec71f9dd75f5cdd7db27ec5e0b0",
            mirror=ArchiveMember(
                **_TENSORLY_WHEEL, member="tensorly/datasets/data/Indian_pines_gt.npy")),
        shape=(145, 145, 200),
        classes={
            1: ("Alfalfa", 46), 2: ("Corn-notill", 1428), 3: ("Corn-mintill", 830),
            4: ("Corn", 237), 5: ("Grass-pasture", 483), 6: ("Grass-trees", 730),
            7: ("Grass-pasture-mowed", 28), 8: ("Hay-windrowed", 478), 9: ("Oats", 20),
            10: ("Soybean-notill", 972), 11: ("Soybean-mintill", 2455),
            12: ("Soybean-clean", 593), 13: ("Wheat", 205), 14: ("Woods", 1265),
            15: ("Buildings-Grass-Trees-Drives", 386), 16: ("Stone-Steel-Towers", 93),
        }),
    "salinas": SceneInfo(
        name="salinas",
        title="Salinas",
        description="AVIRIS, Salinas Valley CA; corrected: 20 water-absorption bands removed.",
        cube=SceneFile(
            f"{_EHU}/a/a3/Salinas_corrected.mat", "salinas_corrected",
            sha256="5ec1c0d22f56d18ecd336f8e35735863c0f160682e04e0c18ef3f89a3334d87d",
            size=26552770),
        gt=SceneFile(
            f"{_EHU}/f/fa/Salinas_gt.mat", "salinas_gt",
            sha256="ecfab4d31ef5553f097943235d8ea502038eb4a2067b2ad10b33e37c949955e2",
            size=4277,
            values_sha256="98b12344d1cc9bdb4ad9538486badb6a04eaebd4a05e0d32cc03ac0c35f738f9"),
        shape=(512, 217, 204),
        classes={
            1: ("Brocoli_green_weeds_1", 2009), 2: ("Brocoli_green_weeds_2", 3726),
            3: ("Fallow", 1976), 4: ("Fallow_rough_plow", 1394), 5: ("Fallow_smooth", 2678),
            6: ("Stubble", 3959), 7: ("Celery", 3579), 8: ("Grapes_untrained", 11271),
            9: ("Soil_vinyard_develop", 6203), 10: ("Corn_senesced_green_weeds", 3278),
            11: ("Lettuce_romaine_4wk", 1068), 12: ("Lettuce_romaine_5wk", 1927),
            13: ("Lettuce_romaine_6wk", 916), 14: ("Lettuce_romaine_7wk", 1070),
            15: ("Vinyard_untrained", 7268), 16: ("Vinyard_vertical_trellis", 1807),
        }),
    "salinas_a": SceneInfo(
        name="salinas_a",
        title="Salinas-A",
        description="83 x 86 subscene of Salinas; bundled with the package.",
        cube=SceneFile(
            f"{_EHU}/1/1a/SalinasA_corrected.mat", "salinasA_corrected",
            sha256="d75684ed3ab71a1024cee0f9db9061f50a3523a92ff5edfbbb1eed976b9f1721",
            size=1539086,
            values_sha256="568076e8388a76853f6c4279630ff34e936d0da8fedec5c0ac3a364654be8c38"),
        gt=SceneFile(
            f"{_EHU}/a/aa/SalinasA_gt.mat", "salinasA_gt",
            sha256="17814c1d3296c0e29b27f320f2c4174d2a68adb87e376abe78f02923e2c2e454",
            size=587,
            values_sha256="88502993805bc0972f5f60dbfc7d9a8fb581850bafb16404c2b10938f625abf8"),
        shape=(83, 86, 204),
        classes={
            1: ("Brocoli_green_weeds_1", 391), 10: ("Corn_senesced_green_weeds", 1343),
            11: ("Lettuce_romaine_4wk", 616), 12: ("Lettuce_romaine_5wk", 1525),
            13: ("Lettuce_romaine_6wk", 674), 14: ("Lettuce_romaine_7wk", 799),
        }),
    "pavia_university": SceneInfo(
        name="pavia_university",
        title="Pavia University",
        description="ROSIS, Pavia 2001; 103 bands.",
        cube=SceneFile(
            f"{_EHU}/e/ee/PaviaU.mat", "paviaU",
            sha256="28447fa87f7a5797845e9a189c0da85e23b1d06a4ba7361e5ff44efbf834d2fb",
            size=34806917),
        gt=SceneFile(
            f"{_EHU}/5/50/PaviaU_gt.mat", "paviaU_gt",
            sha256="23f6a426928f9b32984adffe659e29f554f9fb6c93b5a107528d308d5087a829",
            size=11005,
            values_sha256="e40239a4cd614dff60a8922e16f517b250db26004fdf24e06848d391656d5155"),
        shape=(610, 340, 103),
        classes={
            1: ("Asphalt", 6631), 2: ("Meadows", 18649), 3: ("Gravel", 2099), 4: ("Trees", 3064),
            5: ("Painted metal sheets", 1345), 6: ("Bare Soil", 5029), 7: ("Bitumen", 1330),
            8: ("Self-Blocking Bricks", 3682), 9: ("Shadows", 947),
        }),
}

BUNDLED = "salinas_a"


def scene_from_arrays(info: SceneInfo, cube: np.ndarray, gt: np.ndarray, *, cube_source: str,
                      gt_source: str) -> Scene:
  """Builds a registered scene from its raw arrays and verifies it against `info`."""
  raw_cube, raw_gt = cube, gt
  cube, gt = check_arrays(cube, gt, cube_source=cube_source, gt_source=gt_source)
  if cube.shape != info.shape:
    raise ValueError(f"{cube_source} has shape {cube.shape}, expected {info.shape} for "
                     f"{info.title}")
  _verify_gt(info, gt, raw_gt, gt_source)
  _check_values(raw_cube, info.cube, cube_source, f"{info.title} cube",
                "some pixel values differ")
  return _registered_scene(info, cube, gt)


def ground_truth_scene(name: str, path: PathLike) -> Scene:
  """A registered scene's ground truth alone, verified, as a scene without spectra (0 bands).

  Splits and the leakage audit need only the labels, so they run on the real
  field layout where the cube is not at hand (Salinas, Pavia University here).
  """
  if name not in SCENES:
    raise ValueError(f"{name!r} is not a registered scene ({', '.join(SCENES)})")
  info = SCENES[name]
  raw = info.gt.read(path, ndim=2)
  height, width, _ = info.shape
  cube, gt = check_arrays(np.zeros((height, width, 0), np.float32), raw,
                          cube_source=f"the {info.title} cube", gt_source=str(path))
  _verify_gt(info, gt, raw, str(path))
  return _registered_scene(info, cube, gt)


def _verify_gt(info: SceneInfo, gt: np.ndarray, raw_gt: np.ndarray, gt_source: str) -> None:
  """The published count of every class, then the labels' values where registered."""
  values, counts = np.unique(gt[gt > 0], return_counts=True)
  found = dict(zip(values.tolist(), counts.tolist()))
  expected = {label: count for label, (_, count) in info.classes.items()}
  if found != expected:
    diffs = [f"class {label}: {found.get(label, 0)} pixels, expected {expected.get(label, 0)}"
             for label in sorted(set(found) | set(expected))
             if found.get(label, 0) != expected.get(label, 0)]
    raise ValueError(f"{gt_source} does not hold the published {info.title} ground truth: "
                     + "; ".join(diffs))
  _check_values(raw_gt, info.gt, gt_source, f"{info.title} ground truth",
                "its labels differ in place (the class counts are the published ones)")


def _registered_scene(info: SceneInfo, cube: np.ndarray, gt: np.ndarray) -> Scene:
  ids = np.array(sorted(info.classes), np.int32)
  return Scene(info.name, cube, gt, ids, [info.classes[i][0] for i in ids.tolist()])


def values_sha256(array: np.ndarray) -> str:
  """sha256 of an integer-valued array's values: C order, each as a little-endian int64.

  The container (.mat, .npy, a float32 cache) and the stored dtype do not
  change it: `SceneFile.values_sha256` verifies any copy of a registered array.
  """
  digest = hashlib.sha256()
  for row in np.asarray(array):  # row by row: no int64 copy of a whole cube
    digest.update(np.ascontiguousarray(row, "<i8").tobytes())
  return digest.hexdigest()


def _check_values(array: np.ndarray, file: SceneFile, source: str, what: str,
                  difference: str) -> None:
  if file.values_sha256 is None:
    return
  array = np.asarray(array)
  if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
    raise ValueError(f"{source} does not hold the published {what}: it holds non-integer "
                     "values, the published file integers")
  digest = values_sha256(array)
  if digest != file.values_sha256:
    raise ValueError(f"{source} does not hold the published {what}: {difference} (sha256 of "
                     f"its values {digest}, expected {file.values_sha256})")


def check_arrays(cube: np.ndarray, gt: np.ndarray, *, cube_source: str,
                 gt_source: str) -> tuple[np.ndarray, np.ndarray]:
  """Checks a cube and its ground truth; returns them as float32 and int32."""
  cube, gt = np.asarray(cube), np.asarray(gt)
  if cube.ndim != 3:
    raise ValueError(f"{cube_source} holds an array of shape {cube.shape}; a cube must be "
                     "(height, width, bands)")
  if gt.ndim != 2:
    raise ValueError(f"{gt_source} holds an array of shape {gt.shape}; a ground truth must be "
                     "(height, width)")
  if cube.dtype.kind not in "iuf":
    raise ValueError(f"{cube_source} has dtype {cube.dtype}; expected integer or float values")
  if gt.dtype.kind not in "iuf":
    raise ValueError(f"{gt_source} has dtype {gt.dtype}; expected integer labels")
  if gt.shape != cube.shape[:2]:
    raise ValueError(f"{gt_source} has shape {gt.shape}, expected {cube.shape[:2]} to match "
                     f"the cube {cube_source}")
  cube = cube.astype(np.float32)
  labels = gt.astype(np.int64)
  if gt.dtype.kind == "f" and not (np.isfinite(gt).all() and np.array_equal(labels, gt)):
    raise ValueError(f"{gt_source} holds non-integer labels; expected integers, 0 = unlabelled")
  # No-data pixels (NaN, Inf, all-zero spectra) may stay in the scene, unlabelled; a
  # ground truth checked alone (ground_truth_scene: a cube of 0 bands) has no spectra.
  bad = nodata_mask(cube) & (labels != 0) if cube.shape[2] else np.zeros(gt.shape, bool)
  if bad.any():
    row, col = np.argwhere(bad)[0]
    raise ValueError(f"{cube_source} has {int(bad.sum())} labelled pixels without data (NaN, "
                     f"Inf or all-zero spectra; first at row {row}, column {col}); label them 0 "
                     f"in {gt_source} or fill their spectra")
  if (labels < 0).any():
    raise ValueError(f"{gt_source} holds negative labels (min {labels.min()}); expected "
                     "0 = unlabelled and positive class ids")
  if not (labels > 0).any():
    raise ValueError(f"{gt_source} labels no pixel: every value is 0 (unlabelled)")
  return cube, labels.astype(np.int32)


def read_array(path: PathLike, *, ndim: int, key: str | None = None) -> np.ndarray:
  """Reads the one `ndim`-dimensional array of a .mat/.npy/.npz/ENVI/GeoTIFF file.

  Rasters are returned as (height, width[, bands]).
  """
  path = pathlib.Path(path)
  if rasters.driver(path) is not None:
    return _read_raster(path, ndim=ndim, key=key)
  arrays = _read_arrays(path)
  if ndim == 2:  # an (H, W, 1) array holds a ground truth as a single-band raster does
    arrays = {k: v[..., 0] if v.ndim == 3 and v.shape[-1] == 1 else v for k, v in arrays.items()}
  if key is not None:
    if key not in arrays:
      raise KeyError(f"{path.name} has no variable {key!r}; it holds {_describe(arrays)}")
    return arrays[key]
  candidates = [k for k, v in arrays.items() if v.ndim == ndim]
  if len(candidates) != 1:
    what = "cube (height, width, bands)" if ndim == 3 else "ground truth (height, width)"
    found = "none" if not candidates else f"{len(candidates)}: {', '.join(candidates)}"
    raise ValueError(f"{path.name} must hold exactly one {ndim}-D array to use as the {what}; "
                     f"found {found} among {_describe(arrays)}. Name it with "
                     f"{'cube_key' if ndim == 3 else 'gt_key'}=")
  return arrays[candidates[0]]


def _read_raster(path: pathlib.Path, *, ndim: int, key: str | None) -> np.ndarray:
  """A GeoTIFF or ENVI raster: a cube of several bands, or a ground truth of one."""
  option = "cube_key" if ndim == 3 else "gt_key"
  if key is not None:
    raise ValueError(f"{option}={key!r} given for {path.name}: a raster holds one array; "
                     f"{option} names a variable of a .mat or .npz file")
  array = rasters.read_raster(path)
  bands = array.shape[-1]
  if ndim == 2:
    if bands != 1:
      raise ValueError(f"{path.name} has {bands} bands; a ground truth (height, width) has one, "
                       "the label of every pixel")
    return array[..., 0]
  if bands == 1:
    raise ValueError(f"{path.name} has 1 band; a cube (height, width, bands) has one band per "
                     "wavelength (is it a ground truth?)")
  return array


def _read_arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
  """All arrays of a .mat/.npy/.npz file, by variable name; one error style for every format."""
  suffix = path.suffix.lower()
  if not path.is_file():
    raise FileNotFoundError(f"{path} does not exist")
  try:
    if suffix == ".mat":
      return _read_mat(path)
    if suffix == ".npy":
      return {path.stem: np.load(path, allow_pickle=False)}
    if suffix == ".npz":
      with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
  except (OSError, ValueError, EOFError) as e:
    raise ValueError(f"{path} could not be read as a {suffix} file: {e}") from e
  raise ValueError(f"{path.name}: unsupported file type {suffix!r}; use .mat, .npy, .npz, "
                   "ENVI (.hdr) or GeoTIFF (.tif)")


def _read_mat(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    contents = scipy.io.loadmat(path)
  except NotImplementedError:  # MATLAB v7.3 files are HDF5
    import h5py  # pylint: disable=g-import-not-at-top
    with h5py.File(path, "r") as f:
      # MATLAB writes column-major: h5py sees the axes reversed.
      return {k: np.asarray(v).T for k, v in f.items() if isinstance(v, h5py.Dataset)}
  except Exception as e:  # scipy raises assorted errors for damaged files
    raise ValueError(f"{path} could not be read as a MATLAB file: {e}") from e
  return {k: v for k, v in contents.items()
          if not k.startswith("__") and isinstance(v, np.ndarray)}


def _describe(arrays: Mapping[str, np.ndarray]) -> str:
  return ", ".join(f"{k} {v.shape}" for k, v in arrays.items()) or "no arrays"
