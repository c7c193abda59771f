"""Why a face is missed: the fate of each ground-truth face through the detector's pipeline.

For one image, given the network's raw output (every anchor's face score and decoded box, before
the score floor and NMS), the final detections and the anchors, each counted face falls in the
first of these that applies:

- ``found``: a final detection has IoU >= ``iou`` with it (any detection: the official protocol's
  one-to-one matching can still count a few of these as misses);
- ``outranked``: some anchor's box has IoU >= ``iou`` and a score >= the floor, yet no final
  detection does, and a final detection overlaps the face at IoU in [``near_iou``, ``iou``): NMS
  kept a worse-placed box of the face (its higher score) over a well-placed one;
- ``suppressed``: as ``outranked``, but no final detection overlaps the face that much (the box
  was removed by a neighbouring face's box, ``decode.pre_nms_topk`` or the detection cap);
- ``low score``: some anchor's box has IoU >= ``iou``, but every such box scores below the floor;
- ``mislocated``: no box reaches IoU ``iou``, although an anchor has IoU >= ``anchor_iou`` (the
  regression did not bring it there);
- ``no anchor``: no box reaches ``iou`` and no anchor reaches ``anchor_iou``.

"low score" is the classifier's failure, "mislocated" the box regression's, "no anchor" the
anchor layout's, "outranked" the ranking of boxes by a score that knows nothing of their
placement, "suppressed" the decoder's. :func:`miss_table` sums them by face size.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..boxes import iou_matrix

__all__ = ["FATES", "SIZE_BINS", "face_fates", "miss_table", "format_miss_table", "placements",
           "placement_table", "format_placement_table"]

FATES = ("found", "outranked", "suppressed", "low score", "mislocated", "no anchor")
SIZE_BINS: Tuple[Tuple[float, float], ...] = ((0, 16), (16, 32), (32, 64), (64, 128), (128, np.inf))


def _max_iou(faces_xyxy: np.ndarray, boxes_xyxy: np.ndarray, mask: np.ndarray | None = None,
             chunk: int = 64) -> np.ndarray:
    """(F,) the highest IoU of each face with the boxes (restricted to ``mask``), 0 without any."""
    out = np.zeros(len(faces_xyxy), np.float32)
    if mask is not None:
        boxes_xyxy = boxes_xyxy[mask]
    if len(boxes_xyxy) == 0:
        return out
    for i in range(0, len(faces_xyxy), chunk):
        out[i:i + chunk] = iou_matrix(faces_xyxy[i:i + chunk], boxes_xyxy).max(axis=1)
    return out


def face_fates(faces_xyxy_px: np.ndarray, raw_scores: np.ndarray, raw_boxes_xyxy_px: np.ndarray,
               anchors_xyxy_px: np.ndarray, det_boxes_xyxy_px: np.ndarray, score_floor: float,
               iou: float = 0.5, anchor_iou: float = 0.35, near_iou: float = 0.3
               ) -> Tuple[List[str], np.ndarray]:
    """The fate (one of :data:`FATES`) of each face ``(F, 4)``, and each face's best score among
    the anchors whose box has IoU >= ``iou`` with it (0 where none has).

    ``raw_scores (N,)``, ``raw_boxes_xyxy_px (N, 4)`` and ``anchors_xyxy_px (N, 4)``: every anchor's
    score and decoded box before the floor and NMS, and the anchor itself; ``det_boxes_xyxy_px
    (K, 4)``: the final detections (those at or above ``score_floor``). All in the same pixels.
    """
    faces = np.asarray(faces_xyxy_px, np.float32).reshape(-1, 4)
    raw_scores = np.asarray(raw_scores, np.float32).reshape(-1)
    raw_boxes = np.asarray(raw_boxes_xyxy_px, np.float32).reshape(-1, 4)
    if len(raw_scores) != len(raw_boxes) or len(raw_boxes) != len(anchors_xyxy_px):
        raise ValueError(f"face_fates: {len(raw_scores)} scores, {len(raw_boxes)} boxes and "
                         f"{len(anchors_xyxy_px)} anchors: one of each per anchor expected")
    det_iou = _max_iou(faces, np.asarray(det_boxes_xyxy_px, np.float32).reshape(-1, 4))
    found = det_iou >= iou
    best_score = np.zeros(len(faces), np.float32)
    any_box = np.zeros(len(faces), bool)
    # only boxes near a face can reach the IoU: score the boxes of each face chunk at once
    for i in range(0, len(faces), 64):
        m = iou_matrix(faces[i:i + 64], raw_boxes) >= iou  # (f, N)
        any_box[i:i + 64] = m.any(axis=1)
        best_score[i:i + 64] = np.where(m, raw_scores[None, :], 0.0).max(axis=1, initial=0.0)
    has_anchor = _max_iou(faces, np.asarray(anchors_xyxy_px, np.float32).reshape(-1, 4)) >= anchor_iou
    fates = []
    for k in range(len(faces)):
        if found[k]:
            fates.append("found")
        elif any_box[k] and best_score[k] >= score_floor:
            fates.append("outranked" if det_iou[k] >= near_iou else "suppressed")
        elif any_box[k]:
            fates.append("low score")
        elif has_anchor[k]:
            fates.append("mislocated")
        else:
            fates.append("no anchor")
    return fates, best_score


def size_bin(side_px: float) -> str:
    for lo, hi in SIZE_BINS:
        if lo <= side_px < hi:
            return f"{lo:.0f}-{hi:.0f}" if np.isfinite(hi) else f">= {lo:.0f}"
    return f"< {SIZE_BINS[0][0]:.0f}"


def miss_table(fates: Sequence[str], sides_px: Sequence[float]) -> Dict[str, Dict[str, int]]:
    """Counts ``{size bin: {fate: n}}`` (plus an ``all`` row) of faces with these fates and sizes
    (``sides_px``: the square root of each face's area)."""
    if len(fates) != len(sides_px):
        raise ValueError(f"miss_table: {len(fates)} fates for {len(sides_px)} faces")
    bins = [size_bin(lo) for lo, _ in SIZE_BINS] + ["all"]
    table = {b: {f: 0 for f in FATES} for b in bins}
    for fate, side in zip(fates, sides_px):
        if fate not in FATES:
            raise ValueError(f"miss_table: unknown fate {fate!r}")
        table[size_bin(float(side))][fate] += 1
        table["all"][fate] += 1
    return table


def format_miss_table(table: Dict[str, Dict[str, int]]) -> str:
    """A Markdown table: faces per size bin, then the share of each fate."""
    lines = ["| face size (px, sqrt area) | faces | " + " | ".join(FATES) + " |",
             "|---|---:|" + "---:|" * len(FATES)]
    for b, row in table.items():
        n = sum(row.values())
        cells = [f"{row[f] / n:.2f}" if n else "-" for f in FATES]
        lines.append(f"| {b} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def placements(faces_xyxy_px: np.ndarray, det_boxes_xyxy_px: np.ndarray, det_scores: np.ndarray,
               min_score: float = 0.3, min_iou: float = 0.2) -> np.ndarray:
    """How each face's best final detection (highest IoU among those scoring >= ``min_score``)
    sits on it: rows ``(side px, IoU, width ratio, height ratio, dx, dy)`` (ratios: box / face;
    dx, dy: centre offset / face width, height) for the faces it overlaps at >= ``min_iou``."""
    faces = np.asarray(faces_xyxy_px, np.float32).reshape(-1, 4)
    dets = np.asarray(det_boxes_xyxy_px, np.float32).reshape(-1, 4)[np.asarray(det_scores) >= min_score]
    if not len(faces) or not len(dets):
        return np.zeros((0, 6), np.float32)
    iou = iou_matrix(faces, dets)
    j = iou.argmax(axis=1)
    best = iou[np.arange(len(faces)), j]
    keep = best >= min_iou
    f, d = faces[keep], dets[j[keep]]
    fw, fh = np.maximum(f[:, 2] - f[:, 0], 1e-6), np.maximum(f[:, 3] - f[:, 1], 1e-6)
    dw, dh = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    dx = ((d[:, 0] + d[:, 2]) - (f[:, 0] + f[:, 2])) / 2 / fw
    dy = ((d[:, 1] + d[:, 3]) - (f[:, 1] + f[:, 3])) / 2 / fh
    return np.stack([np.sqrt(fw * fh), best[keep], dw / fw, dh / fh, dx, dy], axis=1).astype(np.float32)


def placement_table(rows: np.ndarray) -> Dict[str, Dict[str, float]]:
    """Per size bin (and ``all``): faces, median IoU, share below IoU 0.5, median width and
    height ratios and centre offsets of :func:`placements` rows."""
    rows = np.asarray(rows, np.float32).reshape(-1, 6)
    out: Dict[str, Dict[str, float]] = {}
    groups = [(size_bin(lo), (rows[:, 0] >= lo) & (rows[:, 0] < hi)) for lo, hi in SIZE_BINS]
    for name, m in groups + [("all", np.ones(len(rows), bool))]:
        q = rows[m]
        out[name] = {"faces": int(len(q))}
        if len(q):
            out[name].update({"iou": float(np.median(q[:, 1])), "below_0.5": float(np.mean(q[:, 1] < 0.5)),
                              "w_ratio": float(np.median(q[:, 2])), "h_ratio": float(np.median(q[:, 3])),
                              "dx": float(np.median(q[:, 4])), "dy": float(np.median(q[:, 5]))})
    return out


def format_placement_table(table: Dict[str, Dict[str, float]]) -> str:
    lines = ["| face size (px, sqrt area) | faces | median IoU | IoU < 0.5 | width / face | height / face "
             "| centre dx / w | centre dy / h |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for b, r in table.items():
        if not r["faces"]:
            lines.append(f"| {b} | 0 | - | - | - | - | - | - |")
            continue
        lines.append(f"| {b} | {r['faces']} | {r['iou']:.2f} | {r['below_0.5']:.2f} | {r['w_ratio']:.3f} | "
                     f"{r['h_ratio']:.3f} | {r['dx']:+.3f} | {r['dy']:+.3f} |")
    return "\n".join(lines)
