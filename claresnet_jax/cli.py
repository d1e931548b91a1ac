"""What every command of the project does first: train.py, eval.py, bench and compare."""
from collections.abc import Callable
import importlib.metadata
import importlib.util
import os
import pathlib
import platform
import sys
import time

from absl import app
from absl import logging
import jax

# XLA:CPU allocates its large per-step buffers anew on every call. By default glibc
# returns each one to the kernel on free and page-faults it in again on the next
# step; keeping freed memory in the heap (no mmap, no trimming) on transparent huge
# pages gave the paper model 1.25-1.5x the CPU training throughput (BENCHMARKS.md).
GLIBC_TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:"
                  "glibc.malloc.trim_threshold=68719476736")

# XLA:CPU orders a program's operations breadth first by default, so that independent ones
# can run at once and their buffers are live together. With one device per core no core is
# free to run them; depth first, its memory-minimising order, trained the paper model
# 1.12-1.17x as fast on a 2-core CPU (BENCHMARKS.md). Other platforms ignore the flag.
DEPTH_FIRST_CPU_SCHEDULE = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def run(main: Callable[[list[str]], None]) -> None:
  """`absl.app.run(main)`, after the settings every command shares.

  glibc malloc keeps XLA's buffers (`keep_freed_memory`), then `use_jax_settings`; each
  leaves a setting the user made as it is.
  """
  keep_freed_memory()
  use_jax_settings()
  logging.get_absl_handler().addFilter(_quiet_orbax)
  app.run(_logging_compile_time(main))


def keep_freed_memory() -> None:
  """Restarts this process once with GLIBC_TUNABLES set, where XLA:CPU will compute, unless
  the user set them (even empty).

  Kept freed memory holds the process at its peak host memory: worth it only where XLA:CPU
  allocates the step's buffers. glibc reads its tunables only at start-up; call this before
  anything else.
  """
  if ("GLIBC_TUNABLES" not in os.environ and platform.libc_ver()[0] == "glibc"
      and computes_on_cpu()):
    os.environ["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def computes_on_cpu() -> bool:
  """Whether JAX will run on the CPU, told before it starts: JAX_PLATFORMS names cpu first,
  or no accelerator plugin (CUDA, ROCm, TPU) is installed for JAX to prefer."""
  platforms = os.environ.get("JAX_PLATFORMS", "")
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  plugins = importlib.metadata.entry_points(group="jax_plugins")
  return not plugins and not any(
      importlib.util.find_spec(name) for name in ("jax_plugins", "libtpu"))


def use_jax_settings() -> None:
  """CPU programs scheduled depth first, one CPU device per core, the persistent
  compilation cache. Call it before JAX's first computation."""
  schedule_cpu_programs_depth_first()
  use_one_cpu_device_per_core()
  use_persistent_compilation_cache()


def schedule_cpu_programs_depth_first() -> None:
  """Adds DEPTH_FIRST_CPU_SCHEDULE to XLA_FLAGS, unless the user set that flag either way.

  XLA reads XLA_FLAGS when its first backend starts: call this before JAX's first
  computation (every command does, through `run`).
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if DEPTH_FIRST_CPU_SCHEDULE.split("=")[0] not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {DEPTH_FIRST_CPU_SCHEDULE}".strip()


def use_persistent_compilation_cache() -> None:
  """Keeps compiled XLA programs on disk, so a rerun on this machine skips the compiler.

  The folder is JAX's own setting where the user gave one (JAX_COMPILATION_CACHE_DIR);
  else `claresnet_jax/xla` under $XDG_CACHE_HOME or ~/.cache.
  JAX_ENABLE_COMPILATION_CACHE=false turns the cache off.
  """
  if not jax.config.jax_compilation_cache_dir:
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    jax.config.update("jax_compilation_cache_dir", str(pathlib.Path(base) / "claresnet_jax" / "xla"))


def _logging_compile_time(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
  """`main`, then one log line: seconds spent compiling (or loading from the cache)."""
  seconds, hits = [], []

  def on_duration(event: str, duration: float, **_) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
      seconds.append(duration)

  def on_event(event: str, **_) -> None:
    if event == "/jax/compilation_cache/cache_hits":
      hits.append(event)

  def wrapped(argv: list[str]) -> None:
    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    start = time.perf_counter()
    try:
      main(argv)
    finally:
      logging.info("XLA compilation: %.1f s of %.1f s for %d programs, %d loaded from the "
                   "persistent cache in %s", sum(seconds), time.perf_counter() - start,
                   len(seconds), len(hits), jax.config.jax_compilation_cache_dir or "(off)")

  return wrapped


def use_one_cpu_device_per_core() -> None:
  """One JAX CPU device per core this process may use, unless the user chose a count.

  XLA:CPU runs one device's convolutions mostly one at a time, each on one core;
  with one device per core and the batch sharded over them (steps.make_mesh, which
  takes as many as the batch sizes divide), the 2-core CI machine class trained
  1.2-1.3x and inferred 1.35x as fast as with one device (BENCHMARKS.md).
  Call it before JAX's first computation (every command does, through `run`).
  """
  if (jax.config.jax_num_cpu_devices < 0
      and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")):
    jax.config.update("jax_num_cpu_devices", _usable_cores())


def _usable_cores() -> int:
  """The cores this process may run on (its affinity, where the OS has one)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def _quiet_orbax(record) -> bool:
  """Drops Orbax's INFO lines (several per checkpoint), keeping its warnings and errors."""
  return record.levelno >= logging.converter.STANDARD_WARNING or "/orbax/" not in record.pathname
