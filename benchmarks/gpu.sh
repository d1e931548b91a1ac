#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md in one run (about 8 minutes on an H200, most of it
# compilation: the full model's train step takes about 90 s to compile there).
#   OUT=results benchmarks/gpu.sh
# Each figure is appended to $OUT/gpu.jsonl as soon as it is measured.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/device.txt"
bench() { python3 -m claresnet_jax.bench --config configs/ip.py --json --repeats 5 --warmup 1 "$@" \
  2> >(grep -v -E "^(W|I)[0-9]{4}" >&2) | tee -a "$OUT/gpu.jsonl"; }
bench --dtype float32 --batch_size 256 --eval_batch_size 1024
bench --dtype bfloat16 --batch_size 256 --eval_batch_size 1024
bench --mode scaling --lengths 16,64,256,1024,4096,8192
