"""The comparison on the bundled Salinas-A, paper split, sized for a 2-core CPU.

The CPU demo's data and CLAReSNet (salinas_a.py) with 9x9 patches, the
smallest HybridSN takes, and every baseline of baselines.py with its papers'
settings except the number of epochs, cut by measurement so that each
split's 7 models x 3 seeds run within 30 minutes; the table's caption states
them. CLAReSNet stops early after 3 epochs without a better validation accuracy.
"""
from configs import baselines
from configs import salinas_a

EPOCHS = dict(hybridsn=5, ssrn=3, spectralformer=6, claresnet=8)


def with_cpu_baselines(config):
  """`config` with 9x9 patches, plus `compare`: the models with CPU-sized training."""
  config.patch_size = 9
  config.compare = baselines.get_config()
  for name, epochs in EPOCHS.items():
    config.compare[name].train.update(dict(num_epochs=epochs, patience=epochs))
  config.compare.claresnet.train.patience = config.patience
  # CLAReSNet warms up for the same share of its run as in salinas_a.py.
  config.compare.claresnet.train.optimizer = dict(
      warmup_epochs=EPOCHS["claresnet"] * config.optimizer.warmup_epochs / config.num_epochs)
  return config


def get_config():
  return with_cpu_baselines(salinas_a.get_config())
