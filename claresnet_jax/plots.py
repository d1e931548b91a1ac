"""The paper's figures, drawn from numbers that evaluate.py computed.

Each function writes one PNG; nothing here runs a model.
"""
from collections.abc import Mapping, Sequence
import pathlib

from matplotlib import colormaps, patches
from matplotlib.figure import Figure
import numpy as np
from sklearn import metrics as skm

_DPI = 150


def class_colors(num_classes: int) -> np.ndarray:
  """(num_classes, 4) RGBA colours, the same class -> colour mapping in every figure."""
  cmap = colormaps["tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "turbo"]
  return cmap(np.linspace(0, 1, num_classes) if num_classes > 20 else np.arange(num_classes))


def classification_map(path: pathlib.Path, prediction: np.ndarray, ground_truth: np.ndarray,
                       class_names: Sequence[str]) -> None:
  """Ground truth and the predicted class of every pixel of the scene, side by side.

  Args:
    path: the PNG to write.
    prediction: (H, W) predicted class index of every pixel, -1 where there is no data
      (drawn black).
    ground_truth: (H, W) class index, -1 where unlabelled (drawn black).
    class_names: names in class-index order.
  """
  colors = class_colors(len(class_names))
  fig = Figure(figsize=(10, 5.5))
  for ax, image, title in zip(fig.subplots(1, 2), (ground_truth, prediction),
                              ("Ground truth (black: unlabelled)", "Prediction, every pixel")):
    _draw_classes(ax, image, colors, title)
  _legend(fig, colors, class_names)
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")


def class_map(path: pathlib.Path, classes: np.ndarray, class_names: Sequence[str],
              title: str) -> None:
  """One map of classes with a legend (predict.py's map of a scene).

  Args:
    path: the PNG to write.
    classes: (H, W) class index, -1 where there is no data (drawn black).
    class_names: names in class-index order.
    title: the figure's title.
  """
  colors = class_colors(len(class_names))
  height, width = classes.shape
  fig = Figure(figsize=(7, 7 * height / width + 1))
  _draw_classes(fig.subplots(), classes, colors, title)
  _legend(fig, colors, class_names)
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")


def _draw_classes(ax, classes: np.ndarray, colors: np.ndarray, title: str) -> None:
  """Each pixel in its class's colour, black where the index is negative.

  The image is RGBA bytes: an eighth of the memory of float colours for a large map.
  """
  palette = np.concatenate([np.round(colors * 255), [(0, 0, 0, 255)]]).astype(np.uint8)
  ax.imshow(palette[np.where(classes >= 0, classes, len(colors))], interpolation="nearest")
  ax.set_title(title)
  ax.set_axis_off()


def _legend(fig: Figure, colors: np.ndarray, class_names: Sequence[str]) -> None:
  handles = [patches.Patch(color=colors[k], label=name) for k, name in enumerate(class_names)]
  fig.legend(handles=handles, loc="lower center", ncol=min(len(class_names), 4), fontsize="small")
  fig.subplots_adjust(bottom=0.05 + 0.04 * -(-len(class_names) // 4))


def uncertainty_map(path: pathlib.Path, entropy: np.ndarray, num_classes: int) -> None:
  """Prediction entropy of every pixel: bright where the model is unsure.

  Args:
    path: the PNG to write.
    entropy: (H, W) entropy in nats, NaN where there is no data (left blank).
    num_classes: sets the colour scale's top, log(num_classes) (a uniform guess).
  """
  fig = Figure(figsize=(6, 5))
  ax = fig.subplots()
  image = ax.imshow(entropy, cmap="magma", vmin=0.0, vmax=np.log(num_classes),
                    interpolation="nearest")
  fig.colorbar(image, ax=ax, label="prediction entropy (nats)")
  ax.set_title("Uncertainty map")
  ax.set_axis_off()
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")


def tsne(path: pathlib.Path, points: np.ndarray, labels: np.ndarray,
         class_names: Sequence[str]) -> None:
  """t-SNE scatter of test embeddings, coloured by true class.

  Args:
    path: the PNG to write.
    points: (N, 2) t-SNE coordinates.
    labels: (N,) class indices.
    class_names: names in class-index order.
  """
  colors = class_colors(len(class_names))
  fig = Figure(figsize=(7, 6))
  ax = fig.subplots()
  for k, name in enumerate(class_names):
    mask = labels == k
    if mask.any():
      ax.scatter(points[mask, 0], points[mask, 1], s=4, color=colors[k], label=name)
  ax.legend(markerscale=3, fontsize="small", loc="best")
  ax.set_title("t-SNE of test embeddings")
  ax.set_xticks([])
  ax.set_yticks([])
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")


def pr_curves(path: pathlib.Path, labels: np.ndarray, probabilities: np.ndarray,
              class_names: Sequence[str]) -> None:
  """One-vs-rest precision-recall curve of each class present, with its AP in the legend.

  Args:
    path: the PNG to write.
    labels: (N,) true class indices.
    probabilities: (N, num_classes) predicted probabilities.
    class_names: names in class-index order.
  """
  colors = class_colors(len(class_names))
  fig = Figure(figsize=(7, 6))
  ax = fig.subplots()
  for k, name in enumerate(class_names):
    if np.any(labels == k):
      precision, recall, _ = skm.precision_recall_curve(labels == k, probabilities[:, k])
      ap = skm.average_precision_score(labels == k, probabilities[:, k])
      ax.step(recall, precision, where="post", color=colors[k], label=f"{name} (AP = {ap:.3f})")
  ax.set_xlabel("recall")
  ax.set_ylabel("precision")
  ax.set_xlim(0, 1.01)
  ax.set_ylim(0, 1.01)
  ax.legend(fontsize="small", loc="lower left")
  ax.set_title("Precision-recall per class (test)")
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")


def confusion_matrix(path: pathlib.Path, matrix: np.ndarray, class_names: Sequence[str]) -> None:
  """Confusion matrix normalised by true class (each row sums to one).

  Args:
    path: the PNG to write.
    matrix: (C, C) counts, rows true class, columns predicted.
    class_names: names in class-index order.
  """
  matrix = np.asarray(matrix, dtype=float)
  normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
  size = 4 + 0.45 * len(class_names)
  fig = Figure(figsize=(size, size))
  ax = fig.subplots()
  skm.ConfusionMatrixDisplay(normalized, display_labels=class_names).plot(
      ax=ax, values_format=".2f", colorbar=False, xticks_rotation="vertical")
  ax.set_title("Confusion matrix (row-normalised)")
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")


def training_curves(path: pathlib.Path, history: Sequence[Mapping[str, float]]) -> None:
  """Loss and accuracy per epoch: training, and validation or test where evaluated.

  Args:
    path: the PNG to write.
    history: one dict per epoch with `epoch`, `train_loss` and `train_accuracy`,
      and `val_*` or `test_*` on the epochs evaluated (the lines of metrics.jsonl).
  """
  fig = Figure(figsize=(11, 4))
  labels = {"train": "training", "val": "validation", "test": "test (not used to choose)"}
  for ax, quantity in zip(fig.subplots(1, 2), ("loss", "accuracy")):
    for part, label in labels.items():
      points = [(h["epoch"], h[f"{part}_{quantity}"]) for h in history
                if f"{part}_{quantity}" in h]
      if points:
        ax.plot(*zip(*points), marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(quantity)
    ax.grid(alpha=0.3)
    ax.legend()
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")
