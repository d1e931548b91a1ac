"""The embedded default: the bundled Salinas-A scene on the paper split, minutes on a 2-core CPU.

Reduced from the paper's protocol, by measurement (docs/training.md, "The
embedded default on a 2-core CPU"): 15 PCA components (99.98% of the variance) and 7x7 patches
instead of 30 and 11x11, and a 64-wide, 2-layer CLAReSNet. Training
settings that converge in a few epochs: standardised components, AdamW at
1e-3 with a one-epoch warmup and cosine decay over at most 15 epochs,
gradients clipped to norm 1 (without it this rate is unstable), batch 32,
class weights, early stopping after 3 epochs without a better validation
accuracy.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.scene = "salinas_a"
  config.pca.components = 15
  config.pca.standardize = True
  config.patch_size = 7
  config.model.kwargs.update(emb_dim=64, base_channels=16, num_layers=2)
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_epochs = 1.0
  config.optimizer.clip_norm = 1.0
  config.batch_size = 32
  config.eval_batch_size = 128
  config.num_epochs = 15
  config.patience = 3
  config.class_weights = True
  return config
