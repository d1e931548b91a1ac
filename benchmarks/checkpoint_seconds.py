"""Seconds an improving epoch holds the training loop to save checkpoints, for the paper's
model (configs/ip.py: 17.3M parameters, 208 MB of state with AdamW's moments).

  python benchmarks/checkpoint_seconds.py [--epochs 3] [--gap 20]

Each of `--epochs` improving epochs saves as train.py does (the variables to 'best' in the
background, the whole state to 'latest'), then waits `--gap` seconds as if training the next
epoch; beside it, the same epochs saved the way releases before the variables-only best
checkpoint did (the whole state to both, synchronously). Prints one JSON line per way with
the median blocking seconds; the checkpoints go to a temporary folder on the same disk as
the current directory.
"""
import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

import jax
import orbax.checkpoint as ocp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from claresnet_jax import checkpoints, cli, steps  # noqa: E402
from configs import ip  # noqa: E402


def whole_state_twice(folder: pathlib.Path) -> dict[str, ocp.CheckpointManager]:
  options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
  return {name: ocp.CheckpointManager(folder / name, options=options,
                                      item_names=("state", "meta"))
          for name in ("best", "latest")}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--gap", type=float, default=20.0)
  args = parser.parse_args()
  cli.keep_freed_memory()  # as train.py does
  cli.use_jax_settings()
  config = ip.get_config()
  model = steps.create_model(config.model.name, 16, **config.model.kwargs)
  mesh = steps.make_mesh({})
  state = steps.create_train_state(model, steps.make_optimizer(config), (11, 11, 30), 0, mesh)
  size = sum(x.nbytes for x in jax.tree.leaves(state))
  with tempfile.TemporaryDirectory(dir=".") as tmp:
    # Each way: its managers, and how it saves the best checkpoint.
    ways = {"train.py": (checkpoints.checkpoint_managers, checkpoints.save_variables),
            "whole state twice": (whole_state_twice, checkpoints.save_checkpoint)}
    for way, (make_managers, save_best) in ways.items():
      managers = make_managers(
          pathlib.Path(tmp).absolute() / way.replace(" ", "_").replace(".", "_"))
      seconds = []
      for epoch in range(1, args.epochs + 1):
        meta = {"epoch": epoch, "best_epoch": epoch, "best_val_accuracy": epoch / 10}
        start = time.perf_counter()
        save_best(managers["best"], state, meta)
        checkpoints.save_checkpoint(managers["latest"], state, meta)
        seconds.append(time.perf_counter() - start)
        time.sleep(args.gap)
      for manager in managers.values():
        manager.wait_until_finished()
        manager.close()
      print(json.dumps({"way": way, "state_bytes": size, "epochs": args.epochs,
                        "median_blocking_seconds": statistics.median(seconds),
                        "blocking_seconds": seconds}), flush=True)


if __name__ == "__main__":
  main()
