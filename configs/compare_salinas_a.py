"""The comparison on the bundled Salinas-A, paper split, sized for a 2-core CPU.

Every model of configs/baselines.py with its papers' settings except the
number of epochs, cut (by measurement) so that 7 models x 3 seeds x 2 splits
run within 30 minutes; the table's caption states each model's epochs.
"""
from configs import baselines
from configs import salinas_a


def with_cpu_baselines(config):
  """`config` plus `compare`: the baselines with CPU-sized training."""
  config.compare = baselines.get_config()
  for name, epochs in EPOCHS.items():
    config.compare[name].train.update(dict(num_epochs=epochs, patience=epochs))
  # CLAReSNet warms up for the same share of its run as in salinas_a.py (1 of 6 epochs).
  config.compare.claresnet.train.optimizer = dict(
      warmup_epochs=EPOCHS["claresnet"] * config.optimizer.warmup_epochs / config.num_epochs)
  return config


EPOCHS = dict(hybridsn=2, ssrn=1, spectralformer=4, claresnet=1)


def get_config():
  return with_cpu_baselines(salinas_a.get_config())
