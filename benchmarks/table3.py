"""Table III from benchmarks/table3.sh's runs, beside the paper's: OUT/table3.md and .json.

Reads every finished run under OUT: CLAReSNet's seeds (claresnet/seed_*/metrics.json,
written by eval.py) and the comparison's (baselines/<model>/<model>/seed_*/test_metrics.json,
written by compare as each run ends), so that table3.sh rewrites the table after each result
and a run cut short still shows what it finished.

  python benchmarks/table3.py OUT
"""
import json
import os
import pathlib
import statistics
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from claresnet_jax import metrics, train  # pylint: disable=wrong-import-position

# Table III of the paper (Indian Pines): mean and std of OA, BA (our AA) and kappa, in percent.
PAPER = {
    "rf": ((88.45, 0.52), (87.12, 0.61), (86.51, 0.78)),
    "xgboost": ((92.18, 0.41), (91.05, 0.49), (90.87, 0.55)),
    "hybridsn": ((96.53, 0.28), (95.88, 0.34), (95.90, 0.44)),
    "ssrn": ((97.01, 0.25), (96.40, 0.30), (96.51, 0.30)),
    "spectralformer": ((73.22, 2.21), (59.37, 3.38), (69.08, 0.13)),
    "claresnet": ((99.71, 0.11), (99.78, 0.07), (99.67, 0.12)),
}
COLUMNS = ("overall_accuracy", "balanced_accuracy", "kappa")


def finished_runs(out: pathlib.Path) -> dict[str, list[pathlib.Path]]:
  """{row name: metrics files of its finished seeds}, CLAReSNet's paper protocol first."""
  rows = {"claresnet": sorted(out.glob("claresnet/seed_*/metrics.json"))}
  for path in sorted(out.glob("baselines/*/*/seed_*/test_metrics.json")):
    name = path.parent.parent.name
    rows.setdefault(name if name != "claresnet" else "claresnet (compare)", []).append(path)
  return {name: paths for name, paths in rows.items() if paths}


def training(seed_dir: pathlib.Path, result: dict) -> dict:
  """A CLAReSNet seed's epochs trained (fewer than asked if TRAIN_SECONDS stopped it), its
  best epoch, and the median seconds of its epochs after the first (which compiles)."""
  records = train.read_history(seed_dir)
  later = [r["epoch_seconds"] for r in records[1:]]
  return {"epochs": len(records), "best_epoch": result["checkpoint_epoch"],
          "epoch_seconds": statistics.median(later) if later else None}


def table(out: pathlib.Path) -> dict:
  """table3.json's contents: per row, each seed's metrics and their mean and std."""
  rows = {}
  for name, paths in finished_runs(out).items():
    runs = [json.loads(p.read_text()) for p in paths]
    summary = metrics.summarize(runs)
    rows[name] = {
        "seeds": [{"run": p.parent.name, **{k: r[k] for k in COLUMNS},
                   **(training(p.parent, r) if name == "claresnet" else {})}
                  for p, r in zip(paths, runs)],
        **{k: {"mean": summary[k][0], "std": summary[k][1]} for k in COLUMNS},
    }
  return rows


def markdown(rows: dict) -> str:
  lines = ["# Table III (Indian Pines): ours beside the paper's", "",
           "OA, AA (the paper's BA) and kappa in percent, mean ± std over the seeds finished "
           "(n); paper: its Table III. claresnet: train.py + eval.py on configs/ip.py (the "
           "paper's protocol unless EPOCHS or EXTRA changed it; each seed's epochs below); the "
           "others: compare on configs/compare_ip.py, whose baselines/<model>/comparison.md "
           "states each one's training.", "",
           "| Model | n | OA | OA (paper) | AA | AA (paper) | Kappa | Kappa (paper) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for name, row in rows.items():
    paper = PAPER.get(name.split()[0])
    cells = []
    for k, key in enumerate(COLUMNS):
      cells.append(f"{100 * row[key]['mean']:.2f} ± {100 * row[key]['std']:.2f}")
      cells.append(f"{paper[k][0]:.2f} ± {paper[k][1]:.2f}" if paper else "n/a")
    lines.append(f"| {name} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
  lines += ["", "Each seed's OA (%):", ""]
  for name, row in rows.items():
    seeds = ", ".join(f"{s['run']} {100 * s['overall_accuracy']:.2f}" + _training(s)
                      for s in row["seeds"])
    lines.append(f"- {name}: {seeds}")
  return "\n".join(lines) + "\n"


def _training(seed: dict) -> str:
  if "epochs" not in seed:
    return ""
  timed = "" if seed["epoch_seconds"] is None else f", {seed['epoch_seconds']:.1f} s per epoch"
  epochs = f"{seed['epochs']} epoch{'s' * (seed['epochs'] != 1)}"
  return f" ({epochs}, best {seed['best_epoch']}{timed})"


def write(out: pathlib.Path) -> None:
  """Writes table3.json and table3.md, each replaced whole (seeds finish concurrently)."""
  rows = table(out)
  for name, text in (("table3.json", json.dumps(rows, indent=2) + "\n"),
                     ("table3.md", markdown(rows))):
    partial = out / f".{name}.{os.getpid()}"
    partial.write_text(text)
    partial.replace(out / name)


if __name__ == "__main__":
  if len(sys.argv) != 2 or not pathlib.Path(sys.argv[1]).is_dir():
    sys.exit(f"usage: python {sys.argv[0]} OUT (an existing folder of table3.sh's runs)")
  write(pathlib.Path(sys.argv[1]))
