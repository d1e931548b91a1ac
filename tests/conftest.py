"""Shared test fixtures: paths to the provided reference tensors and scenes, a local server."""
import functools
import http.server
import os
import pathlib
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# The files that take longest (minutes of XLA compiling each; pytest --durations), which
# start first so that the two xdist workers, a file each at a time, finish together.
SLOWEST_FIRST = ("test_train.py", "test_train_parallel.py", "test_docs.py", "test_table3.py",
                 "test_bench.py", "test_models.py", "test_predict.py", "test_precision.py")


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  if not SHARED.is_dir():
    raise FileNotFoundError(f"{SHARED} is missing: the tests need ../shared beside the checkout")
  return SHARED


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
  base = tmp_path_factory.getbasetemp()
  caches = {"XDG_CACHE_HOME": str(base / "xdg_cache"), "TFDS_DATA_DIR": str(base / "tfds")}
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
