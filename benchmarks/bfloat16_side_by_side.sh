#!/usr/bin/env bash
# bfloat16 against float32, ours and PyTorch's (torch.autocast), alternating, in one run
# (BENCHMARKS.md, "Precision"); it pays only on a CPU with bfloat16 instructions:
#   benchmarks/bfloat16_side_by_side.sh [TORCH_PYTHON]
# TORCH_PYTHON is a Python with torch installed (default: python). Prints the CPU's
# bfloat16 flags first, then one JSON line per run. On a CPU without them it stops: there
# PyTorch's bfloat16 LSTM has no oneDNN primitive (a RuntimeError on the AVX2 AMD EPYC).
set -euo pipefail
TORCH_PYTHON=${1:-python}
flags=$(grep -o -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)
if [ -z "$flags" ]; then
  echo "this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16): nothing to measure" >&2
  exit 1
fi
echo "bfloat16 flags: $flags"
for round in 1 2; do
  for dtype in float32 bfloat16; do
    "$TORCH_PYTHON" benchmarks/torch_reference.py --repeats 10 --dtype "$dtype"
    python -m claresnet_jax.bench --config configs/ip.py --batch_size 16 --eval_batch_size 32 \
      --repeats 10 --json --config.model.kwargs.dtype="$dtype" 2> /dev/null
  done
done
