"""CLAReSNet: per-band CNN tokens, spectral encoder layers, cross-layer fusion, classifier head."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from claresnet_jax.models.layers import Dense, LayerNorm, MultiHeadAttention, gelu
from claresnet_jax.models.spatial import SpatialFeatureExtractor
from claresnet_jax.models.spectral import SpectralEncoderLayer

DTYPES = ("float32", "bfloat16")  # computation dtypes; parameters are float32 either way


def check_dtype(dtype: Any, name: str = "dtype") -> None:
  """Raises ValueError, naming `name`, unless CLAReSNet computes in `dtype`.

  float16 is refused: its gradients underflow without loss scaling, which training lacks.
  """
  try:
    kind = jnp.dtype(dtype).name
  except TypeError:  # not a dtype at all
    kind = None
  if kind == "float16":
    raise ValueError(f"{name}={dtype!r}: float16 needs loss scaling, which training does not "
                     "do; use 'bfloat16' (float32's range) for mixed precision")
  if kind not in DTYPES:
    raise ValueError(f"{name}={dtype!r}: use 'float32', or 'bfloat16' for mixed precision")


class CLAReSNet(nn.Module):
  """Classifies (B, H, W, T) patches (T bands after PCA) into ``num_classes`` logits.

  Attribute and parameter names mirror the authors' PyTorch model (``head_2`` is
  their ``head.2``), so their checkpoints convert by renaming (``convert.py``).
  ``dtype`` is the computation dtype: "bfloat16" runs mixed precision (parameters, norm
  statistics, the recurrent state, attention softmaxes, features and logits stay float32).
  """
  num_classes: int
  emb_dim: int = 256
  base_channels: int = 64
  num_layers: int = 3
  dropout: float = 0.5
  dtype: Any = "float32"

  def setup(self):
    if self.emb_dim % 8:
      raise ValueError(
          f"emb_dim={self.emb_dim} must be divisible by 8: 8 attention heads share it, and "
          "the positional encoding's sinusoidal half needs an even width")
    if self.base_channels % 4 or self.base_channels < 8:
      raise ValueError(
          f"base_channels={self.base_channels} must be a multiple of 4 (the stem's four "
          "branches) and at least 8")
    check_dtype(self.dtype)
    if self.num_layers < 1 or self.num_classes < 2:
      raise ValueError(
          f"need num_layers >= 1 and num_classes >= 2, got {self.num_layers} and "
          f"{self.num_classes}")
    dtype = jnp.dtype(self.dtype)
    self.spatial_extractor = SpatialFeatureExtractor(self.emb_dim, self.base_channels, dtype)
    self.encoder_layers = [SpectralEncoderLayer(dtype) for _ in range(self.num_layers)]
    if self.num_layers > 1:
      self.cross_attn = MultiHeadAttention(dtype)
      self.cross_norm = LayerNorm(dtype)
    self.head_0 = LayerNorm(dtype)
    self.head_1 = nn.Dropout(self.dropout)
    self.head_2 = Dense(self.emb_dim // 2, dtype)
    self.head_4 = nn.Dropout(self.dropout * 0.5)
    self.head_5 = Dense(self.num_classes, jnp.float32)

  def features(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """(B, H, W, T) patches -> (B, emb_dim) fused features, the input of the head."""
    _check_patches(x)
    tokens = self.spatial_extractor(x.astype(self.dtype), train)
    summaries = []
    for layer in self.encoder_layers:
      tokens = layer(tokens, train) + tokens
      summaries.append(tokens.mean(axis=1))
    if self.num_layers == 1:
      return summaries[0].astype(jnp.float32)
    stack = jnp.stack(summaries, axis=1)  # (B, num_layers, D)
    fused = self.cross_attn(stack[:, -1:], stack, deterministic=not train)[:, 0]
    return self.cross_norm(fused + summaries[-1]).astype(jnp.float32)

  def classify(self, features: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """(B, emb_dim) features -> (B, num_classes) logits: the head."""
    h = self.head_1(self.head_0(features), deterministic=not train)
    h = self.head_4(gelu(self.head_2(h)), deterministic=not train)
    return self.head_5(h)

  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """(B, H, W, T) patches -> (B, num_classes) logits."""
    return self.classify(self.features(x, train), train)


def _check_patches(x) -> None:
  if x.ndim != 4:
    raise ValueError(
        f"CLAReSNet takes patches of shape (batch, height, width, bands), got shape {x.shape}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"CLAReSNet takes floating-point patches, got dtype {x.dtype}")
