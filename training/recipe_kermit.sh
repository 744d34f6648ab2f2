#!/usr/bin/env bash
# KERMIT on raw Multi30k en↔de (x = en, y = de; one model, both directions) beside the Insertion
# Transformer (binary-tree loss, en→de) at the same size and budget; then the en→de benchmark of
# both against the AR teacher and the both-directions report (de→en scored against the English
# side of the same split) with five pairs KERMIT samples from nothing. Needs the tokenizer of
# recipe_multi30k.sh (same RUNS_DIR); the en→de speed benchmark also needs its AR teacher and runs
# once the teacher is there.
#
#   training/recipe_kermit.sh cpu [RUNS_DIR]   # the families' size and 44 minutes per model
#   training/recipe_kermit.sh gpu [RUNS_DIR]
#
# Resumable like the other recipes: finished steps are skipped, killed trainings resume.
set -euo pipefail

SCALE=${1:-cpu}
RUNS=${2:-runs/recipe_${SCALE}}
CPU_MINUTES=${CPU_MINUTES:-44}
RESULTS=${RESULTS:-results/multi30k_en_de_${SCALE}_kermit}
. "$(dirname "$0")/recipe_lib.sh"
[ -f "$RUNS/tok_en_de_8k/tokenizer.json" ] || {
  echo "[recipe] missing $RUNS/tok_en_de_8k: run training/recipe_multi30k.sh $SCALE $RUNS first" >&2; exit 1; }

KW='{"max_iterations": 10}'
train kermit_en_de kermit "$DATA" "$KW" --config_overrides '{"x_language": "en", "y_language": "de"}' &
train insertion_tree_en_de insertion_transformer "$DATA" "$KW" &
wait
for name in kermit_en_de insertion_tree_en_de; do
  [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }
done

[ -f "$RESULTS/directions/results.json" ] || $PY training/directions_benchmark.py \
  --models "$RUNS/kermit_en_de/best" "$RUNS/insertion_tree_en_de/best" --data_dir "$DATA" --languages en de \
  --split test_2016_flickr --options "$KW" --samples 5 --threads 1 --output_dir "$RESULTS/directions"
[ -f "$RESULTS/en_de/results.json" ] || [ ! -f "$RUNS/ar_en_de/best/config.json" ] || $PY training/benchmark.py \
  --models "$RUNS/kermit_en_de/best" "$RUNS/insertion_tree_en_de/best" \
  --baseline "$RUNS/ar_en_de/best" --data_dir "$DATA" --src en --tgt de --split test_2016_flickr \
  --output_dir "$RESULTS/en_de" --threads 1 --device "$DEVICE" --dtype "$BENCH_DTYPE" \
  --ar_settings '[{"num_beams": 1}, {"num_beams": 5}]' --settings "[$KW]"
[ -f "$RESULTS/en_de/results.json" ] || echo "[recipe] no AR teacher in $RUNS: en→de speed benchmark skipped"
echo "recipe done: results in $RESULTS"
