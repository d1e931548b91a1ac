"""CLAReSNet: parity with the authors' PyTorch model, parameter counts, shapes, modes, errors."""
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from claresnet_jax.models import CLAReSNet, create_model
from claresnet_jax.models import layers, spatial, spectral

@pytest.fixture(scope="module")
def two_layers(tiny_model_kwargs) -> dict:
  """The tiny CLAReSNet's arguments with two layers, so that the fusion of layers runs too."""
  return {**tiny_model_kwargs, "num_layers": 2}


@pytest.fixture(scope="module")
def tiny(two_layers):
  """A tiny CLAReSNet and its variables; parameters do not depend on the patch shape."""
  model = CLAReSNet(num_classes=4, **two_layers)
  return model, jax.jit(model.init)(jax.random.key(1), jnp.zeros((1, 5, 5, 3)))


@pytest.fixture(scope="module")
def reference(shared_dir):
  with np.load(shared_dir / "reference" / "claresnet_reference_small.npz") as z:
    return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def meta(reference):
  return json.loads(str(reference["meta_json"]))


def _count(tree) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def _param_shapes(model, x_shape=(1, 11, 11, 30)):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x_shape)))


# --- parity -----------------------------------------------------------------------------

@pytest.mark.parametrize("bands", [30, 64, 7])
def test_matches_authors_model_under_jit(reference, bands):
  from claresnet_jax.convert import model_from_torch, variables_from_torch
  state_dict = {k[3:]: v for k, v in reference.items() if k.startswith("sd/")}
  model = model_from_torch(state_dict)
  variables = variables_from_torch(state_dict)
  x = jnp.asarray(reference[f"x_T{bands}"]).transpose(0, 2, 3, 1)  # NCHW -> NHWC

  # One program for both outputs: XLA computes the shared forward pass once and compiles it once.
  logits, features = jax.jit(lambda v, x: (
      model.apply(v, x, train=False),
      model.apply(v, x, train=False, method=CLAReSNet.features)))(variables, x)

  np.testing.assert_allclose(logits, reference[f"logits_T{bands}"], rtol=0, atol=1e-4)
  np.testing.assert_allclose(features, reference[f"features_T{bands}"], rtol=0, atol=1e-4)


def test_latent_count_matches_authors(meta):
  for bands in (30, 64, 7):
    assert spectral.num_latents(bands) == meta[f"num_latents_T{bands}"]
  # 16 * log2(T / 16), clamped to [8, 64]: saturates from T = 256 on.
  assert [spectral.num_latents(t) for t in (1, 16, 32, 255, 256, 1000)] == [8, 8, 16, 63, 64, 64]


# --- parameter counts --------------------------------------------------------------------

def test_paper_configuration_has_the_authors_parameter_count(meta):
  params = _param_shapes(CLAReSNet(num_classes=16))["params"]
  assert _count(params) == meta["full_param_count"] == 17_326_151
  by_module = {
      "spatial_extractor": _count(params["spatial_extractor"]),
      "encoder_layers": sum(_count(params[f"encoder_layers_{i}"]) for i in range(3)),
      "cross_attn": _count(params["cross_attn"]),
      "cross_norm": _count(params["cross_norm"]),
      "head": sum(_count(params[k]) for k in ("head_0", "head_2", "head_5")),
  }
  assert by_module == meta["full_param_count_by_module"]


def test_small_configuration_parameter_count(meta):
  cfg = meta["small_config"]
  model = CLAReSNet(num_classes=cfg["n_classes"], emb_dim=cfg["emb_dim"],
                    base_channels=cfg["base_c"], num_layers=cfg["n_encoder_layers"])
  assert _count(_param_shapes(model)["params"]) == meta["small_param_count"]


# --- shapes of every module ------------------------------------------------------------

def _output_shape(module, *args, **kwargs):
  out, _ = jax.eval_shape(
      lambda: module.init_with_output(jax.random.key(0), *args, **kwargs))
  return out.shape


