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
DATA=${DATA:-../shared/data/multi30k}
PY=${PYTHON:-python}
RESULTS=${RESULTS:-results/multi30k_en_de_${SCALE}}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false

case "$SCALE" in
  cpu)
    SIZE="--d_model 256 --layers 3 --heads 4 --ffn_dim 1024 --dropout 0.1"
    OPT="--max_tokens 4096 --lr 7e-4 --warmup 400 --mixed_precision bf16 --threads 1"
    BUDGET="--max_minutes ${CPU_MINUTES:-57}"
    EVAL="--eval_every 400 --eval_sentences 400 --save_every 200"
    DEVICE=cpu; BENCH_DTYPE=float32
    export OMP_NUM_THREADS=1
    DISTILL_LAUNCH=(env ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1
                    --mixed_precision no --dynamo_backend no)
    DISTILL_OPT="--threads 1 --max_tokens 4096"
    ;;
  gpu)
    SIZE="--d_model 512 --layers 6 --heads 8 --ffn_dim 2048 --dropout 0.1"
    OPT="--max_tokens 16384 --lr 7e-4 --warmup 1000 --mixed_precision bf16"
    BUDGET="--max_updates ${GPU_UPDATES:-6000} --max_minutes_this_run ${GPU_STEP_MINUTES:-8}"
    EVAL="--eval_every 1000 --eval_sentences 1014 --save_every 250"
    DEVICE=cuda; BENCH_DTYPE=float32
    DISTILL_LAUNCH=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no)
    DISTILL_OPT="--max_tokens 65536 --max_sentences 512 --chunk_size 4096"
    ;;
  *) echo "usage: $0 cpu|gpu [RUNS_DIR]" >&2; exit 2 ;;
esac
mkdir -p "$RUNS/logs" "$RESULTS"

# train NAME MODEL_TYPE DATA EVAL_KWARGS: skip when finished, resume when a checkpoint exists.
train() {
  local name=$1 type=$2 data=$3 kwargs=$4 out="$RUNS/$1"
  if [ -f "$out/summary.json" ] && $PY - "$out" "$SCALE" <<'EOF'
import json, sys
summary = json.load(open(f"{sys.argv[1]}/summary.json"))
args = summary["args"]
done = summary["updates"] >= args["max_updates"] or (
    args["max_minutes"] is not None and summary["train_minutes"] >= args["max_minutes"])
sys.exit(0 if done else 1)
EOF
  then echo "[recipe] $name: trained"; return 0; fi
  local resume=""
  [ -d "$out/checkpoints" ] && [ -n "$(ls "$out/checkpoints" 2>/dev/null | grep -v tmp)" ] && resume="--resume"
  echo "[recipe] $name: training $resume (log: $RUNS/logs/$name.log)"
  $PY training/train.py --model_type "$type" --data "$data" --src en --tgt de --tokenizer "$RUNS/tok_en_de_8k" \
    --output_dir "$out" $SIZE $OPT $BUDGET $EVAL --no_progress --eval_generate_kwargs "$kwargs" $resume \
    > "$RUNS/logs/$name.log" 2>&1
}

# 1. Joint 8k BPE tokenizer on the training split.
if [ ! -f "$RUNS/tok_en_de_8k/tokenizer.json" ]; then
  $PY -c "import sys; from hf_nat.data import load_parallel_corpus, train_joint_tokenizer as t; \
c = load_parallel_corpus('$DATA', 'en', 'de', splits=['train'])['train']; \
t(list(c['source']) + list(c['target']), 8000, output_dir='$RUNS/tok_en_de_8k')"
fi

# 2. AR teacher and CMLM on raw data (side by side on CPU: one core each).
AR_KW='{"num_beams": 1, "max_new_tokens": 100}'
CMLM_KW='{"max_iterations": 4, "length_beam": 3}'
train ar_en_de marian "$DATA" "$AR_KW" &
train cmlm_en_de cmlm "$DATA" "$CMLM_KW" &
wait
[ -f "$RUNS/ar_en_de/summary.json" ] || { echo "[recipe] AR teacher not finished; run again"; exit 1; }

# 3. Distilled corpus (teacher beam 5), split across processes, resumable.
if [ ! -f "$RUNS/distill_en_de/distill_summary.json" ]; then
  "${DISTILL_LAUNCH[@]}" training/distill.py --teacher "$RUNS/ar_en_de/best" --data "$DATA" --src en --tgt de \
    --splits train --copy_splits val --output_dir "$RUNS/distill_en_de" --student_tokenizer "$RUNS/tok_en_de_8k" \
    --num_beams 5 $DISTILL_OPT > "$RUNS/logs/distill.log" 2>&1
fi

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
