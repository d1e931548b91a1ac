"""Mixed precision and the matmul precision from the config: a bfloat16 run trains, keeps float32
state, and evaluation and prediction compute as it trained; bad settings fail early.
"""
import json
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from claresnet_jax import checkpoints, evaluate, models, predict, steps, train, trained_runs
from claresnet_jax import workdirs


@pytest.fixture(autouse=True)
def default_precision():
  """Every test starts and ends with JAX's own matmul precision, as a fresh process does."""
  jax.config.update("jax_default_matmul_precision", None)
  yield
  jax.config.update("jax_default_matmul_precision", None)


@pytest.fixture(scope="module")
def bfloat16_run(tmp_path_factory, tiny_config, compile_cache):
  """Three epochs of the tiny config, 160 training pixels a class, bfloat16 at "highest"."""
  config = tiny_config()
  config.split.options.train_per_class = 160  # 60 steps an epoch: compiling costs far more
  config.num_epochs = config.patience = 3
  config.model.kwargs.dtype = "bfloat16"
  config.matmul_precision = "highest"
  workdir = tmp_path_factory.mktemp("bfloat16") / "run"
  try:
    train.train_and_evaluate(config, workdir)
  finally:
    jax.config.update("jax_default_matmul_precision", None)
  return workdir


def _float_dtypes(tree) -> set:
  return {x.dtype for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}


def test_bfloat16_run_learns_and_saves_float32_state(bfloat16_run):
  saved = json.loads((bfloat16_run / "config.json").read_text())
  assert (saved["model"]["kwargs"]["dtype"], saved["matmul_precision"]) == ("bfloat16", "highest")
  # 30 validation pixels in each of six classes: chance is 1/6.
  assert train.read_history(bfloat16_run)[-1]["val_accuracy"] > 0.5
  config = workdirs.load_config(bfloat16_run)
  _, variables, _ = trained_runs.restore_tested(config, bfloat16_run, 6, steps.make_mesh({}))
  assert _float_dtypes(variables) == {np.dtype("float32")}
  manager = checkpoints.checkpoint_managers(bfloat16_run)["latest"]
  state = manager.restore(manager.latest_step(), args=ocp.args.Composite(
      state=ocp.args.StandardRestore()))["state"]
  manager.close()
  assert _float_dtypes((state["params"], state["opt_state"])) == {np.dtype("float32")}


def test_train_step_computes_in_bfloat16_with_float32_logits_loss_and_state(tiny_config):
  model = models.create_model("claresnet", 6, emb_dim=16, base_channels=8, num_layers=1,
                              dtype="bfloat16")
  state = steps.create_train_state(model, steps.make_optimizer(tiny_config()), (5, 5, 6), 0,
                                   steps.make_mesh({}), abstract=True)
  rate = jax.ShapeDtypeStruct((), jnp.float32)
  batch = {"patches": jax.ShapeDtypeStruct((4, 5, 5, 6), jnp.float32),
           "labels": jax.ShapeDtypeStruct((4,), jnp.int32)}
  weights = jax.ShapeDtypeStruct((6,), jnp.float32)
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  # The softmax of the loss and of prediction sees float32 logits.
  assert jax.eval_shape(model.apply, variables, batch["patches"]).dtype == jnp.float32
  assert jax.eval_shape(lambda v, x: steps.predict_step(model, v, x, False), variables,
                        batch["patches"])["probabilities"].dtype == jnp.float32
  step, (new_state, metrics) = jax.make_jaxpr(steps.train_step, return_shape=True)(
      state, batch, weights, rate)
  assert metrics["loss"].dtype == jnp.float32
  assert _float_dtypes(new_state) == {np.dtype("float32")}
  convolutions = [line for line in str(step).splitlines() if "conv_general_dilated" in line]
  assert convolutions and all("bf16[" in line for line in convolutions)


