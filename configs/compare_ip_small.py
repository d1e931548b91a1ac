"""The comparison on Indian Pines, paper split, sized for a 2-core CPU.

configs/ip_small.py with the CPU budgets of compare_salinas_a.py: 9x9 patches
(the smallest HybridSN takes) and every baseline with its papers' settings
except the number of epochs; the table's caption states them.
"""
from configs import compare_salinas_a
from configs import ip_small


def get_config():
  return compare_salinas_a.with_cpu_baselines(ip_small.get_config())
