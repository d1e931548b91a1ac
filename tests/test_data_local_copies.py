"""Registered scenes from copies placed by hand, in either layout, verified by their values."""
import dataclasses
import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import scipy.io

from claresnet_jax import data, workdirs
from claresnet_jax.data import scenes
from configs import ip

IP_COUNTS = {1: 46, 2: 1428, 3: 830, 4: 237, 5: 483, 6: 730, 7: 28, 8: 478, 9: 20, 10: 972,
             11: 2455, 12: 593, 13: 205, 14: 1265, 15: 386, 16: 93}


@pytest.fixture(scope="module")
def ip_arrays(shared_dir):
  """The shared Indian Pines cube (tensorly's .npy, uint16) and ground truth (EHU .mat, uint8)."""
  folder = shared_dir / "data/indian_pines"
  cube = np.load(folder / "Indian_pines_corrected.npy")
  gt = scipy.io.loadmat(folder / "Indian_pines_gt.mat")["indian_pines_gt"]
  return cube, gt


def _assert_indian_pines(scene, cube, gt):
  assert scene.cube.shape == (145, 145, 200) and scene.num_classes == 16
  values, counts = np.unique(scene.gt[scene.gt > 0], return_counts=True)
  assert dict(zip(values.tolist(), counts.tolist())) == IP_COUNTS
  assert int((scene.gt > 0).sum()) == 10249
  np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
  np.testing.assert_array_equal(scene.gt, gt)


def test_registered_value_checksums_match_the_shared_files(shared_dir, ip_arrays):
  def int64_sha256(array):  # the definition, computed independently of values_sha256
    return hashlib.sha256(np.ascontiguousarray(array, "<i8").tobytes()).hexdigest()

  cube, gt = ip_arrays
  assert scenes.SCENES["indian_pines"].cube.values_sha256 == int64_sha256(cube)
  assert scenes.SCENES["indian_pines"].gt.values_sha256 == int64_sha256(gt)
  for name, folder in (("salinas_a", "salinas_a"), ("salinas", "salinas"),
                       ("pavia_university", "pavia_university")):
    info = scenes.SCENES[name]
    for file in (info.cube, info.gt):
      path = shared_dir / "data" / folder / file.filename
      if path.exists():
        assert file.values_sha256 == int64_sha256(scipy.io.loadmat(path)[file.key]), path
  # The container and stored dtype do not change it.
  assert scenes.values_sha256(cube.astype(np.float32)) == int64_sha256(cube)


def test_indian_pines_from_the_shared_npy_layout(tmp_path, shared_dir, ip_arrays):
  scene = data.load_scene("indian_pines", manual_dir=shared_dir / "data/indian_pines",
                          data_dir=tmp_path / "tfds")
  _assert_indian_pines(scene, *ip_arrays)
  # Prepared once: the cache serves without the files, verified the same way.
  cached = data.load_scene("indian_pines", data_dir=tmp_path / "tfds", download=False)
  _assert_indian_pines(cached, *ip_arrays)


# One process of several started at once (seeds of a sweep, benchmarks/table3.sh): each
# imports everything, says it is ready, then loads the scene as soon as it is told to go.
LOAD_WHEN_TOLD = """
import pathlib, sys, time
from claresnet_jax import data
ready, go, manual_dir, data_dir = map(pathlib.Path, sys.argv[1:])
ready.touch()
while not go.exists():
  time.sleep(0.01)
scene = data.load_scene("indian_pines", manual_dir=manual_dir, data_dir=data_dir)
print(int((scene.gt > 0).sum()))
"""


