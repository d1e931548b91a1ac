"""Layer settings shared by every CLAReSNet module, matching the authors' PyTorch defaults.

PyTorch and Flax disagree on several defaults (GELU approximation, norm epsilons,
BatchNorm momentum, initialisers); these helpers pin PyTorch's so that converted
weights compute the same function and fresh weights start from the same distributions.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def gelu(x: jax.Array) -> jax.Array:
  """torch.nn.GELU: the exact x * Phi(x), in PyTorch's erf form.

  flax's default is the tanh approximation. jax.nn.gelu's exact form computes
  erfc instead; with erf the paper model's CPU inference rose from 89.6-94.0 to
  97.0-98.9 samples/s (BENCHMARKS.md).
  """
  return 0.5 * x * (1 + jax.lax.erf(x * np.sqrt(0.5).astype(x.dtype)))


# The authors initialise every nn.Linear with trunc_normal(std=0.02) and zero bias.
linear_init = nn.initializers.truncated_normal(stddev=0.02)

# torch.nn.Conv2d default: kaiming_uniform(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in)).
conv_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")

# torch.nn.MultiheadAttention initialises its packed (3D, D) in-projection with
# xavier_uniform: variance 2 / (D + 3D) = 1 / (2D) for each of q, k, v (flax hands the
# initialiser the flattened (D, D) kernel).
attention_in_init = nn.initializers.variance_scaling(0.5, "fan_in", "uniform")


# Every factory takes the computation dtype: float32, or bfloat16 for mixed precision on
# accelerators. Parameters stay float32 either way; norms compute their statistics in float32.

def Dense(features: int, dtype, use_bias: bool = True, name: str | None = None) -> nn.Dense:
  """A Linear layer initialised as the authors initialise theirs."""
  return nn.Dense(features, use_bias=use_bias, kernel_init=linear_init, dtype=dtype, name=name)


def LayerNorm(dtype, name: str | None = None) -> nn.LayerNorm:
  """torch.nn.LayerNorm: epsilon 1e-5."""
  return nn.LayerNorm(epsilon=1e-5, dtype=dtype, name=name)


def BatchNorm(train: bool, dtype, name: str | None = None) -> nn.BatchNorm:
  """torch.nn.BatchNorm2d: epsilon 1e-5, running statistics updated with momentum 0.1."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                      name=name)


