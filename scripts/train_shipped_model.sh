#!/usr/bin/env bash
# Reproduce the shipped face model end to end: train (resumable), evaluate on the dev split
# (original size and max-side 640), publish the params + resolved config into the package.
#   scripts/train_shipped_model.sh            # start, or continue after an interruption
# Needs ../shared/data (WIDER FACE train/dev, the ImageNet MobileNetV2 TFLite weights).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/face_mnv2_300}
CONFIG=configs/face_mnv2_300.yaml
ssd-mnv2 train --config "$CONFIG" --set "train.out_dir=$OUT" --resume --no-progress
python scripts/publish_model.py "$OUT" --which last
for SIZE in original "max-side 640"; do
  ssd-mnv2 evaluate --images ../shared/data/widerface/dev/images \
    --gt ../shared/data/widerface/ground_truth --size "$SIZE" \
    --out "outputs/eval_dev_${SIZE// /_}"
done
