"""The commands' common start: glibc malloc tunables (a restart), the CPU schedule, CPU devices,
arguments kept."""
import os
import platform
import subprocess
import sys

import pytest

from claresnet_jax import cli

# A command that reports the tunables, CPU device count and arguments its main() sees.
PROGRAM = ("import os, jax; from claresnet_jax import cli; "
           "cli.run(lambda argv: print(os.environ.get('GLIBC_TUNABLES'), jax.device_count(), "
           "argv[1:]))")

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="glibc tunables exist only on glibc systems")


def _run(env_update, *args, cores=None, program=PROGRAM):
  env = {k: v for k, v in os.environ.items()
         if k not in ("GLIBC_TUNABLES", "JAX_NUM_CPU_DEVICES", "XLA_FLAGS", "JAX_PLATFORMS")}
  env.update(env_update)
  pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
  result = subprocess.run([sys.executable, "-c", program, *args], env=env, capture_output=True,
                          text=True, timeout=120, check=True, preexec_fn=pin)
  return result.stdout.rstrip("\n")


@glibc_only
def test_restarts_once_with_the_tunables_and_the_same_arguments():
  out = _run({}, "one", "two words")
  assert out.split(" ", 1)[0] == cli.GLIBC_TUNABLES
  assert out.endswith(" ['one', 'two words']")


# A command that reports the tunables after keep_freed_memory, without starting JAX.
TUNABLES_PROGRAM = ("import os; from claresnet_jax import cli; cli.keep_freed_memory(); "
                    "print(os.environ.get('GLIBC_TUNABLES'))")


@glibc_only
def test_tunables_only_where_xla_cpu_computes(tmp_path):
  assert _run({"JAX_PLATFORMS": "cpu"}, program=TUNABLES_PROGRAM) == cli.GLIBC_TUNABLES
  assert _run({"JAX_PLATFORMS": "cuda"}, program=TUNABLES_PROGRAM) == "None"
  assert _run({"JAX_PLATFORMS": "tpu,cpu"}, program=TUNABLES_PROGRAM) == "None"
  # An installed accelerator plugin (JAX finds them in the jax_plugins namespace).
  plugin = tmp_path / "jax_plugins" / "xla_fake"
  plugin.mkdir(parents=True)
  (plugin / "__init__.py").write_text("")
  with_plugin = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
  assert _run(with_plugin, program=TUNABLES_PROGRAM) == "None"
  assert _run({**with_plugin, "JAX_PLATFORMS": "cpu"},
              program=TUNABLES_PROGRAM) == cli.GLIBC_TUNABLES


@glibc_only
def test_a_users_tunables_are_kept():
  assert _run({"GLIBC_TUNABLES": "glibc.malloc.check=0"}).startswith("glibc.malloc.check=0 ")
  assert _run({"GLIBC_TUNABLES": ""}).startswith(" ")


def test_one_cpu_device_per_core_the_process_may_use():
  cores = sorted(os.sched_getaffinity(0))
  assert _run({}, cores=cores[:1]).split()[1] == "1"
  if len(cores) >= 2:
    assert _run({}, cores=cores[:2]).split()[1] == "2"
  if len(cores) >= 3:
    assert _run({}, cores=cores[:3]).split()[1] == "3"


def test_a_users_cpu_device_count_is_kept():
  assert _run({"JAX_NUM_CPU_DEVICES": "3"}).split()[1] == "3"
  assert _run({"XLA_FLAGS": "--xla_force_host_platform_device_count=3"}).split()[1] == "3"


# A command that reports the XLA flags its main() sees.
FLAGS_PROGRAM = ("import os; from claresnet_jax import cli; "
                 "cli.run(lambda argv: print(os.environ['XLA_FLAGS']))")


def _flags(env_update):
  return _run(env_update, program=FLAGS_PROGRAM)


def test_cpu_programs_are_scheduled_depth_first_beside_a_users_flags():
  assert _flags({}) == "--xla_cpu_enable_concurrency_optimized_scheduler=false"
  assert _flags({"XLA_FLAGS": "--xla_cpu_use_xnnpack=false"}) == (
      "--xla_cpu_use_xnnpack=false --xla_cpu_enable_concurrency_optimized_scheduler=false")


def test_a_users_cpu_schedule_is_kept():
  flag = "--xla_cpu_enable_concurrency_optimized_scheduler=true"
  assert _flags({"XLA_FLAGS": flag}) == flag


# A command that compiles one small program.
COMPILING_PROGRAM = ("import jax, jax.numpy as jnp; from claresnet_jax import cli; "
                     "cli.run(lambda argv: jax.jit(jnp.sin)(jnp.ones(3)).block_until_ready())")


def test_compiled_programs_go_to_the_user_cache_and_are_loaded_from_it(tmp_path, cache_hits):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
  # Every program kept, however quickly it compiles (a user's setting, left as given).
  env.update(XDG_CACHE_HOME=str(tmp_path / "cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  folder = tmp_path / "cache" / "claresnet_jax" / "xla"
  hits = []
  for _ in range(2):
    result = subprocess.run([sys.executable, "-c", COMPILING_PROGRAM], env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    loaded, cache_dir = cache_hits(result.stderr)
    assert cache_dir == str(folder)
    hits.append(loaded)
  assert hits[0] == 0 and hits[1] >= 1 and any(folder.iterdir())
