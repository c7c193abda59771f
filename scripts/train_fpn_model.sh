#!/usr/bin/env bash
# Train the FPN face model (one long cosine schedule in two stages: configs/face_mnv2_fpn_300.yaml
# to epoch 15, then configs/face_mnv2_fpn_448.yaml), resumable across sessions and machines:
#   scripts/train_fpn_model.sh          # start, or continue exactly where the last run stopped
#   scripts/train_fpn_model.sh save     # copy the latest checkpoint to training_state/ (commit it)
# The run lives in runs/face_mnv2_fpn_300 (not versioned). When that folder is gone (a new
# machine), the run continues from the committed copy in training_state/face_mnv2_fpn_300:
# weights, Adam moments, step, LR position and RNG, so the result is the same as one
# uninterrupted run. Extra arguments go to `ssd-mnv2 train` (e.g. --set data.num_workers=1).
# Needs ../shared/data (WIDER FACE train/dev, the ImageNet MobileNetV2 TFLite weights).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=runs/face_mnv2_fpn_300
SAVED=training_state/face_mnv2_fpn_300
PY=${PYTHON:-python}
if [ "${1:-}" = "save" ]; then
  $PY - "$RUN" "$SAVED" <<'PY'
import gzip, json, shutil, sys
from pathlib import Path
from ssd_mnv2.engine.checkpoint import latest_checkpoint
run, saved = Path(sys.argv[1]), Path(sys.argv[2])
ck = latest_checkpoint(run)
if ck is None:
    raise SystemExit(f"no checkpoint in {run}")
tmp = saved.with_name(saved.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
(tmp / "checkpoints").mkdir(parents=True)
# the Adam moments (28 MB) are gzipped and cut into 16 MB parts (optim.params.gz.part00, ...):
# every versioned file stays well under 25 MB
shutil.copytree(ck, tmp / "checkpoints" / ck.name, ignore=shutil.ignore_patterns("optim.params"))
if (ck / "optim.params").is_file():
    gz = tmp / "checkpoints" / ck.name / "optim.params.gz"
    with open(ck / "optim.params", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    data, part = gz.read_bytes(), 16 * 2**20
    for i in range(0, len(data), part):
        gz.with_name(f"optim.params.gz.part{i // part:02d}").write_bytes(data[i:i + part])
    gz.unlink()
(tmp / "last.json").write_text(json.dumps({"dir": f"checkpoints/{ck.name}"}))
for f in ("log.csv", "log.json", "curves.png", "config.yaml"):
    if (run / f).is_file():
        shutil.copyfile(run / f, tmp / f)
shutil.rmtree(saved, ignore_errors=True)
tmp.rename(saved)
print(f"saved {ck} -> {saved}")
PY
  exit 0
fi
if [ ! -f "$RUN/last.json" ] && [ -f "$SAVED/last.json" ]; then
  echo "continuing from the committed state in $SAVED"
  mkdir -p "$(dirname "$RUN")"
  rm -rf "$RUN"
  cp -r "$SAVED" "$RUN"
  for ck in "$RUN"/checkpoints/*/; do
    if [ -f "$ck/optim.params.gz.part00" ]; then  # parts of one gzip file, in order
      cat "$ck"/optim.params.gz.part* | gunzip > "$ck/optim.params" && rm "$ck"/optim.params.gz.part*
    elif [ -f "$ck/optim.params.gz" ]; then       # states saved before the split
      gunzip "$ck/optim.params.gz"
    fi
  done
fi
# The schedule's two stages, one run folder, one cosine LR curve over 32 epochs: epochs 1-15 on
# 300 px crops (configs/face_mnv2_fpn_300.yaml), epochs 16-32 on 448 px crops at the same face
# scale (configs/face_mnv2_fpn_448.yaml); each call continues wherever the run stands.
STAGE1_EPOCHS=15
run_epoch() {  # epochs the run has completed (0: no checkpoint yet)
  $PY - "$RUN" <<'PY'
import json, sys
from pathlib import Path
from ssd_mnv2.engine.checkpoint import latest_checkpoint
ck = latest_checkpoint(Path(sys.argv[1]))
print(json.loads((ck / "state.json").read_text())["epoch"] if ck else 0)
PY
}
if [ "$(run_epoch)" -lt "$STAGE1_EPOCHS" ]; then
  ssd-mnv2 train --config configs/face_mnv2_fpn_300.yaml --resume --no-progress "$@" \
    --set train.stop_epoch=$STAGE1_EPOCHS
  if [ "$(run_epoch)" -lt "$STAGE1_EPOCHS" ]; then
    echo "stage 1 stopped before epoch $STAGE1_EPOCHS; run this script again to continue" >&2
    exit 1
  fi
fi
ssd-mnv2 train --config configs/face_mnv2_fpn_448.yaml --resume --no-progress "$@"
