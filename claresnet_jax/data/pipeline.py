"""The tf.data patch pipeline: P x P x T patches around pixels, augmented, batched, as numpy.

Patches are cut batch by batch with one gather from the reflection-padded cube
(numpy `mode='reflect'`, as the authors pad), so memory stays bounded for any
scene size. Augmentation (the paper's: Gaussian noise std 0.05, a rotation by
90/180/270 degrees, a horizontal or vertical flip, each with probability 0.5)
permutes the gather indices instead of the pixels, and every draw is a
stateless function of (seed, epoch, batch), so batches are reproducible.

`batch_size` is global: with several processes each one yields its
`batch_size // process_count` rows of every global batch, and all processes
yield the same number of batches.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from claresnet_jax.data import splits
from claresnet_jax.data._tf import tf

NOISE_STD = 0.05
# Geometric variants, in the authors' order: rotate by k quarter turns, then flip.
_ROTATIONS = (0, 1, 2, 3)
_FLIPS = (None, 0, 1)  # none, vertical (rows), horizontal (columns)


def train_batches(cube: np.ndarray, pixels: np.ndarray, labels: np.ndarray, *, patch_size: int,
                  batch_size: int, seed: int, epoch: int, augment: bool = True,
                  process_index: int = 0,
                  process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """One shuffled epoch of {'patches': (B, P, P, T) float32, 'labels': (B,) int32}.

  Deterministic given (seed, epoch); the remainder that does not fill a global
  batch is dropped.
  """
  pixels, labels = np.asarray(pixels), np.asarray(labels)
  if len(pixels) != len(labels):
    raise ValueError(f"pixels has {len(pixels)} rows but labels has {len(labels)}")
  local = _local_batch_size(batch_size, process_count, process_index)
  num_batches = len(pixels) // batch_size
  if num_batches == 0:
    raise ValueError(f"{len(pixels)} training pixels do not fill one batch of {batch_size}")
  flat_cube, starts = _padded(cube, pixels, patch_size)
  order = np.random.default_rng([seed, epoch]).permutation(len(pixels))
  order = order[:num_batches * batch_size].reshape(num_batches, batch_size)
  rows = slice(process_index * local, (process_index + 1) * local)
  variants = tf.constant(_offset_variants(patch_size, cube.shape[1] + 2 * (patch_size // 2)))
  key = tf.constant([seed, epoch], tf.int64)

  def make_batch(batch_index, batch_starts, batch_labels):
    if augment:
      draw = tf.random.experimental.stateless_fold_in(key, batch_index)
      variant, noisy, noise = _draw_augmentation(draw, batch_size, patch_size, cube.shape[-1])
      offsets = tf.gather(variants, variant[rows])
    else:
      offsets = tf.broadcast_to(variants[0], (local, patch_size, patch_size))
    patches = tf.gather(flat_cube, batch_starts[:, None, None] + offsets)
    if augment:
      patches += tf.where(noisy[rows, None, None, None], noise[rows], 0.0)
    return {"patches": patches, "labels": batch_labels}

  ds = tf.data.Dataset.from_tensor_slices(
      (np.arange(num_batches), starts[order[:, rows]], labels[order[:, rows]].astype(np.int32)))
  yield from _numpy_batches(ds.map(make_batch))


def eval_batches(cube: np.ndarray, pixels: np.ndarray | None, *, patch_size: int,
                 batch_size: int, labels: np.ndarray | None = None, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """Fixed-size batches of patches around `pixels` in order (every pixel if None).

  Yields {'patches', 'labels' (if given), 'valid': (B,) bool}; the last batch is
  padded and `valid` marks its real rows.
  """
  height, width = cube.shape[:2]
  local = _local_batch_size(batch_size, process_count, process_index)
  pixels = None if pixels is None else np.asarray(pixels)
  count = height * width if pixels is None else len(pixels)
  if count == 0:
    raise ValueError("eval_batches got no pixels")
  if labels is not None and (pixels is None or len(labels) != count):
    raise ValueError(f"labels has {len(labels)} rows; it needs pixels= with as many rows")
  flat_cube, starts = _padded(cube, pixels, patch_size)
  padded_width = width + 2 * (patch_size // 2)
  offsets = tf.constant(_offset_variants(patch_size, padded_width)[0])
  num_batches = -(-count // batch_size)
  padding = (0, num_batches * batch_size - count)
  if starts is not None:
    starts = tf.constant(np.pad(starts, padding))
  if labels is not None:
    labels = tf.constant(np.pad(np.asarray(labels, np.int32), padding))

  def make_batch(batch_index):
    position = batch_index * batch_size + process_index * local + tf.range(local, dtype=tf.int64)
    valid = position < count
    if starts is None:  # every pixel, row-major, cut without an index array
      safe = tf.minimum(position, count - 1)
      batch_starts = safe // width * padded_width + safe % width
    else:
      batch_starts = tf.gather(starts, position)
    batch = {"patches": tf.gather(flat_cube, batch_starts[:, None, None] + offsets),
             "valid": valid}
    if labels is not None:
      batch["labels"] = tf.gather(labels, position)
    return batch

  ds = tf.data.Dataset.range(num_batches)
  yield from _numpy_batches(ds.map(make_batch))


def _numpy_batches(ds: tf.data.Dataset) -> Iterator:
  """The batches as numpy, cut one at a time two ahead, with tf.data's autotuning off.

  A batch takes milliseconds to cut; the autotuner's threads took cores from XLA. On a
  2-core CPU the paper model's training loop ran 2.05 s a step with it and 1.15 s
  without, where the compiled step alone takes 1.18-1.22 s (docs/training.md).
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return ds.with_options(options).prefetch(2).as_numpy_iterator()


