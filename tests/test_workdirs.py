"""A run's workdir files: a crash while writing one leaves nothing a rerun reads as complete."""
import errno
import io

import numpy as np
import pytest

from claresnet_jax import workdirs


@pytest.mark.parametrize("crash", ["split.npz", "pca.npz"])
def test_a_crash_while_writing_leaves_no_half_written_file(tmp_path, tiny_config, monkeypatch,
                                                            crash):
  config = tiny_config()
  uninterrupted = workdirs.prepare_dataset(config, tmp_path)
  workdir = tmp_path / "crashed"
  workdir.mkdir()
  savez = np.savez
  written = []

  def savez_cut_short(file, **arrays):
    """Writes the first half of the file (np.savez writes split.npz, then pca.npz), then the
    disk is full."""
    written.append(file)
    if len(written) < ("split.npz", "pca.npz").index(crash) + 1:
      return savez(file, **arrays)
    whole = io.BytesIO()
    savez(whole, **arrays)
    half = whole.getvalue()[:len(whole.getvalue()) // 2]
    if hasattr(file, "write"):
      file.write(half)
    else:
      with open(file, "wb") as f:
        f.write(half)
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(np, "savez", savez_cut_short)
  with pytest.raises(OSError, match="No space left on device"):
    workdirs.prepare_dataset(config, workdir)
  monkeypatch.undo()
  complete = ["classes.json"] + (["split.npz"] if crash == "pca.npz" else [])
  assert sorted(p.name for p in workdir.iterdir()) == complete  # no partial file either

  rerun = workdirs.prepare_dataset(config, workdir)
  for part in ("train", "val", "test"):
    np.testing.assert_array_equal(getattr(rerun.split, part), getattr(uninterrupted.split, part))
  np.testing.assert_array_equal(rerun.cube, uninterrupted.cube)
  assert sorted(p.name for p in workdir.iterdir()) == ["classes.json", "pca.npz", "split.npz"]
