"""The comparison on Salinas-A's spatially disjoint split (see compare_salinas_a.py)."""
from configs import compare_salinas_a
from configs import salinas_a_disjoint


def get_config():
  return compare_salinas_a.with_cpu_baselines(salinas_a_disjoint.get_config())
