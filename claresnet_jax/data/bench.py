"""Input pipeline throughput for the paper configuration, in patches per second.

  python -m claresnet_jax.data.bench [--scene=salinas_a --passes=5]

Times whole epochs of `train_batches` (Salinas-A, PCA to 30 components, the
paper split, 11x11 patches, batch 16, augmentation on) and an evaluation pass
over every pixel; prints the median of the timed passes after one warm-up.
"""
import statistics
import time

from absl import app
from absl import flags

from claresnet_jax import data
from claresnet_jax.data import pipeline

_SCENE = flags.DEFINE_string("scene", "salinas_a", "Registered scene name or file path.")
_COMPONENTS = flags.DEFINE_integer("n_components", 30, "PCA components.")
_PATCH_SIZE = flags.DEFINE_integer("patch_size", 11, "Patch size P.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 16, "Training batch size.")
_EVAL_BATCH_SIZE = flags.DEFINE_integer("eval_batch_size", 256, "Evaluation batch size.")
_PASSES = flags.DEFINE_integer("passes", 5, "Timed passes (after one warm-up).")


def _rate(run) -> float:
  """Median patches per second of `run()` (which returns the patches it produced)."""
  run()
  rates = []
  for _ in range(_PASSES.value):
    start = time.perf_counter()
    count = run()
    rates.append(count / (time.perf_counter() - start))
  return statistics.median(rates)


def main(argv):
  del argv
  scene = data.load_scene(_SCENE.value)
  cube = data.fit_pca(scene.cube, _COMPONENTS.value).transform(scene.cube)
  split = data.make_split(scene.gt, "paper", seed=42, patch_size=_PATCH_SIZE.value)
  labels = data.labels_of(scene.gt, split.train, scene.class_ids)
  epoch = iter(range(10**6))

  def train_epoch() -> int:
    return sum(len(b["labels"]) for b in pipeline.train_batches(
        cube, split.train, labels, patch_size=_PATCH_SIZE.value, batch_size=_BATCH_SIZE.value,
        seed=0, epoch=next(epoch)))

  def eval_scene() -> int:
    return sum(int(b["valid"].sum()) for b in pipeline.eval_batches(
        cube, None, patch_size=_PATCH_SIZE.value, batch_size=_EVAL_BATCH_SIZE.value))

  shape = f"{_PATCH_SIZE.value}x{_PATCH_SIZE.value}x{_COMPONENTS.value}"
  print(f"{scene.name}: {len(split.train)} training pixels, {shape} patches")
  print(f"train_batches (batch {_BATCH_SIZE.value}, augmented): "
        f"{_rate(train_epoch):,.0f} patches/s")
  print(f"eval_batches (every pixel, batch {_EVAL_BATCH_SIZE.value}): "
        f"{_rate(eval_scene):,.0f} patches/s")


if __name__ == "__main__":
  app.run(main)
