"""The training loop and evaluation end to end on Salinas-A with a tiny CLAReSNet.

One run goes through the real entry points (train.py, eval.py); resume, NaN,
full-disk and config checks run in-process. Compiled programs are shared
between the test processes through a persistent compilation cache.
"""
import errno
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from orbax.checkpoint._src.checkpointers import checkpointer
import pytest
import rasterio
import tensorflow as tf

from claresnet_jax import checkpoints, data, evaluate, models, steps, train, trained_runs
from claresnet_jax import workdirs

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_script(args, env_extra):
  env = dict(os.environ, **env_extra)
  return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=900)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_config_file, compile_cache):
  """python train.py ... && python eval.py ..., two epochs of the tiny config."""
  workdir = tmp_path_factory.mktemp("run") / "salinas_a"
  for args in (["train.py", f"--config={tiny_config_file}", f"--workdir={workdir}"],
               ["eval.py", f"--workdir={workdir}"]):
    result = run_script(args, compile_cache)
    assert result.returncode == 0, result.stderr[-5000:]
  return workdir


def test_end_to_end_metrics_figures_and_report(trained_run):
  m = json.loads((trained_run / "metrics.json").read_text())
  for key in ("overall_accuracy", "balanced_accuracy", "kappa", "mcc", "ari"):
    assert isinstance(m[key], float) and -1.0 <= m[key] <= 1.0, key
  assert 0.0 <= m["overall_accuracy"] <= 1.0 and 0.0 <= m["balanced_accuracy"] <= 1.0
  assert m["centroid_distance"] > 0.0
  assert m["class_ids"] == [1, 10, 11, 12, 13, 14]
  confusion = np.array(m["confusion_matrix"])
  assert confusion.shape == (6, 6) and confusion.sum() == m["num_test_pixels"]
  assert m["per_class"]["support"] == confusion.sum(axis=1).tolist()
  assert np.trace(confusion) / confusion.sum() == pytest.approx(m["overall_accuracy"])
  for key in ("precision", "recall", "f1", "accuracy", "average_precision"):
    assert len(m["per_class"][key]) == 6
  # Above chance: better than always answering the largest test class.
  assert m["overall_accuracy"] > confusion.sum(axis=1).max() / confusion.sum() + 0.05
  assert m["checkpoint_epoch"] in (1, 2)

  history = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
  assert [h["epoch"] for h in history] == [1, 2]
  assert m["best_val_accuracy"] == max(h["val_accuracy"] for h in history)
  events = [tf.compat.v1.Event.FromString(record.numpy()) for path in
            (trained_run / "tensorboard").glob("events.out.tfevents.*")
            for record in tf.data.TFRecordDataset(str(path))]
  logged = {(v.tag, e.step) for e in events for v in e.summary.value}
  assert {("val_accuracy", 1), ("val_accuracy", 2), ("train_loss", 2)} <= logged
  config = json.loads((trained_run / "config.json").read_text())
  assert config["num_epochs"] == 2 and config["model"]["kwargs"]["emb_dim"] == 16
  report = (trained_run / "report.md").read_text()
  for name in evaluate.FIGURES:
    png = (trained_run / "figures" / name).read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000, name
    assert f"](figures/{name})" in report
  with np.load(trained_run / "predictions.npz") as p:
    assert p["prediction_map"].shape == p["entropy_map"].shape == (83, 86)
    assert ((p["entropy_map"] >= 0) & (p["entropy_map"] <= np.log(6) + 1e-6)).all()


def test_maps_leave_pixels_without_data_blank():
  rng = np.random.default_rng(0)
  cube = rng.normal(size=(4, 5, 3)).astype(np.float32)
  cube[1, 2, 0], cube[3, 4] = np.nan, 0.0
  probabilities = rng.dirichlet(np.ones(6), size=20).astype(np.float32)
  classes, entropy = evaluate.scene_maps(cube, probabilities)
  missing = np.zeros((4, 5), bool)
  missing[1, 2] = missing[3, 4] = True
  np.testing.assert_array_equal(classes[missing], [-1, -1])
  assert np.isnan(entropy[missing]).all() and np.isfinite(entropy[~missing]).all()
  np.testing.assert_array_equal(classes[~missing], probabilities.argmax(-1)[~missing.ravel()])


