#!/usr/bin/env bash
# Image captioning on a synthetic corpus: Pillow-drawn scenes of coloured shapes, five paraphrased
# captions each (training/make_caption_corpus.py), with a test split of (colour, shape) pairs never
# seen in training. CMLM (mask-predict) and the CTC NAT (one pass) against a VisionEncoderDecoder
# AR baseline with the same ViT encoder, decoder size and minutes; then both NATs again, for as
# many updates, on the AR model's own captions (distillation: one caption per training image);
# then one benchmark of all five on the seen- and unseen-combination tests.
#
#   training/recipe_captioning.sh cpu [RUNS_DIR]
#   CAPTION_DATA=<imagefolder or Hub id> training/recipe_captioning.sh cpu   # a real corpus instead
#
# A real corpus needs splits train / validation / test (and test_unseen_combination, or set
# CAPTION_TEST_SPLITS) and the columns image / captions (or set IMAGE_COLUMN, CAPTION_COLUMNS,
# several allowed). Budget on CPU: CAPTION_MINUTES (20) per model, the three trained side by side.
# Resumable: finished steps are skipped, killed trainings resume.
set -euo pipefail

SCALE=${1:-cpu}
RUNS=${2:-runs/recipe_${SCALE}}
. "$(dirname "$0")/recipe_lib.sh"
MINUTES=${CAPTION_MINUTES:-20}
RESULTS=${RESULTS:-results/captioning_synthetic_${SCALE}}
TEST_SPLITS=${CAPTION_TEST_SPLITS:-test test_unseen_combination}
CAPTIONS=${CAPTION_DATA:-$RUNS/caption_corpus}
TOKENIZER="$RUNS/caption_tokenizer_1000"

if [ -z "${CAPTION_DATA:-}" ] && [ ! -f "$CAPTIONS/corpus_info.json" ]; then
  $PY training/make_caption_corpus.py --output_dir "$CAPTIONS" > "$RUNS/logs/caption_corpus.log"
fi
if [ ! -f "$TOKENIZER/tokenizer.json" ]; then
  $PY -c "from hf_nat.data import train_joint_tokenizer; from hf_nat.data.captions import load_caption_corpus; \
c = load_caption_corpus('$CAPTIONS', ['train'], '${IMAGE_COLUMN:-image}', '${CAPTION_COLUMNS:-captions}'.split())['train']; \
train_joint_tokenizer([t for refs in c['references'] for t in refs], 1000, output_dir='$TOKENIZER', model_max_length=128)"
fi

# shellcheck disable=SC2206
CORPUS_ARGS=(--task captioning --tokenizer "$TOKENIZER" --valid_split validation --image_size 64 --patch_size 8
             --image_column "${IMAGE_COLUMN:-image}" --caption_columns ${CAPTION_COLUMNS:-captions})
# Batches are counted in encoder states: 65 per 64x64 image (8x8 patches and a class token).
[ "$SCALE" = cpu ] && BUDGET="--max_minutes $MINUTES"
EVAL="${EVAL/--eval_sentences 400/--eval_sentences 300}"

train caption_ar vision_encoder_decoder "$CAPTIONS" '{"num_beams": 1}' &
train caption_cmlm cmlm "$CAPTIONS" '{"max_iterations": 4, "length_beam": 1}' &
train caption_ctc ctc_nat "$CAPTIONS" '{}' --config_overrides '{"upsample_ratio": 1}' &
wait
for name in caption_ar caption_cmlm caption_ctc; do
  [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }
done

DISTILLED="$RUNS/caption_corpus_distilled"
# shellcheck disable=SC2086
[ -f "$DISTILLED/distillation_info.json" ] || $PY training/distill_captions.py --teacher "$RUNS/caption_ar/best" \
  --data "$CAPTIONS" --output_dir "$DISTILLED" --copy_splits validation $TEST_SPLITS \
  > "$RUNS/logs/caption_distill.log" 2>&1
updates() { $PY -c "import json, sys; print(json.load(open(sys.argv[1]))['updates'])" "$RUNS/$1/summary.json"; }
# Two trainings side by side get more CPU each than three did: the same updates keep them comparable.
train caption_cmlm_distilled cmlm "$DISTILLED" '{"max_iterations": 4, "length_beam": 1}' \
  --max_updates "$(updates caption_cmlm)" &
train caption_ctc_distilled ctc_nat "$DISTILLED" '{}' --config_overrides '{"upsample_ratio": 1}' \
  --max_updates "$(updates caption_ctc)" &
wait
for name in caption_cmlm_distilled caption_ctc_distilled; do
  [ -f "$RUNS/$name/summary.json" ] || { echo "[recipe] $name not finished; run again"; exit 1; }
done
$PY training/benchmark_captioning.py --baseline "$RUNS/caption_ar/best" \
  --models "$RUNS/caption_cmlm/best" "$RUNS/caption_ctc/best" "$RUNS/caption_cmlm_distilled/best" \
  "$RUNS/caption_ctc_distilled/best" --data "$CAPTIONS" --splits $TEST_SPLITS \
  --output_dir "$RESULTS" --threads 1 > "$RUNS/logs/caption_bench.log" 2>&1
echo "recipe done: results in $RESULTS"
