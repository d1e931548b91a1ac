"""The authors' Indian_Pines_CLAReSNet.py as a module, and the Indian Pines arrays it trains on.

Their file runs as published except the missing `combined = cat([avg, max])` line of its
SE block (docs/model.md); their CSV loader is replaced by the shared arrays. Needs only
torch, pandas, scikit-learn, scipy, matplotlib, seaborn and tqdm (no JAX).
"""
import pathlib
import types

_BROKEN_LINE = "        weights = self.fc(combined).view(b, c, 1, 1)"


def load_module(script: str | pathlib.Path) -> types.ModuleType:
  """Their script, executed as a module with the SE block's line added."""
  source = pathlib.Path(script).read_text()
  if source.count(_BROKEN_LINE) != 1:
    raise SystemExit(f"{script}: the SE block's line {_BROKEN_LINE.strip()!r} is not there "
                     "once; is this the published Indian_Pines_CLAReSNet.py?")
  source = source.replace(_BROKEN_LINE, "        combined = torch.cat([avg_out, max_out], "
                          "dim=1)\n" + _BROKEN_LINE)
  module = types.ModuleType("authors")
  exec(compile(source, str(script), "exec"), module.__dict__)  # pylint: disable=exec-used
  return module


def indian_pines(manual_dir: str | pathlib.Path):
  """The Indian Pines cube (145, 145, 200) float32 and ground truth, as the shared folder
  holds them, and the cube's 30 principal components fitted on every pixel, as theirs."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import scipy.io  # pylint: disable=g-import-not-at-top
  from sklearn.decomposition import PCA  # pylint: disable=g-import-not-at-top

  manual_dir = pathlib.Path(manual_dir)
  cube = np.load(manual_dir / "Indian_pines_corrected.npy").astype(np.float32)
  gt = scipy.io.loadmat(manual_dir / "Indian_pines_gt.mat")["indian_pines_gt"].astype(np.int32)
  reduced = PCA(n_components=30).fit_transform(cube.reshape(-1, cube.shape[-1]))
  return cube, gt, reduced.reshape(*cube.shape[:2], 30)
