"""SpectralFormer at its authors' input and settings on Hong et al.'s fixed Indian Pines split.

The split and protocol of ip_fixed.py (695 training pixels, the last epoch
tested on 9,671), with the patch-wise SpectralFormer as the authors' demo.py
trains it: all 200 bands, each scaled on the whole image (they min-max scale,
here standardised: the same per-band affine map up to its constants), 7x7
patches, no augmentation, batch 64, 5e-4, weight decay 5e-3. Their Adam adds
the decay to the gradient and steps the rate down by 0.9 every tenth of the
run; ours is AdamW at a constant rate. configs/compare_ip_fixed.py trains the
same model on CLAReSNet's input (30 PCA components, 11x11 patches) instead;
docs/indian_pines.md sets the two side by side.
"""
from configs import baselines
from configs import ip_fixed


def get_config():
  config = ip_fixed.get_config()
  spectralformer = baselines.get_config().spectralformer
  config.model.name = "spectralformer"
  config.model.kwargs = spectralformer.kwargs
  config.update(spectralformer.train)
  config.pca.components = 0
  config.pca.standardize = True
  config.patch_size = 7
  config.augment = False
  config.num_epochs = 300
  config.patience = 300
  config.eval_every_epochs = 50
  return config
