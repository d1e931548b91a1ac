"""TensorFlow, imported only for the input pipeline, with accelerators hidden from it.

TF would otherwise reserve GPU memory that JAX needs (as the flax examples do).
"""
import tensorflow as tf

tf.config.set_visible_devices([], "GPU")
