"""The paper's protocol (Indian Pines): the base every other config modifies.

PCA to 30 components fitted on the whole image, 11x11 patches, a stratified
random 72/8/20 train/validation/test split, the full CLAReSNet, AdamW at a
constant 1e-4 with weight decay 1e-2, batch 16, 40 epochs, the checkpoint
with the best validation accuracy kept for testing.
"""
import ml_collections
from ml_collections.config_dict import placeholder


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # A registry name of claresnet_jax.data ("indian_pines", "salinas", "salinas_a",
  # "pavia_university") or the path of a user's own scene file.
  config.scene = "indian_pines"
  # For a user's file: its ground-truth file and variable names (see data.load_scene);
  # for a registered scene, data_dir: where tensorflow-datasets keeps it, and manual_dir: a
  # folder holding a copy placed by hand (the EHU .mat or tensorly .npy files, verified by
  # their values). Placeholders: unset, yet typed, so that `--config.scene_options.gt=path`
  # works on the command line.
  config.scene_options = ml_collections.ConfigDict(
      dict(gt=placeholder(str), cube_key=placeholder(str), gt_key=placeholder(str),
           data_dir=placeholder(str), manual_dir=placeholder(str)))
  config.exclude_classes = ()  # label values made unlabelled everywhere (Scene.without_classes)

  config.pca = ml_collections.ConfigDict()
  config.pca.components = 30
  config.pca.fit_on = "all"  # "all" pixels (the paper) or "train" pixels only (no leakage)
  config.pca.standardize = False  # scale each component to zero mean, unit variance

  config.patch_size = 11
  config.split = ml_collections.ConfigDict()
  config.split.protocol = "paper"  # see claresnet_jax.data.make_split
  # The protocol's make_split arguments; unset ones take its defaults. Typed placeholders, so
  # that each can be given on the command line (--config.split.options.train_mask=train.tif).
  # `labels` (fixed splits only): "split", the maps' own labels as published, or "scene".
  config.split.options = ml_collections.ConfigDict(dict(
      test_size=placeholder(float), val_size=placeholder(float),
      train_fraction=placeholder(float), val_fraction=placeholder(float),
      train_per_class=placeholder(int), val_per_class=placeholder(int),
      train_mask=placeholder(str), val_mask=placeholder(str), test_mask=placeholder(str),
      name=placeholder(str), labels=placeholder(str), manual_dir=placeholder(str)))
  # >0: that share of each class's training pixels becomes the validation part, for splits
  # that have none (fixed maps, a user's masks) and a checkpoint chosen by validation.
  config.split.holdout_fraction = 0.0

  config.model = ml_collections.ConfigDict()
  config.model.name = "claresnet"  # a key of claresnet_jax.models.MODELS
  # dtype: "float32", or "bfloat16" for mixed precision (float32 parameters, optimizer state
  # and loss; CLAReSNet only). See claresnet_jax/precision.py and docs/gpu.md.
  config.model.kwargs = ml_collections.ConfigDict(
      dict(emb_dim=256, base_channels=64, num_layers=3, dropout=0.5, dtype="float32"))
  # Of float32 matmuls and convolutions: "default" (TF32 on NVIDIA GPUs from Ampere on, one
  # bfloat16 pass on TPUs), "high", or "highest" (float32, as the CPU always computes).
  config.matmul_precision = "default"

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 1e-4
  config.optimizer.weight_decay = 1e-2
  config.optimizer.schedule = "constant"  # or "cosine": linear warmup, then cosine decay to 0
  config.optimizer.warmup_epochs = 0.0
  config.optimizer.clip_norm = 0.0  # >0: clip gradients to this global norm

  config.batch_size = 16  # global, over all devices and hosts
  config.eval_batch_size = 32
  config.num_epochs = 40
  # The checkpoint eval.py tests: "best" validation accuracy (the paper), or "last" (after
  # num_epochs, as the fixed splits' published results are; no validation part needed).
  config.test_checkpoint = "best"
  config.patience = 40  # epochs without a better validation accuracy before stopping ("best")
  # Validation (or, on a split without one, the test pixels, never used to choose) every this
  # many epochs and after the last.
  config.eval_every_epochs = 1
  config.class_weights = False  # weight the loss by inverse training-class frequency
  config.augment = True  # random flips, rotations and noise, as the authors' code

  config.seed = 42
  config.num_runs = 1  # >1: runs with seeds seed, seed+1, ... in workdir/run_<i>
  return config
