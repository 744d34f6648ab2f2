#!/usr/bin/env bash
# The unified leaderboard: every trained NAT model of RUNS_DIR against the AR baseline on every
# engine, in one benchmark run on test_2016_flickr, with each NAT model's settings chosen on val.
#
#   training/recipe_leaderboard.sh [RUNS_DIR] [RESULTS_DIR]
#
# 1. val: each model's candidate settings (--val_settings), PyTorch only, AR greedy only;
# 2. test: the settings on each model's val BLEU-vs-latency Pareto front (--settings_from), under
#    pytorch, pytorch-bf16, onnxruntime, onnxruntime-int8 (NAT) and pytorch, pytorch-bf16,
#    ctranslate2, ctranslate2-int8 (AR, greedy and beam 5);
# 3. generate() against the network it wraps, for the one-pass settings.
# Models: RUNS_DIR/*/best of the trained NAT families (a folder without best/ is skipped).
set -euo pipefail
RUNS=${1:-runs}
OUT=${2:-results/leaderboard_cpu}
DATA=${DATA:-../shared/data/multi30k}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
MODELS=()
for name in fertility_en_de fertility_distill_en_de cmlm_distill_en_de ctc_distill_en_de imputer_distill_en_de \
  levenshtein_distill_en_de insertion_distill_en_de; do
  [ -f "$RUNS/$name/best/config.json" ] && MODELS+=("$RUNS/$name/best")
done
VAL_SETTINGS=${VAL_SETTINGS:-'{"cmlm": [{"max_iterations": 1, "length_beam": 1}, {"max_iterations": 2, "length_beam": 1},
  {"max_iterations": 4, "length_beam": 1}, {"max_iterations": 4, "length_beam": 3}, {"max_iterations": 10, "length_beam": 5}],
  "fertility_nat": [{"npd_samples": 1}, {"npd_samples": 5, "rescore": true}],
  "ctc_nat": [{"num_candidates": 1}], "imputer": [{"max_iterations": 1}, {"max_iterations": 2}, {"max_iterations": 4}],
  "levenshtein_transformer": [{"max_iterations": 3}, {"max_iterations": 10}],
  "insertion_transformer": [{"max_iterations": 10}]}'}
hf-nat benchmark --baseline "$RUNS/ar_en_de/best" --models "${MODELS[@]}" --data_dir "$DATA" --src en --tgt de \
  --split val --output_dir "$OUT/val" --threads 1 --engines pytorch --ar_settings '[{"num_beams": 1}]' \
  --latency_sentences 100 --settings "$VAL_SETTINGS"
hf-nat benchmark --baseline "$RUNS/ar_en_de/best" --models "${MODELS[@]}" --data_dir "$DATA" --src en --tgt de \
  --split test_2016_flickr --output_dir "$OUT" --threads 1 --settings_from "$OUT/val/results.json" \
  --engines pytorch pytorch-bf16 onnxruntime onnxruntime-int8 ctranslate2 ctranslate2-int8
python training/generate_overhead.py --models "${MODELS[@]}" --threads 1 --output_dir "$OUT/generate_overhead" \
  --settings '{"cmlm": [{"max_iterations": 1, "length_beam": 1}], "fertility_nat": [{"npd_samples": 1}],
  "ctc_nat": [{"num_candidates": 1}]}'