def Conv(features: int, kernel: int, dtype, dilation: int = 1, name: str | None = None
         ) -> nn.Conv:
  """A bias-free 'same' convolution, as every convolution of the model is."""
  pad = dilation * (kernel // 2)
  return nn.Conv(features, (kernel, kernel), padding=((pad, pad), (pad, pad)),
                 kernel_dilation=dilation, use_bias=False, kernel_init=conv_init, dtype=dtype,
                 name=name, conv_general_dilated=_conv_with_fast_cpu_kernel_grad)


def _conv_with_fast_cpu_kernel_grad(lhs, rhs, window_strides, padding, lhs_dilation,
                                    rhs_dilation, dimension_numbers, feature_group_count,
                                    precision):
  """nn.Conv's convolution for `Conv`: the same function, with `same_conv`'s gradient."""
  del dimension_numbers, precision  # Conv's: NHWC/HWIO and the default.
  dilation = rhs_dilation[0]
  same = ((dilation * (rhs.shape[0] // 2),) * 2,) * 2
  if (tuple(window_strides) != (1, 1) or tuple(lhs_dilation) != (1, 1)
      or feature_group_count != 1 or tuple(rhs_dilation) != (dilation, dilation)
      or tuple(map(tuple, padding)) != same):
    raise NotImplementedError("same_conv is a square, 'same', unit-stride, ungrouped convolution")
  return same_conv(lhs, rhs, dilation)


def _same_conv(x: jax.Array, kernel: jax.Array, dilation: int) -> jax.Array:
  """(N, H, W, C) x (k, k, C, D) -> (N, H, W, D), zero-padded to keep H and W (k odd)."""
  pad = dilation * (kernel.shape[0] // 2)
  return jax.lax.conv_general_dilated(
      x, kernel, (1, 1), ((pad, pad), (pad, pad)), rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def same_conv(x: jax.Array, kernel: jax.Array, dilation: int) -> jax.Array:
  """`_same_conv`, whose kernel gradient on the CPU is one matmul instead of XLA's convolution.

  XLA:CPU computes a kernel gradient as a convolution with an H x W window over the
  batch, 3.4x slower than the forward convolution of the same FLOPs; as a matmul, the
  paper model trained 1.3x as fast on a 2-core CPU (BENCHMARKS.md). Other platforms
  keep XLA's own gradient.
  """
  return _same_conv(x, kernel, dilation)


def _same_conv_fwd(x, kernel, dilation):
  return _same_conv(x, kernel, dilation), (x, kernel)


def _same_conv_bwd(dilation, residuals, dy):
  x, kernel = residuals
  _, vjp = jax.vjp(functools.partial(_same_conv, dilation=dilation), x, kernel)
  input_grad, xla_kernel_grad = vjp(dy)  # XLA drops the kernel gradient it does not use.
  kernel_grad = jax.lax.platform_dependent(
      x, dy, cpu=functools.partial(_kernel_grad_as_matmul, size=kernel.shape[0],
                                   dilation=dilation),
      default=lambda x, dy: xla_kernel_grad)
  return input_grad, kernel_grad


same_conv.defvjp(_same_conv_fwd, _same_conv_bwd)


# The name scope of `_kernel_grad_as_matmul`'s operations. It stays in their locations through
# lowering and jax.export, so a program's text shows whether it has this CPU-only path.
KERNEL_GRAD_SCOPE = "kernel_grad_as_matmul"


@jax.named_scope(KERNEL_GRAD_SCOPE)
def _kernel_grad_as_matmul(x: jax.Array, dy: jax.Array, size: int, dilation: int
                           ) -> jax.Array:
  """d loss / d kernel of `_same_conv` as one (size C) x (size D) matmul over N H W.

  Tap (a, b) pairs x shifted by b dilations along W (the columns, as size copies of x)
  with dy shifted against it by a dilations along H (the rows, as size copies of dy);
  the zero padding that both shifts move in gives exactly the convolution's sum.
  """
  n, height, width, channels = x.shape
  pad = dilation * (size // 2)
  x = jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (0, 0)))
  x_by_column = jnp.concatenate(
      [x[:, :, b * dilation:b * dilation + width] for b in range(size)], axis=-1)
  dy = jnp.pad(dy, ((0, 0), (pad, pad), (0, 0), (0, 0)))
  dy_by_row = jnp.concatenate(
      [dy[:, 2 * pad - a * dilation:2 * pad - a * dilation + height] for a in range(size)],
      axis=-1)
  grad = x_by_column.reshape(-1, size * channels).T @ dy_by_row.reshape(n * height * width, -1)
  # (b, C) x (a, D) -> (a, b, C, D), the kernel's HWIO layout.
  return grad.reshape(size, channels, size, -1).transpose(2, 0, 1, 3)


def MultiHeadAttention(dtype, name: str | None = None) -> nn.MultiHeadDotProductAttention:
  """torch.nn.MultiheadAttention(D, num_heads=8, dropout=0.1): per-weight attention dropout."""
  return nn.MultiHeadDotProductAttention(
      num_heads=8, dropout_rate=0.1, broadcast_dropout=False, force_fp32_for_softmax=True,
      kernel_init=attention_in_init, out_kernel_init=linear_init, dtype=dtype, name=name)


def rnn_uniform_init(hidden: int) -> jax.nn.initializers.Initializer:
  """torch.nn.LSTM/GRU initialise every weight and bias with U(+-1/sqrt(hidden))."""
  bound = hidden ** -0.5
  return lambda key, shape, dtype=jax.numpy.float32: jax.random.uniform(
      key, shape, dtype, -bound, bound)