def test_best_checkpoint_reproduces_reported_predictions(trained_run):
  config = workdirs.load_config(trained_run)
  scene = data.load_scene("salinas_a")
  cube = data.PCA.load(trained_run / "pca.npz").transform(scene.cube)
  with np.load(trained_run / "predictions.npz") as p:
    pixels, predictions, probabilities = p["pixels"], p["predictions"], p["probabilities"]
  # Patches cut here with numpy, independently of the input pipeline.
  pad = config.patch_size // 2
  padded = np.pad(cube, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
  patches = np.stack([padded[r:r + config.patch_size, c:c + config.patch_size]
                      for r, c in pixels])
  model = models.create_model("claresnet", 6, **config.model.kwargs)
  target = steps.variables(steps.create_train_state(
      model, steps.make_optimizer(config), patches.shape[1:], 0, steps.make_mesh({}),
      abstract=True))
  manager = checkpoints.checkpoint_managers(trained_run)["best"]
  # The best checkpoint holds what prediction needs, not the optimizer state.
  assert sorted(p.name for p in (manager.directory / str(manager.latest_step())).iterdir()
                if p.is_dir()) == ["meta", "variables"]
  variables, meta = checkpoints.restore_variables(manager, target)
  manager.close()
  assert meta["epoch"] == json.loads((trained_run / "metrics.json").read_text())[
      "checkpoint_epoch"]
  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, jnp.asarray(patches))
  np.testing.assert_array_equal(np.argmax(logits, -1), predictions)
  np.testing.assert_allclose(jax.nn.softmax(logits), probabilities, atol=1e-5)


def test_a_checkpoint_saved_before_the_rate_was_injected_resumes(tmp_path, tiny_config):
  # Earlier versions gave optax.adamw the schedule itself: its state had no
  # inject_hyperparams wrapper and ended with the schedule's step count.
  config = tiny_config()
  model = models.create_model(config.model.name, 6, **config.model.kwargs)
  shape = (config.patch_size, config.patch_size, config.pca.components)
  mesh = steps.make_mesh({})
  old_tx = optax.chain(optax.clip_by_global_norm(config.optimizer.clip_norm), optax.adamw(
      optax.constant_schedule(1e-3), weight_decay=config.optimizer.weight_decay))
  old = steps.create_train_state(model, old_tx, shape, 7, mesh)
  # Moments and counts as after 86 steps.
  moved = jax.tree.map(lambda x: x + (1.5 if jnp.issubdtype(x.dtype, jnp.floating) else 86),
                       old.opt_state)
  old = old.replace(step=old.step + 86, opt_state=moved)
  manager = checkpoints.checkpoint_managers(tmp_path)["latest"]
  checkpoints.save_checkpoint(manager, old, {"epoch": 2, "best_epoch": 1, "best_val_accuracy": 0.5})

  target = steps.create_train_state(model, steps.make_optimizer(config), shape, 0, mesh,
                                    abstract=True)
  state, meta = checkpoints.restore_checkpoint(manager, target)
  assert meta == {"epoch": 2, "best_epoch": 1, "best_val_accuracy": 0.5}
  chex.assert_trees_all_equal_structs(state, target)  # what the compiled step takes
  chex.assert_trees_all_equal((state.params, state.batch_stats, state.rng, state.step),
                              (old.params, old.batch_stats, old.rng, old.step))
  chex.assert_trees_all_equal(jax.tree.leaves(state.opt_state.inner_state),
                              jax.tree.leaves(moved)[:-1])  # all but the schedule's count
  assert int(state.opt_state.count) == 86

  # Another model's checkpoint is refused with what to do, not misread.
  other = models.create_model(config.model.name, 6, **{**config.model.kwargs, "emb_dim": 8})
  wrong = steps.create_train_state(other, steps.make_optimizer(config), shape, 0, mesh,
                                   abstract=True)
  with pytest.raises(ValueError, match="optimizer state this version cannot read"):
    checkpoints.restore_checkpoint(manager, wrong)
  manager.close()


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, tiny_config,
                                                             compile_cache, monkeypatch):
  config = tiny_config()
  train.train_and_evaluate(config, tmp_path / "whole")

  original_write = train.MetricWriter.write

  def interrupt_in_epoch_2(self, record):
    if record["epoch"] == 2:
      raise KeyboardInterrupt  # after epoch 2's training, before its checkpoint
    original_write(self, record)

  monkeypatch.setattr(train.MetricWriter, "write", interrupt_in_epoch_2)
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(config, tmp_path / "resumed")
  monkeypatch.undo()
  assert (tmp_path / "resumed" / "checkpoints" / "latest" / "1").is_dir()
  train.train_and_evaluate(config, tmp_path / "resumed")

  states = {}
  for name in ("whole", "resumed"):
    history = train.read_history(tmp_path / name)
    for h in history:
      del h["epoch_seconds"]
    states[name] = (_restore(config, tmp_path / name, "latest"), history)
  (whole, whole_history), (resumed, resumed_history) = states["whole"], states["resumed"]
  assert [h["epoch"] for h in resumed_history] == [1, 2]
  assert resumed_history == whole_history
  chex.assert_trees_all_equal(resumed[0].params, whole[0].params)
  chex.assert_trees_all_equal(resumed[0].opt_state, whole[0].opt_state)
  chex.assert_trees_all_equal(resumed[0].batch_stats, whole[0].batch_stats)
  assert int(resumed[0].step) == int(whole[0].step) and resumed[1] == whole[1]


