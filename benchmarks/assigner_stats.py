"""Positive anchors per training face, by face size, for each anchor assigner (``match.assigner``).

    python benchmarks/assigner_stats.py                                   # stage-3 config, 300 images
    python benchmarks/assigner_stats.py --config configs/face_mnv2_fpn96_512.yaml --images 500

Draws the training samples exactly as training does (the config's crop/scale policy, epoch 0, the
config's seed), encodes each with the IoU assigner (``match.iou_thresh``) and with ATSS
(``match.atss_topk``), and prints, per face-size bin (px on the training canvas), the faces, the
mean positives per face and the share of faces with only one positive anchor. Ignore regions are
not counted. CPU only, no network.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BINS = [(0, 16), (16, 32), (32, 64), (64, 128), (128, 10**6)]


def positives_per_face(encoder, boxes: np.ndarray, ignore: np.ndarray) -> np.ndarray:
    """Positive anchors of each real face in ``boxes`` (M, 4) xyxy px under ``encoder``."""
    from ssd_mnv2.boxes import iou_matrix

    cls_t, box_t = encoder(boxes, ignore=ignore)
    real = boxes[~ignore]
    pos = cls_t > 0
    counts = np.zeros(len(real), np.int64)
    if pos.any() and len(real):
        matched = encoder.box_coder.decode(box_t[pos], encoder.anchors_cxcywh_px[pos])
        counts += np.bincount(iou_matrix(matched, real).argmax(axis=1), minlength=len(real))
    return counts


def main(argv=None) -> int:
    from ssd_mnv2.config import load_config
    from ssd_mnv2.data.pipeline import build_dataset, build_train_samples, target_encoder

    p = argparse.ArgumentParser(prog="benchmarks/assigner_stats.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/face_mnv2_fpn_512.yaml")
    p.add_argument("--images", type=int, default=300)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    samples = build_train_samples(cfg, build_dataset(cfg, "train"))
    size = cfg.model.image_size
    encoders = {}
    for name in ("iou", "atss"):
        c = dataclasses.replace(cfg, match=dataclasses.replace(cfg.match, assigner=name))
        encoders[name] = target_encoder(c, size)
    sizes, counts = [], {n: [] for n in encoders}
    for i in range(min(args.images, len(samples))):
        _, boxes = samples.sample(0, i)
        ign = boxes[:, 4] > 0
        real = boxes[~ign, :4]
        sizes.append(np.sqrt((real[:, 2] - real[:, 0]) * (real[:, 3] - real[:, 1])))
        for n, enc in encoders.items():
            counts[n].append(positives_per_face(enc, boxes[:, :4], ign))
    sizes = np.concatenate(sizes)
    counts = {n: np.concatenate(v) for n, v in counts.items()}
    print(f"{args.config}: {min(args.images, len(samples))} training samples ({size} px canvas, epoch 0), "
          f"{len(sizes)} faces; IoU assigner at {cfg.match.iou_thresh}, ATSS top {cfg.match.atss_topk}\n")
    print("| face size (px, sqrt area) | faces | positives / face, IoU | ATSS | one positive only, IoU | ATSS |")
    print("|---|---:|---:|---:|---:|---:|")
    for lo, hi in BINS + [(0, 10**6)]:
        m = (sizes >= lo) & (sizes < hi)
        label = "all" if (lo, hi) == (0, 10**6) else (f">= {lo}" if hi == 10**6 else f"{lo}-{hi}")
        if not m.any():
            print(f"| {label} | 0 | | | | |")
            continue
        a, b = counts["iou"][m], counts["atss"][m]
        print(f"| {label} | {m.sum()} | {a.mean():.1f} | {b.mean():.1f} | {np.mean(a <= 1):.0%} | {np.mean(b <= 1):.0%} |")
    return 0


if __name__ == "__main__":
    from ssd_mnv2.bench import run_script

    run_script(main, "benchmarks/assigner_stats.py")
