"""The comparison on Hong et al.'s fixed Indian Pines split: every baseline beside ip_fixed.py.

The classical baselines (RF, SVM, XGBoost) on the centre pixel's 200 bands,
standardised on the training pixels, as the published rows on this split take
them; the deep baselines (and the SVM on patches) on configs/ip_fixed.py's input
(30 PCA components fitted on the whole image, 11x11 patches), each with its papers'
training settings, for its papers' epochs where five seeds fit in about 30
minutes on a 2-core CPU and fewer where not (SSRN 40 of 200, SpectralFormer 300 of
1000). The last epoch is tested, as on every fixed split, and the test pixels are
evaluated only then. The table's caption states inputs and budgets. CLAReSNet's row
comes from ip_fixed.py's own runs (docs/indian_pines.md).
"""
from configs import baselines
from configs import ip_fixed

EPOCHS = dict(hybridsn=100, ssrn=40, spectralformer=300)
BANDS = dict(pca=dict(components=0, standardize=True, fit_on="train"))


def get_config():
  config = ip_fixed.get_config()
  config.compare = baselines.get_config()
  for name in ("rf", "svm", "xgboost"):
    config.compare[name].train = BANDS
  for name, epochs in EPOCHS.items():
    config.compare[name].train.update(dict(num_epochs=epochs, eval_every_epochs=epochs))
  return config