def _offset_variants(patch_size: int, padded_width: int) -> np.ndarray:
  """(12, P, P) flat offsets of a patch's pixels from its top-left, for each variant.

  Gathering through np.flip(np.rot90(offsets, k), axis) yields exactly
  np.flip(np.rot90(patch, k), axis).
  """
  grid = np.arange(patch_size)
  offsets = grid[:, None] * padded_width + grid[None, :]
  variants = []
  for k in _ROTATIONS:
    for axis in _FLIPS:
      rotated = np.rot90(offsets, k)
      variants.append(rotated if axis is None else np.flip(rotated, axis))
  return np.stack(variants).astype(np.int64)


def _draw_augmentation(key, batch_size: int, patch_size: int, bands: int):
  """Per-example variant index, noise switch and noise for one global batch."""
  keys = tf.random.experimental.stateless_split(key, 4)
  coin = tf.random.stateless_uniform((3, batch_size), keys[0]) < 0.5  # noise, rotate, flip
  k = tf.random.stateless_uniform((batch_size,), keys[1], 1, 4, tf.int64)
  axis = tf.random.stateless_uniform((batch_size,), keys[2], 0, 2, tf.int64)
  rotation = tf.where(coin[1], k, 0)
  flip = tf.where(coin[2], axis + 1, 0)  # index into _FLIPS
  variant = rotation * len(_FLIPS) + flip
  noise = NOISE_STD * tf.random.stateless_normal(
      (batch_size, patch_size, patch_size, bands), keys[3])
  return variant, coin[0], noise


def _padded(cube: np.ndarray, pixels: np.ndarray | None, patch_size: int):
  """The reflection-padded cube as (rows * cols, T) and each pixel's patch top-left flat index."""
  height, width, bands = cube.shape
  splits.check_patch_size(patch_size, height, width)
  if pixels is not None:
    if pixels.ndim != 2 or pixels.shape[1] != 2:
      raise ValueError(f"pixels has shape {pixels.shape}; expected (N, 2) (row, col) pairs")
    if len(pixels) and ((pixels < 0) | (pixels >= (height, width))).any():
      raise ValueError(f"pixels holds (row, col) pairs outside the {height}x{width} cube")
  pad = patch_size // 2
  padded = np.pad(np.asarray(cube, np.float32), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
  flat = tf.constant(padded.reshape(-1, bands))
  if pixels is None:
    return flat, None
  # The patch of unpadded pixel (r, c) starts at padded (r, c).
  return flat, pixels[:, 0].astype(np.int64) * padded.shape[1] + pixels[:, 1]


def _local_batch_size(batch_size: int, process_count: int, process_index: int) -> int:
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} must be in [0, {process_count})")
  if batch_size < 1 or batch_size % process_count:
    raise ValueError(f"batch_size={batch_size} (global) must be a positive multiple of "
                     f"process_count={process_count}")
  return batch_size // process_count