def test_eval_and_predict_compute_as_the_run_trained(bfloat16_run, monkeypatch):
  monkeypatch.setattr(evaluate, "TSNE_MAX_POINTS", 100)
  results = evaluate.evaluate(bfloat16_run)
  assert jax.config.jax_default_matmul_precision == "highest"
  assert results["balanced_accuracy"] > 0.5  # chance: 1/6

  # eval.py's probabilities are the bfloat16 model's: close to the float32 model's, not equal.
  config = workdirs.load_config(bfloat16_run)
  dataset = workdirs.prepare_dataset(config, bfloat16_run)
  mesh = steps.make_mesh({"config.eval_batch_size": config.eval_batch_size})
  model, variables, _ = trained_runs.restore_tested(config, bfloat16_run, 6, mesh)
  computed = {
      name: steps.predict_pixels(variables, steps.jit_predict_step(m, mesh, False), mesh,
                                 dataset.cube, dataset.split.test, patch_size=config.patch_size,
                                 batch_size=config.eval_batch_size)["probabilities"]
      for name, m in (("bfloat16", model), ("float32", model.clone(dtype="float32")))}
  with np.load(bfloat16_run / "predictions.npz") as p:
    reported = p["probabilities"]
  np.testing.assert_allclose(reported, computed["bfloat16"], atol=1e-6)
  # Close in aggregate: single pixels near a decision boundary can move by several percent
  # (0.084 at most on an AMD EPYC with AVX-512 bf16, mean 3e-4, classes 99.9% the same).
  difference = np.abs(reported - computed["float32"])
  assert difference.max() > 1e-4 and difference.mean() < 0.005
  assert np.mean(reported.argmax(-1) == computed["float32"].argmax(-1)) > 0.98

  jax.config.update("jax_default_matmul_precision", None)
  predictor = predict.Predictor(bfloat16_run)
  assert jax.config.jax_default_matmul_precision == "highest"
  assert predictor.model.dtype == "bfloat16"


def test_a_workdir_saved_before_the_keys_computes_in_float32_at_default_precision(
    bfloat16_run, tmp_path):
  workdir = tmp_path / "old"
  shutil.copytree(bfloat16_run, workdir)
  saved = json.loads((workdir / "config.json").read_text())
  del saved["matmul_precision"], saved["model"]["kwargs"]["dtype"]
  (workdir / "config.json").write_text(json.dumps(saved))
  jax.config.update("jax_default_matmul_precision", "highest")  # left by an earlier run
  predictor = predict.Predictor(workdir)
  assert jax.config.jax_default_matmul_precision is None
  assert predictor.model.dtype == "float32"
  assert _float_dtypes(predictor.variables) == {np.dtype("float32")}
  # It resumes with the keys at the values their absence means, and with no others.
  config = workdirs.load_config(bfloat16_run)
  config.model.kwargs.dtype, config.matmul_precision = "float32", "default"
  workdirs.claim_workdir(config, workdir)
  config.model.kwargs.dtype = "bfloat16"
  with pytest.raises(ValueError, match=r"another config \(model.kwargs.dtype: 'float32' there, "
                     r"'bfloat16' now\)"):
    workdirs.claim_workdir(config, workdir)


@pytest.mark.parametrize("setting, value, message", [
    ("model.kwargs.dtype", "float16",
     r"config.model.kwargs.dtype='float16': float16 needs loss scaling.*'bfloat16'"),
    ("model.kwargs.dtype", "float64",
     r"config.model.kwargs.dtype='float64': use 'float32', or 'bfloat16'"),
    ("matmul_precision", "fastest",
     r"config.matmul_precision='fastest': use 'default', 'high' or 'highest'"),
])
def test_a_bad_setting_fails_before_anything_runs(tiny_config, tmp_path, setting, value,
                                                  message):
  config = tiny_config()
  config.update_from_flattened_dict({setting: value})
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, tmp_path)
  assert not any(tmp_path.iterdir())


def test_a_baseline_given_a_dtype_is_refused(tiny_config, tmp_path):
  config = tiny_config()
  config.model.name = "hybridsn"
  config.model.kwargs = ml_collections.ConfigDict(dict(dropout=0.4, dtype="bfloat16"))
  with pytest.raises(ValueError, match=r"dtype='bfloat16': hybridsn takes no dtype and "
                     "computes in float32"):
    train.train_and_evaluate(config, tmp_path)
  assert not any(tmp_path.iterdir())
