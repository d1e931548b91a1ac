"""SSRN (Zhong et al., TGRS 2018): spectral, then spatial, residual 3-D blocks.

A comparison baseline with the paper's layout: a strided 1x1x7 convolution,
two spectral residual blocks, a convolution spanning the whole spectrum, a
3x3 convolution, two spatial residual blocks, average pooling, a dense head.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

_FILTERS = 24
_SPECTRAL_KERNEL = 7
_SPECTRAL_STRIDE = 2
_REDUCED_BANDS = 128  # Filters of the convolution that spans the whole spectrum.


def _batch_norm(train: bool) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, epsilon=1e-3)  # Keras's epsilon.


class _ResidualBlock(nn.Module):
  """conv-BN-ReLU-conv-BN plus the identity, then ReLU (the paper's block)."""
  kernel: tuple[int, ...]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = functools.partial(nn.Conv, x.shape[-1], self.kernel, padding="SAME",
                             kernel_init=nn.initializers.he_normal())
    y = nn.relu(_batch_norm(train)(conv()(x)))
    y = _batch_norm(train)(conv()(y))
    return nn.relu(x + y)


class _Trunk(nn.Module):
  """Everything before the head: (B, H, W, bands) -> (B, 24)."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    init = nn.initializers.he_normal()
    # Spectral learning on (B, H, W, bands, filters): kernels span one pixel.
    x = nn.Conv(_FILTERS, (1, 1, _SPECTRAL_KERNEL),
                strides=(1, 1, _SPECTRAL_STRIDE), padding="VALID",
                kernel_init=init)(x[..., None])
    x = nn.relu(_batch_norm(train)(x))
    for _ in range(2):
      x = _ResidualBlock((1, 1, _SPECTRAL_KERNEL))(x, train)
    # A kernel as deep as the remaining spectrum: one 128-vector per pixel.
    x = nn.Conv(_REDUCED_BANDS, (1, 1, x.shape[3]), padding="VALID",
                kernel_init=init)(x)
    x = nn.relu(_batch_norm(train)(x))
    # The paper's 3x3x128 kernel over that vector is a 2-D convolution with
    # 128 input channels; the spatial blocks' 3x3x1 kernels likewise.
    x = x[:, :, :, 0, :]
    x = nn.Conv(_FILTERS, (3, 3), padding="VALID", kernel_init=init)(x)
    x = nn.relu(_batch_norm(train)(x))
    for _ in range(2):
      x = _ResidualBlock((3, 3))(x, train)
    return jnp.mean(x, axis=(1, 2))


class SSRN(nn.Module):
  """Spectral-spatial residual network.

  Input `(batch, height, width, bands)`; logits `(batch, num_classes)`;
  `features` is the 24-d average-pooled spectral-spatial feature.
  """
  num_classes: int
  dropout: float = 0.5

  def setup(self):
    self.trunk = _Trunk()
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.num_classes,
                         kernel_init=nn.initializers.he_normal())

  @staticmethod
  def check_input(patch_size: int, bands: int) -> None:
    """Raises ValueError unless the spectral and valid 3x3 convolutions fit."""
    if patch_size < 3 or bands < _SPECTRAL_KERNEL:
      raise ValueError(
          f"SSRN needs patch_size >= 3 (one valid 3x3 convolution) and bands >= "
          f"{_SPECTRAL_KERNEL} (its 1x1x{_SPECTRAL_KERNEL} spectral kernel); got "
          f"patch_size={patch_size}, bands={bands}.")

  def features(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.trunk(x, train)

  def classify(self, features: jax.Array, train: bool = False) -> jax.Array:
    return self.head(self.drop(features, deterministic=not train))

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.classify(self.features(x, train), train)
