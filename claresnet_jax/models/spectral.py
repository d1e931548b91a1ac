"""The spectral side of CLAReSNet: recurrences and multi-scale latent attention over band tokens.

Tokens are (B, T, D): one D-dimensional token per band. The number of latent tokens
is a Python int computed from the static T, so jit specialises per band count.
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from claresnet_jax.models.layers import Dense, LayerNorm, MultiHeadAttention, gelu
from claresnet_jax.models.layers import rnn_uniform_init

SCALES = (1, 2, 4)
MAX_BANDS = 5000  # rows of the authors' positional-encoding tables


def num_latents(num_bands: int) -> int:
  """Latent tokens for T bands: 16 * log2(T / 16), clamped to [8, 64] (the authors' rule)."""
  return min(max(int(16 * math.log2(max(num_bands, 16) / 16)), 8), 64)


class BidirectionalRNN(nn.Module):
  """A one-layer bidirectional LSTM or GRU with PyTorch's gate equations and layout.

  (B, T, D) -> (B, T, 2 * hidden): the forward and backward outputs of each step.
  Parameters are stacked over the two directions in PyTorch's layout: ``weight_ih``
  (2, G * hidden, D), ``weight_hh`` (2, G * hidden, hidden), ``bias_ih``/``bias_hh``
  (2, G * hidden), with gates i, f, g, o (LSTM) or r, z, n (GRU). The input
  projections of all steps and both directions are one matmul outside the scan; one
  scan then advances both directions together.
  """
  cell: str  # "lstm" or "gru"
  hidden: int
  dtype: Any = jnp.float32  # of the matmuls; the recurrent state stays float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    gates = {"lstm": 4, "gru": 3}[self.cell] * self.hidden
    init = rnn_uniform_init(self.hidden)
    w_ih = self.param("weight_ih", init, (2, gates, x.shape[-1]))
    w_hh = self.param("weight_hh", init, (2, gates, self.hidden))
    b_ih = self.param("bias_ih", init, (2, gates))
    b_hh = self.param("bias_hh", init, (2, gates))

    def matmul(spec, a, w):
      return jnp.einsum(spec, a.astype(self.dtype), w.astype(self.dtype),
                        preferred_element_type=jnp.float32)

    projected = matmul("btd,kgd->tkbg", x, w_ih) + b_ih[:, None, :]  # (T, 2, B, G)
    # The backward direction reads the sequence from its end.
    projected = jnp.stack([projected[:, 0], projected[::-1, 1]], axis=1)
    h0 = jnp.zeros((2, x.shape[0], self.hidden), jnp.float32)

    def lstm_step(carry, xt):
      h, c = carry
      z = xt + matmul("kbh,kgh->kbg", h, w_hh) + b_hh[:, None, :]
      i, f, g, o = jnp.split(z, 4, axis=-1)
      c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
      h = nn.sigmoid(o) * jnp.tanh(c)
      return (h, c), h

    def gru_step(h, xt):
      hh = matmul("kbh,kgh->kbg", h, w_hh) + b_hh[:, None, :]
      x_r, x_z, x_n = jnp.split(xt, 3, axis=-1)
      h_r, h_z, h_n = jnp.split(hh, 3, axis=-1)
      r = nn.sigmoid(x_r + h_r)
      z = nn.sigmoid(x_z + h_z)
      n = jnp.tanh(x_n + r * h_n)
      h = (1 - z) * n + z * h
      return h, h

    if self.cell == "lstm":
      _, ys = jax.lax.scan(lstm_step, (h0, h0), projected)
    else:
      _, ys = jax.lax.scan(gru_step, h0, projected)
    outputs = jnp.concatenate([ys[:, 0], ys[::-1, 1]], axis=-1)  # (T, B, 2 * hidden)
    return jnp.swapaxes(outputs, 0, 1).astype(x.dtype)


def sinusoidal_encoding(num_positions: int, dim: int) -> np.ndarray:
  """(num_positions, dim) sin/cos table of 'Attention is all you need', sin on even columns."""
  position = np.arange(num_positions, dtype=np.float32)[:, None]
  div = np.exp(np.arange(0, dim, 2, dtype=np.float32) * np.float32(-math.log(10000.0) / dim))
  table = np.zeros((num_positions, dim), np.float32)
  table[:, 0::2] = np.sin(position * div)
  table[:, 1::2] = np.cos(position * div)
  return table


def linear_upsampling_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) weights of PyTorch's 1-D linear interpolation with align_corners=False."""
  src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
  lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  frac = src - lo
  matrix = np.zeros((n_out, n_in), np.float32)
  np.add.at(matrix, (np.arange(n_out), lo), 1 - frac)
  np.add.at(matrix, (np.arange(n_out), hi), frac)
  return matrix