@pytest.mark.parametrize("height,width", [(5, 5), (9, 9), (7, 5), (11, 11)])
def test_spatial_modules_keep_shape(height, width):
  x = jnp.zeros((3, height, width, 8))
  for module in (spatial.SqueezeExcite(), spatial.DilatedResidualBlock(dilation=4),
                 spatial.SpatialAttention()):
    assert _output_shape(module, x, train=False) == x.shape
  assert _output_shape(spatial.MultiScaleStem(8), x[..., :1], train=False) == (3, height, width, 8)
  assert _output_shape(spatial.SpatialFeatureExtractor(16, 8), x[..., :3], train=False) == (3, 3, 16)


@pytest.mark.parametrize("bands", [1, 3, 7, 257])
def test_spectral_modules_keep_shape(bands):
  x = jnp.zeros((2, bands, 16))
  for cell in ("lstm", "gru"):
    assert _output_shape(spectral.BidirectionalRNN(cell, 8), x) == (2, bands, 16)
  for module in (spectral.MultiScaleSpectralLatentAttention(), spectral.SpectralEncoderLayer()):
    assert _output_shape(module, x, train=False) == x.shape


@pytest.mark.parametrize("shape", [(2, 5, 5, 1), (2, 9, 9, 3), (1, 7, 5, 7), (1, 5, 5, 256)])
def test_claresnet_output_shapes(tiny, shape):
  model, variables = tiny
  x = jax.random.normal(jax.random.key(0), shape)
  logits = jax.jit(model.apply)(variables, x)  # finite only where the features are
  features = jax.eval_shape(lambda v, x: model.apply(v, x, method=CLAReSNet.features),
                            variables, x)
  chex.assert_shape(logits, (shape[0], 4))
  chex.assert_shape(features, (shape[0], 16))
  chex.assert_tree_all_finite(logits)


def test_single_layer_model_has_no_fusion(tiny_model_kwargs):
  model = CLAReSNet(num_classes=3, **{**tiny_model_kwargs, "num_layers": 1})
  params = _param_shapes(model, (1, 5, 5, 4))["params"]
  assert "cross_attn" not in params and "encoder_layers_0" in params


@pytest.mark.parametrize("size,dilation,channels", [
    (1, 1, 1), (5, 1, 1), (7, 1, 4), (3, 1, 8), (3, 2, 8), (3, 4, 8)])
def test_convolution_gradients_are_xlas(size, dilation, channels):
  """layers.Conv computes its kernel gradient itself on the CPU: it must be XLA's own."""
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 5, channels))
  conv = layers.Conv(6, size, jnp.float32, dilation)
  params = conv.init(jax.random.PRNGKey(1), x)

  def xla_conv(params, x):
    return jax.lax.conv_general_dilated(
        x, params["params"]["kernel"], (1, 1), "SAME", rhs_dilation=(dilation, dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def grads(apply):
    return jax.jit(jax.grad(lambda p, x: jnp.sum(jnp.sin(apply(p, x)) ** 2), argnums=(0, 1)))(
        params, x)

  chex.assert_trees_all_close(grads(conv.apply), grads(xla_conv), rtol=1e-5, atol=1e-5)


def test_gelu_is_the_exact_form_in_float32():
  # torch.nn.GELU: x * Phi(x), Phi the standard normal CDF (scipy's ndtr in float64).
  x = np.linspace(-12, 12, 20001, dtype=np.float32)
  expected = x.astype(np.float64) * scipy.special.ndtr(x.astype(np.float64))
  np.testing.assert_allclose(jax.jit(layers.gelu)(x), expected, rtol=1e-6, atol=1e-6)


def test_upsampling_matches_half_pixel_linear_resize():
  # PyTorch's linear interpolation (align_corners=False) is the half-pixel linear
  # resize that jax.image implements independently.
  for n_in, n_out in [(2, 3), (8, 30), (15, 30), (16, 64), (2, 7)]:
    x = np.random.default_rng(0).normal(size=(n_in,)).astype(np.float32)
    expected = jax.image.resize(x, (n_out,), "linear")
    np.testing.assert_allclose(
        spectral.linear_upsampling_matrix(n_in, n_out) @ x, expected, atol=1e-6)


# --- training mode -------------------------------------------------------------------

def test_train_mode_updates_batch_stats_uses_dropout_and_has_finite_gradients(tiny):
  model, variables = tiny
  x = jax.random.normal(jax.random.key(0), (4, 7, 7, 5))
  labels = jnp.array([0, 1, 2, 3])

  def loss_fn(params, key):
    logits, updates = model.apply(
        {"params": params, "batch_stats": variables["batch_stats"]}, x, train=True,
        rngs={"dropout": key}, mutable=["batch_stats"])
    loss = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))
    return loss, (logits, updates)

  grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
  (_, (logits_a, updates)), grads = grad_fn(variables["params"], jax.random.key(2))
  (_, (logits_b, _)), _ = grad_fn(variables["params"], jax.random.key(3))
  eval_logits = jax.jit(lambda v: model.apply(v, x, train=False))(variables)

  chex.assert_tree_all_finite(grads)
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads["head_5"]))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                         updates["batch_stats"], variables["batch_stats"])
  assert all(jax.tree.leaves(changed))
  assert not np.allclose(logits_a, logits_b)  # different dropout keys
  assert not np.allclose(logits_a, eval_logits)


