"""Converting the authors' state_dict: names, shapes, errors, and the checkpoint command."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from claresnet_jax import convert


@pytest.fixture(scope="module")
def reference(shared_dir):
  with np.load(shared_dir / "reference" / "claresnet_reference_small.npz") as z:
    return {k: z[k] for k in z.files}


@pytest.fixture
def state_dict(reference):
  return {k[3:]: v for k, v in reference.items() if k.startswith("sd/")}


def test_configuration_is_read_from_the_tensors(state_dict):
  model = convert.model_from_torch(state_dict)
  assert (model.num_classes, model.emb_dim, model.base_channels, model.num_layers) == (7, 64, 16, 2)


def test_running_statistics_land_in_batch_stats(state_dict):
  variables = convert.variables_from_torch(state_dict)
  stats = variables["batch_stats"]["spatial_extractor"]["stages_2"]["bn1"]
  np.testing.assert_array_equal(stats["mean"], state_dict["spatial_extractor.stages.2.bn1.running_mean"])
  np.testing.assert_array_equal(stats["var"], state_dict["spatial_extractor.stages.2.bn1.running_var"])


def test_missing_tensor_is_named(state_dict):
  del state_dict["encoder_layers.1.spectral_attention.input_norms.2.bias"]
  with pytest.raises(ValueError, match="missing tensors for: params/encoder_layers_1/"
                     "spectral_attention/input_norms_2/bias"):
    convert.variables_from_torch(state_dict)


def test_missing_direction_is_named(state_dict):
  del state_dict["encoder_layers.0.spectral_layers.1.weight_hh_l0_reverse"]
  with pytest.raises(ValueError, match=r"encoder_layers\.0\.spectral_layers\.1\.weight_hh_l0: "
                     "the other direction"):
    convert.variables_from_torch(state_dict)


def test_extra_tensor_is_named(state_dict):
  state_dict["spatial_extractor.stem.branch9.0.weight"] = np.zeros((4, 1, 9, 9), np.float32)
  with pytest.raises(ValueError, match=r"unexpected tensor spatial_extractor\.stem\.branch9\.0\.weight"):
    convert.variables_from_torch(state_dict)


def test_misshaped_tensor_is_named(state_dict):
  state_dict["cross_norm.bias"] = np.zeros((63,), np.float32)
  with pytest.raises(ValueError, match=r"cross_norm\.bias has shape \(63,\).*expected \(64,\)"):
    convert.variables_from_torch(state_dict)


def test_not_a_claresnet_state_dict():
  with pytest.raises(ValueError, match="no 'head.5.weight'"):
    convert.variables_from_torch({"fc.weight": np.zeros((2, 2))})


def test_command_writes_a_checkpoint_that_reproduces_the_authors_logits(
    tmp_path, state_dict, reference):
  weights = tmp_path / "authors.npz"
  np.savez(weights, **state_dict)
  output = tmp_path / "converted"
  convert.main([str(weights), "--output", str(output)])

  model, variables = convert.load_checkpoint(output)
  x = jnp.asarray(reference["x_T7"]).transpose(0, 2, 3, 1)
  logits = jax.jit(model.apply)(variables, x)
  np.testing.assert_allclose(logits, reference["logits_T7"], atol=1e-4)

  with pytest.raises(SystemExit, match="already exists"):
    convert.main([str(weights), "--output", str(output)])


def test_command_rejects_unknown_formats(tmp_path):
  path = tmp_path / "weights.h5"
  path.write_bytes(b"x")
  with pytest.raises(ValueError, match=r"expected a \.pth/\.pt \(PyTorch\) or \.npz"):
    convert.read_state_dict(path)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    convert.read_state_dict(tmp_path / "absent.npz")
