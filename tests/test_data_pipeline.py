"""The tf.data patch pipeline against numpy's reflect padding, rot90 and flip."""
import statistics
import time

import chex
import numpy as np
import pytest

from claresnet_jax import data
from claresnet_jax.data import pipeline

P = 5
R = P // 2


@pytest.fixture(scope="module")
def cube():
  """A small cube whose values are all distinct, so a patch identifies its pixels."""
  return np.random.default_rng(0).permutation(9 * 11 * 3).reshape(9, 11, 3).astype(np.float32)


def _patch(cube, row, col):
  padded = np.pad(cube, ((R, R), (R, R), (0, 0)), mode="reflect")
  return padded[row:row + P, col:col + P]


def _transforms(patch):
  """The patch under every (rotation, flip) the paper's augmentation can draw."""
  return [np.flip(np.rot90(patch, k), axis) if axis is not None else np.rot90(patch, k)
          for k in range(4) for axis in (None, 0, 1)]


def _pixels(cube):
  return np.argwhere(np.ones(cube.shape[:2], bool))


def test_patches_are_reflect_padded_windows(cube):
  pixels = _pixels(cube)
  labels = np.arange(len(pixels)) % 4
  seen = 0
  for batch in pipeline.train_batches(cube, pixels, labels, patch_size=P, batch_size=8, seed=0,
                                      epoch=0, augment=False):
    chex.assert_shape(batch["patches"], (8, P, P, 3))
    assert batch["patches"].dtype == np.float32 and batch["labels"].dtype == np.int32
    for patch, label in zip(batch["patches"], batch["labels"]):
      row, col = np.argwhere(cube[..., 0] == patch[R, R, 0])[0]
      np.testing.assert_array_equal(patch, _patch(cube, row, col))
      assert label == labels[row * cube.shape[1] + col]
      seen += 1
  assert seen == len(pixels) // 8 * 8  # the remainder is dropped


def test_known_patch_under_each_variant(cube):
  # Gathering through transformed offsets equals transforming the patch.
  padded = np.pad(cube, ((R, R), (R, R), (0, 0)), mode="reflect")
  flat = padded.reshape(-1, 3)
  start = 3 * padded.shape[1] + 4
  variants = pipeline._offset_variants(P, padded.shape[1])  # pylint: disable=protected-access
  for variant, expected in zip(variants, _transforms(_patch(cube, 3, 4))):
    np.testing.assert_array_equal(flat[start + variant], expected)


def test_augmentation_is_the_papers(cube):
  # Off the first and last row and column, whose reflected patches are symmetric.
  pixels = np.repeat(_pixels(cube[1:-1, 1:-1]) + 1, 16, axis=0)  # 1008 examples
  labels = np.zeros(len(pixels), np.int32)
  unchanged = noisy = total = 0
  for batch in pipeline.train_batches(cube, pixels, labels, patch_size=P, batch_size=24, seed=3,
                                      epoch=0):
    for patch in batch["patches"]:
      row, col = np.argwhere(np.abs(cube[..., 0] - patch[R, R, 0]) < 0.5)[0]
      candidates = _transforms(_patch(cube, row, col))
      errors = [np.abs(patch - c).max() for c in candidates]
      best = candidates[int(np.argmin(errors))]
      assert min(errors) < 0.5  # some rotation/flip of the true patch, plus small noise
      residual = patch - best
      if np.any(residual):
        noisy += 1
        assert residual.std() == pytest.approx(0.05, rel=0.3)
      unchanged += bool(np.array_equal(best, candidates[0]))
      total += 1
  assert total == 1008
  assert noisy / total == pytest.approx(0.5, abs=0.06)
  # Neither rotated nor flipped: 0.5 * 0.5.
  assert unchanged / total == pytest.approx(0.25, abs=0.05)


def test_batches_are_determined_by_seed_and_epoch(cube):
  pixels = _pixels(cube)
  labels = np.arange(len(pixels)) % 3

  def run(seed, epoch):
    return list(pipeline.train_batches(cube, pixels, labels, patch_size=P, batch_size=16,
                                       seed=seed, epoch=epoch))

  first, again = run(1, 0), run(1, 0)
  chex.assert_trees_all_equal(first, again)
  assert not np.array_equal(first[0]["patches"], run(1, 1)[0]["patches"])
  assert not np.array_equal(first[0]["patches"], run(2, 0)[0]["patches"])


