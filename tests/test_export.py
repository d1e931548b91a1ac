"""The steps lowered for GPUs and TPUs on the CPU: python -m claresnet_jax.bench --mode export.

The paper model (configs/ip.py) is exported for cpu, cuda and tpu in float32 and bfloat16;
of it, only the CPU prediction step is compiled: the FLOPs are checked against its figure,
and its artifact is run.
"""
import itertools
import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import numpy as np
import pytest

from claresnet_jax import export, steps
from configs import ip

REPO = pathlib.Path(__file__).resolve().parents[1]
DTYPES = ("float32", "bfloat16")
STEPS = ("train", "predict")


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
  """The command's rows and artifacts, by (platform, dtype, step), and its compile seconds.

  It runs under JAX_INCLUDE_DEBUG_INFO_IN_DUMPS=false, which leaves locations, and with them
  the name scope that marks the CPU-only path, out of Exported.mlir_module(): the rows must
  not depend on it.
  """
  folder = tmp_path_factory.mktemp("exported")
  result = subprocess.run(
      [sys.executable, "-m", "claresnet_jax.bench", "--config", "configs/ip.py", "--mode",
       "export", "--json", f"--export_dir={folder}"],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
      env={**os.environ, "JAX_INCLUDE_DEBUG_INFO_IN_DUMPS": "false"})
  assert result.returncode == 0, result.stderr[-3000:]
  rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
  rows = {(r["platform"], r["dtype"], r["step"]): r for r in rows}
  artifacts = {key: jax.export.deserialize(pathlib.Path(row["file"]).read_bytes())
               for key, row in rows.items()}
  compile_s = float(re.search(r"XLA compilation: ([\d.]+) s", result.stderr).group(1))
  return rows, artifacts, compile_s


def _abstract(dtype: str):
  """The paper model, its abstract state on one CPU device, its mesh and the step arguments."""
  config = ip.get_config()
  mesh = steps.make_mesh({"batch": 16, "eval": 32}, devices=jax.devices("cpu")[:1])
  model = steps.create_model(config.model.name, 16, **{**config.model.kwargs, "dtype": dtype})
  state = steps.create_train_state(model, steps.make_optimizer(config), (11, 11, 30),
                                   config.seed, mesh, abstract=True)
  sharded = NamedSharding(mesh, P("data"))
  batch = {"patches": jax.ShapeDtypeStruct((16, 11, 11, 30), jnp.float32, sharding=sharded),
           "labels": jax.ShapeDtypeStruct((16,), jnp.int32, sharding=sharded)}
  patches = jax.ShapeDtypeStruct((32, 11, 11, 30), jnp.float32, sharding=sharded)
  return model, mesh, state, batch, patches


@pytest.fixture(scope="module")
def cpu_predict():
  """The paper model's float32 prediction step compiled for the CPU: its model, mesh,
  abstract arguments (variables, patches) and the compiled step."""
  model, mesh, state, _, patches = _abstract("float32")
  step = steps.jit_predict_step(model, mesh, with_features=False)
  variables = steps.variables(state)
  return model, mesh, (variables, patches), step.lower(variables, patches).compile()


def _shapes(leaves) -> list[tuple]:
  return [(tuple(x.shape), jnp.dtype(x.dtype)) for x in leaves]


def test_every_platform_dtype_and_step_is_lowered_without_compiling(paper):
  rows, artifacts, compile_s = paper
  assert set(rows) == set(itertools.product(export.PLATFORMS, DTYPES, STEPS))
  for (platform, _, _), row in rows.items():
    assert pathlib.Path(row["file"]).stat().st_size == row["serialized_bytes"] > 0
    assert artifacts[platform, row["dtype"], row["step"]].platforms == (platform,)
  # Compiling the paper model's smallest step, prediction, takes longer than this.
  assert compile_s < 5


def _convolutions(exported) -> list[str]:
  """The dimension layout of each convolution's input: 'b01f' for one over the batch,
  'f01b' for a kernel gradient, which sums over the batch as XLA computes it."""
  return ["".join(m) for m in re.findall(r"stablehlo\.convolution\(.*dim_numbers = \[(\w), (\w), "
                                         r"(\w), (\w)\]", exported.mlir_module())]


