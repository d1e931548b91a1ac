"""Models by name: CLAReSNet and the baselines it is compared with.

Each maps (B, H, W, bands) patches to logits as `classify(features(x))`, so that one
forward pass gives both the embedding and the logits.
"""
import flax.linen as nn

from claresnet_jax.models import hybridsn, spectralformer, ssrn
from claresnet_jax.models.claresnet import CLAReSNet

MODELS: dict[str, type[nn.Module]] = {
    "claresnet": CLAReSNet,
    "hybridsn": hybridsn.HybridSN,
    "ssrn": ssrn.SSRN,
    "spectralformer": spectralformer.SpectralFormer,
}


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
  """The registered model ``name`` for ``num_classes`` classes; kwargs are its attributes."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
  return MODELS[name](num_classes=num_classes, **kwargs)
