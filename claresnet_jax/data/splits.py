"""Training/validation/test pixel splits, all stratified by class and seeded, and the leakage audit.

Pixels are (N, 2) int arrays of (row, col) in the unpadded scene.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os

import numpy as np
import scipy.ndimage
import scipy.spatial
import sklearn.model_selection

PROTOCOLS = ("paper", "fraction", "per_class", "disjoint", "masks", "fixed")


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
  """Training, validation and test pixels, each (N, 2) int64 (row, col)."""
  train: np.ndarray
  val: np.ndarray
  test: np.ndarray


def check_patch_size(patch_size: int, height: int, width: int) -> None:
  """Patches are centred on a pixel and reflection-padded: odd, and at most the scene allows."""
  if patch_size < 1 or patch_size % 2 == 0:
    raise ValueError(f"patch_size={patch_size} must be a positive odd number (patches are "
                     "centred on their pixel), e.g. 11")
  if patch_size // 2 >= min(height, width):
    limit = 2 * (min(height, width) - 1) + 1
    raise ValueError(f"patch_size={patch_size} is too large for the {height}x{width} scene: "
                     f"reflection padding allows at most {limit}")


def make_split(gt: np.ndarray, protocol: str, *, seed: int, patch_size: int, **options) -> Split:
  """Splits the labelled pixels of `gt` (0 = unlabelled) by `protocol`.

  Protocols and their options:
    paper: the authors' two-stage stratified `train_test_split`: `test_size`
      (0.2) of the labelled pixels, then `val_size` (0.1) of the rest (72/8/20).
    fraction: per class, `train_fraction` (required) and `val_fraction` (0) of
      its pixels, the rest test.
    per_class: per class, `train_per_class` (required) and `val_per_class` (0)
      pixels, the rest test.
    disjoint: spatially disjoint regions per class: each class is cut along
      a direction into test (`test_size`, 0.2), validation (`val_size`, 0.1,
      of the rest) and training parts; training pixels within patch_size - 1
      of a held-out pixel of any class are dropped, so that no training patch
      overlaps a validation or test patch (leakage 0). Each class takes the
      one of 8 directions (offset by the seed) that makes the smallest
      per-class training share (training pixels / pixels of the class) the
      largest, then the training pixels the most: the best common direction,
      then each class in turn along its best given the others' held-out
      pixels (one direction for all classes can leave a class a handful).
    masks: `train_mask`, `test_mask` and optional `val_mask`: (H, W) arrays or
      raster files, nonzero = selected; selected pixels must be labelled, and
      every class with test pixels needs training pixels.
    fixed: a registered fixed split (`name`, a key of fixed_splits.FIXED_SPLITS;
      `manual_dir`, `data_dir` as for scenes): its training and test pixels that
      `gt` labels. With the split's own labels as `gt` (fixed_splits.split_labels),
      that is all of them.
  """
  gt = np.asarray(gt)
  if gt.ndim != 2:
    raise ValueError(f"gt has shape {gt.shape}; expected (height, width)")
  check_patch_size(patch_size, *gt.shape)
  builders = {"paper": _paper, "fraction": _fraction, "per_class": _per_class,
              "disjoint": _disjoint, "masks": _masks, "fixed": _fixed}
  if protocol not in builders:
    raise ValueError(f"Unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
  try:
    return builders[protocol](gt, seed=seed, patch_size=patch_size, **options)
  except TypeError as e:  # unknown or missing option names
    raise TypeError(f"make_split(protocol={protocol!r}): {e}") from None


def labels_of(gt: np.ndarray, pixels: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
  """Zero-based class indices (into `class_ids`) of the (N, 2) pixels, int32."""
  values = np.asarray(gt)[pixels[:, 0], pixels[:, 1]]
  index = np.searchsorted(class_ids, values)
  bad = (index >= len(class_ids)) | (class_ids[np.minimum(index, len(class_ids) - 1)] != values)
  if bad.any():
    row, col = pixels[np.argmax(bad)]
    raise ValueError(f"{int(bad.sum())} pixels have labels outside class_ids "
                     f"{np.asarray(class_ids).tolist()} (first: ({row}, {col}) = "
                     f"{values[np.argmax(bad)]})")
  return index.astype(np.int32)


def leakage(split: Split, patch_size: int) -> float:
  """Share of test pixels whose patch overlaps some training pixel's patch.

  Two P x P patches overlap when their centres are at most P - 1 apart in both
  rows and columns (reflection at borders only repeats pixels inside that box).
  """
  if len(split.test) == 0 or len(split.train) == 0:
    return 0.0
  tree = scipy.spatial.cKDTree(split.train)
  distance, _ = tree.query(split.test, p=np.inf, distance_upper_bound=patch_size - 0.5)
  return float(np.isfinite(distance).mean())


def _labelled(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Labelled pixels in row-major order (as the authors enumerate them) and their labels."""
  pixels = np.argwhere(gt > 0)
  return pixels, gt[pixels[:, 0], pixels[:, 1]]