def test_processes_split_each_global_batch(cube):
  pixels = _pixels(cube)
  labels = np.arange(len(pixels)) % 5
  kwargs = dict(patch_size=P, batch_size=12, seed=4, epoch=2)
  whole = list(pipeline.train_batches(cube, pixels, labels, **kwargs))
  parts = [list(pipeline.train_batches(cube, pixels, labels, process_index=i, process_count=3,
                                       **kwargs)) for i in range(3)]
  assert all(len(p) == len(whole) for p in parts)
  for b, batch in enumerate(whole):
    for key in ("patches", "labels"):
      np.testing.assert_array_equal(np.concatenate([p[b][key] for p in parts]), batch[key])


def test_eval_batches_pad_the_last_batch(cube):
  pixels = _pixels(cube)[::7]  # 15 pixels
  labels = np.arange(len(pixels), dtype=np.int32)
  batches = list(pipeline.eval_batches(cube, pixels, patch_size=P, batch_size=4, labels=labels))
  assert len(batches) == 4
  valid = np.concatenate([b["valid"] for b in batches])
  assert valid.tolist() == [True] * 15 + [False]
  patches = np.concatenate([b["patches"] for b in batches])[valid]
  for patch, (row, col) in zip(patches, pixels):
    np.testing.assert_array_equal(patch, _patch(cube, row, col))
  np.testing.assert_array_equal(np.concatenate([b["labels"] for b in batches])[valid], labels)


def test_eval_over_every_pixel_in_order_across_processes(cube):
  parts = [list(pipeline.eval_batches(cube, None, patch_size=P, batch_size=16, process_index=i,
                                      process_count=2)) for i in range(2)]
  rows = []
  for first, second in zip(*parts):
    for batch in (first, second):
      rows.extend(batch["patches"][batch["valid"]])
  assert len(rows) == 99
  for index, patch in enumerate(rows):
    np.testing.assert_array_equal(patch, _patch(cube, *divmod(index, cube.shape[1])))


def test_every_pixel_of_a_large_scene_is_cut_lazily():
  cube = np.zeros((1000, 1000, 2), np.float32)
  cube[999, 999] = 7.0
  batches = pipeline.eval_batches(cube, None, patch_size=11, batch_size=500)
  first = next(batches)
  chex.assert_shape(first["patches"], (500, 11, 11, 2))
  # Only a batch at a time exists; the scene's last pixel arrives in the last batch.
  *_, last = batches
  assert last["valid"].all() and last["patches"][-1, 5, 5, 0] == 7.0


def test_pipeline_errors(cube):
  pixels = _pixels(cube)
  labels = np.zeros(len(pixels), np.int32)
  with pytest.raises(ValueError, match="patch_size=4 must be a positive odd number"):
    next(pipeline.train_batches(cube, pixels, labels, patch_size=4, batch_size=8, seed=0,
                                epoch=0))
  with pytest.raises(ValueError, match=r"batch_size=10 \(global\) must be a positive multiple of "
                                       "process_count=3"):
    next(pipeline.train_batches(cube, pixels, labels, patch_size=P, batch_size=10, seed=0,
                                epoch=0, process_count=3))
  with pytest.raises(ValueError, match="outside the 9x11 cube"):
    next(pipeline.eval_batches(cube, pixels + 1, patch_size=P, batch_size=8))


def test_paper_configuration_sustains_2000_patches_per_second():
  scene = data.load_scene("salinas_a")
  cube = data.fit_pca(scene.cube, 30).transform(scene.cube)
  split = data.make_split(scene.gt, "paper", seed=42, patch_size=11)
  labels = data.labels_of(scene.gt, split.train, scene.class_ids)
  rates = []
  for epoch in range(4):  # the first is a warm-up
    start = time.perf_counter()
    count = sum(len(b["labels"]) for b in pipeline.train_batches(
        cube, split.train, labels, patch_size=11, batch_size=16, seed=0, epoch=epoch))
    rates.append(count / (time.perf_counter() - start))
  assert count == len(split.train) // 16 * 16
  assert statistics.median(rates[1:]) >= 2000, rates
