"""Classifies new scenes with a trained run: `python predict.py --workdir runs/ip --scene s.tif
--output maps/` (docs/predict.md).

Writes, per scene, the class map, the probability of the predicted class, the
prediction entropy (and with --probabilities every class's probability) as
GeoTIFF, or ENVI for an ENVI scene, with the scene's georeferencing, plus a
PNG of the map.
"""
from absl import app
from absl import flags

from claresnet_jax import cli, predict

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run of train.py.")
_SCENE = flags.DEFINE_multi_string(
    "scene", None, "Scene to classify: GeoTIFF, ENVI (.hdr), .npy or .mat; repeat for several.")
_OUTPUT = flags.DEFINE_string("output", None, "Folder for the outputs.")
_NODATA = flags.DEFINE_float("nodata", None, "Fill value, in every band, of pixels without data "
                             "(default: the file's own); NaN, Inf and all-zero spectra are no "
                             "data too.")
_PROBABILITIES = flags.DEFINE_bool("probabilities", False, "Also write every class's probability.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace the outputs of an earlier run.")
_TILE_PIXELS = flags.DEFINE_integer("tile_pixels", predict.TILE_PIXELS,
                                    "Pixels classified per tile; memory grows with it.")
flags.mark_flags_as_required(["workdir", "scene", "output"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  predict.predict_scenes(_WORKDIR.value, _SCENE.value, _OUTPUT.value, nodata=_NODATA.value,
                         probabilities=_PROBABILITIES.value, overwrite=_OVERWRITE.value,
                         tile_pixels=_TILE_PIXELS.value)


if __name__ == "__main__":
  cli.run(main)
