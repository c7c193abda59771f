"""Why the model misses faces: each dev face's fate through scores, boxes, anchors and NMS.

    python benchmarks/miss_analysis.py                               # the shipped model
    python benchmarks/miss_analysis.py runs/R/checkpoints/ep032-it000000 [...]

Each positional argument is a checkpoint folder (``model.params`` + ``config.yaml``); without
any, the model of ``--model``/``--params``/``--config``. Every dev image runs at original size
(the evaluation's input, padding included) through the MXNet network once: the raw output (every
anchor's face score and decoded box) and the final detections (score floor
``decode.score_threshold``, NMS, cap). The faces that count in ``--subset`` (official .mat
files) are sorted into found / suppressed / low score / mislocated / no anchor
(``ssd_mnv2/evaluation/misses.py``) by size. Prints a Markdown table per model and writes
``--out``/miss_analysis.json. A second table shows how the faces' best final detections
(score >= ``--placement-score``) sit on them: median IoU, the share below 0.5, box size and
centre offset relative to the face, by size.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def analyse(det, images_dir: str, gt_dir: str, subset: str, max_images: int = 0,
            placement_score: float = 0.3):
    """(fates, face sides, best scores, placement rows) of the counted faces of every dev image."""
    import mxnet as mx
    from tqdm import tqdm

    from ssd_mnv2.boxes import BoxCoder, cxcywh_to_xyxy
    from ssd_mnv2.evaluation.image_list import find_images, key_from_path
    from ssd_mnv2.evaluation.misses import face_fates, placements
    from ssd_mnv2.evaluation.wider_gt import load_wider_ground_truth
    from ssd_mnv2.imageio import read_image_bgr

    images = find_images(images_dir)
    if max_images:
        images = images[:max_images]
    gt = load_wider_ground_truth(gt_dir, images)
    coder = BoxCoder(det.cfg.anchors.variances)
    fates, sides, best, placed = [], [], [], []
    for rel in tqdm(images, desc="images", unit="img"):
        g = gt[key_from_path(rel)]
        img = read_image_bgr(os.path.join(images_dir, rel))
        x, (sx, sy) = det.preprocess(img, "original")
        cls_p, box_p, anchors = det.ssd(x)
        scores = mx.nd.softmax(cls_p, axis=-1)[0, :, 1].asnumpy()
        s = np.array([sx, sy, sx, sy], np.float32)
        raw = coder.decode(box_p[0].asnumpy(), anchors[0].asnumpy()) * s
        anc = cxcywh_to_xyxy(anchors[0].asnumpy()) * s
        ids, sc, bx = det.net(x)
        dets, det_scores = det.postprocess(ids, sc, bx, (sx, sy), img.shape[:2])
        faces = g.boxes_xywh_px[g.counted_mask(subset)]
        faces_xyxy = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:]], 1)
        f, b = face_fates(faces_xyxy, scores, raw, anc, dets, det.cfg.decode.score_threshold)
        fates += f
        best += b.tolist()
        sides += np.sqrt(np.maximum(faces[:, 2] * faces[:, 3], 0)).tolist()
        placed.append(placements(faces_xyxy, dets, det_scores, min_score=placement_score))
    return fates, sides, best, np.concatenate(placed) if placed else np.zeros((0, 6), np.float32)


def main(argv=None) -> int:
    from ssd_mnv2.commands import add_model_args, each_model, load_detector

    p = argparse.ArgumentParser(prog="benchmarks/miss_analysis.py", description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("checkpoints", nargs="*", help="checkpoint folders (model.params + config.yaml)")
    p.add_argument("--images", default="../shared/data/widerface/dev/images")
    p.add_argument("--gt", default="../shared/data/widerface/ground_truth")
    p.add_argument("--subset", default="hard", choices=["easy", "medium", "hard"])
    p.add_argument("--max-images", type=int, default=0, help="only the first N images (0: all)")
    p.add_argument("--placement-score", type=float, default=0.3,
                   help="detections at or above this score count in the placement table")
    p.add_argument("--out", default="outputs/miss_analysis")
    args = p.parse_args(argv)
    from ssd_mnv2.evaluation.misses import (format_miss_table, format_placement_table, miss_table,
                                            placement_table)

    results = []
    for name in each_model(args, args.checkpoints):
        det = load_detector(args, fused=False)
        fates, sides, best, placed = analyse(det, args.images, args.gt, args.subset, args.max_images,
                                             args.placement_score)
        table = miss_table(fates, sides)
        placing = placement_table(placed)
        low = [b for f, b in zip(fates, best) if f == "low score"]
        results.append({"model": name, "subset": args.subset, "table": table, "placement": placing,
                        "low_score_median_best": float(np.median(low)) if low else None})
        print(f"\n{name} ({args.subset} faces, original size; share of the faces of each size)\n")
        print(format_miss_table(table))
        if low:
            print(f"\n'low score' faces: median best score {np.median(low):.4f} "
                  f"(floor {det.cfg.decode.score_threshold})")
        print(f"\nplacement of each face's best detection scoring >= {args.placement_score}\n")
        print(format_placement_table(placing))
    os.makedirs(args.out, exist_ok=True)
    Path(args.out, "miss_analysis.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
