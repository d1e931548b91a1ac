"""The jitted steps as jax.export artifacts for the CPU, NVIDIA GPUs (cuda) and TPUs.

jax.export lowers a step for a platform without its devices, so a CPU-only machine (CI)
can check what a GPU or TPU would be given, and write the module for one to run.
"""
import dataclasses

import jax
from jax.extend import mlir
from jax.extend.mlir import ir

from claresnet_jax.models import layers

PLATFORMS = ("cpu", "cuda", "tpu")


def export_step(step, platform: str, *args) -> jax.export.Exported:
  """The jitted `step` on `args` (arrays or ShapeDtypeStructs with their shardings),
  lowered for `platform`, with the shardings and donation the jit gives.

  The artifact takes the leaves of `args` in jax.tree.leaves order and returns a tuple of
  the leaves of the step's outputs: jax.export serializes only trees of types registered
  with it, and a TrainState holds the model's functions.
  """
  exported = jax.export.export(step, platforms=[platform])(*args)
  return dataclasses.replace(
      exported, in_tree=jax.tree.structure(((0,) * len(exported.in_avals), {})),
      out_tree=jax.tree.structure((0,) * len(exported.out_avals)))


def flops(exported: jax.export.Exported) -> float:
  """XLA's FLOP count of the exported module: the CPU client's HloCostAnalysis of its HLO
  as lowered, before any compiler pass of any backend (GPU clients have no such analysis)."""
  cpu = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
  args = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=cpu) for a in exported.in_avals]
  lowered = jax.jit(exported.call).trace(*args).lower(lowering_platforms=exported.platforms)
  return float(lowered.cost_analysis()["flops"])


def module_text(exported: jax.export.Exported) -> str:
  """The exported StableHLO with each operation's location (its JAX name scope), which
  Exported.mlir_module() leaves out under JAX_INCLUDE_DEBUG_INFO_IN_DUMPS=false."""
  with ir.Context():
    module = mlir.deserialize_portable_artifact(exported.mlir_module_serialized)
    return module.operation.get_asm(enable_debug_info=True)


def has_cpu_kernel_grad_path(exported: jax.export.Exported) -> bool:
  """Whether the module computes convolution kernel gradients as one matmul, the path
  `layers.same_conv` takes on the CPU only: GPU and TPU modules must keep XLA's."""
  return f"/{layers.KERNEL_GRAD_SCOPE}/" in module_text(exported)
