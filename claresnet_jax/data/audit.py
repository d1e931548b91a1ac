"""Leakage audit: each split's sizes and share of test pixels whose patch overlaps training.

With --per_class, each class's pixels per part and training share, the smallest one named.

  python -m claresnet_jax.data.audit [--scene=salinas_a --patch_size=11 --seeds=0,1,2]
  python -m claresnet_jax.data.audit --scene=salinas --gt=Salinas_gt.mat --per_class
"""
from absl import app
from absl import flags
import numpy as np

from claresnet_jax import data

_SCENE = flags.DEFINE_string("scene", "salinas_a", "Registered scene name or file path.")
_GT = flags.DEFINE_string(
    "gt", None, "The registered scene's ground-truth file (.mat or .npy): audit its verified "
    "labels alone, where the cube is not at hand.")
_EXCLUDE = flags.DEFINE_list("exclude", [], "Label values left out (config.exclude_classes).")
_PATCH_SIZE = flags.DEFINE_integer("patch_size", 11, "Patch size P.")
_SEEDS = flags.DEFINE_list("seeds", ["42", "0", "1", "2"], "Split seeds.")
_PROTOCOLS = flags.DEFINE_list("protocols", ["paper", "disjoint"],
                               "Protocols that need no options beyond their defaults.")
_PER_CLASS = flags.DEFINE_bool(
    "per_class", False, "Also print each split's pixels and training share per class, as a "
    "Markdown table, and the class with the smallest share.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if _GT.value is None:
    scene = data.load_scene(_SCENE.value)
  else:
    scene = data.ground_truth_scene(_SCENE.value, _GT.value)
  scene = scene.without_classes([int(v) for v in _EXCLUDE.value])
  print(f"{scene.name}, patch_size={_PATCH_SIZE.value}, {scene.num_classes} classes")
  print(f"{'protocol':<10} {'seed':>5} {'train':>6} {'val':>5} {'test':>5} {'leakage':>8}")
  tables = []
  for protocol in _PROTOCOLS.value:
    for seed in map(int, _SEEDS.value):
      split = data.make_split(scene.gt, protocol, seed=seed, patch_size=_PATCH_SIZE.value)
      leakage = data.leakage(split, _PATCH_SIZE.value)
      print(f"{protocol:<10} {seed:>5} {len(split.train):>6} {len(split.val):>5} "
            f"{len(split.test):>5} {leakage:>8.3f}")
      if _PER_CLASS.value:
        tables.append(_per_class_table(scene, split, f"{protocol}, seed {seed}, leakage "
                                       f"{leakage:.3f}"))
  for table in tables:
    print(f"\n{table}")


def _per_class_table(scene: data.Scene, split: data.Split, title: str) -> str:
  """Pixels per class and part, and each class's training share (its pixels kept for training)."""
  parts = [np.bincount(data.labels_of(scene.gt, getattr(split, part), scene.class_ids),
                       minlength=scene.num_classes) for part in ("train", "val", "test")]
  sizes = np.bincount(data.labels_of(scene.gt, np.argwhere(scene.gt > 0), scene.class_ids),
                      minlength=scene.num_classes)
  shares = parts[0] / sizes
  low = int(np.argmin(shares))
  lines = [f"{title}; smallest training share: {scene.class_ids[low]} {scene.class_names[low]}, "
           f"{parts[0][low]:,} of {sizes[low]:,} pixels ({shares[low]:.1%}):", "",
           "| class | name | train | train share | val | test |",
           "| --- | --- | --- | --- | --- | --- |"]
  for k, (value, name) in enumerate(zip(scene.class_ids.tolist(), scene.class_names)):
    lines.append(f"| {value} | {name} | {parts[0][k]:,} | {shares[k]:.1%} | {parts[1][k]:,} | "
                 f"{parts[2][k]:,} |")
  lines.append(f"| | total | {len(split.train):,} | {len(split.train) / sizes.sum():.1%} | "
               f"{len(split.val):,} | {len(split.test):,} |")
  return "\n".join(lines)


if __name__ == "__main__":
  app.run(main)
