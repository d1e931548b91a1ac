"""Splits on the bundled Salinas-A and small rasters; the leakage audit."""
import importlib
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from claresnet_jax import data, workdirs

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gt():
  return data.load_scene("salinas_a").gt


def _as_set(pixels):
  return set(map(tuple, np.asarray(pixels).tolist()))


def _counts(gt, pixels):
  values, counts = np.unique(gt[pixels[:, 0], pixels[:, 1]], return_counts=True)
  return dict(zip(values.tolist(), counts.tolist()))


def _chebyshev_min(a, b):
  """Smallest max(|drow|, |dcol|) between any pixel of a and any of b, by brute force."""
  return int(np.abs(a[:, None, :] - b[None, :, :]).max(axis=-1).min())


@pytest.mark.parametrize("seed", [42, 7])
def test_paper_split_equals_sklearn_two_stage(gt, seed):
  split = data.make_split(gt, "paper", seed=seed, patch_size=11)
  rows, cols = np.nonzero(gt)  # the authors' enumeration of labelled pixels
  labels = gt[rows, cols]
  index = np.arange(len(rows))
  rest, test = train_test_split(index, test_size=0.2, stratify=labels, random_state=seed)
  train, val = train_test_split(rest, test_size=0.1, stratify=labels[rest], random_state=seed)
  for part, expected in ((split.train, train), (split.val, val), (split.test, test)):
    assert _counts(gt, part) == dict(zip(*np.unique(labels[expected], return_counts=True)))
    assert _as_set(part) == set(zip(rows[expected].tolist(), cols[expected].tolist()))
  assert (len(split.train), len(split.val), len(split.test)) == (3850, 428, 1070)


def test_leakage_matches_brute_force():
  rng = np.random.default_rng(0)
  train = rng.integers(0, 40, (30, 2))
  test = rng.integers(0, 40, (50, 2))
  split = data.Split(train, np.zeros((0, 2), int), test)
  for patch_size in (1, 3, 5, 11):
    distance = np.abs(test[:, None] - train[None]).max(axis=-1).min(axis=1)
    assert data.leakage(split, patch_size) == pytest.approx(np.mean(distance <= patch_size - 1))


def test_paper_split_leaks_and_disjoint_does_not(gt):
  paper = data.make_split(gt, "paper", seed=42, patch_size=11)
  assert data.leakage(paper, 11) > 0.5
  disjoint = data.make_split(gt, "disjoint", seed=0, patch_size=11)
  assert data.leakage(disjoint, 11) == 0.0


@pytest.mark.parametrize("seed", [0, 3])
def test_disjoint_regions_are_separated_by_the_buffer(gt, seed):
  patch_size = 11
  split = data.make_split(gt, "disjoint", seed=seed, patch_size=patch_size)
  held_out = np.concatenate([split.val, split.test])
  # No training patch may overlap a held-out patch: centres at least P apart.
  assert _chebyshev_min(split.train, held_out) >= patch_size
  parts = [_as_set(p) for p in (split.train, split.val, split.test)]
  assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
  labelled = _counts(gt, np.argwhere(gt > 0))
  for part in (split.train, split.val, split.test):
    assert set(_counts(gt, part)) == set(labelled)  # every class in every part
  test_counts = _counts(gt, split.test)
  for label, count in labelled.items():
    assert test_counts[label] == round(0.2 * count)


def test_disjoint_reports_classes_too_small_to_separate():
  raster = np.zeros((30, 30), int)
  raster[:, :20] = 1
  raster[25:29, 25:29] = 2  # a 4x4 field: no pixel lies 11 pixels from its test part
  with pytest.raises(ValueError, match=r"Classes \[2\] keep no training pixel"):
    data.make_split(raster, "disjoint", seed=0, patch_size=11)


def _config(name):
  return importlib.import_module(f"configs.{name}").get_config()


