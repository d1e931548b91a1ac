#!/usr/bin/env bash
# An epoch of configs/ip.py, ours against the authors' training code, alternating (docs/training.md):
#   benchmarks/epoch_side_by_side.sh TORCH_PYTHON AUTHORS_SCRIPT [ROUNDS] [STEPS]
# TORCH_PYTHON: a Python with torch, pandas, scikit-learn, scipy, matplotlib, seaborn and tqdm;
# AUTHORS_SCRIPT: Indian_Pines_CLAReSNet.py of Bandyopadhyay-Asmit/CLAReSNet. One JSON line per run.
set -euo pipefail
TORCH_PYTHON=$1
AUTHORS_SCRIPT=$2
ROUNDS=${3:-2}
STEPS=${4:-50}
for round in $(seq "$ROUNDS"); do
  python benchmarks/epoch_side_by_side.py --side ours --steps "$STEPS" 2> /dev/null
  "$TORCH_PYTHON" benchmarks/epoch_side_by_side.py --side authors --steps "$STEPS" \
    --authors_script "$AUTHORS_SCRIPT" 2> /dev/null
done
