"""Accuracy ablation: one change at a time, same seed, same short budget, scored on dev AP at
original size on all dev images (official WIDER protocol). Prints a markdown table.

Each row adds one change to a parent row (the changes of the accuracy issue: anchors, matching,
ignore regions, crop policy, FPN neck, unfrozen stage, context); see ``ROWS``.
Every row trains ``--iters`` iterations of batch ``--batch-size`` from the ImageNet backbone
with a cosine schedule over those iterations, then scores with ONNX Runtime. Results are kept in
``--out/<row>/result.json``; rows already done are skipped, so the script resumes, and two
processes can run different ``--rows`` side by side.

    python benchmarks/ablation.py --rows 0,1            # train + score rows 0 and 1
    python benchmarks/ablation.py --table               # print the table of the rows done
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

BASE = "configs/face_mnv2_300.yaml"  # the founding plain-SSD recipe of the previous model
NEW_ANCHORS = ["model.global_pool=false",
               "anchors.sizes=[[10,16,24],[32,48],[64,96],[128,192],[256,384]]",
               "anchors.ratios=[[1.0],[1.0],[1.0],[1.0],[1.0]]"]
# (name, change, overrides, parent row): a row is its parent's config plus its own overrides.
# The chain follows the changes that helped; a change that did not help stays in the table, and
# the next rows build on its parent instead.
ROWS: List[Tuple[str, str, List[str], int]] = [
    ("baseline", "founding plain SSD, shipped anchors, IoU 0.5, uniform crops 0.3-1", [], -1),
    ("anchors", "no global-pool level; anchors 10-384 px (cover faces to ~650 px)", NEW_ANCHORS, 0),
    ("iou035", "match at IoU >= 0.35", ["match.iou_thresh=0.35"], 1),
    ("ignore", "tiny (< 8 px) and invalid faces are ignore regions",
     ["data.small_faces=ignore", "data.invalid_faces=ignore"], 2),
    ("facecrop", "crops hold a whole face, scale log-U(0.1, 0.6) of the short side",
     ["data.crop_policy=face", "data.crop_scale=[0.1,0.6]"], 3),
    ("fpn_facecrop", "FPN-lite neck (64 ch) on strides 8/16/32", ["model.neck=fpn"], 4),
    ("fpn", "FPN-lite neck (64 ch) on strides 8/16/32", ["model.neck=fpn"], 3),
    ("unfreeze", "first backbone stage trainable", ["train.freeze_stages=0"], 6),
    ("context", "SSH-style depthwise context module on the neck", ["model.context=true"], 6),
    ("facecrop_wide", "crops hold a whole face, scale log-U(0.3, 1.0) of the short side",
     ["data.crop_policy=face", "data.crop_scale=[0.3,1.0]"], 3),
    ("fpn128", "FPN-lite neck twice as wide (128 ch)", ["model.neck_channels=128"], 6),
    ("fpn96", "FPN-lite neck 1.5x as wide (96 ch)", ["model.neck_channels=96"], 6),
    ("fpn192", "FPN-lite neck 3x as wide (192 ch)", ["model.neck_channels=192"], 6),
    ("atss", "ATSS matching (top 9 per level, IoU >= mean + std, centre inside)",
     ["match.assigner=atss", "match.atss_topk=9"], 11),
    ("diou", "DIoU box loss on the decoded boxes (weight 2, SCRFD) instead of smooth-L1 offsets",
     ["loss.box_loss=diou", "loss.box_weight=2.0"], 11),
    ("neg7", "7 hard negatives per positive instead of 3 (RetinaFace)", ["loss.neg_ratio=7"], 11),
    ("iou_aware", "IoU-aware class target: a positive's target is the IoU of its decoded box",
     ["loss.iou_target=1.0"], 11),
    ("p4", "a stride-4 level (MobileNetV2 features[:6]) in the FPN neck, for the 10 px anchor",
     ["model.stride4=true", "anchors.sizes=[[10],[16,24],[32,48],[64,96],[128,192],[256,384]]",
      "anchors.ratios=[[1.0],[1.0],[1.0],[1.0],[1.0],[1.0]]"], 6),
]


def row_overrides(i: int) -> List[str]:
    """The overrides of row ``i``: its ancestors' then its own."""
    chain = []
    while i >= 0:
        chain.append(i)
        i = ROWS[i][3]
    out: List[str] = []
    for j in reversed(chain):
        out += ROWS[j][2]
    return out


def run_row(i: int, args) -> Dict:
    from ssd_mnv2.config import load_config
    from ssd_mnv2.evaluation.driver import evaluate_detector
    from ssd_mnv2.engine.trainer import fit
    from ssd_mnv2.deploy.backends import make_detector
    from ssd_mnv2.predictor import Detector

    name = ROWS[i][0]
    out = Path(args.out) / name
    res_file = out / "result.json"
    if res_file.is_file():
        return json.loads(res_file.read_text())
    ov = ["train.epochs=1", "train.stop_epoch=0", f"train.max_iters_per_epoch={args.iters}",
          f"train.batch_size={args.batch_size}", "train.eval_every=0", f"train.seed={args.seed}",
          f"train.out_dir={out / 'train'}", f"data.num_workers={args.num_workers}",
          "solver.warmup_epochs=0.15"] + row_overrides(i) + list(args.set)
    cfg = load_config(BASE, ov)
    t0 = time.time()
    fit(cfg, resume=True, progress=False)
    train_s = time.time() - t0
    ck = json.loads((out / "train" / "last.json").read_text())["dir"]
    params = out / "train" / ck / "model.params"
    det = make_detector("onnxruntime", lambda fused: Detector.from_files(
        params, out / "train" / ck / "config.yaml", fused=fused))
    t0 = time.time()
    res = evaluate_detector(det, cfg.data.val_images, cfg.data.val_gt_dir, size="original",
                            out_dir=str(out / "eval"))
    ap = res["ap"]
    row = {"row": i, "name": name, "change": ROWS[i][1], "overrides": row_overrides(i),
           "iters": args.iters, "batch_size": args.batch_size, "seed": args.seed,
           "easy": ap["easy"], "medium": ap["medium"], "hard": ap["hard"],
           "train_s": round(train_s, 1), "eval_s": round(time.time() - t0, 1)}
    res_file.write_text(json.dumps(row, indent=1))
    return row


def table(out_dir: str) -> str:
    lines = ["| # | row | on top of | change | Easy | Medium | Hard | train s |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for i, (name, change, _, parent) in enumerate(ROWS):
        base = "-" if parent < 0 else f"{parent} {ROWS[parent][0]}"
        f = Path(out_dir) / name / "result.json"
        if not f.is_file():
            lines.append(f"| {i} | {name} | {base} | {change} | | | | not run |")
            continue
        r = json.loads(f.read_text())
        lines.append(f"| {i} | {name} | {base} | {change} | {r['easy']:.3f} | {r['medium']:.3f} | "
                     f"{r['hard']:.3f} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default=None, help="comma-separated row numbers (default: all)")
    p.add_argument("--iters", type=int, default=240)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--set", action="append", default=[], help="extra override for every row")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--table", action="store_true", help="only print the table of finished rows")
    args = p.parse_args(argv)
    if not args.table:
        rows = range(len(ROWS)) if args.rows is None else [int(x) for x in args.rows.split(",")]
        for i in rows:
            r = run_row(i, args)
            print(json.dumps(r), flush=True)
    print(table(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
