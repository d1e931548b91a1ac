"""The commands' common start: glibc malloc tunables (a restart) and arguments kept."""
import os
import platform
import subprocess
import sys

import pytest

from claresnet_jax import cli

# A command that reports the tunables and arguments its main() sees.
PROGRAM = ("import os; from claresnet_jax import cli; "
           "cli.run(lambda argv: print(os.environ.get('GLIBC_TUNABLES'), argv[1:]))")

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="glibc tunables exist only on glibc systems")


def _run(env_update, *args):
  env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  env.update(env_update)
  result = subprocess.run([sys.executable, "-c", PROGRAM, *args], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
  return result.stdout.rstrip("\n")


def test_restarts_once_with_the_tunables_and_the_same_arguments():
  assert _run({}, "one", "two words") == f"{cli.GLIBC_TUNABLES} ['one', 'two words']"


def test_a_users_tunables_are_kept():
  assert _run({"GLIBC_TUNABLES": "glibc.malloc.check=0"}) == "glibc.malloc.check=0 []"
  assert _run({"GLIBC_TUNABLES": ""}) == " []"
