"""Peak memory of predict.py on a large and a small synthetic scene, with a tiny untrained model.

Memory should grow with the tile, not with the scene. Each scene is a sparse .npy
file: a strip of random spectra (the same number of pixels in both scenes, so
the model's work is the same) and zeros elsewhere, which are no data, so the
large scene costs disk space and reading time only for its strip. Each run of
predict.py is a fresh process; its peak resident memory comes from wait4.

  python benchmarks/predict_memory.py [--large 4000] [--small 500] [--bands 200]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# pylint: disable=g-import-not-at-top,wrong-import-position
from claresnet_jax import checkpoints, data, steps, workdirs
from configs import salinas_a
# pylint: enable=g-import-not-at-top,wrong-import-position

VALID_PIXELS = 40_000  # of random spectra in each scene's strip
NUM_CLASSES = 6


def tiny_config():
  config = salinas_a.get_config()
  config.model.kwargs.update(emb_dim=16, base_channels=8, num_layers=1)
  config.pca.components, config.patch_size, config.eval_batch_size = 6, 5, 64
  return config


def make_run(workdir: pathlib.Path, config, bands: int) -> None:
  """A workdir predict.py accepts: `config`, a PCA of `bands` bands, an untrained checkpoint."""
  config = config.copy_and_resolve_references()
  config.scene = "synthetic"
  workdirs.claim_workdir(config, workdir)
  spectra = np.random.default_rng(0).normal(size=(1, 4096, bands))
  data.fit_pca(spectra, config.pca.components).save(workdir / "pca.npz")
  (workdir / "classes.json").write_text(json.dumps(
      {"class_ids": list(range(1, NUM_CLASSES + 1)),
       "class_names": [f"class {i}" for i in range(1, NUM_CLASSES + 1)]}))
  mesh = steps.make_mesh({"eval_batch_size": config.eval_batch_size})
  model = steps.create_model(config.model.name, NUM_CLASSES, **config.model.kwargs)
  state = steps.create_train_state(
      model, steps.make_optimizer(config),
      (config.patch_size, config.patch_size, config.pca.components), config.seed, mesh)
  manager = checkpoints.checkpoint_managers(workdir)["best"]
  checkpoints.save_variables(manager, state,
                             {"epoch": 1, "best_epoch": 1, "best_val_accuracy": 0.0})
  manager.wait_until_finished()
  manager.close()


def make_scene(path: pathlib.Path, side: int, bands: int) -> None:
  """A sparse side x side x bands float32 .npy: a strip of random rows, zeros (no data) after."""
  cube = np.lib.format.open_memmap(path, "w+", np.float32, (side, side, bands))
  rows = -(-VALID_PIXELS // side)
  rng = np.random.default_rng(1)
  for start in range(0, rows, 8):
    stop = min(rows, start + 8)
    cube[start:stop] = rng.normal(1000.0, 100.0, (stop - start, side, bands))
  cube.flush()
  del cube


def peak_rss(args: list[str]) -> tuple[int, float]:
  """Peak resident bytes and seconds of a command run as a child process."""
  start = time.perf_counter()
  child = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
  _, status, usage = os.wait4(child.pid, 0)
  seconds = time.perf_counter() - start
  if os.waitstatus_to_exitcode(status):
    raise RuntimeError(f"{' '.join(args)} failed:\n{child.stderr.read()[-3000:]}")
  return usage.ru_maxrss * 1024, seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  parser.add_argument("--large", type=int, default=4000, help="side of the large scene")
  parser.add_argument("--small", type=int, default=500, help="side of the small scene")
  parser.add_argument("--bands", type=int, default=200)
  parser.add_argument("--folder", type=pathlib.Path, default=None,
                      help="where the run and scenes go (default: a temporary folder)")
  options = parser.parse_args()
  folder = options.folder or pathlib.Path(tempfile.mkdtemp(prefix="predict_memory-"))
  make_run(folder / "run", tiny_config(), options.bands)
  peaks = {}
  for side in (options.small, options.large):
    scene = folder / f"scene_{side}.npy"
    make_scene(scene, side, options.bands)
    peak, seconds = peak_rss([sys.executable, "predict.py", f"--workdir={folder / 'run'}",
                              f"--scene={scene}", f"--output={folder / 'out'}", "--overwrite"])
    peaks[side] = peak
    print(json.dumps({"side": side, "bands": options.bands, "pixels": side * side,
                      "valid_pixels": VALID_PIXELS, "peak_rss_mib": peak / 2 ** 20,
                      "seconds": seconds}), flush=True)
    scene.unlink()
  print(json.dumps({"peak_rss_ratio": peaks[options.large] / peaks[options.small]}))


if __name__ == "__main__":
  main()
