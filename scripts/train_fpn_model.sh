#!/usr/bin/env bash
# Train the FPN face model (one long cosine schedule in four stages: configs/face_mnv2_fpn_300.yaml
# to epoch 15, configs/face_mnv2_fpn_448.yaml to epoch 21, configs/face_mnv2_fpn_512.yaml to 32,
# then configs/face_mnv2_fpn_512_ext.yaml, the cosine stretched to 40 epochs),
# resumable across sessions and machines:
#   scripts/train_fpn_model.sh          # start, or continue exactly where the last run stopped
#   scripts/train_fpn_model.sh save     # copy the latest checkpoint to training_state/ (commit it)
#   scripts/train_fpn_model.sh restore  # only restore the committed state into runs/ (no training:
#                                       # e.g. to start fine-tuning arms from it)
# Ablation arms from the run's latest checkpoint: benchmarks/finetune_arms.py.
# The run lives in runs/face_mnv2_fpn_300 (not versioned). When that folder is gone (a new
# machine), the run continues from the committed copy in training_state/face_mnv2_fpn_300:
# weights, step, LR position and RNG exactly, the Adam moments rounded to bfloat16 (saves from
# stop 27 on; relative error <= 2**-8), so the result is that of one uninterrupted run up to
# that rounding. Extra arguments go to `ssd-mnv2 train` (e.g. --set data.num_workers=1).
# FPN_MODEL=fpn96 runs the 96-channel-neck model instead (configs/face_mnv2_fpn96_*.yaml, the
# same schedule to epoch 32) in runs/face_mnv2_fpn96_300, state in training_state/face_mnv2_fpn96_300.
# Needs ../shared/data (WIDER FACE train/dev, the ImageNet MobileNetV2 TFLite weights).
set -euo pipefail
cd "$(dirname "$0")/.."
# FPN_MODEL picks the run: fpn (the 64-channel neck, default) or fpn96 (configs/face_mnv2_fpn96_*.yaml)
MODEL=${FPN_MODEL:-fpn}
case "$MODEL" in fpn|fpn96) ;; *) echo "FPN_MODEL must be fpn or fpn96, got '$MODEL'" >&2; exit 2;; esac
RUN=${FPN_RUN:-runs/face_mnv2_${MODEL}_300}            # overridable for the tests
SAVED=${FPN_SAVED:-training_state/face_mnv2_${MODEL}_300}
PY=${PYTHON:-python}
if [ "${1:-}" = "save" ]; then
  $PY - "$RUN" "$SAVED" <<'PY'
import gzip, json, os, shutil, sys
from pathlib import Path
from ssd_mnv2.engine.checkpoint import latest_checkpoint
run, saved = Path(sys.argv[1]), Path(sys.argv[2])
ck = latest_checkpoint(run)
if ck is None:
    raise SystemExit(f"no checkpoint in {run}")
tmp = saved.with_name(saved.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
(tmp / "checkpoints").mkdir(parents=True)
# the Adam moments (28 MB) are rounded to bfloat16 (relative error <= 2**-8; the weights, step,
# LR position and RNG are exact), gzipped (14 MB instead of 26: the repository's size is the
# budget) and cut into 16 MB parts (optim.params.gz.part00, ...): every versioned file stays
# well under 25 MB
shutil.copytree(ck, tmp / "checkpoints" / ck.name, ignore=shutil.ignore_patterns("optim.params"))
if (ck / "optim.params").is_file():
    from ssd_mnv2.engine.checkpoint import round_optimizer_file
    gz = tmp / "checkpoints" / ck.name / "optim.params.gz"
    rounded = gz.with_name("optim.params.bf16")
    round_optimizer_file(ck / "optim.params", rounded)
    with open(rounded, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    rounded.unlink()
    data, part = gz.read_bytes(), int(os.environ.get("FPN_PART_BYTES", 16 * 2**20))  # (tests: smaller)
    for i in range(0, len(data), part):
        gz.with_name(f"optim.params.gz.part{i // part:02d}").write_bytes(data[i:i + part])
    gz.unlink()
(tmp / "last.json").write_text(json.dumps({"dir": f"checkpoints/{ck.name}"}))
for f in ("log.csv", "log.json", "curves.png"):
    if (run / f).is_file():
        shutil.copyfile(run / f, tmp / f)
# the state's config is its checkpoint's (the run's own may already be the next stage's)
cfg = ck / "config.yaml" if (ck / "config.yaml").is_file() else run / "config.yaml"
if cfg.is_file():
    shutil.copyfile(cfg, tmp / "config.yaml")
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
if [ "${1:-}" = "restore" ]; then
  [ -f "$RUN/last.json" ] || { echo "nothing to restore: no $SAVED/last.json and no $RUN/last.json" >&2; exit 1; }
  echo "$RUN is ready (latest checkpoint: $(cat "$RUN/last.json"))"
  exit 0
fi
# The schedule's stages: one run folder, one cosine LR curve over 32 epochs, stretched to 40 for
# the last stage (configs/face_mnv2_fpn_512_ext.yaml); each stage is
# "last epoch:config" and trains until the run has completed that epoch (each call continues
# wherever the run stands). tests/test_config.py reads this line to check the committed state.
STAGES="15:configs/face_mnv2_fpn_300.yaml 21:configs/face_mnv2_fpn_448.yaml 32:configs/face_mnv2_fpn_512.yaml 40:configs/face_mnv2_fpn_512_ext.yaml"
if [ "$MODEL" = fpn96 ]; then  # the same schedule to epoch 32, with the 96-channel neck
  STAGES96="15:configs/face_mnv2_fpn96_300.yaml 21:configs/face_mnv2_fpn96_448.yaml 32:configs/face_mnv2_fpn96_512.yaml"
  STAGES=$STAGES96
fi
run_epoch() {  # epochs the run has completed (0: no checkpoint yet)
  $PY - "$RUN" <<'PY'
import json, sys
from pathlib import Path
from ssd_mnv2.engine.checkpoint import latest_checkpoint
ck = latest_checkpoint(Path(sys.argv[1]))
print(json.loads((ck / "state.json").read_text())["epoch"] if ck else 0)
PY
}
for stage in $STAGES; do
  last=${stage%%:*} config=${stage#*:}
  if [ "$(run_epoch)" -lt "$last" ]; then
    ssd-mnv2 train --config "$config" --resume --no-progress "$@" --set train.stop_epoch=$last
    if [ "$(run_epoch)" -lt "$last" ]; then
      echo "stopped before the end of epoch $last ($config); run this script again to continue" >&2
      exit 1
    fi
  fi
done
