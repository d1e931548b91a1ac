"""SpectralFormer (Hong et al., TGRS 2022), patch-wise: a transformer over bands.

A comparison baseline. Each band is a token (group-wise spectral embedding:
the patch's neighbouring bands, flattened); cross-layer adaptive fusion mixes
each layer's input with the input two layers back. Sizes follow the authors'
code (dim 64, depth 5, 4 heads of 16, MLP 8, dropout 0.1).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

_LN_EPSILON = 1e-5  # PyTorch's LayerNorm default, as in the authors' model.


class _Attention(nn.Module):
  """Multi-head self-attention: bias-free q, k, v projections, as the authors'."""
  heads: int
  dim_head: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    batch, tokens, dim = x.shape
    qkv = nn.Dense(3 * self.heads * self.dim_head, use_bias=False)(x)
    q, k, v = jnp.split(
        qkv.reshape(batch, tokens, 3 * self.heads, self.dim_head), 3, axis=2)
    out = jax.nn.dot_product_attention(q, k, v).reshape(batch, tokens, -1)
    out = nn.Dense(dim)(out)
    return nn.Dropout(self.dropout, deterministic=not train)(out)


class _FeedForward(nn.Module):
  hidden: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=not train)
    y = drop(nn.gelu(nn.Dense(self.hidden)(x), approximate=False))
    return drop(nn.Dense(x.shape[-1])(y))


class _CrossLayerFusion(nn.Module):
  """CAF: each output token is a learned mix of all tokens of both inputs.

  The authors' 1x2 convolution with tokens as channels, written as a dense
  layer over the token axis (same weights: 2N x N plus N biases).
  """

  @nn.compact
  def __call__(self, x: jax.Array, earlier: jax.Array) -> jax.Array:
    both = jnp.concatenate([x, earlier], axis=1)  # (B, 2N, dim)
    mixed = nn.Dense(x.shape[1])(jnp.swapaxes(both, 1, 2))
    return jnp.swapaxes(mixed, 1, 2)


class _Encoder(nn.Module):
  """Spectral tokens -> transformer with CAF -> the class token, (B, dim)."""
  dim: int
  depth: int
  heads: int
  dim_head: int
  mlp_dim: int
  near_band: int
  dropout: float
  emb_dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    batch, _, _, bands = x.shape
    # Group-wise spectral embedding: band i's token holds bands
    # i - near_band // 2 ... i + near_band // 2 of the whole patch, wrapping
    # around the spectrum's ends as the authors' code does.
    half = self.near_band // 2
    groups = jnp.stack(
        [jnp.roll(x, half - k, axis=-1) for k in range(self.near_band)], axis=3)
    tokens = groups.transpose(0, 4, 3, 1, 2).reshape(batch, bands, -1)
    tokens = nn.Dense(self.dim)(tokens)

    cls = self.param("cls_token", nn.initializers.normal(1.0), (1, 1, self.dim))
    x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, self.dim)), tokens], 1)
    x = x + self.param("pos_embedding", nn.initializers.normal(1.0),
                       (1, bands + 1, self.dim))
    x = nn.Dropout(self.emb_dropout, deterministic=not train)(x)

    inputs = []
    for layer in range(self.depth):
      inputs.append(x)
      if layer >= 2:
        x = _CrossLayerFusion()(x, inputs[layer - 2])
      y = nn.LayerNorm(epsilon=_LN_EPSILON)(x)
      x = x + _Attention(self.heads, self.dim_head, self.dropout)(y, train)
      y = nn.LayerNorm(epsilon=_LN_EPSILON)(x)
      x = x + _FeedForward(self.mlp_dim, self.dropout)(y, train)
    return x[:, 0]


class SpectralFormer(nn.Module):
  """Patch-wise SpectralFormer with GSE and CAF.

  Input `(batch, height, width, bands)`; logits `(batch, num_classes)`;
  `features` is the class token's final state, `(batch, dim)`.
  """
  num_classes: int
  dim: int = 64
  depth: int = 5
  heads: int = 4
  dim_head: int = 16
  mlp_dim: int = 8
  near_band: int = 3
  dropout: float = 0.1
  emb_dropout: float = 0.1

  def setup(self):
    self.encoder = _Encoder(self.dim, self.depth, self.heads, self.dim_head,
                            self.mlp_dim, self.near_band, self.dropout,
                            self.emb_dropout)
    self.norm = nn.LayerNorm(epsilon=_LN_EPSILON)
    self.head = nn.Dense(self.num_classes)

  def check_input(self, patch_size: int, bands: int) -> None:
    """Raises ValueError unless every band has `near_band` distinct neighbours."""
    if patch_size < 1 or bands < self.near_band:
      raise ValueError(
          f"SpectralFormer needs patch_size >= 1 and bands >= near_band="
          f"{self.near_band} (its group-wise spectral embedding); got "
          f"patch_size={patch_size}, bands={bands}.")

  def features(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(x, train)

  def classify(self, features: jax.Array, train: bool = False) -> jax.Array:
    del train
    return self.head(self.norm(features))

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.classify(self.features(x, train), train)
