#!/usr/bin/env bash
# Ours against the PyTorch baseline on this CPU, alternating, in one run (BENCHMARKS.md):
#   benchmarks/cpu_side_by_side.sh [TORCH_PYTHON]
# TORCH_PYTHON is a Python with torch installed (default: python). Each round runs
# PyTorch as installed, PyTorch with oneDNN and ATen capped to AVX2 (the instruction
# set of the CPU class the throughput issue names), then ours.
set -euo pipefail
TORCH_PYTHON=${1:-python}
for round in 1 2; do
  "$TORCH_PYTHON" benchmarks/torch_reference.py --repeats 10
  ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \
    "$TORCH_PYTHON" benchmarks/torch_reference.py --repeats 10
  python -m claresnet_jax.bench --config configs/ip.py --batch_size 16 --eval_batch_size 32 \
    --repeats 10 --json 2> /dev/null
done
