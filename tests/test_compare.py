"""The comparison command: early failures, then a small comparison end to end."""
import json

import numpy as np
import pytest

from claresnet_jax import compare
from configs import compare_salinas_a



@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
  """A 24x24x16 scene of three classes in bands of rows, each with its own spectrum."""
  rng = np.random.default_rng(0)
  gt = np.repeat(np.array([1, 2, 3]), 8)[:, None] * np.ones((1, 24), np.int32)
  means = rng.normal(scale=3.0, size=(4, 16))
  cube = means[gt] + rng.normal(size=(24, 24, 16))
  path = tmp_path_factory.mktemp("scene") / "stripes.npz"
  np.savez(path, cube=cube.astype(np.float32), gt=gt.astype(np.int32))
  return path


@pytest.fixture
def config(scene_file):
  config = compare_salinas_a.get_config()
  config.scene = str(scene_file)
  config.scene_options.update(dict(cube_key="cube", gt_key="gt"))
  config.pca.components = 13
  config.patch_size = 9
  config.eval_batch_size = 64
  config.compare.spectralformer.kwargs.update(dict(dim=16, depth=3, heads=2, dim_head=8))
  config.compare.spectralformer.train.update(dict(num_epochs=1, patience=1))
  return config


def test_unknown_model_fails_before_anything_runs(config, tmp_path):
  with pytest.raises(ValueError, match=r"unknown model\(s\) resnet; available: claresnet, "
                     r"hybridsn, rf, spectralformer, ssrn, svm, svm_patches, xgboost"):
    compare.compare(config, ["rf", "resnet"], 1, tmp_path / "out")
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("setting, value, needed", [
    ("patch_size", 7, "patch_size >= 9"),
    ("pca.components", 12, "bands >= 13"),
])
def test_input_a_model_cannot_take_fails_before_anything_runs(config, tmp_path, setting, value,
                                                               needed):
  config.update_from_flattened_dict({setting: value})
  with pytest.raises(ValueError, match=f"HybridSN needs .*{needed}"):
    compare.compare(config, ["rf", "hybridsn"], 1, tmp_path / "out")
  assert not (tmp_path / "out").exists()


def test_a_misspelt_training_setting_fails_before_anything_runs(config, tmp_path):
  config.compare.ssrn.train.num_epoch = 3
  with pytest.raises(KeyError, match="num_epoch"):
    compare.compare(config, ["rf", "ssrn"], 1, tmp_path / "out")
  assert not (tmp_path / "out").exists()


def test_bfloat16_with_a_float32_baseline_fails_before_anything_runs(config, tmp_path):
  config.model.kwargs.dtype = "bfloat16"
  with pytest.raises(ValueError, match=r"hybridsn computes in float32 only: with "
                     r"config.model.kwargs.dtype='bfloat16'.*compare in float32"):
    compare.compare(config, ["rf", "claresnet", "hybridsn"], 1, tmp_path / "out")
  assert not (tmp_path / "out").exists()


def test_comparison_end_to_end(config, tmp_path):
  names = ["rf", "svm_patches", "spectralformer"]
  compare.compare(config, names, 2, tmp_path)
  result = json.loads((tmp_path / "comparison.json").read_text())
  assert list(result["models"]) == names and result["seeds"] == [42, 43]

  for name in names:
    entry = result["models"][name]
    accuracies = [run["overall_accuracy"] for run in entry["runs"]]
    assert len(accuracies) == 2
    assert entry["metrics"]["overall_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert entry["metrics"]["overall_accuracy"]["std"] == pytest.approx(
        np.std(accuracies, ddof=1))
    for metric in ("balanced_accuracy", "kappa", "mcc", "ari"):
      assert set(entry["metrics"][metric]) == {"mean", "std"}
  assert result["models"]["rf"]["metrics"]["overall_accuracy"]["mean"] > 0.9
  assert result["models"]["rf"]["metrics"]["centroid_distance"]["mean"] is None
  assert result["models"]["spectralformer"]["metrics"]["centroid_distance"]["mean"] > 0
  assert result["models"]["rf"]["parameters"] is None
  assert result["models"]["spectralformer"]["parameters"] > 0

  # Every model of a seed saw the same split; the seeds' splits differ.
  splits = {(name, seed): np.load(tmp_path / name / f"seed_{seed}" / "split.npz")["test"]
            for name in names for seed in (42, 43)}
  for name in names[1:]:
    for seed in (42, 43):
      np.testing.assert_array_equal(splits[name, seed], splits["rf", seed])
  assert not np.array_equal(splits["rf", 42], splits["rf", 43])

  table = (tmp_path / "comparison.md").read_text()
  assert "2 seeds (42, 43)" in table and "spectralformer 1 epoch of batch 64" in table
  assert "| Class / metric | rf | svm_patches | spectralformer |" in table
  centroid_row = next(line for line in table.splitlines() if line.startswith("| Centroid"))
  assert centroid_row.count("n/a") == 2
  assert (f"Parameters: spectralformer "
          f"{result['models']['spectralformer']['parameters']:,}.") in table


def test_caption_states_each_deep_models_training(config, scene_file):
  from claresnet_jax import data  # pylint: disable=g-import-not-at-top
  scene = data.load_scene(scene_file, cube_key="cube", gt_key="gt")
  text = compare.caption(config, ["rf", "svm_patches", "spectralformer", "claresnet"],
                         [42, 43, 44], scene)
  assert "(42, 43, 44). rf on the centre pixel's spectrum. svm_patches on the patch. " in text
  assert "spectralformer 1 epoch of batch 64" in text
  claresnet = config.compare.claresnet.train
  assert (f"claresnet at most {claresnet.num_epochs} epochs (stopping after "
          f"{claresnet.patience} without a better validation accuracy) of batch 32") in text
  assert "rf" not in text.split("Training:")[1] and "3 seeds (42, 43, 44)" in text
  last = config.copy_and_resolve_references()
  last.test_checkpoint = "last"
  text = compare.caption(last, ["claresnet"], [42], scene)
  assert f"claresnet {claresnet.num_epochs} epochs of batch 32, the last tested." in text
  # A model given its own input says so.
  config.compare.rf.train = dict(pca=dict(components=0, standardize=True, fit_on="train"))
  text = compare.caption(config, ["rf", "svm", "hybridsn"], [42], scene)
  assert text.startswith("stripes, paper split, 9x9 patches of 13 PCA components, standardised "
                         "(fitted on all pixels); ")
  assert ("rf, svm on the centre pixel's spectrum. rf on the bands, standardised (fitted on "
          "train pixels). Training: hybridsn") in text
  # HybridSN keeps its whitened components where the experiment's are not scaled.
  config.pca.standardize = False
  text = compare.caption(config, ["hybridsn", "ssrn"], [42], scene)
  assert text.startswith("stripes, paper split, 9x9 patches of 13 PCA components (fitted on all "
                         "pixels); ")
  assert ("hybridsn on 9x9 patches of 13 PCA components, standardised (fitted on all "
          "pixels). Training: hybridsn") in text and "ssrn on" not in text