def _require(counts: dict[int, int], needed: dict[int, int], why: str) -> None:
  short = [label for label in sorted(counts) if counts[label] < needed[label]]
  if short:
    label = short[0]
    raise ValueError(f"Class {label} has {counts[label]} labelled pixels, fewer than the "
                     f"{needed[label]} {why}" + (f" ({len(short)} classes are short: {short})"
                                                 if len(short) > 1 else ""))


def _paper(gt, *, seed, patch_size, test_size=0.2, val_size=0.1) -> Split:
  del patch_size
  pixels, labels = _labelled(gt)
  values, counts = np.unique(labels, return_counts=True)
  minimum = math.ceil(1 / min(test_size, (1 - test_size) * val_size))
  _require(dict(zip(values.tolist(), counts.tolist())), {v: minimum for v in values.tolist()},
           f"the 'paper' split (test_size={test_size}, val_size={val_size}) needs so that "
           "training, validation and test each expect a pixel of every class")
  index = np.arange(len(pixels))
  rest, test = sklearn.model_selection.train_test_split(
      index, test_size=test_size, stratify=labels, random_state=seed)
  train, val = sklearn.model_selection.train_test_split(
      rest, test_size=val_size, stratify=labels[rest], random_state=seed)
  return Split(pixels[train], pixels[val], pixels[test])


def _per_class_counts(gt, seed, train_count, val_count, why) -> Split:
  """Draws train_count[c] then val_count[c] pixels of each class c; the rest is test."""
  pixels, labels = _labelled(gt)
  values, counts = np.unique(labels, return_counts=True)
  counts = dict(zip(values.tolist(), counts.tolist()))
  _require(counts, {c: train_count[c] + val_count[c] + 1 for c in counts}, why)
  rng = np.random.default_rng(seed)
  parts = ([], [], [])
  for c in counts:
    members = rng.permutation(np.flatnonzero(labels == c))
    bounds = (train_count[c], train_count[c] + val_count[c])
    for part, chosen in zip(parts, np.split(members, bounds)):
      part.append(chosen)
  return Split(*(pixels[np.concatenate(part)] for part in parts))


def _fraction(gt, *, seed, patch_size, train_fraction, val_fraction=0.0) -> Split:
  del patch_size
  if not (0 < train_fraction and 0 <= val_fraction and train_fraction + val_fraction < 1):
    raise ValueError(f"train_fraction={train_fraction} and val_fraction={val_fraction} must be "
                     "positive and sum to less than 1")
  _, labels = _labelled(gt)
  values, counts = np.unique(labels, return_counts=True)
  train = {c: max(1, round(train_fraction * n)) for c, n in zip(values.tolist(), counts.tolist())}
  val = {c: (max(1, round(val_fraction * n)) if val_fraction else 0)
         for c, n in zip(values.tolist(), counts.tolist())}
  return _per_class_counts(
      gt, seed, train, val, f"the 'fraction' split (train_fraction={train_fraction}, "
      f"val_fraction={val_fraction}) needs: at least one pixel each for training, validation "
      "and test")


def _per_class(gt, *, seed, patch_size, train_per_class, val_per_class=0) -> Split:
  del patch_size
  values = np.unique(gt[gt > 0]).tolist()
  return _per_class_counts(
      gt, seed, {c: train_per_class for c in values}, {c: val_per_class for c in values},
      f"the 'per_class' split needs ({train_per_class} training + {val_per_class} validation + "
      "1 test); use smaller counts or the 'fraction' protocol")


