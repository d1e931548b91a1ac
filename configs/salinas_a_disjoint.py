"""Salinas-A on a spatially disjoint split, PCA fitted on training pixels (ip_disjoint.py)."""
from configs import salinas_a


def get_config():
  config = salinas_a.get_config()
  config.split.protocol = "disjoint"
  config.pca.fit_on = "train"
  return config
