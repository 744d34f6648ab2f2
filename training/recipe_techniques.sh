#!/usr/bin/env bash
# Training techniques against repeated and missing words on the distilled Multi30k en→de corpus:
# the vanilla NAT (fertility_nat, uniform copy) alone and with similarity regularisation,
# reconstruction regularisation, the AR teacher's hints, bag-of-n-grams fine-tuning and all of them;
# the iterative NAT alone and with the hints; the fertility NAT with and without REINFORCE
# fine-tuning. Every model gets the same size and minutes (a fine-tuning stage counts inside them:
# FINETUNE_MINUTES of the budget go to it, started from a model trained for the rest). Then one
# benchmark per group against the teacher.
#
#   training/recipe_techniques.sh cpu [RUNS_DIR]   # the families' size and 44 minutes per model
#   training/recipe_techniques.sh gpu [RUNS_DIR]
#
# Makes what it needs of recipe_multi30k.sh (tokenizer, AR teacher, distilled corpus) when the
# RUNS_DIR lacks it. Resumable like the other recipes: finished steps are skipped, killed trainings
# resume, so running the same command again continues it.
set -euo pipefail

SCALE=${1:-cpu}
RUNS=${2:-runs/recipe_${SCALE}}
CPU_MINUTES=${CPU_MINUTES:-44}
FINETUNE_MINUTES=${FINETUNE_MINUTES:-10}
RESULTS=${RESULTS:-results/multi30k_en_de_${SCALE}_techniques}
. "$(dirname "$0")/recipe_lib.sh"
DISTILLED="$RUNS/distill_en_de"
TEACHER="$RUNS/ar_en_de/best"

make_tokenizer
train ar_en_de marian "$DATA" '{"num_beams": 1, "max_new_tokens": 100}'
distill_corpus
align_fertility

# The stage before a fine-tuning gets the budget minus the fine-tuning's minutes (CPU); a
# fine-tuning starts from its best weights with a short warm-up at a lower peak rate.
PRE=(); TUNE=(--lr 1e-4 --warmup 20)
[ "$SCALE" = cpu ] && PRE=(--max_minutes "$((CPU_MINUTES - FINETUNE_MINUTES))") && TUNE+=(--max_minutes "$FINETUNE_MINUTES")
VANILLA='"decoder_input": "uniform_copy"'
HINTS='"hint_hidden_weight": 1.0, "hint_alignment_weight": 1.0'
REGULARISERS='"similarity_weight": 1.0, "reconstruction_weight": 0.5'
finished() { for name in "$@"; do [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }; done; }

# Two at a time (one core each on CPU).
train uniform_copy_distill_en_de fertility_nat "$DISTILLED" '{}' --config_overrides "{$VANILLA}" &
train vanilla_similarity_distill_en_de fertility_nat "$DISTILLED" '{}' \
  --config_overrides "{$VANILLA, \"similarity_weight\": 1.0}" &
wait
train vanilla_reconstruction_distill_en_de fertility_nat "$DISTILLED" '{}' \
  --config_overrides "{$VANILLA, \"reconstruction_weight\": 0.5}" &
train vanilla_hints_distill_en_de fertility_nat "$DISTILLED" '{}' --config_overrides "{$VANILLA, $HINTS}" \
  --hint_teacher "$TEACHER" &
wait
train vanilla_ce_pre_distill_en_de fertility_nat "$DISTILLED" '{}' --config_overrides "{$VANILLA}" "${PRE[@]}" &
train vanilla_all_pre_distill_en_de fertility_nat "$DISTILLED" '{}' \
  --config_overrides "{$VANILLA, $REGULARISERS, $HINTS}" --hint_teacher "$TEACHER" "${PRE[@]}" &
wait
finished vanilla_ce_pre_distill_en_de vanilla_all_pre_distill_en_de
train vanilla_bon_distill_en_de fertility_nat "$DISTILLED" '{}' \
  --config_overrides "{$VANILLA, \"bag_of_ngrams_weight\": 0.9}" --init_from "$RUNS/vanilla_ce_pre_distill_en_de/best" \
  "${TUNE[@]}" &
train vanilla_all_distill_en_de fertility_nat "$DISTILLED" '{}' \
  --config_overrides "{$VANILLA, $REGULARISERS, $HINTS, \"bag_of_ngrams_weight\": 0.9}" --hint_teacher "$TEACHER" \
  --init_from "$RUNS/vanilla_all_pre_distill_en_de/best" "${TUNE[@]}" &
wait
VANILLA_MODELS=(uniform_copy vanilla_similarity vanilla_reconstruction vanilla_hints vanilla_bon vanilla_all)
finished $(for name in "${VANILLA_MODELS[@]}"; do echo "${name}_distill_en_de"; done)
BENCH_AR_SETTINGS='[{"num_beams": 1}]'
paths() { for name in "$@"; do echo "$RUNS/${name}_distill_en_de/best"; done; }
# The vanilla NAT: one pass at the predicted length.
bench "$RESULTS/vanilla" '[{"length_beam": 1}]' $(paths "${VANILLA_MODELS[@]}")

# The fertility NAT for the whole budget, beside the same model trained for the budget minus the
# fine-tuning and then fine-tuned with REINFORCE.
train fertility_distill_en_de fertility_nat "$DISTILLED" '{}' --fertility "${DISTILLED}_fertility" &
{
  train fertility_pre_distill_en_de fertility_nat "$DISTILLED" '{}' --fertility "${DISTILLED}_fertility" "${PRE[@]}"
  train fertility_reinforce_distill_en_de fertility_nat "$DISTILLED" '{}' --fertility "${DISTILLED}_fertility" \
    --config_overrides '{"fertility_reinforce_weight": 1.0}' --init_from "$RUNS/fertility_pre_distill_en_de/best" \
    "${TUNE[@]}"
} &
wait
finished fertility_distill_en_de fertility_reinforce_distill_en_de
# The fertility NAT with and without REINFORCE: argmax fertilities, and NPD with 10 samples ranked by the teacher.
bench "$RESULTS/fertility" '[{"npd_samples": 1}, {"npd_samples": 10, "rescore": true}]' \
  $(paths fertility fertility_reinforce)

# As in recipe_families.sh, an iterative-NAT update unrolls three passes: 1.5x the minutes on CPU.
ITERATIVE_BUDGET=()
[ "$SCALE" = cpu ] && ITERATIVE_BUDGET=(--max_minutes "${ITERATIVE_MINUTES:-$((CPU_MINUTES * 3 / 2))}")
ITERATIVE='"separate_refine_decoder": false, "refine_reads_states": false'
train iterative_shared_distill_en_de iterative_nat "$DISTILLED" '{"max_iterations": 4}' "${ITERATIVE_BUDGET[@]}" \
  --config_overrides "{$ITERATIVE}" &
train iterative_hints_distill_en_de iterative_nat "$DISTILLED" '{"max_iterations": 4}' "${ITERATIVE_BUDGET[@]}" \
  --config_overrides "{$ITERATIVE, $HINTS}" --hint_teacher "$TEACHER" &
wait
finished iterative_shared_distill_en_de iterative_hints_distill_en_de
# The iterative NAT with and without hints on its first pass: one pass and four.
bench "$RESULTS/iterative" '[{"max_iterations": 1}, {"max_iterations": 4}]' $(paths iterative_shared iterative_hints)
echo "recipe done: results in $RESULTS"
