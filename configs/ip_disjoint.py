"""Indian Pines on a spatially disjoint split, PCA fitted on training pixels only.

The leakage-free counterpart of ip.py: no training patch overlaps a test
pixel, so accuracies are lower than the paper's protocol and comparable
with Liang et al. (TGRS 2017) and Nalepa et al. (GRSL 2019).
"""
from configs import ip


def get_config():
  config = ip.get_config()
  config.split.protocol = "disjoint"
  config.pca.fit_on = "train"
  return config
