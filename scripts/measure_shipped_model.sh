#!/usr/bin/env bash
# Every number of MODEL_CARD.md for the shipped model, into outputs/ (about 15 minutes on 2 cores):
# dev AP at original size and max-side 640, int8 (ONNX Runtime and oneDNN) with the AP change,
# the speed table, and the failure-mode analysis.
#   scripts/measure_shipped_model.sh
# Needs ../shared/data (WIDER FACE dev + ground truth, train images for calibration).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
DEV=../shared/data/widerface/dev/images
GT=../shared/data/widerface/ground_truth
ssd-mnv2 evaluate --images "$DEV" --gt "$GT" --size original --out outputs/eval_dev_original 2>/dev/null
ssd-mnv2 evaluate --images "$DEV" --gt "$GT" --size "max-side 640" --out outputs/eval_dev_640 2>/dev/null
ssd-mnv2 quantize --engine onnxruntime --out outputs/quantized_onnx \
  --eval-images "$DEV" --gt "$GT" --eval-size "max-side 640" 2>/dev/null
ssd-mnv2 quantize --engine mxnet --out outputs/quantized 2>/dev/null
python benchmarks/inference.py --reps 30 --set decode.score_threshold=0.5 \
  --quantized outputs/quantized --quantized outputs/quantized_onnx --json outputs/bench.json 2>/dev/null
python scripts/model_card_examples.py --pred outputs/eval_dev_original/predictions --out outputs/model_card
