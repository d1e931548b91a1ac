"""The numerics a config asks for: the model's computation dtype and the matmul precision.

`config.model.kwargs.dtype`: "float32", or "bfloat16" for mixed precision (CLAReSNet
only; parameters, optimizer state, logits and loss stay float32). `config.matmul_precision`:
"default", "high" or "highest", JAX's precision for the float32 matmuls and convolutions of
every program compiled after `use` (jax.lax.Precision). On NVIDIA GPUs from Ampere on,
"default" and "high" run them in TF32 (a 10-bit mantissa) and "highest" in float32; on TPUs
in 1, 3 and 6 bfloat16 passes; the CPU computes float32 whatever the setting. A workdir
saved before these keys existed ran with "float32" and "default", which their absence means.
"""
import jax
import ml_collections

from claresnet_jax import models
from claresnet_jax.models import claresnet

MATMUL_PRECISIONS = ("default", "high", "highest")


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError on a dtype or matmul precision the run cannot use.

  Cheap: commands call it (through `use`) before loading data or compiling.
  """
  kwargs = config.model.kwargs
  model = models.MODELS.get(config.model.name)
  if "dtype" in kwargs and model is not None and "dtype" not in model.__dataclass_fields__:
    raise ValueError(f"config.model.kwargs.dtype={kwargs.dtype!r}: {config.model.name} takes "
                     "no dtype and computes in float32; mixed precision is CLAReSNet's")
  claresnet.check_dtype(kwargs.get("dtype", "float32"), "config.model.kwargs.dtype")
  precision = config.get("matmul_precision", "default")
  if precision not in MATMUL_PRECISIONS:
    raise ValueError(f"config.matmul_precision={precision!r}: use 'default', 'high' or "
                     "'highest' (float32 matmuls in float32 on GPUs and TPUs)")


def use(config: ml_collections.ConfigDict) -> None:
  """`check`, then sets JAX's default matmul precision to the config's.

  "default" clears JAX's setting, so that a process running several configs (compare, the
  tests) never keeps an earlier one's.
  """
  check(config)
  precision = config.get("matmul_precision", "default")
  jax.config.update("jax_default_matmul_precision",
                    None if precision == "default" else precision)
