#!/usr/bin/env bash
# The other NAT families on the distilled Multi30k en→de corpus of recipe_multi30k.sh (run that
# first, with the same RUNS_DIR): CTC with and without glancing, the Imputer (started from the
# CTC+GLAT weights), vanilla NAT with fertility (eflomal labels) and with uniform copy, and the
# iterative refinement NAT (the default and Lee et al.'s variant), the Levenshtein Transformer, the Insertion
# Transformer with its binary-tree and uniform losses; then one benchmark per group against the same AR teacher.
#
#   training/recipe_families.sh cpu [RUNS_DIR]   # same size as the CMLM recipe, 44 minutes per model (66 iterative)
#   training/recipe_families.sh gpu [RUNS_DIR]
#
# Like recipe_multi30k.sh, every finished step is skipped and trainings resume, so running the
# command again continues a killed run. On CPU two models train at a time, one core each.
set -euo pipefail

SCALE=${1:-cpu}
RUNS=${2:-runs/recipe_${SCALE}}
CPU_MINUTES=${CPU_MINUTES:-44}
RESULTS_ALIGNMENT=${RESULTS_ALIGNMENT:-results/multi30k_en_de_${SCALE}_alignment}
RESULTS_COPY=${RESULTS_COPY:-results/multi30k_en_de_${SCALE}_vanilla_iterative}
RESULTS_EDIT=${RESULTS_EDIT:-results/multi30k_en_de_${SCALE}_edit}
. "$(dirname "$0")/recipe_lib.sh"
DISTILLED="$RUNS/distill_en_de"
for need in "$RUNS/tok_en_de_8k/tokenizer.json" "$DISTILLED/distill_summary.json" "$RUNS/ar_en_de/best/config.json"; do
  [ -f "$need" ] || { echo "[recipe] missing $need: run training/recipe_multi30k.sh $SCALE $RUNS first" >&2; exit 1; }
done

# Fertility labels for fertility_nat (eflomal on the distilled corpus; ~20 s on CPU).
align_fertility

# Two at a time (one core each on CPU).
train ctc_glat_distill_en_de ctc_nat "$DISTILLED" '{}' --config_overrides '{"upsample_ratio": 2, "glancing": true}' &
train ctc_distill_en_de ctc_nat "$DISTILLED" '{}' --config_overrides '{"upsample_ratio": 2}' &
wait
[ -f "$RUNS/ctc_glat_distill_en_de/summary.json" ] || { echo "[recipe] CTC+GLAT not finished; run again"; exit 1; }
train imputer_distill_en_de imputer "$DISTILLED" '{"max_iterations": 4}' --config_overrides '{"upsample_ratio": 2}' \
  --init_from "$RUNS/ctc_glat_distill_en_de/best" &
train fertility_distill_en_de fertility_nat "$DISTILLED" '{}' --fertility "$DISTILLED"_fertility &
wait
# Every iterative-NAT update unrolls three decoder passes, so on CPU it gets 1.5x the minutes. Two
# variants: Lee et al.'s (refinement passes run their own decoder and read the previous states too)
# and the default (one decoder shared by all passes, reading tokens only).
ITERATIVE_BUDGET=()
[ "$SCALE" = cpu ] && ITERATIVE_BUDGET=(--max_minutes "${ITERATIVE_MINUTES:-$((CPU_MINUTES * 3 / 2))}")
train uniform_copy_distill_en_de fertility_nat "$DISTILLED" '{}' --config_overrides '{"decoder_input": "uniform_copy"}' &
train iterative_distill_en_de iterative_nat "$DISTILLED" '{"max_iterations": 4}' "${ITERATIVE_BUDGET[@]}" \
  --config_overrides '{"separate_refine_decoder": true, "refine_reads_states": true}' &
wait
train iterative_shared_distill_en_de iterative_nat "$DISTILLED" '{"max_iterations": 4}' "${ITERATIVE_BUDGET[@]}" \
  --config_overrides '{"separate_refine_decoder": false, "refine_reads_states": false}' &