def test_the_seeds_of_a_disjoint_split_share_one_compiled_step(tmp_path, tiny_config,
                                                                compile_cache, caplog):
  """Each seed has its own training-set size, so its own schedule length: the schedule is an
  input of the step, not part of its program, and the step and model are built once."""
  config = tiny_config()
  config.split.protocol = "disjoint"
  config.split.options = ml_collections.ConfigDict()
  config.optimizer.update(schedule="cosine", warmup_epochs=0.5)
  config.update(num_runs=3, num_epochs=1, patience=1)
  jax.clear_caches()  # steps compiled by earlier tests of this process
  jax.config.update("jax_log_compiles", True)
  try:
    with caplog.at_level(logging.WARNING, logger="jax"):
      train.train_and_evaluate(config, tmp_path)
  finally:
    jax.config.update("jax_log_compiles", False)
  sizes = {len(np.load(tmp_path / f"run_{i}" / "split.npz")["train"]) // config.batch_size
           for i in range(3)}
  assert len(sizes) > 1, sizes  # steps per epoch differ between the seeds
  compiled = [r.getMessage().split(" with ")[0] for r in caplog.records
              if r.getMessage().startswith("Compiling ")]
  assert compiled.count("Compiling jit(train_step)") == 1, compiled
  assert compiled.count("Compiling jit(predict_step)") == 1, compiled


def test_several_seeds_and_their_summary(tmp_path, tiny_config, compile_cache, monkeypatch):
  config = tiny_config()
  config.update(num_runs=2, num_epochs=1, patience=1)
  train.train_and_evaluate(config, tmp_path)
  assert [workdirs.load_config(tmp_path / f"run_{i}").seed for i in (0, 1)] == [42, 43]
  splits = [np.load(tmp_path / f"run_{i}" / "split.npz")["train"] for i in (0, 1)]
  assert not np.array_equal(*splits)  # each seed draws its own split
  monkeypatch.setattr(evaluate, "TSNE_MAX_POINTS", 100)
  summary = evaluate.evaluate(tmp_path)
  oa = [json.loads((tmp_path / f"run_{i}" / "metrics.json").read_text())["overall_accuracy"]
        for i in (0, 1)]
  mean, std = np.mean(oa), np.std(oa, ddof=1)
  assert summary["overall_accuracy"] == pytest.approx((mean, std))
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["runs"] == ["run_0", "run_1"]
  assert saved["kappa"]["mean"] == pytest.approx(summary["kappa"][0])
  table = (tmp_path / "summary.md").read_text()
  assert f"| OA | {100 * mean:.2f} ± {100 * std:.2f} |" in table
  assert "| Lettuce_romaine_4wk |" in table


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(
    tmp_path, tiny_config, compile_cache, monkeypatch):
  config = tiny_config()
  steps_per_epoch = 6 * 40 // config.batch_size
  original = data.train_batches

  def nan_in_third_batch_of_epoch_2(*args, epoch, **kwargs):
    for i, batch in enumerate(original(*args, epoch=epoch, **kwargs)):
      if epoch == 2 and i == 2:
        batch = dict(batch, patches=batch["patches"].copy())
        batch["patches"][0, 0, 0, 0] = np.nan
      yield batch

  monkeypatch.setattr(data, "train_batches", nan_in_third_batch_of_epoch_2)
  with pytest.raises(FloatingPointError,
                     match=rf"nan at step {steps_per_epoch + 3};.*last good checkpoint "
                     r"\(epoch 1\)"):
    train.train_and_evaluate(config, tmp_path)
  state, meta = _restore(config, tmp_path, "latest")
  assert meta["epoch"] == 1 and int(state.step) == steps_per_epoch
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_full_disk_keeps_previous_checkpoint(trained_run, tmp_path, monkeypatch):
  config = workdirs.load_config(trained_run)
  state, meta = _restore(config, trained_run, "latest")
  manager = checkpoints.checkpoint_managers(tmp_path)["latest"]
  checkpoints.save_checkpoint(manager, state, dict(meta, epoch=1))

  # The disk fills as the step's metadata is written: every array and the JSON item are
  # written and awaited by then, so no write is left in flight when the error surfaces.
  def disk_full(self, directory, custom_metadata):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(checkpointer.Checkpointer, "_save_step_metadata", disk_full)
  with pytest.raises(OSError, match=r"epoch 2 checkpoint .* failed .*No space left.* "
                     r"previous checkpoint \(epoch 1\) is intact"):
    checkpoints.save_checkpoint(manager, state, dict(meta, epoch=2))
  monkeypatch.undo()
  manager.close()
  assert checkpoints.checkpoint_managers(tmp_path)["latest"].all_steps() == [1]
  restored, restored_meta = _restore(config, tmp_path, "latest")
  assert restored_meta["epoch"] == 1
  chex.assert_trees_all_equal(restored.params, state.params)