class HybridPositionalEncoding(nn.Module):
  """Adds [sinusoidal half | learnable half] positional codes to (B, T, D) tokens."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    t, dim = x.shape[1], x.shape[2]
    if t > MAX_BANDS:
      raise ValueError(f"{t} bands: the positional encoding covers at most {MAX_BANDS}")
    learnable = self.param("learnable_pe", nn.initializers.normal(0.02), (MAX_BANDS, dim // 2))
    fixed = jnp.asarray(sinusoidal_encoding(t, dim // 2))
    return x + jnp.concatenate([fixed, learnable[:t]], axis=-1).astype(x.dtype)


class MultiScaleSpectralLatentAttention(nn.Module):
  """Perceiver-style attention over bands at strides 1, 2 and 4, fused. (B, T, D) -> (B, T, D).

  At each scale, latent tokens attend to the (strided) input, attend to each other,
  pass an FFN, and are read back by the input; outputs are linearly upsampled to T
  and fused. A scale larger than T runs on the full sequence, as in the authors' code.
  """
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    b, t, dim = x.shape
    deterministic = not train
    dropout = lambda h: nn.Dropout(0.1, deterministic=deterministic)(h)
    pool = self.param("latent_token_pool", nn.initializers.normal(0.02), (64, dim))
    # Defined and counted by the authors but never used in their forward pass; kept so that
    # parameter counts and converted checkpoints match theirs.
    self.param("scale_weights", lambda key, shape: jnp.full(shape, 1 / len(SCALES)), (len(SCALES),))

    x_pos = HybridPositionalEncoding(name="pos_encoding")(x)
    count = num_latents(t)
    latents0 = jnp.broadcast_to(pool[:count], (b, count, dim)).astype(x.dtype)
    outputs = []
    for i, scale in enumerate(SCALES):
      strided = scale > 1 and t >= scale
      seq = x_pos[:, ::scale] if strided else x_pos
      latents = latents0
      attend = lambda name, q, kv: MultiHeadAttention(self.dtype, name=f"{name}_{i}")(
          q, kv, deterministic=deterministic)
      latents = LayerNorm(self.dtype, name=f"input_norms_{i}")(
          latents + attend("input_to_latent", latents, seq))
      latents = LayerNorm(self.dtype, name=f"latent_norms_{i}")(
          latents + attend("latent_self_attn", latents, latents))
      h = gelu(Dense(2 * dim, self.dtype, name=f"latent_ffns_{i}_0")(latents))
      h = Dense(dim, self.dtype, name=f"latent_ffns_{i}_3")(dropout(h))
      latents = latents + dropout(h)
      out = LayerNorm(self.dtype, name=f"output_norms_{i}")(
          seq + attend("latent_to_output", seq, latents))
      if strided:
        upsample = linear_upsampling_matrix(out.shape[1], t).astype(out.dtype)
        out = jnp.einsum("ts,bsd->btd", upsample, out)
      outputs.append(out)

    h = gelu(Dense(2 * dim, self.dtype, name="scale_fusion_0")(jnp.concatenate(outputs, axis=-1)))
    h = Dense(dim, self.dtype, name="scale_fusion_3")(dropout(h))
    return LayerNorm(self.dtype, name="final_norm")(dropout(h) + x_pos)


class SpectralEncoderLayer(nn.Module):
  """Residual BiLSTM, residual BiGRU, latent attention, then a x4 GELU FFN.

  (B, T, D) -> (B, T, D).
  """
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    dim = x.shape[-1]
    # PyTorch's one-layer LSTM/GRU ignore the authors' dropout=0.1, so there is none here.
    h = x + BidirectionalRNN("lstm", dim // 2, self.dtype, name="spectral_layers_0")(x)
    h = h + BidirectionalRNN("gru", dim // 2, self.dtype, name="spectral_layers_1")(h)
    h = MultiScaleSpectralLatentAttention(self.dtype, name="spectral_attention")(h, train)
    x = LayerNorm(self.dtype, name="norm1")(x + h)
    h = gelu(Dense(4 * dim, self.dtype, name="ffn_0")(x))
    h = Dense(dim, self.dtype, name="ffn_3")(nn.Dropout(0.1, deterministic=not train)(h))
    return LayerNorm(self.dtype, name="norm2")(x + h)