def _disjoint(gt, *, seed, patch_size, test_size=0.2, val_size=0.1) -> Split:
  pixels, labels = _labelled(gt)
  values, index, sizes = np.unique(labels, return_inverse=True, return_counts=True)
  minimum = math.ceil(1 / min(test_size, (1 - test_size) * val_size or 1))
  _require(dict(zip(values.tolist(), sizes.tolist())), {v: minimum for v in values.tolist()},
           f"the 'disjoint' split (test_size={test_size}, val_size={val_size}) needs")
  offset = np.random.default_rng(seed).uniform(0, np.pi / 4)
  # parts[k, d]: the part of each pixel of class k cut along direction d (0 elsewhere);
  # near[k, d]: the pixels within the buffer of that cut's held-out pixels.
  parts, near = zip(*(_cut(gt, pixels, index == k, angle, patch_size, test_size, val_size)
                      for k in range(len(values)) for angle in offset + np.arange(8) * np.pi / 4))
  parts = np.reshape(parts, (len(values), 8, len(pixels)))
  near = np.reshape(near, (len(values), 8, len(pixels)))
  classes = np.arange(len(values))

  def train_of(directions):
    return (parts[classes, directions].sum(axis=0) == 0) & ~near[classes, directions].any(axis=0)

  def score(directions):
    # Training pixels of the most classes, then the largest smallest per-class training
    # share (so that no class starves), then the most training pixels.
    kept = np.bincount(index[train_of(directions)], minlength=len(values))
    return np.count_nonzero(kept), (kept / sizes).min(), kept.sum()

  # The best common direction; then, class by class, any direction of one class that scores
  # higher with the others' held-out pixels, until no single change scores higher.
  directions = max((np.full(len(values), d) for d in range(8)), key=score)
  best, improved = score(directions), True
  while improved:
    improved = False
    for k, d in itertools.product(classes, range(8)):
      trial = directions.copy()
      trial[k] = d
      if (trial_score := score(trial)) > best:
        directions, best, improved = trial, trial_score, True
  train = train_of(directions)
  part = parts[classes, directions].sum(axis=0)
  lost = values[np.bincount(index[train], minlength=len(values)) == 0].tolist()
  if lost:
    raise ValueError(
        f"Classes {lost} keep no training pixel in the 'disjoint' split (best of 8 "
        f"directions per class): all their pixels lie within {patch_size - 1} pixels (the buffer "
        f"for patch_size={patch_size}) of held-out pixels. Their fields are too small to split; "
        "leave them out (config.exclude_classes, Scene.without_classes), or use a smaller "
        "patch_size or the 'per_class'/'paper' protocol")
  return Split(pixels[train], pixels[part == 1], pixels[part == 2])


def _cut(gt, pixels, members, angle, patch_size, test_size, val_size):
  """Cuts the `members` of one class along `angle`: the far end is test, then validation.

  Returns the part of each of `pixels` (0 training or another class, 1 validation,
  2 test) and whether it lies within patch_size - 1 of a held-out pixel, where its
  patch would overlap that pixel's patch.
  """
  ranked = np.flatnonzero(members)
  position = pixels[ranked] @ np.array([np.cos(angle), np.sin(angle)])
  ranked = ranked[np.argsort(-position, kind="stable")]
  num_test = max(1, round(test_size * len(ranked)))
  num_val = max(1, round((1 - test_size) * val_size * len(ranked))) if val_size else 0
  part = np.zeros(len(pixels), np.int8)
  part[ranked[:num_test]] = 2
  part[ranked[num_test:num_test + num_val]] = 1
  held = np.zeros(gt.shape, bool)
  held[tuple(pixels[part > 0].T)] = True
  near_held = scipy.ndimage.maximum_filter(held, size=2 * patch_size - 1, mode="constant")
  return part, near_held[pixels[:, 0], pixels[:, 1]]


