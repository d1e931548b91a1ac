"""configs/ip_small.py on Indian Pines' spatially disjoint split (ip_disjoint.py).

PCA is fitted on training pixels only, and the five classes that ip_disjoint.py
leaves out (1, 4, 7, 9 and 16) are left out here too, so the two disjoint
figures cover the same 11 classes.
"""
from configs import ip_disjoint
from configs import ip_small


def get_config():
  config = ip_small.get_config()
  disjoint = ip_disjoint.get_config()
  config.split = disjoint.split
  config.pca.fit_on = disjoint.pca.fit_on
  config.exclude_classes = disjoint.exclude_classes
  return config
