"""HybridSN (Roy et al., GRSL 2020): 3-D convolutions, then a 2-D convolution.

A comparison baseline, built layer for layer as the paper's Keras model
(no BatchNorm, valid padding, Glorot-uniform kernels as in Keras).
"""
import flax.linen as nn
import jax

# (features, (height, width, bands)) of the three 3-D convolutions.
_CONV3D = ((8, (3, 3, 7)), (16, (3, 3, 5)), (32, (3, 3, 3)))
_CONV2D_FEATURES = 64
_HIDDEN = (256, 128)


class HybridSN(nn.Module):
  """Spectral-spatial 3-D convolutions, a spatial 2-D convolution, two dense layers.

  Input `(batch, height, width, bands)`; logits `(batch, num_classes)`;
  `features` is the 128-d output of the last hidden dense layer.
  """
  num_classes: int
  dropout: float = 0.4

  def setup(self):
    init = nn.initializers.xavier_uniform()
    self.conv3d = [
        nn.Conv(f, k, padding="VALID", kernel_init=init) for f, k in _CONV3D
    ]
    self.conv2d = nn.Conv(
        _CONV2D_FEATURES, (3, 3), padding="VALID", kernel_init=init)
    self.hidden = [nn.Dense(h, kernel_init=init) for h in _HIDDEN]
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.num_classes, kernel_init=init)

  @staticmethod
  def check_input(patch_size: int, bands: int) -> None:
    """Raises ValueError unless the valid convolutions leave at least one voxel."""
    min_patch = 1 + 2 * (len(_CONV3D) + 1)
    min_bands = 1 + sum(k[2] - 1 for _, k in _CONV3D)
    if patch_size < min_patch or bands < min_bands:
      raise ValueError(
          f"HybridSN needs patch_size >= {min_patch} and bands >= {min_bands} "
          f"(its valid 3x3 convolutions and 7/5/3-deep spectral kernels); got "
          f"patch_size={patch_size}, bands={bands}.")

  def features(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x[..., None]  # (B, H, W, bands, 1): the spectrum is a third conv axis.
    for conv in self.conv3d:
      x = nn.relu(conv(x))
    x = x.reshape(x.shape[:3] + (-1,))  # Fold (bands, features) into channels.
    x = nn.relu(self.conv2d(x))
    x = x.reshape(x.shape[0], -1)
    for dense in self.hidden:
      x = self.drop(nn.relu(dense(x)), deterministic=not train)
    return x

  def classify(self, features: jax.Array, train: bool = False) -> jax.Array:
    del train
    return self.head(features)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.classify(self.features(x, train), train)
