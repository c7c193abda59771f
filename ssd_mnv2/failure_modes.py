"""Where a detector fails: recall by WIDER FACE attribute (size, occlusion, pose, blur).

Reads a prediction folder (WIDER submission layout) and the official ``*_bbx_gt.txt`` labels,
whose per-face attributes say blur (0 clear / 1 normal / 2 heavy), occlusion (0 none /
1 partial / 2 heavy), pose (0 typical / 1 atypical) and invalid.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from .data.widerface import parse_wider_labels
from .evaluation.predictions import read_wider_predictions
from .evaluation.wider_protocol import bbox_overlaps_px

__all__ = ["recall_by_attribute", "format_recall_tables"]

SIZE_BINS = [(0, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 1e9)]
ATTRS = {"occlusion": (4, ["none", "partial", "heavy"]), "pose": (5, ["typical", "atypical"]),
         "blur": (0, ["clear", "normal", "heavy"])}


def recall_by_attribute(pred_dir: str, label_path: str, threshold: float = 0.5,
                        iou_thresh: float = 0.5) -> Dict[str, Any]:
    """Recall of valid faces at score >= ``threshold`` (IoU >= ``iou_thresh``), by attribute.

    Also counts false positives per image (detections >= threshold matching no face,
    invalid faces included as matches). Face size = max(w, h) in original-image pixels.
    """
    records = parse_wider_labels(label_path, allow_degenerate=True)
    keys = [r.rel_path[:-4] if r.rel_path.lower().endswith(".jpg") else r.rel_path for r in records]
    preds = read_wider_predictions(pred_dir, keys)
    sizes: List[float] = []
    attrs: List[np.ndarray] = []
    found: List[bool] = []
    fps = 0
    for rec, key in zip(records, keys):
        boxes_xywh, scores = preds[key]
        keep = scores >= threshold
        det = boxes_xywh[keep].astype(np.float64)
        det_xyxy = np.c_[det[:, :2], det[:, :2] + det[:, 2:]] if len(det) else np.zeros((0, 4))
        gt = rec.boxes_xywh_px.astype(np.float64)
        ok = (gt[:, 2] > 0) & (gt[:, 3] > 0)
        gt, at = gt[ok], rec.attributes[ok]
        gt_xyxy = np.c_[gt[:, :2], gt[:, :2] + gt[:, 2:]] if len(gt) else np.zeros((0, 4))
        if len(gt) and len(det_xyxy):
            ov = bbox_overlaps_px(gt_xyxy, det_xyxy)
            hit = ov.max(axis=1) >= iou_thresh
            fps += int((ov.max(axis=0) < iou_thresh).sum())
        else:
            hit = np.zeros(len(gt), bool)
            fps += len(det_xyxy)
        valid = at[:, 3] == 0
        sizes += list(np.maximum(gt[valid, 2], gt[valid, 3]))
        attrs.append(at[valid])
        found += list(hit[valid])
    sizes_a = np.asarray(sizes)
    attrs_a = np.concatenate(attrs) if attrs else np.zeros((0, 6), int)
    found_a = np.asarray(found, bool)
    out: Dict[str, Any] = {"threshold": threshold, "iou": iou_thresh, "faces": int(len(found_a)),
                           "recall": float(found_a.mean()) if len(found_a) else None,
                           "false_positives_per_image": fps / max(1, len(records)), "by": {}}
    rows = []
    for lo, hi in SIZE_BINS:
        m = (sizes_a >= lo) & (sizes_a < hi)
        name = f"{int(lo)}-{int(hi)} px" if hi < 1e9 else f">={int(lo)} px"
        rows.append({"value": name, "faces": int(m.sum()), "recall": float(found_a[m].mean()) if m.any() else None})
    out["by"]["size"] = rows
    for attr, (col, names) in ATTRS.items():
        rows = []
        for v, name in enumerate(names):
            m = attrs_a[:, col] == v
            rows.append({"value": name, "faces": int(m.sum()),
                         "recall": float(found_a[m].mean()) if m.any() else None})
        out["by"][attr] = rows
    return out


def format_recall_tables(res: Dict[str, Any]) -> str:
    """Markdown tables of :func:`recall_by_attribute`."""
    lines = [f"Recall of {res['faces']} valid faces at score >= {res['threshold']} (IoU >= {res['iou']}): "
             f"{res['recall']:.3f}; false positives per image: {res['false_positives_per_image']:.2f}", ""]
    for attr, rows in res["by"].items():
        lines += [f"| {attr} | faces | recall |", "|---|---|---|"]
        for r in rows:
            rec = "-" if r["recall"] is None else f"{r['recall']:.3f}"
            lines.append(f"| {r['value']} | {r['faces']} | {rec} |")
        lines.append("")
    return "\n".join(lines)