def test_refuses_workdir_trained_with_another_config(trained_run, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained_run, workdir)
  saved = (workdir / "config.json").read_text()
  config = workdirs.load_config(workdir)
  workdirs.claim_workdir(config, workdir)  # the same config resumes
  config.optimizer.learning_rate = 1e-2
  with pytest.raises(ValueError, match=r"another config \(optimizer.learning_rate: 0.003 "
                     r"there, 0.01 now\).*new --workdir"):
    train.train_and_evaluate(config, workdir)
  assert (workdir / "config.json").read_text() == saved


def test_unknown_config_key_is_an_error(tmp_path):
  result = run_script(["train.py", "--config=configs/salinas_a.py", f"--workdir={tmp_path}",
                       "--config.num_epoch=5"], {})
  assert result.returncode != 0
  assert "num_epoch" in result.stderr and "num_epochs" in result.stderr
  assert not (tmp_path / "config.json").exists()


def test_eval_without_checkpoint_says_what_to_do(tmp_path, tiny_config):
  with pytest.raises(FileNotFoundError, match="is not a training workdir"):
    evaluate.evaluate(tmp_path)
  workdirs.claim_workdir(tiny_config(), tmp_path)
  with pytest.raises(FileNotFoundError, match=r"No checkpoint in .*best: .*Run python train.py"):
    evaluate.evaluate(tmp_path)


@pytest.fixture(scope="module")
def mask_files(tmp_path_factory):
  """Salinas-A training and test masks as a user's rasters: 30 and 60 pixels a class."""
  folder = tmp_path_factory.mktemp("masks")
  gt = data.load_scene("salinas_a").gt
  rng = np.random.default_rng(0)
  train_mask, test_mask = np.zeros(gt.shape, np.uint8), np.zeros(gt.shape, np.uint8)
  for value in np.unique(gt[gt > 0]):
    pixels = rng.permutation(np.argwhere(gt == value))
    train_mask[tuple(pixels[:30].T)] = 1
    test_mask[tuple(pixels[30:90].T)] = 1
  with rasterio.open(folder / "train.tif", "w", driver="GTiff", height=gt.shape[0],
                     width=gt.shape[1], count=1, dtype="uint8") as f:
    f.write(train_mask, 1)
  np.save(folder / "test.npy", test_mask)
  return folder / "train.tif", folder / "test.npy", train_mask, test_mask