def _masks(gt, *, seed, patch_size, train_mask, test_mask, val_mask=None) -> Split:
  del seed, patch_size
  masks = {"train_mask": train_mask, "val_mask": val_mask, "test_mask": test_mask}
  selected, names = {}, {}
  for name, mask in masks.items():
    names[name] = name
    if mask is None:
      selected[name] = np.zeros(gt.shape, bool)
      continue
    if isinstance(mask, (str, os.PathLike)):
      from claresnet_jax.data import scenes  # pylint: disable=g-import-not-at-top
      names[name] = f"{name} {os.fspath(mask)}"
      mask = scenes.read_array(mask, ndim=2)
    mask = np.asarray(mask)
    if mask.shape != gt.shape:
      raise ValueError(f"{names[name]} has shape {mask.shape}, expected {gt.shape} to match the "
                       "scene's ground truth")
    mask = mask != 0
    unlabelled = mask & (gt == 0)
    if unlabelled.any():
      row, col = np.argwhere(unlabelled)[0]
      raise ValueError(f"{names[name]} selects {int(unlabelled.sum())} unlabelled pixels (first "
                       f"at ({row}, {col})); select labelled pixels only")
    selected[name] = mask
  keys = list(selected)
  for i, a in enumerate(keys):
    for b in keys[i + 1:]:
      both = selected[a] & selected[b]
      if both.any():
        row, col = np.argwhere(both)[0]
        raise ValueError(f"{names[a]} and {names[b]} both select {int(both.sum())} pixels (first "
                         f"at ({row}, {col})); a pixel belongs to one part only")
  untrained = sorted(set(np.unique(gt[selected["test_mask"]]).tolist())
                     - set(np.unique(gt[selected["train_mask"]]).tolist()))
  if untrained:
    raise ValueError(f"{names['test_mask']} selects pixels of classes {untrained}, of which "
                     f"{names['train_mask']} selects no pixel: a model cannot learn them. Add "
                     "training pixels of those classes, or leave them out (config.exclude_classes)")
  return Split(*(np.argwhere(selected[n]) for n in ("train_mask", "val_mask", "test_mask")))


def _fixed(gt, *, seed, patch_size, name, manual_dir=None, data_dir=None) -> Split:
  del seed, patch_size
  from claresnet_jax.data import fixed_splits  # pylint: disable=g-import-not-at-top
  train, test = fixed_splits.load_maps(name, manual_dir=manual_dir, data_dir=data_dir)
  if train.shape != gt.shape:
    raise ValueError(f"The fixed split {name!r} has maps of shape {train.shape}, the ground "
                     f"truth {gt.shape}: it is a split of another scene")
  for part, labels in (("training", train), ("test", test)):
    disagree = (labels > 0) & (gt > 0) & (labels != gt)
    if disagree.any():
      row, col = np.argwhere(disagree)[0]
      raise ValueError(f"The {part} map of the fixed split {name!r} labels {int(disagree.sum())} "
                       f"pixels otherwise than the ground truth (first ({row}, {col}): "
                       f"{labels[row, col]} against {gt[row, col]})")
  return Split(np.argwhere((train > 0) & (gt > 0)), np.zeros((0, 2), np.int64),
               np.argwhere((test > 0) & (gt > 0)))


def hold_out_validation(split: Split, gt: np.ndarray, fraction: float, seed: int) -> Split:
  """`split` with a stratified `fraction` of each class's training pixels moved to validation.

  For splits without a validation part (fixed maps, a user's masks) whose runs
  select their checkpoint by validation accuracy; a class keeps at least one
  training pixel.
  """
  if not 0 < fraction < 1:
    raise ValueError(f"holdout_fraction={fraction} must be between 0 and 1")
  if len(split.val):
    raise ValueError(f"The split already has {len(split.val)} validation pixels; "
                     "holdout_fraction is for splits without a validation part")
  labels = np.asarray(gt)[split.train[:, 0], split.train[:, 1]]
  rng = np.random.default_rng(seed)
  held = []
  for value in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == value))
    held.append(members[:min(round(fraction * len(members)), len(members) - 1)])
  held = np.sort(np.concatenate(held))
  kept = np.setdiff1d(np.arange(len(split.train)), held)
  return Split(split.train[kept], split.train[held], split.test)
