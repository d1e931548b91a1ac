"""eval.py's whole-scene classification against `python -m claresnet_jax.bench --mode scene`
(same model, scene and batch), as a ratio from one run.

The paper's model (configs/ip.py) on Salinas-A (7,138 pixels) at its batch of 32: a run
trained for one epoch on 5 pixels a class (in a temporary folder), then every pixel
classified the way eval.py does (`TrainedRun.predict`, timed in this process) and by
`bench --mode scene` (its own process, an untrained model of the same config). One
compilation included in both, no persistent compilation cache.

  python benchmarks/eval_scene_rate.py
"""
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"  # this process's compilations too
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
# pylint: disable=wrong-import-position
from claresnet_jax import cli, trained_runs  # noqa: E402
from predict_rate import run  # noqa: E402  commands without the persistent cache

CONFIG = ["--config", "configs/ip.py", "--config.scene=salinas_a"]


def main():
  cli.keep_freed_memory()  # as every command of the project does: glibc keeps XLA's buffers
  cli.use_jax_settings()
  with tempfile.TemporaryDirectory() as workdir:
    run(["train.py", *CONFIG, f"--workdir={workdir}", "--config.num_epochs=1",
         "--config.split.protocol=per_class", "--config.split.options.train_per_class=5",
         "--config.split.options.val_per_class=5"])
    trained = trained_runs.TrainedRun(workdir, with_dataset=True)
    cube = trained.dataset.cube
    start = time.perf_counter()
    trained.predict(cube, None)
    eval_seconds = time.perf_counter() - start
  stdout = run(["-m", "claresnet_jax.bench", *CONFIG, "--mode", "scene", "--scene", "salinas_a",
                "--eval_batch_size", str(trained.config.eval_batch_size), "--json"]).stdout
  (bench,) = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
  print(json.dumps({"pixels": cube.shape[0] * cube.shape[1],
                    "eval_batch_size": trained.config.eval_batch_size,
                    "eval_seconds": eval_seconds, "bench_seconds": bench["seconds"],
                    "eval_over_bench": eval_seconds / bench["seconds"],
                    "device": bench["device"]}))


if __name__ == "__main__":
  main()
