"""CLAReSNet hyperspectral image classification in JAX/Flax."""
