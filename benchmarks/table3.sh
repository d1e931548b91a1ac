#!/usr/bin/env bash
# The paper's Table III (Indian Pines) on one GPU, every model at once: (a) CLAReSNet with the
# paper's protocol (configs/ip.py: 40 epochs of batch 16, the best validation checkpoint tested),
# one train.py + eval.py process per seed; (b) each baseline of configs/compare_ip.py in its own
# `python -m claresnet_jax.compare` process. Every process starts together and holds an equal
# share of the GPU's memory. After each result, benchmarks/table3.py rewrites $OUT/table3.md and
# table3.json (ours beside the paper's numbers), so a run cut short keeps what it finished.
# docs/gpu.md has the expected time; this script has not yet run on a GPU.
#   OUT=results benchmarks/table3.sh
# Settings (environment): SEEDS (5) and EPOCHS (40) for CLAReSNet; MODELS, the baselines
# (rf,svm,xgboost,hybridsn,ssrn,spectralformer; "" for none), with COMPARE_SEEDS seeds (5);
# EXTRA, config overrides for every run and COMPARE_EXTRA for the baselines only (e.g.
# "--config.compare.ssrn.train.num_epochs=20"); TRAIN_SECONDS, a limit on each training process
# (unset: none): a CLAReSNet seed still running then stops and its best checkpoint so far is
# tested (table3.md gives its epochs); a baseline loses its unfinished seed; MANUAL_DIR, a
# folder with the scene's files (unset: downloaded); PYTHON (python3).
set -uo pipefail
OUT=${OUT:-benchmarks/results/table3}
SEEDS=${SEEDS:-5}
EPOCHS=${EPOCHS:-40}
MODELS=${MODELS-rf,svm,xgboost,hybridsn,ssrn,spectralformer}
COMPARE_SEEDS=${COMPARE_SEEDS:-5}
PYTHON=${PYTHON:-python3}
read -r -a extra <<< "${EXTRA:-}"
read -r -a compare_extra <<< "${COMPARE_EXTRA:-}"
IFS=, read -r -a models <<< "$MODELS"
if [[ -n "${MANUAL_DIR:-}" ]]; then
  [[ -d "$MANUAL_DIR" ]] || { echo "MANUAL_DIR=$MANUAL_DIR is not a folder" >&2; exit 2; }
  extra+=("--config.scene_options.manual_dir=$(cd "$MANUAL_DIR" && pwd)")
fi
for n in "$SEEDS" "$EPOCHS" "$COMPARE_SEEDS" "${TRAIN_SECONDS:-1}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "SEEDS, EPOCHS, COMPARE_SEEDS and TRAIN_SECONDS must be positive integers, got '$n'" >&2; exit 2; }
done
limit=(); [[ -n "${TRAIN_SECONDS:-}" ]] && limit=(timeout "$TRAIN_SECONDS")
mkdir -p "$OUT"
nvidia-smi -L > "$OUT/device.txt" 2>&1 || echo "no nvidia-smi: CPU run" > "$OUT/device.txt"
export XLA_PYTHON_CLIENT_MEM_FRACTION
XLA_PYTHON_CLIENT_MEM_FRACTION=$(awk "BEGIN {print 0.9 / ($SEEDS + ${#models[@]})}")
start=$SECONDS
done_in() { printf "%s\t%d\t%s\n" "$1" $((SECONDS - start)) "$2" >> "$OUT/times.tsv"; }

claresnet() {  # one seed: train, test its best checkpoint, update the table
  local dir="$OUT/claresnet/seed_$1" status
  mkdir -p "$dir"
  "${limit[@]}" "$PYTHON" train.py --config configs/ip.py --workdir "$dir" --config.seed="$1" \
      --config.num_epochs="$EPOCHS" --config.patience="$EPOCHS" "${extra[@]}" &> "$dir/train.log"
  status=$?
  if [[ $status == 0 || ( $status == 124 && -d "$dir/checkpoints/best" ) ]]; then
    "$PYTHON" eval.py --workdir "$dir" &> "$dir/eval.log" && "$PYTHON" benchmarks/table3.py "$OUT" \
      || status=$?
  fi
  done_in "claresnet seed $1" "exit $status"
  return $status
}

baseline() {  # one model over COMPARE_SEEDS seeds; each seed's result written as it ends
  local dir="$OUT/baselines/$1"
  mkdir -p "$dir"
  "${limit[@]}" "$PYTHON" -m claresnet_jax.compare --config configs/compare_ip.py --models "$1" \
      --seeds "$COMPARE_SEEDS" --workdir "$dir" "${extra[@]}" "${compare_extra[@]}" &> "$dir/compare.log"
  local status=$?
  "$PYTHON" benchmarks/table3.py "$OUT"  # the seeds it finished
  done_in "$1" "exit $status"
  return $status
}

pids=()
for ((i = 0; i < SEEDS; i++)); do claresnet $((42 + i)) & pids+=($!); done
for model in "${models[@]}"; do baseline "$model" & pids+=($!); done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
"$PYTHON" benchmarks/table3.py "$OUT" && cat "$OUT/table3.md"
[[ $failed == 0 ]] || echo "some runs failed: see $OUT/times.tsv and the logs beside each run" >&2
exit $failed
