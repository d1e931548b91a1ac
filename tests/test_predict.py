"""predict.py on Salinas-A saved as GeoTIFF, ENVI and .npy, against eval.py's map, with a tiny run.

One tiny run is trained in-process; its scene is written georeferenced, with
and without blocks of no-data pixels, and classified in small tiles so that
every tile boundary needs its halo.
"""
import errno
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from spectral.io import envi

from claresnet_jax import predict, train, trained_runs

REPO = pathlib.Path(__file__).resolve().parents[1]
CRS_UTM = CRS.from_epsg(32610)  # Salinas Valley: UTM zone 10 N
TRANSFORM = from_origin(620000.0, 4060000.0, 3.7, 3.7)
TILE_PIXELS = 1000  # 11 rows of 86 pixels a tile: eight tiles, each with a halo
NAN_BLOCK = (slice(20, 30), slice(20, 30))
ZERO_BLOCK = (slice(50, 60), slice(55, 70))


def _write_raster(path, cube, driver):
  with rasterio.open(path, "w", driver=driver, height=cube.shape[0], width=cube.shape[1],
                     count=cube.shape[2], dtype=cube.dtype, crs=CRS_UTM,
                     transform=TRANSFORM) as f:
    f.write(np.moveaxis(cube, -1, 0))


@pytest.fixture(scope="module")
def run(tmp_path_factory, compile_cache, tiny_config):
  """A trained tiny run, eval.py's map of its scene, and the scene in three formats.

  The persistent compilation cache lets the command-line test load the
  programs compiled here.
  """
  folder = tmp_path_factory.mktemp("predict")
  config = tiny_config()
  config.num_epochs = 1
  config.split.options.train_per_class = 160  # 60 steps: compiling costs far more than stepping
  workdir = folder / "run"
  train.train_and_evaluate(config, workdir)
  # eval.py's map: evaluate.evaluate's "every pixel" prediction of the projected scene.
  trained = trained_runs.TrainedRun(workdir, with_dataset=True)
  dataset = trained.dataset
  everywhere = trained.predict(dataset.cube, None)["probabilities"]
  eval_map = dataset.scene.class_ids[everywhere.argmax(-1)].reshape(dataset.scene.gt.shape)
  eval_max = everywhere.max(-1).reshape(eval_map.shape)

  cube = dataset.scene.cube  # float32 holding integers
  scenes = folder / "scenes"
  scenes.mkdir()
  _write_raster(scenes / "salinas_a.tif", cube, "GTiff")
  _write_raster(scenes / "salinas_a_envi.img", cube.astype(np.int16), "ENVI")
  holes = cube.copy()
  holes[NAN_BLOCK] = np.nan
  holes[ZERO_BLOCK] = 0.0
  _write_raster(scenes / "holes.tif", holes, "GTiff")
  np.save(scenes / "salinas_a_npy.npy", np.ascontiguousarray(cube))

  predictor = predict.Predictor(workdir)
  outputs = {"tif": predictor.predict_scene(scenes / "salinas_a.tif", folder / "out",
                                            tile_pixels=TILE_PIXELS)}
  compiles = []

  def on_duration(event, duration, **_):
    if event == "/jax/core/compile/backend_compile_duration":
      compiles.append(duration)

  jax.monitoring.register_event_duration_secs_listener(on_duration)
  try:  # later scenes, in another format and with no-data pixels, run the same program
    for name, file in (("envi", "salinas_a_envi.hdr"), ("holes", "holes.tif")):
      outputs[name] = predictor.predict_scene(scenes / file, folder / "out",
                                              tile_pixels=TILE_PIXELS)
  finally:
    jax.monitoring.unregister_event_duration_listener(on_duration)
  yield {"folder": folder, "workdir": workdir, "eval_map": eval_map, "eval_max": eval_max,
         "scenes": scenes,
         "outputs": outputs, "predictor": predictor, "later_compiles": compiles,
         "env": compile_cache}


def _read(path, band=1):
  with rasterio.open(path) as f:
    return f.read(band)


def test_class_maps_equal_eval_maps_in_both_formats(run):
  assert len(np.unique(run["eval_map"])) >= 4  # a map worth comparing: the run has learnt
  for name in ("tif", "envi"):
    np.testing.assert_array_equal(_read(run["outputs"][name]["classes"]), run["eval_map"])
    np.testing.assert_allclose(_read(run["outputs"][name]["max_probability"]), run["eval_max"],
                               rtol=1e-5)
  assert run["outputs"]["envi"]["classes"].suffix == ".img"
  assert run["outputs"]["tif"]["classes"].suffix == ".tif"
  assert run["later_compiles"] == []


def test_outputs_carry_the_scenes_georeference_colours_and_names(run):
  for name in ("tif", "envi"):
    outputs = run["outputs"][name]
    for key in ("classes", "max_probability", "entropy"):
      with rasterio.open(outputs[key]) as f:
        assert f.crs == CRS_UTM and f.transform == TRANSFORM, (name, key)
    assert outputs["png"].stat().st_size > 0
  with rasterio.open(run["outputs"]["tif"]["classes"]) as f:
    assert f.colormap(1)[10][:3] != f.colormap(1)[11][:3]
    assert f.tags(1)["class_10"] == "Corn_senesced_green_weeds"
  header = envi.read_envi_header(str(run["outputs"]["envi"]["classes"].with_suffix(".hdr")))
  assert header["file type"] == "ENVI Classification"
  assert header["class names"][10] == "Corn_senesced_green_weeds"
  assert "map info" in header and ".partial" not in header["description"]
  probability = _read(run["outputs"]["tif"]["max_probability"])
  assert ((probability > 1 / 6 - 1e-6) & (probability <= 1 + 1e-6)).all()


