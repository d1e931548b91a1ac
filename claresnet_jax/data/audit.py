"""Leakage audit: each split's sizes and share of test pixels whose patch overlaps training.

  python -m claresnet_jax.data.audit [--scene=salinas_a --patch_size=11 --seeds=0,1,2]
"""
from absl import app
from absl import flags

from claresnet_jax import data

_SCENE = flags.DEFINE_string("scene", "salinas_a", "Registered scene name or file path.")
_PATCH_SIZE = flags.DEFINE_integer("patch_size", 11, "Patch size P.")
_SEEDS = flags.DEFINE_list("seeds", ["42", "0", "1", "2"], "Split seeds.")
_PROTOCOLS = flags.DEFINE_list("protocols", ["paper", "disjoint"],
                               "Protocols that need no options beyond their defaults.")


def main(argv):
  del argv
  scene = data.load_scene(_SCENE.value)
  print(f"{scene.name}, patch_size={_PATCH_SIZE.value}")
  print(f"{'protocol':<10} {'seed':>5} {'train':>6} {'val':>5} {'test':>5} {'leakage':>8}")
  for protocol in _PROTOCOLS.value:
    for seed in map(int, _SEEDS.value):
      split = data.make_split(scene.gt, protocol, seed=seed, patch_size=_PATCH_SIZE.value)
      print(f"{protocol:<10} {seed:>5} {len(split.train):>6} {len(split.val):>5} "
            f"{len(split.test):>5} {data.leakage(split, _PATCH_SIZE.value):>8.3f}")


if __name__ == "__main__":
  app.run(main)
