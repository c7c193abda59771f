"""Failure-mode evidence for MODEL_CARD.md.

    python scripts/model_card_examples.py --pred outputs/eval_dev_original/predictions --out outputs/model_card [--model NAME]

1. Recall on the dev split by face size, occlusion, pose and blur (WIDER attributes), from a
   prediction folder written by `ssd-mnv2 evaluate`.
2. Example images produced by the model on matplotlib's grace_hopper.jpg made harder: the face
   shrunk to 48/24/16/12 px, the lower or upper half of the face covered, the face cut in half
   (a stand-in for a profile). Written to --out (not committed: they are derived from a photo
   that ships with matplotlib) with a markdown table of the face's best score in each.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FACE = np.array([172, 120, 352, 338], np.float32)  # hand-measured, see tests/test_shipped_model.py


def variants(img):
    x1, y1, x2, y2 = FACE.astype(int)
    H, W = img.shape[:2]
    out = [("original (face 180 px)", img, FACE)]
    for px in (48, 24, 16, 12):
        s = px / float(x2 - x1)
        small = cv2.resize(img, (int(W * s), int(H * s)), interpolation=cv2.INTER_AREA)
        canvas = np.full((H, W, 3), 127, np.uint8)
        canvas[:small.shape[0], :small.shape[1]] = small
        out.append((f"face {px} px", canvas, FACE * s))
    low = img.copy(); low[(y1 + y2) // 2:y2, x1:x2] = 90
    out.append(("lower half covered", low, FACE))
    up = img.copy(); up[y1:(y1 + y2) // 2, x1:x2] = 90
    out.append(("upper half covered (eyes)", up, FACE))
    half = img.copy(); half[:, (x1 + x2) // 2:] = 127
    out.append(("right half of the face cut", half, FACE))
    return out


def main(argv=None) -> int:
    from matplotlib import cbook

    from ssd_mnv2.boxes import iou_matrix
    from ssd_mnv2.failure_modes import format_recall_tables, recall_by_attribute
    from ssd_mnv2.predictor import Detector
    from ssd_mnv2.viz import draw_detections

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pred", required=True, help="prediction folder of the dev split")
    ap.add_argument("--labels", default="../shared/data/widerface/dev/wider_face_dev_bbx_gt.txt")
    ap.add_argument("--out", default="outputs/model_card")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--model", default=None, help="shipped model name (default: the default model)")
    args = ap.parse_args(argv)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)

    res = recall_by_attribute(args.pred, args.labels, threshold=args.threshold)
    (out / "recall_by_attribute.json").write_text(json.dumps(res, indent=1))
    print(format_recall_tables(res))

    det = Detector.default(model=args.model)
    img = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    print("| case | best score on the face (IoU >= 0.5) | detections >= 0.5 |\n|---|---|---|")
    for i, (name, im, face) in enumerate(variants(img)):
        boxes, scores = det.predict(im)
        iou = iou_matrix(boxes, face[None])[:, 0] if len(boxes) else np.zeros(0)
        best = float(scores[iou >= 0.5].max()) if (iou >= 0.5).any() else 0.0
        keep = scores >= args.threshold
        print(f"| {name} | {best:.2f} | {int(keep.sum())} |")
        cv2.imwrite(str(out / f"example_{i}.jpg"), draw_detections(im, boxes[keep], scores[keep]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
