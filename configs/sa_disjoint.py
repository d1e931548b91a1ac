"""Salinas on a spatially disjoint split, PCA fitted on training pixels only (ip_disjoint.py)."""
from configs import sa


def get_config():
  config = sa.get_config()
  config.split.protocol = "disjoint"
  config.pca.fit_on = "train"
  return config
