"""Classification metrics of the paper, as plain functions of labels, predictions and features.

Also the multi-run summary (mean +- std per metric) in the paper's table format.
"""
from collections.abc import Mapping, Sequence
import math

import numpy as np
from scipy import spatial, stats
from sklearn import metrics as skm

# Headline scalars of `classification_metrics`, in the order the paper's tables list them.
SCALARS = ("overall_accuracy", "balanced_accuracy", "kappa", "mcc", "ari")


def classification_metrics(labels: np.ndarray, predictions: np.ndarray,
                           num_classes: int) -> dict:
  """OA, AA, kappa, MCC, ARI, per-class numbers and the confusion matrix.

  Args:
    labels: (N,) true zero-based class indices.
    predictions: (N,) predicted class indices.
    num_classes: the classes are 0 .. num_classes - 1 (absent ones included).

  Returns:
    A dict of plain Python numbers and lists (JSON-ready): the `SCALARS` as
    fractions, `per_class` with one list of `num_classes` values per key
    (precision, recall, f1, accuracy, support), and `confusion_matrix`
    (rows: true class, columns: predicted class). Per-class `accuracy` is the
    remote-sensing "class accuracy" (producer's accuracy, equal to recall), so
    that AA is its mean over the classes present; a number that is undefined
    (a class never predicted or never present) is None.
  """
  labels = np.asarray(labels)
  predictions = np.asarray(predictions)
  if labels.shape != predictions.shape or labels.ndim != 1:
    raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} "
                     "must be 1-D arrays of the same length")
  classes = np.arange(num_classes)
  precision, recall, f1, support = skm.precision_recall_fscore_support(
      labels, predictions, labels=classes, zero_division=np.nan)
  return {
      "overall_accuracy": float(skm.accuracy_score(labels, predictions)),
      "balanced_accuracy": float(skm.balanced_accuracy_score(labels, predictions)),
      "kappa": float(skm.cohen_kappa_score(labels, predictions, labels=classes)),
      "mcc": float(skm.matthews_corrcoef(labels, predictions)),
      "ari": float(skm.adjusted_rand_score(labels, predictions)),
      "per_class": {
          "precision": _json_list(precision),
          "recall": _json_list(recall),
          "f1": _json_list(f1),
          "accuracy": _json_list(recall),
          "support": [int(s) for s in support],
      },
      "confusion_matrix": skm.confusion_matrix(labels, predictions, labels=classes).tolist(),
  }


def average_precision(labels: np.ndarray, probabilities: np.ndarray) -> list:
  """One-vs-rest average precision (area under the PR curve) of each class.

  Args:
    labels: (N,) true class indices.
    probabilities: (N, num_classes) predicted class probabilities.

  Returns:
    num_classes floats; None for a class absent from `labels` (AP undefined).
  """
  labels = np.asarray(labels)
  return [float(skm.average_precision_score(labels == c, probabilities[:, c]))
          if np.any(labels == c) else None
          for c in range(probabilities.shape[1])]


def centroid_distance(features: np.ndarray, labels: np.ndarray) -> float:
  """Mean pairwise Euclidean distance between class centroids in feature space.

  The paper's measure of class separation in the learned embedding: larger
  means classes sit further apart. Only classes present in `labels` count.

  Args:
    features: (N, D) feature vectors.
    labels: (N,) class indices.
  """
  labels = np.asarray(labels)
  classes = np.unique(labels)
  if classes.size < 2:
    raise ValueError("centroid_distance needs at least two classes in labels, got "
                     f"{classes.tolist()}")
  centroids = np.stack([features[labels == c].mean(axis=0) for c in classes])
  return float(spatial.distance.pdist(centroids).mean())


def prediction_entropy(probabilities: np.ndarray) -> np.ndarray:
  """Shannon entropy (nats) of each predicted distribution, the uncertainty map's values.

  Args:
    probabilities: (..., num_classes), each row summing to one.

  Returns:
    (...) entropies in [0, log(num_classes)].
  """
  return stats.entropy(probabilities, axis=-1)


def summarize(runs: Sequence[Mapping]) -> dict:
  """Mean and standard deviation of each metric over repeated runs (seeds).

  Args:
    runs: `classification_metrics` dicts (optionally with `centroid_distance`),
      one per run.

  Returns:
    {metric: (mean, std)} for the `SCALARS`, `centroid_distance` when every run
    has it, and `class_accuracy/<k>` for each class k. The std is the sample
    standard deviation (ddof=1); 0.0 for a single run.
  """
  if not runs:
    raise ValueError("summarize needs at least one run")
  columns = {name: [run[name] for run in runs] for name in SCALARS}
  if all("centroid_distance" in run for run in runs):
    columns["centroid_distance"] = [run["centroid_distance"] for run in runs]
  for k in range(len(runs[0]["per_class"]["accuracy"])):
    columns[f"class_accuracy/{k}"] = [run["per_class"]["accuracy"][k] for run in runs]
  summary = {}
  for name, values in columns.items():
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    summary[name] = (float(np.mean(values)), std)
  return summary


def summary_table(summaries: Mapping[str, Mapping], class_names: Sequence[str]) -> str:
  """The paper's results table in Markdown: one row per class and metric, one column per method.

  Args:
    summaries: {method name: `summarize` output}.
    class_names: names of the classes, in class-index order.

  Returns:
    A Markdown table of "mean ± std" cells; accuracies, kappa, MCC and ARI in
    percent, the centroid distance in feature-space units.
  """
  methods = list(summaries)
  rows = [(name, f"class_accuracy/{k}") for k, name in enumerate(class_names)]
  rows += [("OA", "overall_accuracy"), ("AA", "balanced_accuracy"), ("Kappa", "kappa"),
           ("MCC", "mcc"), ("ARI", "ari")]
  if all("centroid_distance" in s for s in summaries.values()):
    rows.append(("Centroid distance", "centroid_distance"))
  lines = ["| Class / metric | " + " | ".join(methods) + " |",
           "| --- |" + " --- |" * len(methods)]
  for title, key in rows:
    scale = 1.0 if key == "centroid_distance" else 100.0
    cells = [_mean_std(*summaries[m][key], scale) for m in methods]
    lines.append(f"| {title} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _mean_std(mean: float, std: float, scale: float) -> str:
  if math.isnan(mean):
    return "n/a"
  return f"{mean * scale:.2f} ± {std * scale:.2f}"


def _json_list(values: np.ndarray) -> list:
  return [None if np.isnan(v) else float(v) for v in values]
