#!/usr/bin/env bash
# The whole Multi30k en→de chain: joint tokenizer → AR teacher → distilled corpus → CMLM on raw
# and on distilled data → benchmark (test_2016_flickr) → Hub export of both CMLMs.
#
#   training/recipe_multi30k.sh cpu [RUNS_DIR]   # 3+3 layers, d=256, ≤ ~1 hour per model, one core each
#   training/recipe_multi30k.sh gpu [RUNS_DIR]   # 6+6 layers, d=512, on one CUDA device
#
# Every step is skipped when its output exists and every training resumes from its last
# checkpoint, so running the same command again continues a killed chain. On a machine that
# limits each command's wall time, GPU_STEP_MINUTES bounds each training invocation; run the
# script again until it prints "recipe done".
set -euo pipefail

SCALE=${1:-cpu}
RUNS=${2:-runs/recipe_${SCALE}}
RESULTS=${RESULTS:-results/multi30k_en_de_${SCALE}}
. "$(dirname "$0")/recipe_lib.sh"
mkdir -p "$RESULTS"

# 1. Joint 8k BPE tokenizer on the training split.
make_tokenizer

# 2. AR teacher and CMLM on raw data (side by side on CPU: one core each).
AR_KW='{"num_beams": 1, "max_new_tokens": 100}'
CMLM_KW='{"max_iterations": 4, "length_beam": 3}'
train ar_en_de marian "$DATA" "$AR_KW" &
train cmlm_en_de cmlm "$DATA" "$CMLM_KW" &
wait
[ -f "$RUNS/ar_en_de/summary.json" ] || { echo "[recipe] AR teacher not finished; run again"; exit 1; }

# 3. Distilled corpus (teacher beam 5), split across processes, resumable.
distill_corpus

# 4. CMLM on the distilled corpus.
train cmlm_distill_en_de cmlm "$RUNS/distill_en_de" "$CMLM_KW"
for name in ar_en_de cmlm_en_de cmlm_distill_en_de; do
  [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }
done

# 5. Benchmark: teacher greedy/beam 5 and both CMLMs at 1, 4, 10 iterations, length beam 1 and 5,
#    with and without AR rescoring of the length-beam candidates.
SETTINGS='[{"max_iterations":1,"length_beam":1},{"max_iterations":1,"length_beam":5},
{"max_iterations":1,"length_beam":5,"rescore":true},{"max_iterations":4,"length_beam":1},
{"max_iterations":4,"length_beam":5},{"max_iterations":4,"length_beam":5,"rescore":true},
{"max_iterations":10,"length_beam":1},{"max_iterations":10,"length_beam":5},
{"max_iterations":10,"length_beam":5,"rescore":true}]'
if [ ! -f "$RESULTS/results.json" ]; then
  $PY training/benchmark.py --models "$RUNS/cmlm_en_de/best" "$RUNS/cmlm_distill_en_de/best" \
    --baseline "$RUNS/ar_en_de/best" --data_dir "$DATA" --src en --tgt de --split test_2016_flickr \
    --output_dir "$RESULTS" --threads 1 --device "$DEVICE" --dtype "$BENCH_DTYPE" --settings "$SETTINGS"
fi

# 6. Hub folders with model cards built from the benchmark.
for name in cmlm_en_de cmlm_distill_en_de; do
  $PY training/export.py --model "$RUNS/$name/best" --output_dir "$RUNS/export/$name" \
    --results "$RESULTS/results.json" --model_key "$name/best" --training_summary "$RUNS/$name/summary.json" \
    --dataset_name multi30k --src en --tgt de --overwrite
done
echo "recipe done: results in $RESULTS, Hub folders in $RUNS/export"
