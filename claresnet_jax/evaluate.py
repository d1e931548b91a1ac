"""Evaluation of a trained run: test metrics, full-scene maps, the paper's figures and report.md.

Restores the checkpoint that a run's protocol tests (`trained_runs.TrainedRun`) from a workdir
written by `train.train_and_evaluate`.
"""
import json
import pathlib

from absl import logging
import jax
import numpy as np
from sklearn import manifold

from claresnet_jax import checkpoints, data, metrics, plots, train, trained_runs

# t-SNE's cost grows faster than linearly; a random subset of this many test pixels shows
# the same class structure in seconds.
TSNE_MAX_POINTS = 3000
FIGURES = ("classification_map.png", "uncertainty_map.png", "tsne.png", "pr_curves.png",
           "confusion_matrix.png", "training_curves.png")


def evaluate(workdir: str | pathlib.Path) -> dict:
  """Evaluates the run in `workdir` (or each run_<i> in it) and writes its files there.

  Returns:
    The contents of metrics.json; for a workdir of several runs, the
    {metric: (mean, std)} summary also written to summary.json and summary.md.
  """
  workdir = pathlib.Path(workdir).absolute()
  runs = sorted(workdir.glob("run_*"), key=lambda p: int(p.name.split("_")[1]))
  if runs:
    return _evaluate_runs(workdir, runs)
  run = trained_runs.TrainedRun(workdir, with_dataset=True)
  config, dataset, meta = run.config, run.dataset, run.meta
  scene = dataset.scene
  test = run.predict(dataset.cube, dataset.split.test, with_features=True, desc="test pixels")
  everywhere = run.predict(dataset.cube, None, desc="every pixel")["probabilities"]
  labels = dataset.labels["test"]
  predictions = test["probabilities"].argmax(-1)
  results = {
      "scene": scene.name,
      "model": config.model.name,
      "split": config.split.protocol,
      "test_checkpoint": checkpoints.test_checkpoint(config),
      "checkpoint_epoch": meta["epoch"],
      "best_val_accuracy": (meta["best_val_accuracy"]
                            if checkpoints.test_checkpoint(config) == "best" else None),
      "num_test_pixels": int(len(labels)),
      "leakage": data.leakage(dataset.split, config.patch_size),
      **metrics.classification_metrics(labels, predictions, scene.num_classes),
      "centroid_distance": metrics.centroid_distance(test["features"], labels),
      "class_ids": [int(c) for c in scene.class_ids],
      "class_names": list(scene.class_names),
  }
  results["per_class"]["average_precision"] = metrics.average_precision(
      labels, test["probabilities"])
  if jax.process_index() == 0:
    prediction_map, entropy_map = scene_maps(scene.cube, everywhere)
    np.savez(workdir / "predictions.npz", pixels=dataset.split.test, labels=labels,
             predictions=predictions, probabilities=test["probabilities"],
             prediction_map=prediction_map, entropy_map=entropy_map)
    (workdir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    _draw_figures(workdir / "figures", config.seed, scene, test, labels, prediction_map,
                  entropy_map, results)
    _write_report(workdir, results)
  logging.info("%s test: OA %.4f, AA %.4f, kappa %.4f (%s checkpoint: epoch %d)", workdir,
               results["overall_accuracy"], results["balanced_accuracy"], results["kappa"],
               results["test_checkpoint"], meta["epoch"])
  return results


def scene_maps(cube: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(H, W) predicted class index and entropy of every pixel of the (H, W, bands) `cube`.

  Pixels without data (data.nodata_mask: NaN, Inf or all-zero spectra) were
  classified from the mean spectrum the PCA put there, which says nothing;
  they get class -1 and entropy NaN instead, as predict.py leaves them blank.
  """
  height, width = cube.shape[:2]
  missing = data.nodata_mask(cube)
  prediction_map = np.where(missing, -1, probabilities.argmax(-1).reshape(height, width))
  entropy_map = np.where(missing, np.nan,
                         metrics.prediction_entropy(probabilities).reshape(height, width))
  return prediction_map, entropy_map


def _draw_figures(folder, seed, scene, test, labels, prediction_map, entropy_map,
                  results) -> None:
  folder.mkdir(exist_ok=True)
  names = list(scene.class_names)
  truth = np.searchsorted(scene.class_ids, scene.gt)
  truth = np.where(scene.gt > 0, truth, -1)
  plots.classification_map(folder / "classification_map.png", prediction_map, truth, names)
  plots.uncertainty_map(folder / "uncertainty_map.png", entropy_map, scene.num_classes)
  rng = np.random.default_rng(seed)
  subset = np.sort(rng.permutation(len(labels))[:TSNE_MAX_POINTS])
  points = manifold.TSNE(2, init="pca", random_state=seed,
                         perplexity=min(30.0, len(subset) - 1.0)).fit_transform(
                             test["features"][subset])
  plots.tsne(folder / "tsne.png", points, labels[subset], names)
  plots.pr_curves(folder / "pr_curves.png", labels, test["probabilities"], names)
  plots.confusion_matrix(folder / "confusion_matrix.png", np.array(results["confusion_matrix"]),
                         names)
  plots.training_curves(folder / "training_curves.png",
                        train.read_history(folder.parent))


def _write_report(workdir: pathlib.Path, r: dict) -> None:
  pc = r["per_class"]
  lines = [
      f"# {r['model']} on {r['scene']} ({r['split']} split)", "",
      _tested_checkpoint(r) + f" Test pixels: {r['num_test_pixels']}; "
      f"{_percent(r['leakage'])}% of them have a patch overlapping a training pixel's patch "
      "(leakage).", "",
      "| OA | AA | Kappa | MCC | ARI | Centroid distance |",
      "| --- | --- | --- | --- | --- | --- |",
      "| " + " | ".join(_percent(r[k]) for k in metrics.SCALARS)
      + f" | {r['centroid_distance']:.3f} |", "",
      "Accuracies, kappa, MCC and ARI in percent.", "",
      "| Class | Precision | Recall (accuracy) | F1 | AP | Support |",
      "| --- | --- | --- | --- | --- | --- |",
  ]
  for k, name in enumerate(r["class_names"]):
    cells = [_percent(pc[key][k]) for key in ("precision", "recall", "f1", "average_precision")]
    lines.append(f"| {name} | " + " | ".join(cells) + f" | {pc['support'][k]} |")
  lines.append("")
  titles = {"classification_map.png": "Classification map (every pixel) and ground truth",
            "uncertainty_map.png": "Uncertainty (prediction entropy)",
            "tsne.png": "t-SNE of test embeddings",
            "pr_curves.png": "Precision-recall curves",
            "confusion_matrix.png": "Confusion matrix",
            "training_curves.png": "Training curves"}
  for name in FIGURES:
    lines += [f"## {titles[name]}", "", f"![{titles[name]}](figures/{name})", ""]
  (workdir / "report.md").write_text("\n".join(lines))


def _tested_checkpoint(r: dict) -> str:
  if r.get("test_checkpoint") == "last":
    return f"Tested checkpoint: the last, epoch {r['checkpoint_epoch']}."
  return (f"Best checkpoint: epoch {r['checkpoint_epoch']} (validation accuracy "
          f"{_percent(r['best_val_accuracy'])}%).")


def _percent(value: float | None) -> str:
  return "n/a" if value is None else f"{100 * value:.2f}"


def _evaluate_runs(workdir: pathlib.Path, runs: list[pathlib.Path]) -> dict:
  """Evaluates each seed's run, then writes the mean +- std table (summary.md, summary.json)."""
  results = [evaluate(run) for run in runs]
  summary = metrics.summarize(results)
  if jax.process_index() == 0:
    (workdir / "summary.json").write_text(json.dumps(
        {"runs": [r.name for r in runs],
         **{k: {"mean": m, "std": s} for k, (m, s) in summary.items()}}, indent=2) + "\n")
    table = metrics.summary_table({results[0]["model"]: summary}, results[0]["class_names"])
    (workdir / "summary.md").write_text(
        f"# {results[0]['model']} on {results[0]['scene']}: mean ± std over {len(runs)} runs\n\n"
        + table)
  return summary
