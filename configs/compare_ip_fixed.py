"""The comparison on Hong et al.'s fixed Indian Pines split: every baseline on ip_fixed.py's input.

Each baseline of baselines.py with its papers' settings on configs/ip_fixed.py's
split and input (30 PCA components fitted on the whole image, 11x11 patches),
trained for its papers' epochs where five seeds fit in about 30 minutes on a
2-core CPU and for fewer where not (SSRN 40 of 200, SpectralFormer 300 of 1000);
the last epoch is tested, as on every fixed split, and the test pixels are
evaluated only then. The table's caption states the budgets. CLAReSNet's row
comes from ip_fixed.py's own runs (docs/indian_pines.md).
"""
from configs import baselines
from configs import ip_fixed

EPOCHS = dict(hybridsn=100, ssrn=40, spectralformer=300)


def get_config():
  config = ip_fixed.get_config()
  config.compare = baselines.get_config()
  for name, epochs in EPOCHS.items():
    config.compare[name].train.update(dict(num_epochs=epochs, eval_every_epochs=epochs))
  return config
