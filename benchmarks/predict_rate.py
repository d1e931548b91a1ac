"""predict.py's pixel rate against `python -m claresnet_jax.bench --mode scene` (same model, batch).

Both classify every pixel of a side x side scene with an untrained model of the
config (default: the paper's CLAReSNet, configs/ip.py) at its eval_batch_size,
one compilation included (both without the persistent compilation cache);
predict.py also reads the scene from a .npy file, projects it with a PCA and
writes its rasters and PNG. --tiny uses predict_memory.py's tiny model instead:
the worst case for predict.py's own share of the time.

  python benchmarks/predict_rate.py [--config configs/ip.py | --tiny] [--side 100] [--bands 200]
"""
import argparse
import importlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import predict_memory  # pylint: disable=g-import-not-at-top,wrong-import-position


def run(args: list[str]) -> subprocess.CompletedProcess:
  result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false"))
  if result.returncode:
    raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  parser.add_argument("--config", default="configs/ip.py", help="a config file of configs/")
  parser.add_argument("--tiny", action="store_true", help="the tiny model of predict_memory.py")
  parser.add_argument("--side", type=int, default=100)
  parser.add_argument("--bands", type=int, default=200)
  options = parser.parse_args()
  module = "configs." + pathlib.Path(options.config).stem  # predict_memory put REPO on sys.path
  config = importlib.import_module(module).get_config()
  overrides = []
  if options.tiny:
    config = predict_memory.tiny_config()
    options.config = "configs/salinas_a.py"
    overrides = [f"--config.model.kwargs.{k}={v}" for k, v in config.model.kwargs.items()] + [
        f"--config.patch_size={config.patch_size}"]
  folder = pathlib.Path(tempfile.mkdtemp(prefix="predict_rate-"))
  predict_memory.make_run(folder / "run", config, options.bands)
  scene = np.random.default_rng(0).normal(1000.0, 100.0, (options.side, options.side,
                                                          options.bands))
  np.save(folder / "scene.npy", scene.astype(np.float32))
  predict = run(["predict.py", f"--workdir={folder / 'run'}", f"--scene={folder / 'scene.npy'}",
             f"--output={folder / 'out'}"])
  predict_rate = float(re.search(r"([\d.]+) pixels/s", predict.stderr).group(1))
  bench = run(["-m", "claresnet_jax.bench", f"--config={REPO / options.config}", "--mode=scene",
               f"--scene={options.side}x{options.side}",
               f"--eval_batch_size={config.eval_batch_size}", f"--bands={config.pca.components}",
               "--json", *overrides])
  bench_rate = json.loads(bench.stdout.strip().splitlines()[-1])["pixels_per_s"]
  print(json.dumps({"config": "tiny" if options.tiny else options.config, "side": options.side,
                    "bands": options.bands,
                    "eval_batch_size": config.eval_batch_size, "predict_pixels_per_s": predict_rate,
                    "bench_pixels_per_s": bench_rate, "ratio": predict_rate / bench_rate}))


if __name__ == "__main__":
  main()