def test_nodata_pixels_are_zero_and_change_nothing_beyond_the_patch_radius(run):
  classes = _read(run["outputs"]["holes"]["classes"])
  entropy = _read(run["outputs"]["holes"]["entropy"])
  missing = np.zeros(classes.shape, bool)
  missing[NAN_BLOCK] = missing[ZERO_BLOCK] = True
  assert (classes[missing] == 0).all() and np.isnan(entropy[missing]).all()
  assert (classes[~missing] > 0).all() and np.isfinite(entropy[~missing]).all()
  # Pixels whose patch (radius 2) touches no no-data pixel keep their class.
  near = np.zeros_like(missing)
  for rows, cols in (NAN_BLOCK, ZERO_BLOCK):
    near[rows.start - 2:rows.stop + 2, cols.start - 2:cols.stop + 2] = True
  np.testing.assert_array_equal(classes[~near], run["eval_map"][~near])


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_command_line_on_a_npy_scene(run):
  out = run["folder"] / "cli_out"
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="1", **run["env"])
  result = subprocess.run(
      [sys.executable, "predict.py", f"--workdir={run['workdir']}",
       f"--scene={run['scenes'] / 'salinas_a_npy.npy'}", f"--output={out}", "--probabilities",
       "--tile_pixels=2000"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-5000:]
  assert "pixels/s" in result.stderr
  np.testing.assert_array_equal(_read(out / "salinas_a_npy_classes.tif"), run["eval_map"])
  with rasterio.open(out / "salinas_a_npy_probabilities.tif") as f:
    probabilities = f.read()
    assert f.crs is None and f.count == 6
  np.testing.assert_allclose(probabilities.sum(0), 1.0, rtol=1e-5)
  np.testing.assert_allclose(probabilities.max(0), _read(out / "salinas_a_npy_max_probability.tif"))


def test_errors_name_the_problem(run, tmp_path):
  predictor, scenes = run["predictor"], run["scenes"]
  np.save(tmp_path / "bands.npy", np.ones((83, 86, 200), np.float32))
  with pytest.raises(ValueError, match=r"has 200 bands, but the run .* trained on 204 bands"):
    predictor.predict_scene(tmp_path / "bands.npy", tmp_path / "out")
  (tmp_path / "untrained").mkdir()
  config = (run["workdir"] / "config.json").read_bytes()
  (tmp_path / "untrained" / "config.json").write_bytes(config)
  with pytest.raises(FileNotFoundError,
                     match=r"No checkpoint in .*checkpoints/best: .*Run python train\.py"):
    predict.Predictor(tmp_path / "untrained")
  with pytest.raises(FileExistsError, match="salinas_a_classes.tif.*--overwrite"):
    predictor.predict_scene(scenes / "salinas_a.tif", run["folder"] / "out")
  data = (scenes / "salinas_a_npy.npy").read_bytes()
  (tmp_path / "short.npy").write_bytes(data[:len(data) // 2])
  with pytest.raises(ValueError, match="short.npy could not be read.*truncated"):
    predictor.predict_scene(tmp_path / "short.npy", tmp_path / "out")
  tiff = (scenes / "salinas_a.tif").read_bytes()
  (tmp_path / "short.tif").write_bytes(tiff[:len(tiff) // 2])
  with pytest.raises(ValueError, match="short.tif"):
    predictor.predict_scene(tmp_path / "short.tif", tmp_path / "out")
  assert not list((tmp_path / "out").glob("short*"))
  with pytest.raises(ValueError, match="Several scenes are named salinas_a"):
    predict.predict_scenes(run["workdir"], [scenes / "salinas_a.tif", tmp_path / "salinas_a.npy"],
                           tmp_path / "out")


def test_a_full_disk_keeps_earlier_outputs_and_leaves_no_partial_file(run, monkeypatch):
  out = run["folder"] / "out"
  before = {p.name: p.read_bytes() for p in out.iterdir()}
  writes = []

  def fill_up(file, values, window):
    writes.append(window)
    if len(writes) == 5:
      raise OSError(errno.ENOSPC, "No space left on device")
    file.write(values, window=window)

  monkeypatch.setattr(predict, "_write", fill_up)
  with pytest.raises(OSError, match="No space left on device.*none of them was kept"):
    run["predictor"].predict_scene(run["scenes"] / "salinas_a.tif", out, overwrite=True,
                                   tile_pixels=TILE_PIXELS)
  assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no partial folder either
  monkeypatch.undo()  # space freed: the same call replaces the earlier outputs
  paths = run["predictor"].predict_scene(run["scenes"] / "salinas_a.tif", out, overwrite=True)
  assert sorted(p.name for p in out.iterdir()) == sorted(before)
  np.testing.assert_array_equal(_read(paths["classes"]), run["eval_map"])
