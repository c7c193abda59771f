#!/usr/bin/env bash
# Reproduce the shipped face model end to end, in two resumable stages, then publish the params +
# resolved config into the package and evaluate on the dev split (original size and max-side 640).
#   scripts/train_shipped_model.sh            # start, or continue after an interruption
# Stage 1: configs/face_mnv2_300.yaml, ImageNet MobileNetV2 1.0 init, the first 3 epochs of a
#          16-epoch cosine schedule (train.stop_epoch: 3).
# Stage 2: configs/face_mnv2_300_stage2.yaml, initialised from stage 1's weights, fresh Adam,
#          a new 16-epoch cosine schedule.
# Needs ../shared/data (WIDER FACE train/dev, the ImageNet MobileNetV2 TFLite weights).
set -euo pipefail
cd "$(dirname "$0")/.."
ssd-mnv2 train --config configs/face_mnv2_300.yaml --set train.out_dir=runs/face_mnv2_300 --resume --no-progress
python - <<'PY'
from ssd_mnv2.engine.checkpoint import latest_checkpoint
import shutil
ck = latest_checkpoint("runs/face_mnv2_300")
shutil.copyfile(ck / "model.params", "runs/face_mnv2_300/stage1.params")
print("stage 1:", ck)
PY
ssd-mnv2 train --config configs/face_mnv2_300_stage2.yaml --resume --no-progress
python scripts/publish_model.py runs/face_mnv2_300_stage2 --which last
for SIZE in original "max-side 640"; do
  ssd-mnv2 evaluate --images ../shared/data/widerface/dev/images \
    --gt ../shared/data/widerface/ground_truth --size "$SIZE" \
    --out "outputs/eval_dev_${SIZE// /_}"
done
