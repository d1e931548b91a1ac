"""The per-band spatial CNN of CLAReSNet: every band of a patch becomes one token.

Submodule names follow the authors' PyTorch attribute names (``branch3_0`` for
``branch3.0``) so that converting their weights is a renaming, see ``convert.py``.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from claresnet_jax.models.layers import BatchNorm, Conv, Dense, LayerNorm, gelu


class SqueezeExcite(nn.Module):
  """Channel attention from average- and max-pooled statistics (the authors' EnhancedSEBlock).

  (N, H, W, C) -> (N, H, W, C).
  """
  reduction: int = 16
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    channels = x.shape[-1]
    pooled = jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=-1)
    hidden = max(channels // self.reduction, 8)
    h = gelu(Dense(hidden, self.dtype, use_bias=False, name="fc_0")(pooled))
    h = nn.Dropout(0.1, deterministic=not train)(h)
    weights = nn.sigmoid(Dense(channels, self.dtype, use_bias=False, name="fc_3")(h))
    return x * weights[:, None, None, :]


class MultiScaleStem(nn.Module):
  """Parallel 1x1, 3x3, 5x5 and 7x7 conv-BN-GELU branches, concatenated, then SE.

  (N, H, W, 1) -> (N, H, W, channels).
  """
  channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    branches = []
    for k in (1, 3, 5, 7):
      h = Conv(self.channels // 4, k, self.dtype, name=f"branch{k}_0")(x)
      branches.append(gelu(BatchNorm(train, self.dtype, name=f"branch{k}_1")(h)))
    h = jnp.concatenate(branches, axis=-1)
    return SqueezeExcite(dtype=self.dtype, name="attention")(h, train)


class DilatedResidualBlock(nn.Module):
  """conv-BN-GELU-dropout-dilated conv-BN-SE, residual add, GELU. Shape-preserving."""
  dilation: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    channels = x.shape[-1]
    h = Conv(channels, 3, self.dtype, name="conv1")(x)
    h = gelu(BatchNorm(train, self.dtype, name="bn1")(h))
    # nn.Dropout2d: whole feature maps are dropped.
    h = nn.Dropout(0.1, broadcast_dims=(1, 2), deterministic=not train)(h)
    h = BatchNorm(train, self.dtype, name="bn2")(
        Conv(channels, 3, self.dtype, self.dilation, name="conv2")(h))
    h = SqueezeExcite(dtype=self.dtype, name="se")(h, train)
    return gelu(x + h)


class SpatialAttention(nn.Module):
  """The authors' EnhancedCBAM: SE, then a spatial map from the mean, max, unbiased std
  and min over channels through two 7x7 convolutions. Shape-preserving."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = SqueezeExcite(dtype=self.dtype, name="channel_attention")(x, train)
    stats = jnp.stack(
        [x.mean(-1), x.max(-1), x.std(-1, ddof=1), x.min(-1)], axis=-1)
    h = Conv(2, 7, self.dtype, name="spatial_conv_0")(stats)
    h = gelu(BatchNorm(train, self.dtype, name="spatial_conv_1")(h))
    weights = nn.sigmoid(Conv(1, 7, self.dtype, name="spatial_conv_3")(h))
    return x * weights


class SpatialFeatureExtractor(nn.Module):
  """One shared CNN over every band: (B, H, W, T) patches -> (B, T, emb_dim) tokens."""
  emb_dim: int
  base_channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    b, height, width, t = x.shape
    images = jnp.moveaxis(x, -1, 1).reshape(b * t, height, width, 1)
    h = MultiScaleStem(self.base_channels, self.dtype, name="stem")(images, train)
    for i in range(4):
      h = DilatedResidualBlock(i + 1, self.dtype, name=f"stages_{i}")(h, train)
    h = SpatialAttention(self.dtype, name="attention")(h, train)
    h = jnp.concatenate([h.mean(axis=(1, 2)), h.max(axis=(1, 2))], axis=-1)
    h = Dense(self.emb_dim, self.dtype, name="frame_proj_0")(h)
    h = LayerNorm(self.dtype, name="frame_proj_1")(h)
    return h.reshape(b, t, self.emb_dim)
