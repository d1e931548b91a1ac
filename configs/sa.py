"""Salinas with the paper's protocol (the scene cube is downloaded on first use)."""
from configs import default


def get_config():
  config = default.get_config()
  config.scene = "salinas"
  return config