def test_masks_without_validation_train_and_test_both_ways(tmp_path, tiny_config_file,
                                                          tiny_config, compile_cache, mask_files,
                                                          cache_hits):
  train_path, test_path, train_mask, test_mask = mask_files
  # The last epoch tested, with the masks given on the command line.
  logs = []
  for args in (["train.py", f"--config={tiny_config_file}", "--config.split.protocol=masks",
                f"--config.split.options.train_mask={train_path}",
                f"--config.split.options.test_mask={test_path}",
                "--config.test_checkpoint=last", f"--workdir={tmp_path / 'last'}"],
               ["eval.py", f"--workdir={tmp_path / 'last'}"]):
    result = run_script(args, compile_cache)
    assert result.returncode == 0, result.stderr[-5000:]
    logs.append(result.stderr)
  # eval.py loads the programs train.py compiled or loaded: its predict steps are the ones
  # that monitored the test pixels.
  eval_hits, cache_dir = cache_hits(logs[1])
  assert eval_hits >= 1 and cache_dir == compile_cache["JAX_COMPILATION_CACHE_DIR"]
  # A share of the training pixels held out for choosing the checkpoint (in-process).
  config = tiny_config()
  config.split.protocol = "masks"
  config.split.options = ml_collections.ConfigDict(
      dict(train_mask=str(train_path), test_mask=str(test_path)))
  config.split.holdout_fraction = 0.2
  train.train_and_evaluate(config, tmp_path / "held_out")
  evaluate.evaluate(tmp_path / "held_out")

  # The last epoch tested, on the test mask's pixels; the test pixels monitored every epoch.
  last = json.loads((tmp_path / "last/metrics.json").read_text())
  assert (last["test_checkpoint"], last["checkpoint_epoch"]) == ("last", 2)
  assert last["num_test_pixels"] == test_mask.sum() == 360
  with np.load(tmp_path / "last/split.npz") as split:
    np.testing.assert_array_equal(split["train"], np.argwhere(train_mask))
    np.testing.assert_array_equal(split["test"], np.argwhere(test_mask))
    assert len(split["val"]) == 0
  history = train.read_history(tmp_path / "last")
  assert [("test_accuracy" in h, "val_accuracy" in h) for h in history] == [(True, False)] * 2
  assert history[-1]["test_accuracy"] == pytest.approx(last["overall_accuracy"])
  assert "Tested checkpoint: the last, epoch 2" in (tmp_path / "last/report.md").read_text()

  # A stratified fifth of the training mask held out, the checkpoint chosen on it.
  held = json.loads((tmp_path / "held_out/metrics.json").read_text())
  history = train.read_history(tmp_path / "held_out")
  assert held["test_checkpoint"] == "best"
  assert held["best_val_accuracy"] == max(h["val_accuracy"] for h in history)
  assert held["num_test_pixels"] == 360
  gt = data.load_scene("salinas_a").gt
  with np.load(tmp_path / "held_out/split.npz") as split:
    assert {tuple(p) for p in split["train"]} | {tuple(p) for p in split["val"]} == {
        tuple(p) for p in np.argwhere(train_mask)}
    assert np.bincount(gt[tuple(split["val"].T)])[np.unique(gt[gt > 0])].tolist() == [6] * 6


def test_a_split_without_validation_needs_one_of_the_two_ways(tmp_path, tiny_config,
                                                               mask_files):
  config = tiny_config()
  config.split.protocol = "masks"
  config.split.options = ml_collections.ConfigDict(
      dict(train_mask=str(mask_files[0]), test_mask=str(mask_files[1])))
  with pytest.raises(ValueError, match=r"no validation pixels.*holdout_fraction=0\.1.*"
                                       r"test_checkpoint='last'"):
    train.train_and_evaluate(config, tmp_path)
  config.test_checkpoint = "final"
  with pytest.raises(ValueError, match=r"test_checkpoint='final'; use 'best' .* or 'last'"):
    train.train_and_evaluate(config, tmp_path)


def test_an_unfinished_run_is_not_tested_as_its_last_epoch(tmp_path, tiny_config, compile_cache):
  config = tiny_config()
  config.update(test_checkpoint="last", num_epochs=1)
  train.train_and_evaluate(config, tmp_path)
  config.num_epochs = 2  # as if stopped after epoch 1 of 2
  with pytest.raises(ValueError, match=r"trained 1 of its 2 epochs.*rerun the same train\.py"):
    trained_runs.restore_tested(config, tmp_path, 6, steps.make_mesh({}))


def test_excluded_classes_are_left_out_of_the_dataset(tmp_path, tiny_config):
  config = tiny_config()
  config.exclude_classes = (10, 13)
  dataset = workdirs.prepare_dataset(config, tmp_path)
  assert dataset.scene.class_ids.tolist() == [1, 11, 12, 14]
  original = data.load_scene("salinas_a").gt
  for part in ("train", "val", "test"):
    pixels = getattr(dataset.split, part)
    assert set(np.unique(original[pixels[:, 0], pixels[:, 1]]).tolist()) == {1, 11, 12, 14}
    assert set(dataset.labels[part].tolist()) == {0, 1, 2, 3}
  # A config saved before exclude_classes existed keeps every class.
  saved = ml_collections.ConfigDict({k: v for k, v in config.items() if k != "exclude_classes"})
  assert workdirs.load_scene(saved).num_classes == 6


def _restore(config, workdir, which):
  model = models.create_model(config.model.name, 6, **config.model.kwargs)
  target = steps.create_train_state(
      model, steps.make_optimizer(config),
      (config.patch_size, config.patch_size, config.pca.components), config.seed,
      steps.make_mesh({}), abstract=True)
  manager = checkpoints.checkpoint_managers(workdir)[which]
  try:
    return checkpoints.restore_checkpoint(manager, target)
  finally:
    manager.close()