train levenshtein_distill_en_de levenshtein_transformer "$DISTILLED" '{}' &
wait
train insertion_tree_distill_en_de insertion_transformer "$DISTILLED" '{}' &
train insertion_uniform_distill_en_de insertion_transformer "$DISTILLED" '{}' \
  --config_overrides '{"insertion_loss": "uniform"}' &
wait
for name in ctc_glat_distill_en_de ctc_distill_en_de imputer_distill_en_de fertility_distill_en_de \
            uniform_copy_distill_en_de iterative_distill_en_de iterative_shared_distill_en_de \
            levenshtein_distill_en_de insertion_tree_distill_en_de insertion_uniform_distill_en_de; do
  [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }
done


# CTC ± GLAT (one pass; 5 candidates ranked by the teacher) and the Imputer at 1, 2, 4, 8 steps.
bench "$RESULTS_ALIGNMENT" '{"ctc_nat": [{"num_candidates": 1}, {"num_candidates": 5, "rescore": true}],
  "imputer": [{"max_iterations": 1}, {"max_iterations": 2}, {"max_iterations": 4}, {"max_iterations": 8}]}' \
  "$RUNS/ctc_glat_distill_en_de/best" "$RUNS/ctc_distill_en_de/best" "$RUNS/imputer_distill_en_de/best"

# Fertility NAT: argmax fertilities, noisy parallel decoding with 10 and 100 samples ranked by the
# teacher; uniform copy (a settings key may name a model); iterative NAT at 1, 2, 4, 10 passes.
bench "$RESULTS_COPY" '{"fertility_nat": [{"npd_samples": 1}, {"npd_samples": 10, "rescore": true},
  {"npd_samples": 100, "rescore": true}], "uniform_copy_distill_en_de/best": [{"length_beam": 1}],
  "iterative_nat": [{"max_iterations": 1}, {"max_iterations": 2}, {"max_iterations": 4}, {"max_iterations": 10}]}' \
  "$RUNS/fertility_distill_en_de/best" "$RUNS/uniform_copy_distill_en_de/best" "$RUNS/iterative_distill_en_de/best" \
  "$RUNS/iterative_shared_distill_en_de/best"

# Edit-based families: Levenshtein at up to 3 and 10 rounds; Insertion with each loss; each also with
# the insertion penalty that gave the best BLEU on the validation split (their outputs run short).
sweep() {  # sweep NAME: insertion_penalty on val for RUNS/NAME/best; prints the best value
  local out="$RESULTS_EDIT/val_sweep_$1"
  [ -f "$out.json" ] || $PY training/sweep_decoding.py --model "$RUNS/$1_distill_en_de/best" --data_dir "$DATA" \
    --src en --tgt de --split val --option insertion_penalty --values 0 0.5 1 1.5 2 2.5 3 4 5 \
    --fixed '{"max_iterations": 10}' --output "$out" --threads 1 > "$RUNS/logs/sweep_$1.log" 2>&1
  $PY -c "import json, sys; print(json.load(open(sys.argv[1]))['best_value'])" "$out.json"
}
mkdir -p "$RESULTS_EDIT"
LEVT_PENALTY=$(sweep levenshtein)
TREE_PENALTY=$(sweep insertion_tree)
UNIFORM_PENALTY=$(sweep insertion_uniform)
bench "$RESULTS_EDIT" "{\"levenshtein_transformer\": [{\"max_iterations\": 3}, {\"max_iterations\": 10},
  {\"max_iterations\": 10, \"insertion_penalty\": $LEVT_PENALTY}],
  \"insertion_tree_distill_en_de/best\": [{\"max_iterations\": 10}, {\"max_iterations\": 10, \"insertion_penalty\": $TREE_PENALTY}],
  \"insertion_uniform_distill_en_de/best\": [{\"max_iterations\": 10},
  {\"max_iterations\": 10, \"insertion_penalty\": $UNIFORM_PENALTY}]}" \
  "$RUNS/levenshtein_distill_en_de/best" "$RUNS/insertion_tree_distill_en_de/best" \
  "$RUNS/insertion_uniform_distill_en_de/best"
echo "recipe done: results in $RESULTS_ALIGNMENT, $RESULTS_COPY and $RESULTS_EDIT"
