"""The authors' own training loop on Hong et al.'s fixed Indian Pines split (configs/ip_fixed.py's).

  TORCH_PYTHON benchmarks/authors_fixed_split.py --authors_script PATH/Indian_Pines_CLAReSNet.py \
      --seed 0 --out runs/authors_fixed/seed_0.jsonl
  python benchmarks/authors_fixed_split.py --summary runs/authors_fixed/seed_*.jsonl

Their HyperspectralDataset (with its augmentation), DataLoader (batch 16, shuffled),
CLAReSNet, AdamW (1e-4, weight decay 1e-2), CrossEntropyLoss, train_one_epoch and
evaluate, as their script's __main__ runs them, on the 695 training pixels of the
fixed maps with the maps' own labels (configs/ip_fixed.py's pixels and labels) and PCA
to 30 fitted on every pixel, for 40 epochs; the last epoch is tested on the 9,671
test pixels, which are also evaluated every --test_every epochs for the curves. Their
script seeds nothing; here --seed seeds torch and numpy (their augmentation draws
from numpy). Writes one JSON line per epoch, then the test metrics (OA, AA, kappa, per
class); --summary prints mean +- std over such files. benchmarks/authors_fixed_split.sh
runs several seeds.
"""
import argparse
import hashlib
import json
import pathlib
import time

import numpy as np

# The maps' class order -> the EHU label values, as claresnet_jax.data.fixed_splits registers it.
MAP_TO_EHU = {1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 8, 7: 10, 8: 11, 9: 12, 10: 13, 11: 14, 12: 15,
              13: 16, 14: 1, 15: 7, 16: 9}
MAPS = {"train": ("IndianTR123_temp123.tif",
                  "9f7cb2caea985577c11bbeea1086c9348aa067ab7e3825d2fa671508b4ae6684"),
        "test": ("IndianTE123_temp123.tif",
                 "f7a8e34026ce97a4a21918441f7b03dba0718f63ff2619d1a35dcaa33da24ad3")}


def fixed_split_samples(maps_dir: pathlib.Path) -> dict:
  """{'train', 'test'}: (N, 3) arrays of (row, col, EHU label), row-major, from the maps."""
  from PIL import Image  # pylint: disable=g-import-not-at-top  (matplotlib's dependency)

  lookup = np.zeros(17, np.int64)
  for own, ehu in MAP_TO_EHU.items():
    lookup[own] = ehu
  samples = {}
  for part, (name, sha256) in MAPS.items():
    path = maps_dir / name
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
      raise SystemExit(f"{path} is not the published map (sha256 differs)")
    labels = lookup[np.asarray(Image.open(path))]
    rows, cols = np.nonzero(labels)
    samples[part] = np.stack([rows, cols, labels[rows, cols]], axis=1)
  return samples


def metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 16) -> dict:
  """OA, AA, kappa and per-class accuracy (recall), labels 0-based."""
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (labels, predictions), 1)
  total = confusion.sum()
  overall = np.trace(confusion) / total
  per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
  expected = (confusion.sum(axis=0) @ confusion.sum(axis=1)) / total ** 2
  return {"overall_accuracy": float(overall), "balanced_accuracy": float(per_class.mean()),
          "kappa": float((overall - expected) / (1 - expected)),
          "per_class_accuracy": per_class.tolist()}


def train_and_test(args) -> None:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import authors_code  # pylint: disable=g-import-not-at-top

  module = authors_code.load_module(args.authors_script)
  torch.manual_seed(args.seed)
  np.random.seed(args.seed)
  _, _, reduced = authors_code.indian_pines(args.manual_dir)
  samples = {part: pd.DataFrame(s, columns=["row", "col", "label"])
             for part, s in fixed_split_samples(pathlib.Path(args.maps_dir)).items()}
  train_loader = torch.utils.data.DataLoader(
      module.HyperspectralDataset(reduced, samples["train"], 11, augment=True), batch_size=16,
      shuffle=True)
  test_loader = torch.utils.data.DataLoader(
      module.HyperspectralDataset(reduced, samples["test"], 11), batch_size=32, shuffle=False)
  config = module.ModelConfig(emb_dim=256, base_c=64, n_encoder_layers=3, dropout=0.5)
  model = module.CLAReSNet(n_classes=16, config=config)
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
  criterion = torch.nn.CrossEntropyLoss()
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  with out.open("w") as f:
    for epoch in range(1, args.epochs + 1):
      start = time.perf_counter()
      loss, accuracy = module.train_one_epoch(model, train_loader, optimizer, criterion, "cpu",
                                              desc=f"Epoch {epoch}/{args.epochs}")
      record = {"epoch": epoch, "train_loss": loss, "train_accuracy": accuracy / 100,
                "train_seconds": time.perf_counter() - start}
      if epoch % args.test_every == 0 or epoch == args.epochs:
        start = time.perf_counter()
        _, labels, predictions, test_loss = module.evaluate(model, test_loader, criterion, "cpu")
        record.update(test_loss=test_loss, test_seconds=time.perf_counter() - start,
                      **metrics(labels, predictions))
      f.write(json.dumps(record) + "\n")
      f.flush()
  print(json.dumps({"seed": args.seed, "torch": torch.__version__,
                    "threads": torch.get_num_threads(), **record}), flush=True)


def summary(paths: list[str]) -> None:
  """Mean +- std (n - 1) of each file's last epoch, in percent."""
  finals = []
  for path in paths:
    records = [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line]
    finals.append(records[-1])
  print(f"{len(finals)} runs, epochs {[r['epoch'] for r in finals]}")
  for key in ("overall_accuracy", "balanced_accuracy", "kappa"):
    values = 100 * np.array([r[key] for r in finals])
    print(f"{key}: {values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f} "
          f"({', '.join(f'{v:.2f}' for v in values)})")
  per_class = 100 * np.array([r["per_class_accuracy"] for r in finals])
  for k, (mean, std) in enumerate(zip(per_class.mean(0), per_class.std(0, ddof=1)
                                      if len(finals) > 1 else 0 * per_class[0])):
    print(f"class {k + 1}: {mean:.2f} ± {std:.2f}")


def argument_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--authors_script", help="Their Indian_Pines_CLAReSNet.py.")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--epochs", type=int, default=40)
  parser.add_argument("--test_every", type=int, default=5,
                      help="Epochs between test evaluations (and the last).")
  parser.add_argument("--manual_dir", default="../shared/data/indian_pines",
                      help="Folder with Indian_pines_corrected.npy and Indian_pines_gt.mat.")
  parser.add_argument("--maps_dir", default="../shared/data/indian_pines_fixed_split",
                      help="Folder with the fixed split's two maps.")
  parser.add_argument("--out", help="The JSON lines file to write.")
  parser.add_argument("--summary", nargs="+", metavar="JSONL",
                      help="Print mean +- std of these runs' last epochs instead.")
  return parser


def main():
  parser = argument_parser()
  args = parser.parse_args()
  if args.summary:
    summary(args.summary)
    return
  if not (args.authors_script and args.out):
    parser.error("training needs --authors_script and --out")
  train_and_test(args)


if __name__ == "__main__":
  main()
