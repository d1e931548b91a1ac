"""Indian Pines on the field's standard fixed split (Hong et al.), the paper's model and settings.

The split of miniGCN (TGRS 2021), SpectralFormer (TGRS 2022) and the papers
after them: 695 training and 9,671 test pixels with the maps' own labels, no
validation part. The paper's protocol otherwise (configs/default.py): the full
CLAReSNet, PCA to 30 components fitted on the whole image, 11x11 patches, AdamW
at 1e-4 with weight decay 1e-2, batch 16, 40 epochs; the last epoch is tested,
as the split's published results are. The test pixels are evaluated every 5
epochs for the curves (never to choose anything): on a 2-core CPU an evaluation
of 9,671 pixels costs minutes. The maps download on first use, or come from a
folder (--config.split.options.manual_dir).
"""
from configs import ip


def get_config():
  config = ip.get_config()
  config.split.protocol = "fixed"
  config.split.options.name = "indian_pines_hong"
  config.test_checkpoint = "last"
  config.eval_every_epochs = 5
  return config
