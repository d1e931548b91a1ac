#!/usr/bin/env bash
# The authors' training loop on the fixed Indian Pines split, one seed after another
# (docs/indian_pines.md):
#   benchmarks/authors_fixed_split.sh TORCH_PYTHON AUTHORS_SCRIPT [SEEDS]
# TORCH_PYTHON: a Python with torch, pandas, scikit-learn, scipy, matplotlib, seaborn and tqdm;
# AUTHORS_SCRIPT: Indian_Pines_CLAReSNet.py of Bandyopadhyay-Asmit/CLAReSNet; SEEDS: "0 1 2".
# Each seed writes $OUT/seed_<seed>.jsonl and .log (OUT: runs/authors_fixed); then the summary
# of these seeds.
# The test pixels are evaluated every $TEST_EVERY epochs (default 5) and after the last.
set -euo pipefail
TORCH_PYTHON=$1
AUTHORS_SCRIPT=$2
SEEDS=${3:-0 1 2}
OUT=${OUT:-runs/authors_fixed}
TEST_EVERY=${TEST_EVERY:-5}
mkdir -p "$OUT"
runs=()
for seed in $SEEDS; do
  runs+=("$OUT/seed_$seed.jsonl")
  "$TORCH_PYTHON" benchmarks/authors_fixed_split.py --authors_script "$AUTHORS_SCRIPT" \
    --seed "$seed" --test_every "$TEST_EVERY" --out "$OUT/seed_$seed.jsonl" \
    2> "$OUT/seed_$seed.log"
done
"$TORCH_PYTHON" benchmarks/authors_fixed_split.py --summary "${runs[@]}"
