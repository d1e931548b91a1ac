"""Bring the authors' PyTorch CLAReSNet weights into Flax.

``variables_from_torch`` maps a PyTorch ``state_dict`` (names exactly as the
authors' model prints them) onto ``CLAReSNet`` variables. The command turns a
``.pth`` file (needs torch) or an ``.npz`` of arrays keyed by those names into a
checkpoint directory that ``load_checkpoint`` reads back as (model, variables):

  python -m claresnet_jax.convert authors_model.pth --output converted/
"""
import argparse
import json
import pathlib
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from claresnet_jax.models import CLAReSNet
from claresnet_jax.models.spectral import sinusoidal_encoding

NUM_HEADS = 8
# Buffers of the authors' model that carry no learned state: the BatchNorm step
# counters and the fixed sinusoidal table, which ``HybridPositionalEncoding`` recomputes.
_RECOMPUTED = ("num_batches_tracked", "sinusoidal_pe")


def model_from_torch(state_dict: Mapping[str, np.ndarray]) -> CLAReSNet:
  """The CLAReSNet configuration that a state_dict was saved from."""
  def shape(name):
    if name not in state_dict:
      raise ValueError(f"state_dict has no {name!r}: is this the authors' CLAReSNet?")
    return np.shape(state_dict[name])
  layers = {int(m.group(1)) for n in state_dict if (m := re.match(r"encoder_layers\.(\d+)\.", n))}
  return CLAReSNet(
      num_classes=shape("head.5.weight")[0],
      emb_dim=shape("spatial_extractor.frame_proj.0.weight")[0],
      base_channels=shape("spatial_extractor.stages.0.conv1.weight")[0],
      num_layers=len(layers))


def _flax_entries(name: str, value: np.ndarray, emb_dim: int):
  """Yields ((collection, *path), array, rnn_direction) for one PyTorch tensor."""
  prefix, leaf = name.rsplit(".", 1) if "." in name else ("", name)
  path = re.sub(r"\.(\d+)", r"_\1", prefix).split(".") if prefix else []
  head_dim = emb_dim // NUM_HEADS
  if rnn := re.fullmatch(r"(weight|bias)_(ih|hh)_l0(_reverse)?", leaf):
    yield ("params", *path, f"{rnn[1]}_{rnn[2]}"), value, int(bool(rnn[3]))
  elif leaf == "in_proj_weight":  # packed q, k, v: (3D, D) -> three (D, heads, head_dim)
    for part, w in zip(("query", "key", "value"), np.split(value, 3)):
      yield ("params", *path, part, "kernel"), w.T.reshape(-1, NUM_HEADS, head_dim), None
  elif leaf == "in_proj_bias":
    for part, b in zip(("query", "key", "value"), np.split(value, 3)):
      yield ("params", *path, part, "bias"), b.reshape(NUM_HEADS, head_dim), None
  elif path and path[-1] == "out_proj":
    out = ("params", *path[:-1], "out")
    if leaf == "weight":
      yield (*out, "kernel"), value.T.reshape(NUM_HEADS, head_dim, -1), None
    else:
      yield (*out, leaf), value, None
  elif leaf == "running_mean":
    yield ("batch_stats", *path, "mean"), value, None
  elif leaf == "running_var":
    yield ("batch_stats", *path, "var"), value, None
  elif leaf == "weight" and value.ndim == 4:  # conv (out, in, kh, kw) -> (kh, kw, in, out)
    yield ("params", *path, "kernel"), value.transpose(2, 3, 1, 0), None
  elif leaf == "weight" and value.ndim == 2:  # linear (out, in) -> (in, out)
    yield ("params", *path, "kernel"), value.T, None
  elif leaf == "weight":  # LayerNorm / BatchNorm affine
    yield ("params", *path, "scale"), value, None
  else:  # biases and the authors' own parameters (latent_token_pool, learnable_pe, ...)
    yield ("params", *path, leaf), value, None


