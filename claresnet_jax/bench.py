"""Throughput of the model as users run it: train step, inference, attention scaling, full scenes.

  python -m claresnet_jax.bench --config configs/ip.py --batch_size 16 [--json]
  python -m claresnet_jax.bench --mode scaling [--json]
  python -m claresnet_jax.bench --config configs/ip.py --mode scene --scene 1000x1000
  python -m claresnet_jax.bench --config configs/ip.py --config.model.kwargs.dtype=bfloat16
  python -m claresnet_jax.bench --config configs/ip.py --mode export [--export_dir DIR]

Every figure is the median of --repeats timed runs after --warmup runs, each
ended by block_until_ready, and is printed with the device and JAX version. The
computation dtype and matmul precision are the config's, set as for train.py.
Compile times are cold: the persistent compilation cache is off here. --mode export
compiles and runs nothing: it lowers the steps for each platform, in float32 and
bfloat16 (claresnet_jax.export).
"""
import json
import pathlib
import resource
import statistics
import time
from collections.abc import Callable, Iterator

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from claresnet_jax import cli, data, export, precision, steps
from claresnet_jax.models import layers, spectral

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ip.py", "Experiment config file.")
_MODE = flags.DEFINE_enum("mode", "model", ["model", "scaling", "scene", "export"],
                          "model: train step and inference; scaling: latent vs full attention "
                          "over band counts; scene: classify every pixel of a scene; export: "
                          "the train and predict steps lowered for cpu, cuda and tpu, in "
                          "float32 and bfloat16, with no accelerator needed.")
_BATCH = flags.DEFINE_list("batch_size", None, "Training batch sizes (default: the config's).")
_EVAL_BATCH = flags.DEFINE_list("eval_batch_size", None,
                                "Inference batch sizes, one per training batch size "
                                "(default: the config's eval_batch_size).")
_BANDS = flags.DEFINE_integer("bands", None, "Bands T (default: the config's PCA components).")
_PATCH = flags.DEFINE_integer("patch_size", None, "Patch size (default: the config's).")
_CLASSES = flags.DEFINE_integer("num_classes", 16, "Classes of the model's head.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed runs per figure.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed runs before timing.")
_LENGTHS = flags.DEFINE_list("lengths", ["16", "32", "64", "128", "256", "512", "1024", "2048",
                                         "4096"], "Sequence lengths T for --mode scaling.")
_SCENE = flags.DEFINE_string("scene", "salinas_a",
                             "--mode scene: a registry scene, or HxW for a synthetic one.")
_PEAK = flags.DEFINE_float("peak_gflops", None,
                           "The device's peak FLOP rate; default: a large float32 matmul's "
                           "measured rate.")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object per measurement.")
_PROFILE_DIR = flags.DEFINE_string(
    "profile_dir", None, "--mode model: after timing, trace 3 more training steps and 3 more "
    "inference batches into this directory (jax.profiler; open perfetto_trace.json.gz "
    "in Perfetto, or the directory in TensorBoard) to see where the time goes, op by op.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "--mode export: also write each step's jax.export artifact (its "
    "serialized bytes) here, as <step>_<platform>_<dtype>.jax_exported, to load with "
    "jax.export.deserialize and run on that platform (docs/throughput.md).")


