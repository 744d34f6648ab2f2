#!/usr/bin/env bash
# DA-Transformer on Multi30k en→de, raw and distilled (the teacher's beam-5 corpus of
# recipe_multi30k.sh: run that first, with the same RUNS_DIR), glancing on, λ = 2; then one
# benchmark of both models' three decoding strategies against the AR teacher (in PyTorch and on
# CTranslate2 int8; the DA-Transformers also on ONNX Runtime int8).
#
#   training/recipe_da_transformer.sh cpu [RUNS_DIR]   # the families' size and 44 minutes per model
#   training/recipe_da_transformer.sh gpu [RUNS_DIR]
#
# Resumable like the other recipes: finished steps are skipped, killed trainings resume.
set -euo pipefail

SCALE=${1:-cpu}
RUNS=${2:-runs/recipe_${SCALE}}
CPU_MINUTES=${CPU_MINUTES:-44}
RESULTS=${RESULTS:-results/multi30k_en_de_${SCALE}_da_transformer}
. "$(dirname "$0")/recipe_lib.sh"
DISTILLED="$RUNS/distill_en_de"
for need in "$RUNS/tok_en_de_8k/tokenizer.json" "$DISTILLED/distill_summary.json" "$RUNS/ar_en_de/best/config.json"; do
  [ -f "$need" ] || { echo "[recipe] missing $need: run training/recipe_multi30k.sh $SCALE $RUNS first" >&2; exit 1; }
done

DAG='{"upsample_ratio": 2, "glancing": true}'
KW='{"decode_strategy": "lookahead"}'
train da_transformer_en_de da_transformer "$DATA" "$KW" --config_overrides "$DAG" &
train da_transformer_distill_en_de da_transformer "$DISTILLED" "$KW" --config_overrides "$DAG" &
wait
for name in da_transformer_en_de da_transformer_distill_en_de; do
  [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }
done

[ -f "$RESULTS/results.json" ] || $PY training/benchmark.py \
  --models "$RUNS/da_transformer_en_de/best" "$RUNS/da_transformer_distill_en_de/best" \
  --baseline "$RUNS/ar_en_de/best" --data_dir "$DATA" --src en --tgt de --split test_2016_flickr \
  --output_dir "$RESULTS" --threads 1 --device "$DEVICE" --dtype "$BENCH_DTYPE" \
  --ar_settings '[{"num_beams": 1}, {"num_beams": 5}]' --engines pytorch onnxruntime-int8 ctranslate2-int8 \
  --settings '[{"decode_strategy": "greedy"}, {"decode_strategy": "lookahead"}, {"decode_strategy": "viterbi"},
    {"decode_strategy": "viterbi", "num_candidates": 5, "rescore": true}]'
echo "recipe done: results in $RESULTS"
