"""The comparison of Table III: Indian Pines, the paper's split and protocol (ip.py).

Every baseline of baselines.py with its papers' settings and full training
budgets, sized for a GPU (benchmarks/table3.sh), not a CPU. ip.py's 11x11
patches of 30 PCA components suit every model: HybridSN, the most demanding,
needs patches of at least 9x9 and 13 components.
"""
from configs import baselines
from configs import ip


def get_config():
  config = ip.get_config()
  config.compare = baselines.get_config()
  return config
