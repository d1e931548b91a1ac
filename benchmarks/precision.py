"""What bfloat16 computation and the matmul precision change in CLAReSNet's outputs.

Two models, each run under jax.jit in float32 at several matmul precisions and in bfloat16
(config.matmul_precision, config.model.kwargs.dtype):

- the authors' converted small model on their reference inputs (T = 30, 64, 7), against
  their PyTorch logits (../shared/reference/);
- the paper's full model (random initialisation, seed 0) on 11x11 patches of Salinas-A
  projected to 30 PCA components, at 64 labelled pixels drawn with seed 0.

Prints one JSON line per comparison: the largest logit and probability differences, the
logits' own scale, and the share of pixels whose predicted class agrees.

  python benchmarks/precision.py
"""
import itertools
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# pylint: disable=g-import-not-at-top,wrong-import-position
from claresnet_jax import bench, cli, convert, data
from claresnet_jax.models import CLAReSNet
# pylint: enable=g-import-not-at-top,wrong-import-position

PRECISIONS = ("default", "high", "highest")
NUM_PIXELS = 64
SHARED = REPO.parent / "shared"


def logits(model, variables, x, dtype: str, precision: str) -> np.ndarray:
  """`model` in `dtype` under `precision`, compiled afresh (the precision is a trace setting)."""
  model = model.clone(dtype=dtype)
  with jax.default_matmul_precision(None if precision == "default" else precision):
    return np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))


def difference(name: str, a: np.ndarray, b: np.ndarray) -> dict:
  """How far logits `a` are from `b`, row by row."""
  softmax = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(
      z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
  return {"comparison": name, "rows": len(a),
          "max_abs_logit_difference": float(np.abs(a - b).max()),
          "max_abs_logit": float(np.abs(b).max()),
          "max_abs_probability_difference": float(np.abs(softmax(a) - softmax(b)).max()),
          "argmax_agreement": float(np.mean(a.argmax(-1) == b.argmax(-1))),
          "bitwise_equal": bool(np.array_equal(a, b))}


def authors_model(shared: pathlib.Path):
  with np.load(shared / "reference" / "claresnet_reference_small.npz") as z:
    reference = {k: z[k] for k in z.files}
  state_dict = {k[3:]: v for k, v in reference.items() if k.startswith("sd/")}
  model = convert.model_from_torch(state_dict)
  variables = convert.variables_from_torch(state_dict)
  for bands in (30, 64, 7):
    x = jnp.asarray(reference[f"x_T{bands}"]).transpose(0, 2, 3, 1)  # NCHW -> NHWC
    torch = reference[f"logits_T{bands}"]
    out = {p: logits(model, variables, x, "float32", p) for p in ("default", "highest")}
    out["bfloat16"] = logits(model, variables, x, "bfloat16", "default")
    tag = f"authors' small model, T={bands}"
    yield difference(f"{tag}: float32 vs PyTorch", out["default"], torch)
    yield difference(f"{tag}: bfloat16 vs PyTorch", out["bfloat16"], torch)
    yield difference(f"{tag}: highest vs default", out["highest"], out["default"])


def paper_model(num_pixels: int):
  scene = data.load_scene("salinas_a")
  cube = data.fit_pca(scene.cube, 30).transform(scene.cube)
  labelled = np.argwhere(scene.gt > 0)
  pixels = labelled[np.random.default_rng(0).permutation(len(labelled))[:num_pixels]]
  padded = np.pad(cube, ((5, 5), (5, 5), (0, 0)), mode="reflect")
  x = jnp.asarray(np.stack([padded[r:r + 11, c:c + 11] for r, c in pixels]))
  model = CLAReSNet(num_classes=scene.num_classes)
  variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x[:1])
  out = {p: logits(model, variables, x, "float32", p) for p in PRECISIONS}
  out["bfloat16"] = logits(model, variables, x, "bfloat16", "default")
  tag = "paper model (random init), Salinas-A patches"
  yield difference(f"{tag}: bfloat16 vs float32", out["bfloat16"], out["highest"])
  yield difference(f"{tag}: default vs highest", out["default"], out["highest"])
  yield difference(f"{tag}: high vs highest", out["high"], out["highest"])


def main():
  cli.use_jax_settings()
  print(json.dumps({"device": bench.device_description()}), flush=True)
  for row in itertools.chain(authors_model(SHARED), paper_model(NUM_PIXELS)):
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