# The real ground truths (the splits need no cube): each disjoint config splits every class it
# keeps, and the split names the ones it cannot split. ip_disjoint.py also leaves out Corn (4),
# which splits but keeps the smallest training share, and the reduced configs leave out the same
# classes as ip_disjoint.py, although their smaller patches could split more of them.
@pytest.mark.parametrize("config_name, gt_file, excluded, unsplittable", [
    ("ip_disjoint", "indian_pines/Indian_pines_gt.mat", [1, 4, 7, 9, 16], [1, 7, 9, 16]),
    ("ip_small_disjoint", "indian_pines/Indian_pines_gt.mat", [1, 4, 7, 9, 16], [7]),
    ("compare_ip_small_disjoint", "indian_pines/Indian_pines_gt.mat", [1, 4, 7, 9, 16],
     [1, 7, 9, 16]),
    ("sa_disjoint", "salinas/Salinas_gt.mat", [], []),
    ("pu_disjoint", "pavia_university/PaviaU_gt.mat", [], []),
])
def test_disjoint_configs_on_the_real_ground_truths(shared_dir, config_name, gt_file, excluded,
                                                    unsplittable):
  config = _config(config_name)
  assert config.split.protocol == "disjoint" and config.pca.fit_on == "train"
  assert sorted(config.exclude_classes) == excluded
  scene = data.ground_truth_scene(config.scene, shared_dir / "data" / gt_file)
  split_args = dict(seed=config.seed, patch_size=config.patch_size,
                    **workdirs.split_options(config))
  if unsplittable:
    with pytest.raises(ValueError, match=rf"Classes {re.escape(str(unsplittable))} keep no "):
      data.make_split(scene.gt, config.split.protocol, **split_args)
  reduced = scene.without_classes(config.exclude_classes)
  assert reduced.num_classes == scene.num_classes - len(excluded)
  for seed in range(config.seed, config.seed + 3):  # the seeds of num_runs=3
    split = data.make_split(reduced.gt, config.split.protocol, **dict(split_args, seed=seed))
    for part in (split.train, split.val, split.test):
      assert set(_counts(scene.gt, part)) == set(reduced.class_ids.tolist())
    assert data.leakage(split, config.patch_size) == 0.0
    everything = np.concatenate([split.train, split.val, split.test])
    assert len(_as_set(everything)) == len(everything)


# The smallest per-class training share of ip_disjoint.py's split when one direction, chosen
# for the most training pixels, cut every class (make_split's disjoint protocol before it chose
# a direction per class): Buildings-Grass-Trees-Drives (15) kept 3, 2 and 16 of its 386 pixels.
@pytest.mark.parametrize("seed, common_direction_share", [(42, 3 / 386), (43, 2 / 386),
                                                          (44, 16 / 386)])
def test_disjoint_split_of_indian_pines_starves_no_class(shared_dir, seed,
                                                         common_direction_share):
  gt_file = shared_dir / "data/indian_pines/Indian_pines_gt.mat"
  gt = data.ground_truth_scene("indian_pines", gt_file).without_classes([1, 4, 7, 9, 16]).gt
  split = data.make_split(gt, "disjoint", seed=seed, patch_size=11)
  train = _counts(gt, split.train)
  shares = [train.get(c, 0) / n for c, n in _counts(gt, np.argwhere(gt > 0)).items()]
  assert min(shares) > common_direction_share
  assert data.leakage(split, 11) == 0.0
  assert _chebyshev_min(split.train, np.concatenate([split.val, split.test])) >= 11


def test_ground_truth_scene_is_verified(tmp_path, shared_dir):
  scene = data.ground_truth_scene("salinas", shared_dir / "data/salinas/Salinas_gt.mat")
  assert scene.cube.shape == (512, 217, 0) and scene.num_classes == 16
  assert scene.class_names[7] == "Grapes_untrained" and (scene.gt == 8).sum() == 11271
  swapped = scene.gt.astype(np.uint8)
  first, other = np.argwhere(swapped == 1)[0], np.argwhere(swapped == 2)[0]
  swapped[tuple(first)], swapped[tuple(other)] = 2, 1
  np.save(tmp_path / "Salinas_gt.npy", swapped)
  with pytest.raises(ValueError, match=r"Salinas_gt\.npy does not hold the published Salinas "
                                       r"ground truth: its labels differ in place"):
    data.ground_truth_scene("salinas", tmp_path / "Salinas_gt.npy")
  with pytest.raises(KeyError, match=r"Salinas_gt\.mat has no variable 'paviaU_gt'"):
    data.ground_truth_scene("pavia_university", shared_dir / "data/salinas/Salinas_gt.mat")


def test_per_class_and_fraction_counts(gt):
  split = data.make_split(gt, "per_class", seed=1, patch_size=11, train_per_class=20,
                          val_per_class=5)
  labelled = _counts(gt, np.argwhere(gt > 0))
  assert _counts(gt, split.train) == {c: 20 for c in labelled}
  assert _counts(gt, split.val) == {c: 5 for c in labelled}
  assert _counts(gt, split.test) == {c: n - 25 for c, n in labelled.items()}
  split = data.make_split(gt, "fraction", seed=1, patch_size=11, train_fraction=0.1)
  assert _counts(gt, split.train) == {c: round(0.1 * n) for c, n in labelled.items()}
  assert len(split.val) == 0
  assert sum(_counts(gt, split.test).values()) == sum(labelled.values()) - len(split.train)


