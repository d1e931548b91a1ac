"""Salinas on a spatially disjoint split, PCA fitted on training pixels only (ip_disjoint.py).

Every one of the 16 classes splits at 11x11 (on the real ground truth, seed 42:
31,599 training, 4,330 validation and 10,827 test pixels, leakage 0), so none
is excluded.
"""
from configs import sa


def get_config():
  config = sa.get_config()
  config.split.protocol = "disjoint"
  config.pca.fit_on = "train"
  return config
