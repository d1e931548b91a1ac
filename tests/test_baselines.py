"""The deep baselines: sizes against the papers, shapes, input checks, learning."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from claresnet_jax.models.hybridsn import HybridSN
from claresnet_jax.models.spectralformer import SpectralFormer
from claresnet_jax.models.ssrn import SSRN


def _init(model, x):
  return model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                    x, train=False)


def _param_count(model, shape) -> int:
  variables = jax.eval_shape(lambda: _init(model, jnp.zeros(shape)))
  return sum(p.size for p in jax.tree_util.tree_leaves(variables["params"]))


def test_hybridsn_matches_the_papers_parameter_count():
  # Roy et al. (2020), Table I: 5,122,176 parameters for a 25x25x30 Indian
  # Pines patch and 16 classes.
  assert _param_count(HybridSN(16), (1, 25, 25, 30)) == 5_122_176


def test_ssrn_parameter_count_follows_the_papers_layer_list():
  # Zhong et al. (2018), Fig. 6, on a 7x7x200 Indian Pines patch, 16 classes.
  # Conv weights + biases, BatchNorm scale + offset.
  spectral = (7 * 24 + 24 + 2 * 24) + 2 * 2 * (7 * 24 * 24 + 24 + 2 * 24)
  full_depth = 97 * 24 * 128 + 128 + 2 * 128  # (200 - 7) // 2 + 1 = 97 bands.
  spatial = (3 * 3 * 128 * 24 + 24 + 2 * 24) + 2 * 2 * (
      3 * 3 * 24 * 24 + 24 + 2 * 24)
  head = 24 * 16 + 16
  expected = spectral + full_depth + spatial + head
  assert _param_count(SSRN(16), (1, 7, 7, 200)) == expected


def test_spectralformer_parameter_count_follows_the_authors_model():
  # The authors' ViT(image_size=7, near_band=3, num_patches=200,
  # num_classes=16, dim=64, depth=5, heads=4, mlp_dim=8, mode='CAF').
  tokens = 200 + 1
  embedding = 7 * 7 * 3 * 64 + 64 + tokens * 64 + 64  # + pos and cls.
  layer = (2 * 64 + 64 * 3 * 64 + 64 * 64 + 64) + (2 * 64 + 64 * 8 + 8 +
                                                   8 * 64 + 64)
  fusion = 2 * tokens * tokens + tokens  # Conv2d(201, 201, [1, 2]).
  head = 2 * 64 + 64 * 16 + 16
  expected = embedding + 5 * layer + 3 * fusion + head
  assert _param_count(SpectralFormer(16), (1, 7, 7, 200)) == expected


# Each model at the smallest input its check_input admits.
SMALLEST = {
    "hybridsn": (HybridSN(num_classes=5), 9, 13),
    "ssrn": (SSRN(num_classes=5), 3, 7),
    "spectralformer": (SpectralFormer(num_classes=5, dim=16, depth=3), 1, 3),
}


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_shapes_at_the_smallest_admitted_input(name):
  model, patch, bands = SMALLEST[name]
  model.check_input(patch, bands)
  x = jax.random.normal(jax.random.key(2), (3, patch, patch, bands))

  @jax.jit
  def outputs(x):
    variables = _init(model, x)
    return (model.apply(variables, x, train=False),
            model.apply(variables, x, train=False, method=type(model).features))

  logits, features = outputs(x)
  chex.assert_shape(logits, (3, 5))
  assert features.ndim == 2 and features.shape[0] == 3
  chex.assert_tree_all_finite((logits, features))


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_check_input_rejects_one_less(name):
  model, patch, bands = SMALLEST[name]
  with pytest.raises(ValueError, match="patch_size"):
    model.check_input(patch - 1, bands)
  with pytest.raises(ValueError, match="bands"):
    model.check_input(patch, bands - 1)


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_training_steps_fit_a_small_batch(name):
  model, patch, bands = SMALLEST[name]
  x = jax.random.normal(jax.random.key(4), (16, patch + 2, patch + 2, bands))
  labels = jnp.arange(16) % 5
  variables = _init(model, x)
  params, state = variables["params"], {
      k: v for k, v in variables.items() if k != "params"}
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)

  def loss_fn(params, state, key):
    logits, updates = model.apply({"params": params, **state}, x, train=True,
                                  mutable=["batch_stats"], rngs={"dropout": key})
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return loss.mean(), updates

  @jax.jit
  def step(params, state, opt_state, key):
    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, state, key)
    assert set(updates) == set(state)  # Training updates exactly the BatchNorm statistics.
    changes, opt_state = tx.update(grads, opt_state)
    return (optax.apply_updates(params, changes), dict(updates), opt_state, loss,
            optax.tree.norm(grads))

  losses = []
  new_params, new_state = params, state
  for i in range(8):
    new_params, new_state, opt_state, loss, grad_norm = step(
        new_params, new_state, opt_state, jax.random.key(i))
    assert np.isfinite(grad_norm) and grad_norm > 0
    losses.append(float(loss))
  assert losses[-1] < losses[0]
  moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)),
                                 params, new_params)
  assert all(jax.tree_util.tree_leaves(moved))
  if state:  # BatchNorm running statistics follow the batches.
    assert not np.allclose(jax.tree_util.tree_leaves(state)[0],
                           jax.tree_util.tree_leaves(new_state)[0])
