"""Pavia University on a spatially disjoint split, PCA fitted on training pixels only.

The paper's other settings (configs/default.py) on the ROSIS scene (the cube,
34 MB, is downloaded on first use). Every one of the 9 classes splits at
11x11 (on the real ground truth, seed 42: 27,783 training, 3,422 validation
and 8,555 test pixels, leakage 0), so none is excluded.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.scene = "pavia_university"
  config.split.protocol = "disjoint"
  config.pca.fit_on = "train"
  return config
