"""Shared test fixtures: paths to the provided reference tensors and scenes."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  if not SHARED.is_dir():
    raise FileNotFoundError(f"{SHARED} is missing: the tests need ../shared beside the checkout")
  return SHARED