def test_bfloat16_computation_keeps_float32_parameters_and_outputs(reference):
  from claresnet_jax.convert import model_from_torch, variables_from_torch
  state_dict = {k[3:]: v for k, v in reference.items() if k.startswith("sd/")}
  model = model_from_torch(state_dict).clone(dtype="bfloat16")
  variables = variables_from_torch(state_dict)
  x = jnp.asarray(reference["x_T30"]).transpose(0, 2, 3, 1)
  logits = jax.jit(model.apply)(variables, x)
  assert logits.dtype == jnp.float32
  # bfloat16 keeps ~3 significant digits: close to the float32 model, not equal to it.
  error = np.abs(logits - reference["logits_T30"]).max()
  assert 0 < error < 0.02 * np.abs(reference["logits_T30"]).max()
  assert {p.dtype for p in jax.tree.leaves(variables)} == {np.dtype("float32")}


# --- bad input -------------------------------------------------------------------------

def test_registry(two_layers):
  assert isinstance(create_model("claresnet", 3, **two_layers), CLAReSNet)
  with pytest.raises(ValueError, match="unknown model 'nope'.*claresnet"):
    create_model("nope", 3)


@pytest.mark.parametrize("x,error,message", [
    (jnp.zeros((5, 5, 4)), ValueError, r"\(batch, height, width, bands\).*\(5, 5, 4\)"),
    (jnp.zeros((1, 5, 5, 4), jnp.int32), TypeError, "floating-point.*int32"),
])
def test_bad_patches_are_named(x, error, message, two_layers):
  model = CLAReSNet(num_classes=3, **two_layers)
  with pytest.raises(error, match=message):
    model.init(jax.random.key(0), x)


@pytest.mark.parametrize("kwargs,message", [
    (dict(emb_dim=20), "emb_dim=20 must be divisible by 8"),
    (dict(emb_dim=12), "emb_dim=12 must be divisible by 8"),
    (dict(base_channels=10), "base_channels=10 must be a multiple of 4"),
    (dict(num_layers=0), "num_layers >= 1"),
    (dict(dtype="int8"), "dtype='int8'.*'bfloat16'"),
    (dict(dtype="float16"), "dtype='float16': float16 needs loss scaling.*'bfloat16'"),
])
def test_bad_configuration_is_named(kwargs, message, two_layers):
  model = CLAReSNet(num_classes=3, **{**two_layers, **kwargs})
  with pytest.raises(ValueError, match=message):
    _param_shapes(model, (1, 5, 5, 4))


def test_too_many_bands_is_named(two_layers):
  model = CLAReSNet(num_classes=3, **two_layers)
  with pytest.raises(ValueError, match="5001 bands.*at most 5000"):
    _param_shapes(model, (1, 5, 5, 5001))