def test_processes_preparing_a_scene_at_once_all_load_it(tmp_path, shared_dir):
  go = tmp_path / "go"
  ready = [tmp_path / f"ready_{i}" for i in range(2)]
  processes = [subprocess.Popen(
      [sys.executable, "-c", LOAD_WHEN_TOLD, r, go, shared_dir / "data/indian_pines",
       tmp_path / "tfds"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for r in ready]
  deadline = time.monotonic() + 120
  while not all(r.exists() for r in ready) and time.monotonic() < deadline:
    time.sleep(0.05)
  go.touch()
  for process in processes:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.split()[-1] == "10249"  # after what tensorflow-datasets prints
  prepared = tmp_path / "tfds/hyperspectral_scenes/indian_pines"
  assert [p.name for p in prepared.iterdir()] == ["1.0.0"]  # one copy, nothing half-written


def test_indian_pines_from_the_ehu_mat_layout(tmp_path, ip_arrays):
  cube, gt = ip_arrays
  manual = tmp_path / "manual"
  manual.mkdir()
  scipy.io.savemat(manual / "Indian_pines_corrected.mat", {"indian_pines_corrected": cube})
  scipy.io.savemat(manual / "Indian_pines_gt.mat", {"indian_pines_gt": gt})
  scene = data.load_scene("indian_pines", manual_dir=manual, data_dir=tmp_path / "tfds")
  _assert_indian_pines(scene, cube, gt)


def test_config_manual_dir_reaches_the_scene(tmp_path, shared_dir, ip_arrays):
  config = ip.get_config()
  assert config.scene_options.manual_dir is None
  config.scene_options.manual_dir = str(shared_dir / "data/indian_pines")
  config.scene_options.data_dir = str(tmp_path / "tfds")
  _assert_indian_pines(workdirs.load_scene(config), *ip_arrays)


def test_a_run_saved_before_manual_dir_existed_resumes(tmp_path):
  config = ip.get_config()
  saved = json.loads(config.to_json_best_effort())
  del saved["scene_options"]["manual_dir"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  (tmp_path / "checkpoints/latest/1").mkdir(parents=True)
  workdirs.claim_workdir(config, tmp_path)
  config.scene_options.manual_dir = "elsewhere"
  with pytest.raises(ValueError, match=r"scene_options.manual_dir: None there, 'elsewhere' now"):
    workdirs.claim_workdir(config, tmp_path)


def _manual_copy(folder, cube, gt):
  """The tensorly layout: both arrays as .npy."""
  folder.mkdir()
  np.save(folder / "Indian_pines_corrected.npy", cube)
  np.save(folder / "Indian_pines_gt.npy", gt)
  return folder


def _assert_refused(tmp_path, manual, match):
  with pytest.raises(ValueError, match=match):
    data.load_scene("indian_pines", manual_dir=manual, data_dir=tmp_path / "tfds")
  prepared = tmp_path / "tfds/hyperspectral_scenes/indian_pines"
  assert not prepared.exists() or not any(prepared.rglob("*.tfrecord*"))


def test_a_cube_with_one_value_changed_is_refused(tmp_path, ip_arrays):
  cube, gt = ip_arrays
  changed = cube.copy()
  changed[70, 80, 100] += 1
  manual = _manual_copy(tmp_path / "manual", changed, gt)
  _assert_refused(tmp_path, manual, r"Indian_pines_corrected\.npy does not hold the published "
                  r"Indian Pines cube: some pixel values differ \(sha256 of its values")


def test_a_ground_truth_with_one_label_changed_is_refused(tmp_path, ip_arrays):
  cube, gt = ip_arrays
  relabelled = gt.copy()
  row, col = np.argwhere(gt == 2)[0]
  relabelled[row, col] = 3
  _assert_refused(tmp_path, _manual_copy(tmp_path / "relabelled", cube, relabelled),
                  r"Indian_pines_gt\.npy does not hold the published Indian Pines ground truth: "
                  r"class 2: 1427 pixels, expected 1428; class 3: 831 pixels, expected 830")
  # Two labels swapped keep every class count: the values still tell.
  swapped = gt.copy()
  other = tuple(np.argwhere(gt == 3)[0])
  swapped[row, col], swapped[other] = 3, 2
  _assert_refused(tmp_path, _manual_copy(tmp_path / "swapped", cube, swapped),
                  r"Indian_pines_gt\.npy does not hold the published Indian Pines ground truth: "
                  r"its labels differ in place")


def test_non_integer_values_are_refused(tmp_path, ip_arrays):
  cube, gt = ip_arrays
  manual = _manual_copy(tmp_path / "manual", cube.astype(np.float64) + 0.25, gt)
  _assert_refused(tmp_path, manual, r"Indian_pines_corrected\.npy .* holds non-integer values")


def test_manual_dir_errors(tmp_path, shared_dir):
  with pytest.raises(FileNotFoundError, match=r"manual_dir='.*nowhere' is not a folder.*"
                                              r"Indian_pines_corrected\.mat or "
                                              r"Indian_pines_corrected\.npy"):
    data.load_scene("indian_pines", manual_dir=tmp_path / "nowhere", data_dir=tmp_path / "tfds")
  with pytest.raises(ValueError, match=r"manual_dir given for the file .*SalinasA_corrected\.mat'"
                                       r": data_dir and manual_dir apply only to registered"):
    data.load_scene(shared_dir / "data/salinas_a/SalinasA_corrected.mat", manual_dir=tmp_path)


# The fallback source: where the EHU URL fails, the files inside tensorly's wheel, both
# served here on 127.0.0.1 (the `served` fixture of conftest.py).


def _wheel(path, members):
  """A ZIP archive under a wheel's name; returns its (sha256, size)."""
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("tensorly/__init__.py", "")
    for name, array in members.items():
      buffer = io.BytesIO()
      np.save(buffer, array)
      archive.writestr(name, buffer.getvalue())
  content = path.read_bytes()
  return hashlib.sha256(content).hexdigest(), len(content)


def _served_from(info, base, wheel_sha256, wheel_size, name):
  """`info` with its EHU URLs missing on the local server and its mirror served there."""
  def moved(file):
    mirror = dataclasses.replace(file.mirror, url=f"{base}/{file.mirror.filename}",
                                 sha256=wheel_sha256, size=wheel_size)
    return dataclasses.replace(file, url=f"{base}/missing/{file.filename}", mirror=mirror)
  return dataclasses.replace(info, name=name, cube=moved(info.cube), gt=moved(info.gt))


def test_indian_pines_falls_back_to_the_tensorly_wheel(served, tmp_path, ip_arrays):
  folder, base = served
  cube, gt = ip_arrays
  info = scenes.SCENES["indian_pines"]
  assert info.cube.mirror.url == info.gt.mirror.url and info.cube.mirror.filename.endswith(".whl")
  sha256, size = _wheel(folder / info.cube.mirror.filename,
                        {info.cube.mirror.member: cube, info.gt.mirror.member: gt})
  mirrored = _served_from(info, base, sha256, size, "indian_pines_mirrored")
  scene = data.load_scene(mirrored, data_dir=tmp_path / "tfds")
  _assert_indian_pines(scene, cube, gt)
  downloads = tmp_path / "tfds/downloads"
  assert len([p for p in downloads.rglob("*.whl") if p.is_file()]) == 1  # once, for both
  assert not list(downloads.rglob("*.tmp.*"))  # the failed attempts leave nothing


def test_a_mirror_is_verified_like_the_first_source(served, tmp_path, ip_arrays):
  folder, base = served
  cube, gt = ip_arrays
  info = scenes.SCENES["indian_pines"]
  changed = cube.copy()
  changed[0, 0, 0] += 1
  sha256, size = _wheel(folder / info.cube.mirror.filename,
                        {info.cube.mirror.member: changed, info.gt.mirror.member: gt})
  # A wheel that is not the published one: the download manager refuses it.
  wrong_sha = _served_from(info, base, "0" * 64, size, "indian_pines_wrong_sha")
  with pytest.raises(ValueError, match=r"Indian Pines does not match its published sha256"):
    data.load_scene(wrong_sha, data_dir=tmp_path / "tfds")
  # Its published sha256, yet a changed value: the values' check refuses it, naming the member.
  changed_value = _served_from(info, base, sha256, size, "indian_pines_changed")
  with pytest.raises(ValueError, match=r"Indian_pines_corrected\.npy of tensorly-0\.10\.0-py3-"
                                       r"none-any\.whl .* some pixel values differ.*removed"):
    data.load_scene(changed_value, data_dir=tmp_path / "tfds")
  # Without a mirror, a missing file says how to place copies by hand.
  no_mirror = dataclasses.replace(
      changed_value, name="indian_pines_no_mirror",
      cube=dataclasses.replace(changed_value.cube, mirror=None))
  with pytest.raises(OSError, match=r"(?s)Could not download Indian Pines.*HTTP code: 404.*"
                                    r"manual_dir="):
    data.load_scene(no_mirror, data_dir=tmp_path / "tfds")
