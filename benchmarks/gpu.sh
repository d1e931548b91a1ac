#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md in one run. Most of its time is compilation: the full
# model's train step took 92 s to compile on an H200, and it compiles once per batch size
# and dtype, three times here.
#   OUT=results benchmarks/gpu.sh
# Each figure is appended to $OUT/gpu.jsonl as soon as it is measured, most needed first,
# so a run cut short by the device's time limit keeps what it measured. float32 at 4x
# the batch shows whether a larger batch still raises throughput. One process per
# configuration: the device's peak memory is the peak of the whole process.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/device.txt"
bench() { python3 -m claresnet_jax.bench --config configs/ip.py --json --repeats 5 --warmup 1 "$@" \
  2> >(grep -v -E "^(W|I)[0-9]{4}" >&2) | tee -a "$OUT/gpu.jsonl"; }
bench --batch_size 256 --eval_batch_size 1024
bench --config.model.kwargs.dtype=bfloat16 --batch_size 256 --eval_batch_size 1024
bench --batch_size 1024 --eval_batch_size 4096
bench --mode scaling --lengths 16,64,256,1024,4096,8192
