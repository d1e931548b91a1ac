"""What every command of the project does first: train.py, eval.py, bench and compare."""
from collections.abc import Callable
import os
import platform
import sys

from absl import app
from absl import logging

# XLA:CPU allocates its large per-step buffers anew on every call. By default glibc
# returns each one to the kernel on free and page-faults it in again on the next
# step; keeping freed memory in the heap (no mmap, no trimming) on transparent huge
# pages gave the paper model 1.25-1.5x the CPU training throughput (BENCHMARKS.md).
GLIBC_TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:"
                  "glibc.malloc.trim_threshold=68719476736")


def run(main: Callable[[list[str]], None]) -> None:
  """`absl.app.run(main)` in a process whose glibc malloc keeps XLA's buffers.

  glibc reads its tunables only at start-up, so the command restarts itself
  once with GLIBC_TUNABLES set. A GLIBC_TUNABLES already in the environment
  (even empty) is the user's choice and is left as it is.
  """
  if "GLIBC_TUNABLES" not in os.environ and platform.libc_ver()[0] == "glibc":
    os.environ["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
  logging.get_absl_handler().addFilter(_quiet_orbax)
  app.run(main)


def _quiet_orbax(record) -> bool:
  """Drops Orbax's INFO lines (several per checkpoint), keeping its warnings and errors."""
  return record.levelno >= logging.converter.STANDARD_WARNING or "/orbax/" not in record.pathname