def device_description(devices=None) -> str:
  """The devices (default: all), their kind and the JAX version, for every result."""
  devices = jax.devices() if devices is None else list(devices)
  return f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform}), jax {jax.__version__}"


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int) -> float:
  """Median wall time of fn() (results blocked on) over `repeats` runs after `warmup`."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def trace(fn: Callable[[], object], name: str) -> None:
  """With --profile_dir, a profiler trace of 3 runs of fn() (untimed) in profile_dir/name."""
  if _PROFILE_DIR.value:
    with jax.profiler.trace(f"{_PROFILE_DIR.value}/{name}", create_perfetto_trace=True):
      for _ in range(3):
        jax.block_until_ready(fn())


def peak_memory_bytes() -> tuple[int, str]:
  """The accelerator's peak allocation, or on CPU the process's peak resident memory."""
  stats = jax.devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"]), "device peak"
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def matmul_gflops() -> float:
  """A 2048^3 float32 matmul's FLOP rate: the practical peak the model is compared with."""
  a = jnp.ones((2048, 2048), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  return 2 * 2048 ** 3 / median_seconds(lambda: matmul(a), 5, 2) / 1e9


def _flops(compiled) -> float:
  """XLA's FLOP count of one device's program (a shard of the batch, under a mesh)."""
  analysis = compiled.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return float(analysis["flops"])


def _model_and_state(config, mesh, bands: int, patch: int, dtype: str | None = None,
                     abstract: bool = False):
  """The config's model (in `dtype` where given) and its initial state."""
  kwargs = dict(config.model.kwargs)
  if dtype:
    kwargs["dtype"] = dtype
  model = steps.create_model(config.model.name, _CLASSES.value, **kwargs)
  state = steps.create_train_state(model, steps.make_optimizer(config), (patch, patch, bands),
                                   config.seed, mesh, abstract=abstract)
  return model, state


def _batch_sizes(config) -> tuple[list[int], list[int]]:
  """The training batch sizes and, one for each, the inference batch sizes."""
  batch_sizes = [int(b) for b in (_BATCH.value or [config.batch_size])]
  eval_sizes = [int(b) for b in (_EVAL_BATCH.value or [config.eval_batch_size] * len(batch_sizes))]
  if len(eval_sizes) != len(batch_sizes):
    raise app.UsageError("--eval_batch_size needs one value per --batch_size")
  return batch_sizes, eval_sizes


def bench_model(config) -> Iterator[dict]:
  """Train-step and inference throughput, compile time, FLOPs and memory per batch size."""
  bands = _BANDS.value or config.pca.components
  patch = _PATCH.value or config.patch_size
  batch_sizes, eval_sizes = _batch_sizes(config)
  peak = _PEAK.value or matmul_gflops()
  rng = np.random.default_rng(0)
  for batch_size, eval_size in zip(batch_sizes, eval_sizes):
    mesh = steps.make_mesh({"--batch_size": batch_size, "--eval_batch_size": eval_size})
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    model, state = _model_and_state(config, mesh, bands, patch)
    batch = {"patches": rng.normal(size=(batch_size, patch, patch, bands)).astype(np.float32),
             "labels": rng.integers(0, _CLASSES.value, batch_size).astype(np.int32)}
    batch = jax.device_put(batch, sharded)
    weights = jnp.ones(_CLASSES.value, jnp.float32)
    rate = np.float32(config.optimizer.learning_rate)

    start = time.perf_counter()
    train_step = steps.jit_train_step(mesh).lower(state, batch, weights, rate).compile()
    compile_s = time.perf_counter() - start
    train_flops = _flops(train_step) * mesh.size / batch_size

    def run_train():
      nonlocal state
      state, metrics = train_step(state, batch, weights, rate)
      return metrics
    train_s = median_seconds(run_train, _REPEATS.value, _WARMUP.value)
    train_peak, memory_kind = peak_memory_bytes()
    trace(run_train, f"train_batch{batch_size}")

    patches = jax.device_put(
        rng.normal(size=(eval_size, patch, patch, bands)).astype(np.float32), sharded)
    start = time.perf_counter()
    variables = steps.variables(state)
    predict = steps.jit_predict_step(model, mesh, with_features=False).lower(
        variables, patches).compile()
    infer_compile_s = time.perf_counter() - start
    infer_flops = _flops(predict) * mesh.size / eval_size
    infer_s = median_seconds(lambda: predict(variables, patches), _REPEATS.value, _WARMUP.value)
    trace(lambda: predict(variables, patches), f"inference_batch{eval_size}")
    peak_bytes, _ = peak_memory_bytes()

    train_rate, infer_rate = batch_size / train_s, eval_size / infer_s
    yield {
        "measurement": "model", "model": config.model.name,
        "dtype": config.model.kwargs.get("dtype", "float32"),
        "matmul_precision": config.matmul_precision,
        "bands": bands, "patch_size": patch,
        "batch_size": batch_size, "eval_batch_size": eval_size,
        "train_samples_per_s": train_rate, "infer_samples_per_s": infer_rate,
        "compile_s": compile_s, "infer_compile_s": infer_compile_s,
        "flops_per_sample": train_flops, "infer_flops_per_sample": infer_flops,
        "train_gflops": train_rate * train_flops / 1e9,
        "infer_gflops": infer_rate * infer_flops / 1e9,
        "peak_gflops": peak,
        "train_fraction_of_peak": train_rate * train_flops / 1e9 / peak,
        "infer_fraction_of_peak": infer_rate * infer_flops / 1e9 / peak,
        "train_peak_memory_bytes": train_peak, "peak_memory_bytes": peak_bytes,
        "memory_kind": memory_kind, "device": device_description(mesh.devices.flat)}


class FullSelfAttention(nn.Module):
  """The quadratic baseline of the same width: LayerNorm(x + MultiHeadAttention(x))."""

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    attention = layers.MultiHeadAttention(jnp.float32)(x, deterministic=not train)
    return layers.LayerNorm(jnp.float32)(x + attention)


def bench_scaling(config) -> Iterator[dict]:
  """Inference time, FLOPs and XLA's peak memory per sequence as T grows, latent vs full attention."""
  dim = config.model.kwargs.get("emb_dim", 256)
  batch = 4
  for t in (int(x) for x in _LENGTHS.value):
    row = {"measurement": "scaling", "bands": t, "emb_dim": dim,
           "num_latents": spectral.num_latents(t), "device": device_description()}
    x = jax.random.normal(jax.random.key(0), (batch, t, dim))
    for name, module in (("msla", spectral.MultiScaleSpectralLatentAttention()),
                         ("full", FullSelfAttention())):
      variables = jax.jit(lambda x: module.init(jax.random.key(1), x, train=False))(x[:1])
      compiled = jax.jit(lambda v, x: module.apply(v, x, train=False)).lower(variables, x).compile()
      seconds = median_seconds(lambda: compiled(variables, x), _REPEATS.value, _WARMUP.value)
      row[f"{name}_ms_per_sequence"] = 1e3 * seconds / batch
      row[f"{name}_xla_peak_bytes_per_sequence"] = (
          compiled.memory_analysis().peak_memory_in_bytes / batch)
      row[f"{name}_flops_per_sequence"] = _flops(compiled) / batch
    yield row


def bench_scene(config) -> Iterator[dict]:
  """Pixels per second and peak memory to classify every pixel of a scene, in batches."""
  bands = _BANDS.value or config.pca.components
  if "x" in _SCENE.value:
    height, width = (int(v) for v in _SCENE.value.split("x"))
    cube = np.random.default_rng(0).normal(size=(height, width, bands)).astype(np.float32)
  else:
    scene = data.load_scene(_SCENE.value)
    cube = data.fit_pca(scene.cube, bands).transform(scene.cube)
  batch_size = int((_EVAL_BATCH.value or [config.eval_batch_size])[0])
  mesh = steps.make_mesh({"--eval_batch_size": batch_size})
  model, state = _model_and_state(config, mesh, bands, config.patch_size)
  predict = steps.jit_predict_step(model, mesh, with_features=False)
  start = time.perf_counter()
  out = steps.predict_pixels(steps.variables(state), predict, mesh, cube, None,
                             patch_size=config.patch_size, batch_size=batch_size)
  jax.block_until_ready(out)
  seconds = time.perf_counter() - start  # includes one compilation, as a user's run does
  peak_bytes, memory_kind = peak_memory_bytes()
  pixels = cube.shape[0] * cube.shape[1]
  yield {"measurement": "scene", "scene": _SCENE.value, "height": cube.shape[0],
           "width": cube.shape[1], "bands": bands, "eval_batch_size": batch_size,
           "pixels_per_s": pixels / seconds, "seconds": seconds, "peak_memory_bytes": peak_bytes,
           "memory_kind": memory_kind, "device": device_description(mesh.devices.flat)}


def bench_export(config) -> Iterator[dict]:
  """Each platform's train and predict steps, lowered here: FLOPs, size, the CPU-only path.

  The steps are jit_train_step's and jit_predict_step's for one device (a module for one
  GPU or TPU chip), on an abstract state: no parameter is initialised, nothing compiled.
  """
  bands = _BANDS.value or config.pca.components
  patch = _PATCH.value or config.patch_size
  batch_sizes, eval_sizes = _batch_sizes(config)
  if len(batch_sizes) > 1:
    raise app.UsageError(f"--mode export takes one --batch_size and one --eval_batch_size (the "
                         f"artifacts' shapes), got {batch_sizes} and {eval_sizes}")
  (batch_size,), (eval_size,) = batch_sizes, eval_sizes
  mesh = steps.make_mesh({"--batch_size": batch_size, "--eval_batch_size": eval_size},
                         devices=jax.devices("cpu")[:1])
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  batch = {"patches": jax.ShapeDtypeStruct((batch_size, patch, patch, bands), jnp.float32,
                                           sharding=sharded),
           "labels": jax.ShapeDtypeStruct((batch_size,), jnp.int32, sharding=sharded)}
  weights = jax.ShapeDtypeStruct((_CLASSES.value,), jnp.float32, sharding=replicated)
  rate = jax.ShapeDtypeStruct((), jnp.float32, sharding=replicated)
  patches = jax.ShapeDtypeStruct((eval_size, patch, patch, bands), jnp.float32,
                                 sharding=sharded)
  for dtype in ("float32", "bfloat16"):
    model, state = _model_and_state(config, mesh, bands, patch, dtype, abstract=True)
    programs = {"train": (steps.jit_train_step(mesh), (state, batch, weights, rate), batch_size),
                "predict": (steps.jit_predict_step(model, mesh, with_features=False),
                            (steps.variables(state), patches), eval_size)}
    for platform in export.PLATFORMS:
      for name, (step, args, size) in programs.items():
        start = time.perf_counter()
        exported = export.export_step(step, platform, *args)
        export_s = time.perf_counter() - start
        serialized = exported.serialize()
        row = {"measurement": "export", "model": config.model.name, "platform": platform,
               "dtype": dtype, "step": name, "batch_size": size,
               "flops_per_sample": export.flops(exported) / size,
               "serialized_bytes": len(serialized),
               "cpu_kernel_grad_path": export.has_cpu_kernel_grad_path(exported),
               "export_s": export_s, "jax": jax.__version__}
        if _EXPORT_DIR.value:
          path = pathlib.Path(_EXPORT_DIR.value) / f"{name}_{platform}_{dtype}.jax_exported"
          path.parent.mkdir(parents=True, exist_ok=True)
          path.write_bytes(serialized)
          row["file"] = str(path)
        yield row


def _format(row: dict) -> str:
  return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in row.items() if k != "measurement")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  run = {"model": bench_model, "scaling": bench_scaling, "scene": bench_scene,
         "export": bench_export}[_MODE.value]
  precision.use(_CONFIG.value)
  jax.config.update("jax_enable_compilation_cache", False)  # compile_s: what a cold start pays
  for row in run(_CONFIG.value):  # each figure as soon as it is measured
    print(json.dumps(row) if _JSON.value else _format(row), flush=True)


if __name__ == "__main__":
  cli.run(main)