def test_only_the_cpu_train_step_has_the_cpu_kernel_gradient_path(paper):
  rows, artifacts, _ = paper
  for (platform, dtype, step), row in rows.items():
    assert row["cpu_kernel_grad_path"] == (platform == "cpu" and step == "train"), row
  # The same from the modules' operations, without the scope's name: a kernel gradient of
  # each forward convolution where XLA computes it, none in the CPU's module.
  for dtype in DTYPES:
    forward = len(_convolutions(artifacts["cpu", dtype, "predict"]))
    assert forward > 10
    for platform in export.PLATFORMS:
      kernel_grads = _convolutions(artifacts[platform, dtype, "train"]).count("f01b")
      assert kernel_grads == (0 if platform == "cpu" else forward), (platform, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exported_steps_take_and_return_what_the_jitted_steps_do(paper, dtype):
  _, artifacts, _ = paper
  _, mesh, state, batch, patches = _abstract(dtype)
  weights = jax.ShapeDtypeStruct((16,), jnp.float32)
  rate = jax.ShapeDtypeStruct((), jnp.float32)
  state_leaves = jax.tree.leaves(state)
  n = len(state_leaves)
  metrics = [((), jnp.dtype(jnp.float32))] * 2  # accuracy and loss
  for platform in export.PLATFORMS:
    step = artifacts[platform, dtype, "train"]
    assert step.nr_devices == 1
    assert _shapes(step.in_avals) == _shapes(jax.tree.leaves((state, batch, weights, rate)))
    # The batch (its dict's keys in order: labels, patches), the class weights and the rate.
    assert _shapes(step.in_avals)[n:] == [((16,), jnp.int32), ((16, 11, 11, 30), jnp.float32),
                                          ((16,), jnp.float32), ((), jnp.float32)]
    assert _shapes(step.out_avals) == _shapes(state_leaves) + metrics
    # Batches sharded over the 'data' axis; the state, class weights, rate and outputs
    # replicated; the rate held in the optimizer state is replaced by the rate given, so that
    # input is unused and has no sharding.
    state_specs = [None if "hyperparams" in jax.tree_util.keystr(path) else P()
                   for path, _ in jax.tree.leaves_with_path(state)]
    assert state_specs.count(None) == 1
    assert [s and s.spec for s in step.in_shardings_jax(mesh)] == (
        state_specs + [P("data")] * 2 + [P()] * 2)
    assert [s.spec for s in step.out_shardings_jax(mesh)] == [P()] * (n + 2)
    predict = artifacts[platform, dtype, "predict"]
    variable_leaves = jax.tree.leaves(steps.variables(state))
    assert _shapes(predict.in_avals) == _shapes(variable_leaves) + [((32, 11, 11, 30),
                                                                     jnp.float32)]
    assert _shapes(predict.out_avals) == [((32, 16), jnp.float32)]


def test_flops_per_sample_agree_across_platforms_and_with_the_cpu_compiled_step(paper,
                                                                                cpu_predict):
  rows, _, _ = paper
  flops = {key: row["flops_per_sample"] for key, row in rows.items()}
  assert min(flops.values()) > 0
  for dtype in DTYPES:
    for step in STEPS:
      # GPUs and TPUs get the same program.
      assert flops["tpu", dtype, step] == pytest.approx(flops["cuda", dtype, step], rel=1e-3)
    # Prediction has no platform-dependent code. The CPU's kernel-gradient matmuls multiply
    # the convolutions' zero padding, which XLA's count of a padded convolution leaves out.
    assert flops["cpu", dtype, "predict"] == pytest.approx(flops["cuda", dtype, "predict"],
                                                           rel=1e-3)
    assert 1 < flops["cpu", dtype, "train"] / flops["cuda", dtype, "train"] < 1.1
    # A training step runs the forward pass and a backward pass of about twice its cost.
    assert 2 < flops["cuda", dtype, "train"] / flops["cuda", dtype, "predict"] < 5
  for platform, step in itertools.product(export.PLATFORMS, STEPS):
    # bfloat16 adds casts, a few elementwise FLOPs against the convolutions' and matmuls'.
    assert flops[platform, "bfloat16", step] == pytest.approx(flops[platform, "float32", step],
                                                              rel=0.02)
  # bench's figure, from the CPU-compiled step (one device). XLA:CPU's passes rewrite the
  # program before it is counted, which changes the count of elementwise operations, not of
  # the convolutions and matmuls that are nearly all the FLOPs: within 5% (0.2% measured).
  _, _, _, compiled = cpu_predict
  compiled_flops = compiled.cost_analysis()["flops"] / 32
  assert flops["cuda", "float32", "predict"] == pytest.approx(compiled_flops, rel=0.05)


def _filled(abstract, seed: int):
  """Arrays of `abstract`'s shapes and shardings: small random weights, unit variances."""
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    value = (np.ones(leaf.shape) if jax.tree_util.keystr(path).endswith("['var']")
             else rng.normal(0, 0.05, leaf.shape))
    return jax.device_put(value.astype(leaf.dtype), leaf.sharding)
  return jax.tree_util.tree_map_with_path(fill, abstract)


def test_an_artifact_loaded_from_its_file_computes_what_the_jitted_step_does(paper, cpu_predict):
  """The CPU prediction step's artifact, called as docs/throughput.md shows."""
  rows, _, _ = paper
  model, mesh, abstract, compiled = cpu_predict
  variables, patches = _filled(abstract, 0)
  with open(rows["cpu", "float32", "predict"]["file"], "rb") as f:
    exported = jax.export.deserialize(f.read())
  outputs = exported.call(*jax.tree.leaves((variables, patches)))
  step = steps.jit_predict_step(model, mesh, with_features=False)
  probabilities = jax.tree.unflatten(
      jax.tree.structure(jax.eval_shape(step, variables, patches)), outputs)["probabilities"]
  expected = compiled(variables, patches)["probabilities"]
  assert np.ptp(np.asarray(expected), axis=-1).min() > 1e-3  # not a uniform output
  np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
