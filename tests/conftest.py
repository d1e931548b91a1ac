"""Shared test fixtures: the provided reference tensors and scenes, a local server, the tiny
model and config of every test that trains or times one, and the persistent compilation cache.
"""
from collections.abc import Callable
import functools
import http.server
import importlib.util
import os
import pathlib
import re
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests run tiny programs, where XLA's optimising backend costs far more than it saves:
# optimisation level 1 nearly halves their compile time (the tiny training step: 40 s to
# 22 s on the 2-core CPU; level 0 made its loss NaN). The tests' commands inherit it;
# timings in the docs never run with it.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=1"

import jax
from jax.experimental.compilation_cache import compilation_cache
import ml_collections
import pytest

from claresnet_jax import cli

# In-process tests run with the settings every command starts with (the persistent cache
# aside: compile_cache): the same XLA flags and one CPU device per core, so they run the
# meshes the commands run, and the programs they compile have the same persistent-cache keys
# as the commands': with compile_cache, each loads what the other compiled (test_train.py's
# in-process runs load its train.py's init, training and prediction steps).
cli.schedule_cpu_programs_depth_first()
cli.use_one_cpu_device_per_core()

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# The files that take longest (minutes of XLA compiling each; pytest --durations), which
# start first so that the two xdist workers, a file each at a time, finish together.
# test_docs.py's recipe, which loads the programs of test_train.py's first command (the tiny
# model on Salinas-A), comes after files that share none (other shapes, bfloat16, the cache
# off).
SLOWEST_FIRST = ("test_train.py", "test_table3.py", "test_bench.py", "test_train_parallel.py",
                 "test_docs.py", "test_precision.py", "test_export.py", "test_models.py",
                 "test_predict.py")

# The tiny CLAReSNet and input of every test that trains, evaluates or times the model, as
# config overrides: it compiles in seconds, and tests of the same shapes share programs.
TINY = {"model.kwargs.emb_dim": 16, "model.kwargs.base_channels": 8,
        "model.kwargs.num_layers": 1, "pca.components": 6, "patch_size": 5}

# The embedded default with the tiny model, on the paper split, or with "small" on a small
# training set (40 pixels a class) for quick in-process runs.
TINY_CONFIG = f'''
import ml_collections
from configs import salinas_a


def get_config(split="paper"):
  config = salinas_a.get_config()
  config.update_from_flattened_dict({TINY!r})
  # A constant rate compiles the same step for any run length, so runs share compiled code.
  config.optimizer.schedule = "constant"
  config.optimizer.learning_rate = 3e-3
  config.optimizer.warmup_epochs = 0.0
  config.batch_size = 16
  config.eval_batch_size = 64
  config.num_epochs = 2
  config.patience = 2
  if split == "small":
    config.split.protocol = "per_class"
    config.split.options = ml_collections.ConfigDict(dict(train_per_class=40, val_per_class=30))
  return config
'''


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  if not SHARED.is_dir():
    raise FileNotFoundError(f"{SHARED} is missing: the tests need ../shared beside the checkout")
  return SHARED


@pytest.fixture(scope="session")
def tiny_flags() -> list[str]:
  """The tiny model and input as command-line overrides of any config."""
  return [f"--config.{key}={value}" for key, value in TINY.items()]


@pytest.fixture(scope="session")
def tiny_model_kwargs() -> dict[str, int]:
  """The tiny CLAReSNet's arguments (models.create_model's kwargs)."""
  prefix = "model.kwargs."
  return {key[len(prefix):]: value for key, value in TINY.items() if key.startswith(prefix)}


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory) -> pathlib.Path:
  """TINY_CONFIG as a config file (for commands: the paper split)."""
  path = tmp_path_factory.mktemp("configs") / "tiny.py"
  path.write_text(TINY_CONFIG)
  return path


@pytest.fixture(scope="session")
def tiny_config(tiny_config_file) -> Callable[[], ml_collections.ConfigDict]:
  """Makes the tiny config on the small training set (a new one each call) for in-process runs."""
  spec = importlib.util.spec_from_file_location("tiny_config", tiny_config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return lambda: module.get_config("small")


def session_folder(tmp_path_factory) -> pathlib.Path:
  """The session's temporary folder, one for all xdist workers."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
  """A persistent XLA cache for the session's processes, on either xdist worker: each program
  compiles once (JAX compresses its entries, so one read while the other worker writes it
  fails its check and compiles instead).

  Yields the environment variables that give a subprocess the same cache.
  """
  path = session_folder(tmp_path_factory) / "xla_cache"
  settings = {"jax_compilation_cache_dir": str(path),
              "jax_persistent_cache_min_compile_time_secs": 0.0,
              "jax_persistent_cache_min_entry_size_bytes": 0}
  previous = {k: getattr(jax.config, k) for k in settings}
  for k, v in settings.items():
    jax.config.update(k, v)
  compilation_cache.reset_cache()  # JAX decides on the cache at its first compilation
  yield {k.upper(): str(v) for k, v in settings.items()}
  for k, v in previous.items():
    jax.config.update(k, v)
  compilation_cache.reset_cache()


def _cache_hits(log: str) -> tuple[int, str]:
  """Programs loaded from the persistent cache, and its folder, from a command's log."""
  match = re.search(r"XLA compilation: [\d.]+ s of [\d.]+ s for \d+ programs, (\d+) loaded "
                    r"from the persistent cache in (\S+)", log)
  assert match, log[-3000:]
  return int(match.group(1)), match.group(2)


@pytest.fixture(scope="session")
def cache_hits() -> Callable[[str], tuple[int, str]]:
  """Reads a command's closing log line (cli): (programs loaded from the persistent cache,
  its folder)."""
  return _cache_hits


@pytest.fixture
def served(tmp_path):
  """A folder served on 127.0.0.1; yields (folder, base URL)."""
  folder = tmp_path / "served"
  folder.mkdir()
  handler = functools.partial(_QuietHandler, directory=str(folder))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
  thread.start()
  yield folder, f"http://127.0.0.1:{server.server_port}"
  server.shutdown()
  thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args):
    pass


@pytest.fixture(scope="session", autouse=True)
def user_caches_in_session_tmp(tmp_path_factory):
  """Commands that tests start keep their compiled programs and prepared scenes in this
  session's temporary folder, not in the user's ~/.cache and ~/tensorflow_datasets (and never
  reuse those of an earlier session)."""
  caches = {"XDG_CACHE_HOME": str(session_folder(tmp_path_factory) / "xdg_cache"),
            "TFDS_DATA_DIR": str(tmp_path_factory.getbasetemp() / "tfds")}
  previous = {name: os.environ.get(name) for name in caches}
  os.environ.update(caches)
  yield
  for name, value in previous.items():
    if value is None:
      del os.environ[name]
    else:
      os.environ[name] = value


def pytest_collection_modifyitems(items):
  rank = {name: k for k, name in enumerate(SLOWEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file
