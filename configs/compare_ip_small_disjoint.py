"""The comparison on Indian Pines' spatially disjoint split (see compare_ip_small.py)."""
from configs import compare_salinas_a
from configs import ip_small_disjoint


def get_config():
  return compare_salinas_a.with_cpu_baselines(ip_small_disjoint.get_config())
