#!/usr/bin/env bash
# NAT drafters for assisted decoding (exact AR greedy output), end to end on Multi30k en→de:
#
#   training/recipe_assisted.sh [RUNS_DIR] [RESULTS_DIR]
#
# 1. the AR teacher's greedy translations of the training corpus (distill --num_beams 1): drafts
#    should agree with the verifier's greedy choices, not with its beam search;
# 2. drafters on that corpus, two at a time (one thread each): CMLM with prefix-conditioned
#    masking (draft_prefix_prob 0.5), CMLM without it (what the option buys), and a one-pass
#    uniform-copy NAT with glancing and prefix-conditioned inputs; each for MINUTES (resumable:
#    a rerun continues from the last checkpoint);
# 3. the benchmark on test_2016_flickr: AR greedy (transformers), CTranslate2 int8 greedy and
#    every drafter (on ONNX Runtime int8) verified by the same PyTorch AR model, at batch 1 and 64.
# Needs RUNS_DIR/ar_en_de/best (the AR baseline) and RUNS_DIR/tok_en_de_8k (recipe_multi30k.sh).
set -euo pipefail
RUNS=${1:-runs}
OUT=${2:-results/assisted_cpu}
DATA=${DATA:-../shared/data/multi30k}
MINUTES=${MINUTES:-32}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
if [ ! -f "$RUNS/distill_greedy_en_de/distill_summary.json" ]; then
  python training/distill.py --teacher "$RUNS/ar_en_de/best" --data "$DATA" --src en --tgt de --splits train \
    --copy_splits val --output_dir "$RUNS/distill_greedy_en_de" --student_tokenizer "$RUNS/tok_en_de_8k" \
    --num_beams 1 --threads 2
fi
COMMON=(--data "$RUNS/distill_greedy_en_de" --src en --tgt de --tokenizer "$RUNS/tok_en_de_8k" --d_model 256
  --layers 3 --heads 4 --ffn_dim 1024 --max_tokens 4096 --lr 7e-4 --warmup 400 --max_minutes "$MINUTES"
  --mixed_precision bf16 --threads 1 --eval_every 400 --eval_sentences 400 --save_every 200 --no_progress)
train() {  # name, model type, config overrides (JSON), then extra flags
  local name=$1 type=$2 overrides=$3
  shift 3
  local resume=()
  [ -d "$RUNS/$name/checkpoints" ] && resume=(--resume)
  hf-nat train --model_type "$type" --output_dir "$RUNS/$name" "${COMMON[@]}" --config_overrides "$overrides" \
    "${resume[@]}" "$@" > "$RUNS/$name.log" 2>&1
}
ONE_PASS='{"max_iterations": 1, "length_beam": 1}'
train cmlm_greedy_prefix_en_de cmlm '{"draft_prefix_prob": 0.5}' --eval_generate_kwargs "$ONE_PASS" &
train nat_greedy_prefix_en_de fertility_nat '{"decoder_input": "uniform_copy", "glancing": true, "draft_prefix_prob": 0.5}' &
wait
train cmlm_greedy_en_de cmlm '{}' --eval_generate_kwargs "$ONE_PASS"
DRAFTERS=("$RUNS/cmlm_greedy_prefix_en_de/best" "$RUNS/cmlm_greedy_en_de/best" "$RUNS/nat_greedy_prefix_en_de/best")
# the CMLM distilled from beam 5 (recipe_multi30k.sh), for comparison: a drafter not distilled for the job
[ -f "$RUNS/cmlm_distill_en_de/best/config.json" ] && DRAFTERS+=("$RUNS/cmlm_distill_en_de/best")
python training/assisted_benchmark.py --verifier "$RUNS/ar_en_de/best" --drafters "${DRAFTERS[@]}" \
  --drafter_engines onnxruntime-int8 --draft_caps 0 4 --output_dir "$OUT"
