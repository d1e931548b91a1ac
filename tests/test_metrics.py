"""Metrics against hand-computed values and against scikit-learn."""
import numpy as np
import pytest
from sklearn import metrics as skm

from claresnet_jax import metrics

# A 3-class confusion matrix (rows: true, columns: predicted) worked out by hand below.
HAND_CM = np.array([[5, 1, 0],
                    [2, 3, 1],
                    [0, 0, 4]])


def _labels_from_confusion(cm):
  true, pred = [], []
  for i, row in enumerate(cm):
    for j, count in enumerate(row):
      true += [i] * count
      pred += [j] * count
  return np.array(true), np.array(pred)


def test_hand_computed_confusion_matrix():
  labels, predictions = _labels_from_confusion(HAND_CM)
  m = metrics.classification_metrics(labels, predictions, num_classes=3)
  assert m["confusion_matrix"] == HAND_CM.tolist()
  # OA = 12/16; class accuracies 5/6, 3/6, 4/4.
  assert m["overall_accuracy"] == pytest.approx(0.75)
  assert m["balanced_accuracy"] == pytest.approx((5 / 6 + 3 / 6 + 1) / 3)
  assert m["per_class"]["accuracy"] == pytest.approx([5 / 6, 0.5, 1.0])
  # Column sums 7, 4, 5.
  assert m["per_class"]["precision"] == pytest.approx([5 / 7, 3 / 4, 4 / 5])
  assert m["per_class"]["f1"][0] == pytest.approx(10 / 13)
  assert m["per_class"]["support"] == [6, 6, 4]
  # Kappa: p_e = (6*7 + 6*4 + 4*5) / 16^2 = 86/256.
  assert m["kappa"] == pytest.approx((0.75 - 86 / 256) / (1 - 86 / 256))
  # MCC: (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)).
  assert m["mcc"] == pytest.approx((12 * 16 - 86) / np.sqrt((256 - 90) * (256 - 88)))
  # ARI: index 20 (pairs within cells), row pairs 36, column pairs 37, C(16, 2) = 120.
  expected = 36 * 37 / 120
  assert m["ari"] == pytest.approx((20 - expected) / ((36 + 37) / 2 - expected))


def test_agrees_with_sklearn_with_an_absent_class():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, size=300)  # class 4 of 5 never occurs
  predictions = np.where(rng.random(300) < 0.7, labels, rng.integers(0, 5, size=300))
  m = metrics.classification_metrics(labels, predictions, num_classes=5)
  assert m["overall_accuracy"] == pytest.approx(skm.accuracy_score(labels, predictions))
  assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, predictions))
  assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(labels, predictions))
  assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(labels, predictions))
  assert m["ari"] == pytest.approx(skm.adjusted_rand_score(labels, predictions))
  precision, recall, f1, _ = skm.precision_recall_fscore_support(
      labels, predictions, labels=range(4), zero_division=0)
  np.testing.assert_allclose(m["per_class"]["precision"][:4], precision)
  np.testing.assert_allclose(m["per_class"]["recall"][:4], recall)
  np.testing.assert_allclose(m["per_class"]["f1"][:4], f1)
  # AA is the mean of the class accuracies of the classes present.
  assert np.mean(m["per_class"]["accuracy"][:4]) == pytest.approx(m["balanced_accuracy"])
  # The absent class has no recall; it was predicted, so its precision is 0.
  assert m["per_class"]["accuracy"][4] is None
  assert m["per_class"]["precision"][4] == 0.0
  assert np.array(m["confusion_matrix"]).shape == (5, 5)


def test_average_precision_hand_computed_and_sklearn():
  labels = np.array([1, 0, 1, 0])
  probabilities = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
  ap = metrics.average_precision(labels, probabilities)
  # Class 1 ranked: hit (P=1 at R=.5), miss, hit (P=2/3 at R=1).
  assert ap[1] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
  assert ap[0] == pytest.approx(skm.average_precision_score(labels == 0, probabilities[:, 0]))
  assert metrics.average_precision(np.array([0, 0]), np.array([[0.6, 0.4], [0.7, 0.3]]))[1] is None


def test_centroid_distance_hand_computed():
  features = np.array([[0., 0.], [2., 0.], [1., 4.], [4., 1.], [4., -1.]])
  labels = np.array([0, 0, 1, 2, 2])
  # Centroids (1, 0), (1, 4), (4, 0): distances 4, 3, 5.
  assert metrics.centroid_distance(features, labels) == pytest.approx(4.0)
  with pytest.raises(ValueError, match="at least two classes"):
    metrics.centroid_distance(features[:2], labels[:2])


def test_prediction_entropy():
  probabilities = np.array([[0.25] * 4, [1.0, 0, 0, 0], [0.5, 0.5, 0, 0]])
  np.testing.assert_allclose(metrics.prediction_entropy(probabilities),
                             [np.log(4), 0.0, np.log(2)], atol=1e-12)


def test_summarize_and_table():
  labels, predictions = _labels_from_confusion(HAND_CM)
  run_a = metrics.classification_metrics(labels, predictions, num_classes=3)
  run_b = metrics.classification_metrics(labels, labels, num_classes=3)
  run_a["centroid_distance"], run_b["centroid_distance"] = 2.0, 4.0
  summary = metrics.summarize([run_a, run_b])
  assert summary["overall_accuracy"] == pytest.approx((0.875, np.std([0.75, 1.0], ddof=1)))
  assert summary["class_accuracy/1"] == pytest.approx((0.75, np.std([0.5, 1.0], ddof=1)))
  assert summary["centroid_distance"] == pytest.approx((3.0, np.sqrt(2.0)))
  assert metrics.summarize([run_b])["kappa"] == (1.0, 0.0)
  table = metrics.summary_table({"CLAReSNet": summary}, ["a", "b", "c"])
  lines = table.splitlines()
  assert lines[0] == "| Class / metric | CLAReSNet |"
  assert "| b | 75.00 ± 35.36 |" in lines
  assert "| OA | 87.50 ± 17.68 |" in lines
  assert "| Centroid distance | 3.00 ± 1.41 |" in lines
