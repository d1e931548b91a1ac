"""The benchmark command: its figures are consistent with what they measure."""
import gzip
import json
import os
import pathlib
import subprocess
import sys

from absl import flags
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
from ml_collections import config_flags
import numpy as np
import pytest

from claresnet_jax import steps

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*args: str, cpu_devices: int | None = None) -> subprocess.CompletedProcess:
  env = dict(os.environ)
  if cpu_devices:
    env["JAX_NUM_CPU_DEVICES"] = str(cpu_devices)
  return subprocess.run(
      [sys.executable, "-m", "claresnet_jax.bench", "--config", "configs/ip.py", "--json",
       "--repeats", "2", "--warmup", "1", *args],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=env)


def _bench(*args: str, cpu_devices: int | None = None) -> list[dict]:
  result = _run(*args, cpu_devices=cpu_devices)
  assert result.returncode == 0, result.stderr[-3000:]
  return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _trace_event_names(directory: pathlib.Path) -> set[str]:
  (path,) = directory.glob("**/*.trace.json.gz")
  with gzip.open(path) as f:
    events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  return {e.get("name", "") for e in events}


def _one_device_flops_per_sample(tiny_flags, precision, batch_size: int, eval_batch_size: int):
  """The same steps' FLOPs per sample, compiled for one device in this process (from an
  abstract state: nothing initialised or run): the figure a device count must not change."""
  # The bench's --config flags, parsed as it parses them (overrides are declared from argv).
  argv = ["bench", f"--config={REPO / 'configs' / 'ip.py'}", *tiny_flags, *precision]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
  flag_values(argv)
  config = flag_values.config
  mesh = steps.make_mesh({}, jax.devices()[:1])
  model = steps.create_model(config.model.name, 16, **config.model.kwargs)
  shape = (config.patch_size, config.patch_size, config.pca.components)
  state = steps.create_train_state(model, steps.make_optimizer(config), shape, 0, mesh,
                                   abstract=True)
  data = NamedSharding(mesh, P("data"))
  batch = {"patches": jax.ShapeDtypeStruct((batch_size, *shape), jnp.float32, sharding=data),
           "labels": jax.ShapeDtypeStruct((batch_size,), jnp.int32, sharding=data)}
  patches = jax.ShapeDtypeStruct((eval_batch_size, *shape), jnp.float32, sharding=data)
  with jax.default_matmul_precision(config.matmul_precision):
    train = steps.jit_train_step(mesh).lower(state, batch, jnp.ones(16), np.float32(1e-3))
    infer = steps.jit_predict_step(model, mesh, with_features=False).lower(
        steps.variables(state), patches)
  return (train.compile().cost_analysis()["flops"] / batch_size,
          infer.compile().cost_analysis()["flops"] / eval_batch_size)


def test_model_figures(tmp_path, tiny_flags):
  # In bfloat16 at the highest matmul precision, which the figures name, and profiled.
  precision = ["--config.model.kwargs.dtype=bfloat16", "--config.matmul_precision=highest"]
  rows = _bench("--batch_size", "4", "--eval_batch_size", "8", *tiny_flags, *precision,
                f"--profile_dir={tmp_path}", cpu_devices=2)
  assert [r["batch_size"] for r in rows] == [4]
  assert rows[0]["device"].startswith("2 x cpu")
  # FLOPs per sample are the model's, whatever number of devices shares the batch (each
  # device also runs the replicated optimizer update: 10% more for this tiny model).
  train_flops, infer_flops = _one_device_flops_per_sample(tiny_flags, precision, 4, 8)
  assert rows[0]["infer_flops_per_sample"] == pytest.approx(infer_flops, rel=0.02)
  assert rows[0]["flops_per_sample"] == pytest.approx(train_flops, rel=0.2)
  for row in rows:
    assert (row["dtype"], row["matmul_precision"]) == ("bfloat16", "highest")
    assert row["train_samples_per_s"] > 0 and row["infer_samples_per_s"] > 0
    assert row["compile_s"] > 0 and row["peak_memory_bytes"] > 0
    assert "cpu" in row["device"] and "jax" in row["device"]
    # A training step runs the forward pass and a backward pass of about twice its cost.
    assert 2 < row["flops_per_sample"] / row["infer_flops_per_sample"] < 5
    assert row["train_gflops"] == pytest.approx(
        row["train_samples_per_s"] * row["flops_per_sample"] / 1e9)
  # The profile traces the compiled steps op by op: XLA's fusions, one event each.
  train_names = _trace_event_names(tmp_path / "train_batch4")
  assert any("train_step" in name for name in train_names)
  assert any("fusion" in name for name in train_names)
  assert any("fusion" in name for name in _trace_event_names(tmp_path / "inference_batch8"))


def test_latent_attention_cost_grows_slower_than_full_attention():
  small, large = _bench("--mode", "scaling", "--lengths", "128,1024")
  assert (small["num_latents"], large["num_latents"]) == (48, 64)
  full = large["full_flops_per_sequence"] / small["full_flops_per_sequence"]
  latent = large["msla_flops_per_sequence"] / small["msla_flops_per_sequence"]
  # 8 times the bands: full attention's T x T scores make its cost grow well beyond
  # 8-fold; the latent attention's T x L scores (L: 48 -> 64) and per-token layers
  # keep it close to linear.
  assert full > 15
  assert latent < 8


def test_a_bad_precision_fails_before_anything_compiles(tiny_flags):
  result = _run("--config.matmul_precision=fastest", *tiny_flags)
  assert result.returncode != 0 and not result.stdout
  assert "matmul_precision='fastest': use 'default', 'high' or 'highest'" in result.stderr


# Compiles three small programs and compares them with benchmarks/compare_programs.py's
# instructions(); run in its own process, as the script's absl flags (--config) would clash
# with those of the package's commands imported by other tests of this process.
COMPARE_PROGRAMS = """
import json, sys
import jax, jax.numpy as jnp
sys.path.insert(0, "benchmarks")
import compare_programs

def program(f, *shapes):
  args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
  return compare_programs.instructions(jax.jit(f).lower(*args).compile().as_text())

ours = program(lambda x, w: jnp.tanh(x @ w).sum(axis=0), (8, 4), (4, 3))
swapped = program(lambda w_renamed, x_renamed: jnp.tanh(x_renamed @ w_renamed).sum(axis=0),
                  (4, 3), (8, 4))  # the same work, parameters in the other order
doubled = program(lambda x, w: jnp.tanh(x @ w).sum(axis=0) * 2.0, (8, 4), (4, 3))
print(json.dumps([dict(ours), dict(swapped), dict(doubled)]))
"""


def test_compare_programs_sees_instructions_not_names_or_parameter_order():
  """benchmarks/compare_programs.py: the same work compiled from other code compares equal,
  one more instruction does not."""
  result = subprocess.run([sys.executable, "-c", COMPARE_PROGRAMS], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  ours, swapped, doubled = json.loads(result.stdout.splitlines()[-1])
  assert sum(ours.values()) > 2 and any(" dot" in k or "fusion" in k for k in ours)
  assert swapped == ours
  assert doubled != ours and sum(doubled.values()) > sum(ours.values())
