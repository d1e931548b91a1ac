"""Indian Pines with the paper's protocol (the scene cube is downloaded on first use)."""
from configs import default


def get_config():
  return default.get_config()