def variables_from_torch(state_dict: Mapping[str, np.ndarray]) -> dict:
  """{'params', 'batch_stats'} for ``model_from_torch(state_dict)`` from the authors' tensors.

  Raises ValueError naming every missing, unexpected or misshaped tensor.
  """
  state_dict = {k: np.asarray(v) for k, v in state_dict.items()}
  model = model_from_torch(state_dict)
  expected = traverse_util.flatten_dict(jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, 5, 5, 8)))))
  source = {}  # flax path -> torch name, to name tensors in errors
  found, rnn_parts, problems = {}, {}, []
  for name, value in state_dict.items():
    leaf = name.rsplit(".", 1)[-1]
    if leaf in _RECOMPUTED:
      if leaf == "sinusoidal_pe" and not np.allclose(
          value.reshape(-1, model.emb_dim // 2)[:64],
          sinusoidal_encoding(64, model.emb_dim // 2), atol=1e-5):
        problems.append(f"{name} is not the standard sinusoidal table this model recomputes")
      continue
    for path, array, direction in _flax_entries(name, value, model.emb_dim):
      source[path] = name
      if direction is None:
        found[path] = array
      else:
        rnn_parts.setdefault(path, {})[direction] = array
  for path, parts in rnn_parts.items():
    if set(parts) != {0, 1}:
      problems.append(f"{source[path]}: the other direction of this recurrent weight is missing")
    else:
      found[path] = np.stack([parts[0], parts[1]])

  for path, array in found.items():
    if path not in expected:
      problems.append(f"unexpected tensor {source[path]} (no matching parameter {'/'.join(path)})")
    elif array.shape != expected[path].shape:
      problems.append(
          f"{source[path]} has shape {array.shape} after conversion, expected "
          f"{expected[path].shape} for {'/'.join(path)}")
  missing = ["/".join(p) for p in expected if p not in found]
  if missing:
    problems.append("missing tensors for: " + ", ".join(missing))
  if problems:
    raise ValueError("cannot convert this state_dict:\n  " + "\n  ".join(problems))
  return traverse_util.unflatten_dict(
      {path: jnp.asarray(array, jnp.float32) for path, array in found.items()})


def read_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Arrays by PyTorch name from a ``.npz`` or a ``.pth``/``.pt`` file (torch needed)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path} does not exist")
  if path.suffix == ".npz":
    with np.load(path) as arrays:
      return {k: arrays[k] for k in arrays.files}
  if path.suffix not in (".pth", ".pt"):
    raise ValueError(f"{path}: expected a .pth/.pt (PyTorch) or .npz file")
  try:
    import torch
  except ImportError as e:
    raise ImportError(f"reading {path} needs PyTorch: pip install torch") from e
  state = torch.load(path, map_location="cpu", weights_only=True)
  state = state.get("model_state_dict", state.get("state_dict", state))
  # nn.DataParallel saves every name under 'module.'.
  return {k.removeprefix("module."): v.numpy() for k, v in state.items()}


def save_checkpoint(directory: str | pathlib.Path, model: CLAReSNet, variables: dict) -> None:
  """Writes variables (orbax) and the model's attributes (model.json) to ``directory``."""
  directory = pathlib.Path(directory).absolute()
  attributes = {f: getattr(model, f) for f in
                ("num_classes", "emb_dim", "base_channels", "num_layers", "dropout")}
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(directory / "variables", variables)
  (directory / "model.json").write_text(json.dumps({"name": "claresnet", **attributes}, indent=2))


def load_checkpoint(directory: str | pathlib.Path) -> tuple[CLAReSNet, dict]:
  """The model and variables ``save_checkpoint`` wrote."""
  directory = pathlib.Path(directory).absolute()
  if not (directory / "model.json").is_file():
    raise FileNotFoundError(f"{directory} holds no converted checkpoint (no model.json)")
  attributes = json.loads((directory / "model.json").read_text())
  attributes.pop("name")
  model = CLAReSNet(**attributes)
  with ocp.StandardCheckpointer() as checkpointer:
    variables = checkpointer.restore(directory / "variables")
  return model, variables


def argument_parser() -> argparse.ArgumentParser:
  """The command line of `python -m claresnet_jax.convert`."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("weights", help="the authors' state_dict: .pth/.pt (needs torch) or .npz")
  parser.add_argument("--output", required=True, help="checkpoint directory to create")
  return parser


def main(argv=None) -> None:
  args = argument_parser().parse_args(argv)
  output = pathlib.Path(args.output)
  if output.exists():
    raise SystemExit(f"{output} already exists; choose a new --output directory")
  state_dict = read_state_dict(args.weights)
  model = model_from_torch(state_dict)
  save_checkpoint(output, model, variables_from_torch(state_dict))
  print(f"wrote {output}: CLAReSNet(num_classes={model.num_classes}, emb_dim={model.emb_dim}, "
        f"base_channels={model.base_channels}, num_layers={model.num_layers})")


if __name__ == "__main__":
  main()