def test_splits_are_seeded(gt):
  a = data.make_split(gt, "per_class", seed=5, patch_size=11, train_per_class=10)
  b = data.make_split(gt, "per_class", seed=5, patch_size=11, train_per_class=10)
  c = data.make_split(gt, "per_class", seed=6, patch_size=11, train_per_class=10)
  np.testing.assert_array_equal(a.train, b.train)
  assert _as_set(a.train) != _as_set(c.train)
  a, b, c = (data.make_split(gt, "disjoint", seed=seed, patch_size=11) for seed in (5, 5, 6))
  for part in ("train", "val", "test"):
    np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
  assert _as_set(a.train) != _as_set(c.train)


def test_too_few_pixels_names_the_class(gt):
  with pytest.raises(ValueError, match=r"Class 1 has 391 labelled pixels, fewer than the 401"):
    data.make_split(gt, "per_class", seed=0, patch_size=11, train_per_class=400)
  small = np.zeros((20, 20), int)
  small[:10] = 1
  small[15, :5] = 2
  with pytest.raises(ValueError, match=r"Class 2 has 5 labelled pixels, fewer than the 13"):
    data.make_split(small, "paper", seed=0, patch_size=3)


def test_masks_from_arrays_and_files(tmp_path):
  raster = np.zeros((6, 6), int)
  raster[:, :3], raster[:, 3:] = 1, 2
  train, test = np.zeros_like(raster), np.zeros_like(raster)
  train[0], test[5] = 1, raster[5]  # a label raster works as a mask too
  np.save(tmp_path / "test.npy", test)
  split = data.make_split(raster, "masks", seed=0, patch_size=3, train_mask=train,
                          test_mask=tmp_path / "test.npy")
  assert _as_set(split.train) == {(0, c) for c in range(6)}
  assert _as_set(split.test) == {(5, c) for c in range(6)}
  assert len(split.val) == 0


def test_mask_errors_name_the_file_and_the_problem(tmp_path):
  raster = np.ones((6, 6), int)
  raster[0, 0], raster[:, 4:] = 0, 2
  mask = np.zeros((6, 6), np.uint8)
  mask[2, 3] = mask[2, 4] = 1
  np.save(tmp_path / "train.npy", mask)
  np.save(tmp_path / "test.npy", mask)
  with pytest.raises(ValueError, match=r"train_mask .*train\.npy and test_mask .*test\.npy both "
                                       r"select 2 pixels .*\(2, 3\)"):
    data.make_split(raster, "masks", seed=0, patch_size=3, train_mask=tmp_path / "train.npy",
                    test_mask=tmp_path / "test.npy")
  unlabelled = np.zeros((6, 6), bool)
  unlabelled[0, 0] = True
  np.save(tmp_path / "unlabelled.npy", unlabelled)
  with pytest.raises(ValueError, match=r"test_mask .*unlabelled\.npy selects 1 unlabelled pixels"):
    data.make_split(raster, "masks", seed=0, patch_size=3, train_mask=mask,
                    test_mask=tmp_path / "unlabelled.npy")
  np.save(tmp_path / "short.npy", mask[:5])
  with pytest.raises(ValueError, match=r"train_mask .*short\.npy has shape \(5, 6\), expected "
                                       r"\(6, 6\)"):
    data.make_split(raster, "masks", seed=0, patch_size=3, train_mask=tmp_path / "short.npy",
                    test_mask=mask)
  only_one = np.zeros((6, 6), bool)
  only_one[1, 1] = True  # class 1 only
  tested = np.zeros((6, 6), bool)
  tested[5, 1] = tested[5, 5] = True  # classes 1 and 2
  np.save(tmp_path / "only_one.npy", only_one)
  with pytest.raises(ValueError, match=r"test_mask selects pixels of classes \[2\], of which "
                                       r"train_mask .*only_one\.npy selects no pixel"):
    data.make_split(raster, "masks", seed=0, patch_size=3,
                    train_mask=tmp_path / "only_one.npy", test_mask=tested)
  with pytest.raises(FileNotFoundError, match=r"missing\.npy does not exist"):
    data.make_split(raster, "masks", seed=0, patch_size=3, train_mask=mask,
                    test_mask=tmp_path / "missing.npy")


