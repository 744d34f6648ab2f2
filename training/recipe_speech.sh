#!/usr/bin/env bash
# Speech recognition on a synthetic corpus: Multi30k's English sentences spoken by espeak-ng and
# flite voices (training/make_speech_corpus.py), the CTC NAT and the Imputer against a Speech2Text
# AR baseline of the same size, front end and minutes (trained with an auxiliary CTC loss on its
# encoder, decoded by attention alone), then one benchmark on the seen- and unseen-voice tests.
#
#   training/recipe_speech.sh cpu [RUNS_DIR]
#   SPEECH_DATA=<audiofolder or Hub id> training/recipe_speech.sh cpu   # a real corpus instead
#
# A real corpus needs splits train / validation / test (and test_unseen_voice, or set
# SPEECH_TEST_SPLITS) and the columns audio / transcription (or set AUDIO_COLUMN, TEXT_COLUMN).
# Budget on CPU: SPEECH_MINUTES (24) per model. The Imputer starts from the CTC model at
# SPEECH_MINUTES - IMPUTER_MINUTES (12) and trains the rest as an Imputer, so its minutes are the
# same. Resumable: finished steps are skipped, killed trainings resume.
set -euo pipefail

SCALE=${1:-cpu}
RUNS=${2:-runs/recipe_${SCALE}}
. "$(dirname "$0")/recipe_lib.sh"
MINUTES=${SPEECH_MINUTES:-24}
IMPUTER_MINUTES=${IMPUTER_MINUTES:-12}
RESULTS=${RESULTS:-results/speech_synthetic_${SCALE}}
TEST_SPLITS=${SPEECH_TEST_SPLITS:-test test_unseen_voice}
SPEECH=${SPEECH_DATA:-$RUNS/speech_corpus}
TOKENIZER="$RUNS/speech_tokenizer_500"

if [ -z "${SPEECH_DATA:-}" ] && [ ! -f "$SPEECH/corpus_info.json" ]; then
  command -v espeak-ng >/dev/null && command -v flite >/dev/null || {
    echo "[recipe] installing espeak-ng and flite"; apt-get update -qq && apt-get install -y -qq espeak-ng flite; }
  $PY training/make_speech_corpus.py --data "$DATA" --output_dir "$SPEECH" > "$RUNS/logs/speech_corpus.log"
fi
if [ ! -f "$TOKENIZER/tokenizer.json" ]; then
  $PY -c "from hf_nat.data import train_joint_tokenizer; from hf_nat.data.speech import load_speech_corpus; \
c = load_speech_corpus('$SPEECH', ['train'], '${AUDIO_COLUMN:-audio}', '${TEXT_COLUMN:-transcription}')['train']; \
train_joint_tokenizer(list(c['target']), 500, output_dir='$TOKENIZER', model_max_length=512)"
fi

# Three stride-2 convolutions: a state per 80 ms, still about twice the subword tokens spoken.
CORPUS_ARGS=(--task speech --tokenizer "$TOKENIZER" --valid_split validation --num_mel_bins 80 --subsampling_conv_layers 3
             --audio_column "${AUDIO_COLUMN:-audio}" --text_column "${TEXT_COLUMN:-transcription}")
# Batches are counted in feature frames (10 ms each); positions in states after the 8x subsampling.
OPT="${OPT/--max_tokens 4096/--max_tokens 12000} --max_positions 512"
[ "$SCALE" = cpu ] && BUDGET="--max_minutes $MINUTES"
EVAL="${EVAL/--eval_sentences 400/--eval_sentences 300}"
CTC='"upsample_ratio": 1'

{
  PRE=(); [ "$SCALE" = cpu ] && PRE=(--max_minutes_this_run "$((MINUTES - IMPUTER_MINUTES))")
  train speech_ctc ctc_nat "$SPEECH" '{}' --config_overrides "{$CTC}" "${PRE[@]}"
  if [ ! -d "$RUNS/speech_ctc_pre" ]; then cp -r "$RUNS/speech_ctc/best" "$RUNS/speech_ctc_pre.tmp"; mv "$RUNS/speech_ctc_pre.tmp" "$RUNS/speech_ctc_pre"; fi
  TUNE=(--init_from "$RUNS/speech_ctc_pre" --lr 3e-4 --warmup 50)
  [ "$SCALE" = cpu ] && TUNE+=(--max_minutes "$IMPUTER_MINUTES")
  train speech_imputer imputer "$SPEECH" '{"max_iterations": 4}' --config_overrides "{$CTC}" "${TUNE[@]}"
} &
IMPUTER_LANE=$!
{
  train speech_ar speech2text "$SPEECH" '{"num_beams": 1}' --ctc_weight 0.3
  if [ "$SCALE" = cpu ]; then  # the CTC model's last minutes, once the other lane has copied its start
    while [ ! -d "$RUNS/speech_ctc_pre" ] && kill -0 "$IMPUTER_LANE" 2>/dev/null; do sleep 20; done
    [ -d "$RUNS/speech_ctc_pre" ] || { echo "[recipe] speech_ctc did not reach its first stop"; exit 1; }
    train speech_ctc ctc_nat "$SPEECH" '{}' --config_overrides "{$CTC}"
  fi
} &
wait
for name in speech_ar speech_ctc speech_imputer; do
  [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }
done
$PY training/benchmark_speech.py --baseline "$RUNS/speech_ar/best" --models "$RUNS/speech_ctc/best" \
  "$RUNS/speech_imputer/best" --data "$SPEECH" --splits $TEST_SPLITS --output_dir "$RESULTS" --threads 1 \
  > "$RUNS/logs/speech_bench.log" 2>&1
echo "recipe done: results in $RESULTS"
