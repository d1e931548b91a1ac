"""An epoch of configs/ip.py against the authors' own training code, on this machine.

  python benchmarks/epoch_side_by_side.py --side ours --steps 50
  TORCH_PYTHON benchmarks/epoch_side_by_side.py --side authors --steps 50 \
      --authors_script PATH/Indian_Pines_CLAReSNet.py

Each side times `--steps` training steps of its real loop (ours: train._train_epoch
on the first steps x 16 training pixels; the authors': their train_one_epoch on
their shuffled DataLoader, stopped after `--steps` batches), after one untimed
step, then its validation pass over the whole validation split; ours also times the
two checkpoint saves an improving epoch makes. The epoch estimate is
461 x step + validation (+ checkpoints): Indian Pines' paper split has 7,379
training pixels, 461 batches of 16. The authors' file runs as authors_code.py
loads it, on the same Indian Pines arrays (`--manual_dir`).
Prints one JSON line. benchmarks/epoch_side_by_side.sh alternates the two.
"""
import argparse
import itertools
import json
import pathlib
import sys
import time

STEPS_PER_EPOCH = 461  # 7,379 training pixels of the paper split // batch 16


def authors(args) -> dict:
  """Their train_one_epoch and evaluate, on their data pipeline, model and optimizer."""
  import torch  # pylint: disable=g-import-not-at-top
  from sklearn.model_selection import train_test_split  # pylint: disable=g-import-not-at-top
  import authors_code  # pylint: disable=g-import-not-at-top

  module = authors_code.load_module(args.authors_script)
  torch.manual_seed(0)
  _, gt, reduced = authors_code.indian_pines(args.manual_dir)
  samples = module.get_labeled_samples(gt)
  train_val, _ = train_test_split(samples, test_size=0.2, stratify=samples["label"],
                                  random_state=42)
  train, val = train_test_split(train_val, test_size=0.1, stratify=train_val["label"],
                                random_state=42)
  train_loader = torch.utils.data.DataLoader(
      module.HyperspectralDataset(reduced, train, 11, augment=True), batch_size=16,
      shuffle=True)
  val_loader = torch.utils.data.DataLoader(module.HyperspectralDataset(reduced, val, 11),
                                           batch_size=32, shuffle=False)
  config = module.ModelConfig(emb_dim=256, base_c=64, n_encoder_layers=3, dropout=0.5)
  model = module.CLAReSNet(n_classes=16, config=config)
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
  criterion = torch.nn.CrossEntropyLoss()

  class FirstBatches:
    """The loader, stopped after `count` batches (train_one_epoch reads .dataset and len)."""

    def __init__(self, loader, count):
      self.loader, self.count, self.dataset = loader, count, loader.dataset

    def __len__(self):
      return self.count

    def __iter__(self):
      return itertools.islice(iter(self.loader), self.count)

  module.train_one_epoch(model, FirstBatches(train_loader, 1), optimizer, criterion, "cpu")
  start = time.perf_counter()
  module.train_one_epoch(model, FirstBatches(train_loader, args.steps), optimizer, criterion,
                         "cpu")
  step = (time.perf_counter() - start) / args.steps
  start = time.perf_counter()
  module.evaluate(model, val_loader, criterion, "cpu")
  validation = time.perf_counter() - start
  return {"side": "authors", "torch": torch.__version__, "threads": torch.get_num_threads(),
          "steps": args.steps, "step_s": step, "validation_s": validation,
          "validation_pixels": len(val), "epoch_estimate_s": STEPS_PER_EPOCH * step + validation}


def ours(args) -> dict:
  """train._train_epoch, steps.predict_pixels and the checkpoint saves, as train.py runs them."""
  sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))
  from claresnet_jax import cli  # pylint: disable=g-import-not-at-top
  cli.keep_freed_memory()  # restarts the process: first, as in claresnet_jax.cli.run
  import dataclasses  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from claresnet_jax import checkpoints, data, steps, train, workdirs
  from configs import ip  # pylint: disable=g-import-not-at-top

  cli.use_jax_settings()
  config = ip.get_config()
  config.scene_options.manual_dir = args.manual_dir
  workdir = pathlib.Path(tempfile.mkdtemp())
  dataset = workdirs.prepare_dataset(config, workdir)
  mesh = steps.make_mesh({"batch_size": config.batch_size,
                          "eval_batch_size": config.eval_batch_size})
  model = steps.create_model(config.model.name, dataset.scene.num_classes,
                             **config.model.kwargs)
  state = steps.create_train_state(model, steps.make_optimizer(config),
                                   (11, 11, dataset.cube.shape[-1]), config.seed, mesh)
  weights = jax.device_put(np.ones(dataset.scene.num_classes, np.float32),
                           NamedSharding(mesh, P()))
  managers = checkpoints.checkpoint_managers(workdir)

  def first_steps(count):
    """The dataset with only the first `count` batches' worth of training pixels."""
    keep = count * config.batch_size
    split = data.Split(dataset.split.train[:keep], dataset.split.val, dataset.split.test)
    return dataclasses.replace(dataset, split=split,
                               labels=dict(dataset.labels, train=dataset.labels["train"][:keep]))

  rates = np.full(args.steps, config.optimizer.learning_rate, np.float32)
  train_epoch = train._train_epoch  # pylint: disable=protected-access
  state, _ = train_epoch(config, first_steps(1), mesh, state, weights, rates[:1], 1,
                         managers["latest"])
  start = time.perf_counter()
  state, _ = train_epoch(config, first_steps(args.steps), mesh, state, weights, rates, 2,
                         managers["latest"])
  jax.block_until_ready(state)
  step = (time.perf_counter() - start) / args.steps
  predict_fn = steps.jit_predict_step(model, mesh, with_features=False)
  steps.predict_pixels(steps.variables(state), predict_fn, mesh, dataset.cube,
                       dataset.split.val[:32], patch_size=11, batch_size=32)  # compiles
  start = time.perf_counter()
  steps.predict_pixels(steps.variables(state), predict_fn, mesh, dataset.cube, dataset.split.val,
                       patch_size=11, batch_size=32)
  validation = time.perf_counter() - start
  # An improving epoch: the variables to 'best' (in the background), the state to 'latest'.
  start = time.perf_counter()
  checkpoints.save_variables(managers["best"], state, {"epoch": 1})
  checkpoints.save_checkpoint(managers["latest"], state, {"epoch": 1})
  saves = [time.perf_counter() - start]
  managers["best"].wait_until_finished()
  return {"side": "ours", "jax": jax.__version__, "devices": len(mesh.devices.flat),
          "steps": args.steps, "step_s": step, "validation_s": validation,
          "validation_pixels": len(dataset.split.val), "checkpoints_s": sum(saves),
          "epoch_estimate_s": STEPS_PER_EPOCH * step + validation + sum(saves)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--side", choices=("ours", "authors"), required=True)
  parser.add_argument("--steps", type=int, default=50, help="Timed training steps.")
  parser.add_argument("--manual_dir", default="../shared/data/indian_pines",
                      help="Folder with Indian_pines_corrected.npy and Indian_pines_gt.mat.")
  parser.add_argument("--authors_script", help="--side authors: their Indian_Pines_CLAReSNet.py")
  args = parser.parse_args()
  if args.side == "authors" and not args.authors_script:
    parser.error("--side authors needs --authors_script")
  print(json.dumps((ours if args.side == "ours" else authors)(args)), flush=True)


if __name__ == "__main__":
  main()