def test_hold_out_validation_is_a_stratified_share_of_training():
  gt = np.zeros((20, 20), int)
  gt[:10], gt[10:19], gt[19, :3] = 1, 2, 3  # 200, 180 and 3 pixels
  split = data.Split(np.argwhere(gt > 0), np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64))
  held = data.hold_out_validation(split, gt, 0.1, seed=4)
  assert _as_set(held.train) | _as_set(held.val) == _as_set(split.train)
  assert not _as_set(held.train) & _as_set(held.val)
  val_labels = gt[tuple(held.val.T)]
  assert [int((val_labels == c).sum()) for c in (1, 2, 3)] == [20, 18, 0]  # 3 * 0.1 rounds to 0
  again = data.hold_out_validation(split, gt, 0.1, seed=4)
  np.testing.assert_array_equal(again.val, held.val)
  assert _as_set(data.hold_out_validation(split, gt, 0.1, seed=5).val) != _as_set(held.val)
  # A class of two pixels keeps one for training.
  tiny = np.zeros((2, 2), int)
  tiny[0] = 1
  two = data.Split(np.argwhere(tiny > 0), np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64))
  assert len(data.hold_out_validation(two, tiny, 0.9, seed=0).train) == 1
  with pytest.raises(ValueError, match="holdout_fraction=1.5 must be between 0 and 1"):
    data.hold_out_validation(split, gt, 1.5, seed=0)
  with pytest.raises(ValueError, match="already has 38 validation pixels"):
    data.hold_out_validation(held, gt, 0.1, seed=0)


def test_patch_size_and_protocol_errors(gt):
  with pytest.raises(ValueError, match="patch_size=10 must be a positive odd number"):
    data.make_split(gt, "paper", seed=0, patch_size=10)
  with pytest.raises(ValueError, match=r"patch_size=167 is too large for the 83x86 scene.*165"):
    data.make_split(gt, "paper", seed=0, patch_size=167)
  data.make_split(gt, "paper", seed=0, patch_size=165)  # the largest numpy can reflect-pad
  with pytest.raises(ValueError, match="Unknown split protocol 'random'"):
    data.make_split(gt, "random", seed=0, patch_size=11)
  with pytest.raises(TypeError, match="train_fraction"):
    data.make_split(gt, "fraction", seed=0, patch_size=11)


def test_labels_of_gives_zero_based_indices(gt):
  class_ids = np.array([1, 10, 11, 12, 13, 14])
  pixels = np.argwhere(gt > 0)[::97]
  labels = data.labels_of(gt, pixels, class_ids)
  np.testing.assert_array_equal(class_ids[labels], gt[pixels[:, 0], pixels[:, 1]])
  assert labels.dtype == np.int32
  unlabelled = np.argwhere(gt == 0)[:1]
  with pytest.raises(ValueError, match="labels outside class_ids"):
    data.labels_of(gt, unlabelled, class_ids)


def test_audit_of_a_ground_truth_alone(shared_dir):
  gt_file = shared_dir / "data/indian_pines/Indian_pines_gt.mat"
  result = subprocess.run(
      [sys.executable, "-m", "claresnet_jax.data.audit", "--scene=indian_pines", f"--gt={gt_file}",
       "--exclude=1,4,7,9,16", "--seeds=42", "--protocols=disjoint", "--per_class"],
      cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
      timeout=120, check=True)
  scene = data.ground_truth_scene("indian_pines", gt_file).without_classes([1, 4, 7, 9, 16])
  split = data.make_split(scene.gt, "disjoint", seed=42, patch_size=11)
  assert (f"disjoint      42 {len(split.train):>6} {len(split.val):>5} {len(split.test):>5}    "
          "0.000") in result.stdout
  counts = _counts(scene.gt, split.train)
  sizes = _counts(scene.gt, np.argwhere(scene.gt > 0))
  assert f"| 14 | Woods | {counts[14]:,} | {counts[14] / sizes[14]:.1%} |" in result.stdout
  low = min(sizes, key=lambda c: counts[c] / sizes[c])
  assert (f"disjoint, seed 42, leakage 0.000; smallest training share: {low} "
          f"{scene.class_names[list(scene.class_ids).index(low)]}, {counts[low]:,} of "
          f"{sizes[low]:,} pixels ({counts[low] / sizes[low]:.1%}):") in result.stdout
  assert "| 9 | Oats |" not in result.stdout
  assert (f"| | total | {len(split.train):,} | {len(split.train) / sum(sizes.values()):.1%} | "
          f"{len(split.val):,} | {len(split.test):,} |") in result.stdout
