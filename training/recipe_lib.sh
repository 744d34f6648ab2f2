# Shared by the Multi30k recipes (source it): scale settings and a resumable `train` step.
#
# Expects SCALE (cpu|gpu) and RUNS to be set; defines SIZE, OPT, BUDGET, EVAL, DEVICE, BENCH_DTYPE,
# DISTILL_LAUNCH, DISTILL_OPT, PY, DATA and the functions `train`, `make_tokenizer`,
# `distill_corpus`, `align_fertility` and `bench`.

DATA=${DATA:-../shared/data/multi30k}
PY=${PYTHON:-python}
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
mkdir -p "$RUNS/logs"
# What `train` passes about the corpus; a recipe of another task sets its own after sourcing this file.
CORPUS_ARGS=(--src en --tgt de --tokenizer "$RUNS/tok_en_de_8k")

# train NAME MODEL_TYPE DATA EVAL_KWARGS [MORE TRAIN.PY ARGS...]: skip when finished under the budget
# asked for now (a larger budget than a finished run had continues it), resume when a checkpoint exists.
train() {
  local name=$1 type=$2 data=$3 kwargs=$4 out="$RUNS/$1"
  shift 4
  local args=(--model_type "$type" --data "$data" "${CORPUS_ARGS[@]}"
              --output_dir "$out" $SIZE $OPT $BUDGET $EVAL --no_progress --eval_generate_kwargs "$kwargs" "$@")
  if [ -f "$out/summary.json" ] && $PY - "$out/summary.json" "${args[@]}" <<'EOF'
import argparse, json, sys
summary = json.load(open(sys.argv[1]))
budget = argparse.ArgumentParser()
budget.add_argument("--max_updates", type=int, default=100000)
budget.add_argument("--max_minutes", type=float, default=None)
asked = budget.parse_known_args(sys.argv[2:])[0]
done = summary["updates"] >= asked.max_updates or (
    asked.max_minutes is not None and summary["train_minutes"] >= asked.max_minutes)
sys.exit(0 if done else 1)
EOF
  then echo "[recipe] $name: trained"; return 0; fi
  local resume=""
  [ -d "$out/checkpoints" ] && [ -n "$(ls "$out/checkpoints" 2>/dev/null | grep -v tmp)" ] && resume="--resume"
  echo "[recipe] $name: training $resume (log: $RUNS/logs/$name.log)"
  $PY training/train.py "${args[@]}" $resume > "$RUNS/logs/$name.log" 2>&1
}

# make_tokenizer: the joint 8k BPE tokenizer of the training split in RUNS/tok_en_de_8k (once).
make_tokenizer() {
  [ -f "$RUNS/tok_en_de_8k/tokenizer.json" ] && return 0
  $PY -c "import sys; from hf_nat.data import load_parallel_corpus, train_joint_tokenizer as t; \
c = load_parallel_corpus('$DATA', 'en', 'de', splits=['train'])['train']; \
t(list(c['source']) + list(c['target']), 8000, output_dir='$RUNS/tok_en_de_8k')"
}

# distill_corpus: the teacher's (RUNS/ar_en_de) beam-5 translation of the training split in
# RUNS/distill_en_de, split across processes and resumable; val keeps its references.
distill_corpus() {
  [ -f "$RUNS/distill_en_de/distill_summary.json" ] && return 0
  [ -f "$RUNS/ar_en_de/summary.json" ] || { echo "[recipe] AR teacher not finished; run again"; return 1; }
  "${DISTILL_LAUNCH[@]}" training/distill.py --teacher "$RUNS/ar_en_de/best" --data "$DATA" --src en --tgt de \
    --splits train --copy_splits val --output_dir "$RUNS/distill_en_de" --student_tokenizer "$RUNS/tok_en_de_8k" \
    --num_beams 5 $DISTILL_OPT > "$RUNS/logs/distill.log" 2>&1
}

# align_fertility: eflomal fertility labels of the distilled corpus for fertility_nat (~20 s on CPU).
align_fertility() {
  [ -f "$RUNS/distill_en_de_fertility/fertility_info.json" ] && return 0
  $PY training/align_fertility.py --data "$RUNS/distill_en_de" --tokenizer "$RUNS/tok_en_de_8k" \
    --output "$RUNS/distill_en_de_fertility" > "$RUNS/logs/align_fertility.log" 2>&1
}

# bench RESULTS SETTINGS MODEL...: one benchmark of the MODEL folders against the teacher
# RUNS/ar_en_de/best on test_2016_flickr (skipped when RESULTS/results.json exists); the teacher's
# rows are BENCH_AR_SETTINGS (default greedy and beam 5).
bench() {
  local out=$1 settings=$2 teacher_rows=${BENCH_AR_SETTINGS:-}
  shift 2
  [ -f "$out/results.json" ] && return 0
  [ -n "$teacher_rows" ] || teacher_rows='[{"num_beams": 1}, {"num_beams": 5}]'
  $PY training/benchmark.py --models "$@" --baseline "$RUNS/ar_en_de/best" --data_dir "$DATA" --src en --tgt de \
    --split test_2016_flickr --output_dir "$out" --threads 1 --device "$DEVICE" --dtype "$BENCH_DTYPE" \
    --ar_settings "$teacher_rows" --settings "$settings"
}
