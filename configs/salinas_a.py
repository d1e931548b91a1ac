"""The embedded default: the bundled Salinas-A scene, sized for a 2-core CPU (minutes).

The paper's split, PCA 30 and 11x11 patches, with the training settings
reduced and changed by measurement (README.md, "Training and evaluation").
"""
from configs import default


def get_config():
  config = default.get_config()
  config.scene = "salinas_a"
  config.pca.standardize = True
  config.model.kwargs.emb_dim = 64
  config.model.kwargs.base_channels = 16
  config.model.kwargs.num_layers = 2
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_epochs = 1.0
  config.batch_size = 32
  config.eval_batch_size = 128
  config.num_epochs = 6
  config.patience = 6
  config.class_weights = True
  return config
