"""The comparison's models and their settings: `config.compare` of configs/compare_*.py.

One entry per model of `python -m claresnet_jax.compare --models ...`:
`kwargs` are the model's (or classifier's) constructor arguments, and a deep
model's `train` is merged into the experiment config for its runs. Deep
baselines follow their papers where the training loop allows (no gradient
clipping, no warmup, a constant rate unless stated); docs/compare.md lists
what the papers leave open and each choice.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Classical baselines on the centre pixel's PCA spectrum (claresnet_jax.classical).
  c.rf = dict(kwargs=dict(n_estimators=200))
  c.svm = dict(kwargs=dict(C=100.0, gamma="scale"))
  # The same SVM on the deep models' input: the whole flattened patch.
  c.svm_patches = dict(kwargs=dict(C=100.0, gamma="scale"))
  c.xgboost = dict(kwargs=dict(n_estimators=200, max_depth=6, learning_rate=0.1))

  # HybridSN (Roy et al., 2020): Adam at 1e-3, batch 256, 100 epochs, dropout 0.4,
  # on whitened PCA components (their code's PCA(whiten=True)): it has no
  # normalisation layer, and on raw components it fails to fit at most seeds.
  c.hybridsn = dict(
      kwargs=dict(dropout=0.4),
      train=dict(
          pca=dict(standardize=True),
          optimizer=dict(learning_rate=1e-3, weight_decay=0.0, schedule="constant",
                         warmup_epochs=0.0, clip_norm=0.0),
          batch_size=256, num_epochs=100, patience=100))
  # SSRN (Zhong et al., 2018): RMSprop at 3e-4 in the paper (the loop has AdamW:
  # Adam at that rate), batch 16, 200 epochs, dropout 0.5 before the head.
  c.ssrn = dict(
      kwargs=dict(dropout=0.5),
      train=dict(
          optimizer=dict(learning_rate=3e-4, weight_decay=0.0, schedule="constant",
                         warmup_epochs=0.0, clip_norm=0.0),
          batch_size=16, num_epochs=200, patience=200))
  # SpectralFormer (Hong et al., 2022), the authors' demo.py: Adam at 5e-4 with
  # weight decay 5e-3 (here decoupled, AdamW), batch 64, 1000 epochs.
  c.spectralformer = dict(
      kwargs=dict(dropout=0.1, emb_dropout=0.1),
      train=dict(
          optimizer=dict(learning_rate=5e-4, weight_decay=5e-3, schedule="constant",
                         warmup_epochs=0.0, clip_norm=0.0),
          batch_size=64, num_epochs=1000, patience=1000))
  # CLAReSNet: the experiment config's own model and training settings.
  c.claresnet = dict(train=dict())
  return c
