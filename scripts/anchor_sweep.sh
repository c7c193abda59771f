#!/usr/bin/env bash
# Anchor experiments (issue 6): coverage of the shipped anchor configs on the dev split, then a
# short training sweep with the same seed and budget. Outputs: docs/anchors/ (tables md/json, PNGs);
# checkpoints in runs/anchor_sweep (git-ignored).
#
#   scripts/anchor_sweep.sh                 # budget below (~15 min on a busy 2-core CPU)
#   ITERS=200 WIDTH=1.0 scripts/anchor_sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=${OUT:-docs/anchors}
ITERS=${ITERS:-80}              # iterations per config (one epoch, capped)
BATCH=${BATCH:-8}
WIDTH=${WIDTH:-1.0}             # 1.0 uses the ImageNet TFLite backbone; other widths start from scratch
EVAL_IMAGES=${EVAL_IMAGES:-100} # first N dev images
EVAL_SIZE=${EVAL_SIZE:-max-side 640}
CONFIGS="configs/anchors/founding_ratios_0.5_1_2.yaml configs/anchors/square_1.yaml configs/anchors/ratio_1_0.8.yaml configs/anchors/dense_small.yaml"

mkdir -p "$OUT"
for f in $CONFIGS ssd_mnv2/models/face_mnv2_300.yaml; do
  echo "== $f"; $PY -m ssd_mnv2.cli anchors summary --config "$f" --no-params | tail -2
done
$PY -m ssd_mnv2.cli anchors stats --config ssd_mnv2/models/face_mnv2_300.yaml --split val --out "$OUT" 2>/dev/null
# k-means (1 - IoU) proposal from the training split, compared in the coverage tables below
$PY -m ssd_mnv2.cli anchors suggest --data-config ssd_mnv2/models/face_mnv2_300.yaml --k-per-level 2 \
    --out "$OUT/suggested_k2.yaml" --report "$OUT/suggested_k2.json" 2>/dev/null
# coverage at the training resize (default) and at the evaluation input (max-side 640)
$PY -m ssd_mnv2.cli anchors coverage --config $CONFIGS ssd_mnv2/models/face_mnv2_300.yaml "$OUT/suggested_k2.yaml" \
    --data-config ssd_mnv2/models/face_mnv2_300.yaml --split val --out "$OUT" 2>/dev/null
$PY -m ssd_mnv2.cli anchors coverage --config $CONFIGS ssd_mnv2/models/face_mnv2_300.yaml "$OUT/suggested_k2.yaml" \
    --data-config ssd_mnv2/models/face_mnv2_300.yaml --split val --measure "max-side 640" \
    --out "$OUT" --prefix coverage_maxside640 2>/dev/null
if [ "${SKIP_SWEEP:-0}" = "1" ]; then exit 0; fi
$PY -m ssd_mnv2.cli anchors sweep --configs $CONFIGS --epochs 1 --max-iters-per-epoch "$ITERS" \
    --batch-size "$BATCH" --width "$WIDTH" --eval-size "$EVAL_SIZE" --eval-images "$EVAL_IMAGES" \
    --num-workers 0 --out runs/anchor_sweep
cp runs/anchor_sweep/sweep.md runs/anchor_sweep/sweep.json runs/anchor_sweep/sweep.png "$OUT/"
echo "wrote $OUT"
