"""Single-class ('face') Pascal VOC scoring: AP at IoU 0.5, best F1, recall by face size.

The VOC rules (``VOCevaldet`` of the devkit): detections of all images in descending score
order; each is matched to the ground-truth face of maximum IoU in its image. If that IoU is at
least ``iou_thresh``: a face marked ``ignore`` (VOC ``difficult``, COCO ``iscrowd``) makes the
detection ignored (neither true nor false positive, every time); otherwise the face is recalled
by the first detection that hits it and every later hit is a false positive (a duplicate).
Below ``iou_thresh`` the detection is a false positive. AP is the all-point (VOC 2010+) area under
the precision envelope (:func:`voc_ap`, also the WIDER protocol's).

Boxes are ``x1 y1 x2 y2`` pixel edges (``boxes_xyxy_px``), IoU without the devkit's ``+1``:
for ground truth read by :mod:`ssd_mnv2.data.faceset` (VOC ``xmin - 1 .. xmax``) that gives the
devkit's IoU on its 1-based inclusive coordinates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["voc_ap", "FaceMatches", "SIZE_BINS_PX", "iou_xyxy", "match_detections", "precision_recall",
           "best_f1", "recall_by_size", "score_voc"]

Detections = Tuple[np.ndarray, np.ndarray]  # (boxes_xyxy_px (N, 4), scores (N,))
GroundTruth = Tuple[np.ndarray, np.ndarray]  # (boxes_xyxy_px (M, 4), ignore (M,) bool)

# face size = sqrt(w * h) of the ground-truth box in original-image pixels
SIZE_BINS_PX: Tuple[float, ...] = (0.0, 16.0, 32.0, 64.0, 128.0, math.inf)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point VOC AP (precision envelope) of a curve given as (T,) recall, precision."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], np.nan_to_num(precision), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))



@dataclass
class FaceMatches:
    """Outcome of :func:`match_detections`.

    ``scores`` / ``tp``: the non-ignored detections in descending score order and whether each
    is a true positive. ``face_sizes_px``: sqrt(w*h) of each counted face; ``face_hit_score``: the
    score of the detection that recalled it (``-inf`` if none did). ``num_ignored_detections``:
    detections that hit an ignored face.
    """

    scores: np.ndarray
    tp: np.ndarray
    num_faces: int
    face_sizes_px: np.ndarray
    face_hit_score: np.ndarray
    num_ignored_detections: int
    iou_thresh: float


def iou_xyxy(boxes_a_xyxy_px: np.ndarray, boxes_b_xyxy_px: np.ndarray) -> np.ndarray:
    """IoU (N, K) in float64 between (N, 4) and (K, 4) ``x1 y1 x2 y2`` boxes (pixel edges)."""
    a = np.asarray(boxes_a_xyxy_px, np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b_xyxy_px, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_detections(detections: Sequence[Detections], ground_truth: Sequence[GroundTruth],
                     iou_thresh: float = 0.5) -> FaceMatches:
    """Match every image's detections to its faces by the VOC rules (see the module doc).

    ``detections[i]``: ``(boxes_xyxy_px (N, 4), scores (N,))``; ``ground_truth[i]``:
    ``(boxes_xyxy_px (M, 4), ignore (M,) bool)``. Matching per image in descending score order is
    the same as the devkit's global order (the 'already detected' state is per image).
    """
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection entries but {len(ground_truth)} images")
    all_scores: List[np.ndarray] = []
    all_tp: List[np.ndarray] = []
    sizes: List[np.ndarray] = []
    hit_scores: List[np.ndarray] = []
    n_ignored = 0
    for i, ((det_b, det_s), (gt_b, ignore)) in enumerate(zip(detections, ground_truth)):
        det_b = np.asarray(det_b, np.float64).reshape(-1, 4)
        det_s = np.asarray(det_s, np.float64).reshape(-1)
        gt_b = np.asarray(gt_b, np.float64).reshape(-1, 4)
        ignore = np.asarray(ignore, bool).reshape(-1)
        if len(det_b) != len(det_s):
            raise ValueError(f"image {i}: {len(det_b)} boxes but {len(det_s)} scores")
        if len(gt_b) != len(ignore):
            raise ValueError(f"image {i}: {len(gt_b)} faces but {len(ignore)} ignore flags")
        order = np.argsort(-det_s, kind="stable")
        det_b, det_s = det_b[order], det_s[order]
        hit = np.full(len(gt_b), -np.inf)
        tp = np.zeros(len(det_s), bool)
        keep = np.ones(len(det_s), bool)
        if len(gt_b) and len(det_b):
            iou = iou_xyxy(det_b, gt_b)
            best = iou.argmax(axis=1)
            best_iou = iou[np.arange(len(det_b)), best]
            for d in range(len(det_b)):
                if best_iou[d] < iou_thresh:
                    continue  # false positive
                g = best[d]
                if ignore[g]:
                    keep[d] = False
                elif hit[g] == -np.inf:
                    tp[d] = True
                    hit[g] = det_s[d]
                # else: a duplicate -> false positive
        n_ignored += int((~keep).sum())
        all_scores.append(det_s[keep])
        all_tp.append(tp[keep])
        counted = ~ignore
        wh = gt_b[counted, 2:] - gt_b[counted, :2]
        sizes.append(np.sqrt(np.clip(wh[:, 0] * wh[:, 1], 0, None)))
        hit_scores.append(hit[counted])
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    face_sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    return FaceMatches(scores=scores[order], tp=tp[order], num_faces=int(len(face_sizes)),
                       face_sizes_px=face_sizes,
                       face_hit_score=np.concatenate(hit_scores) if hit_scores else np.zeros(0),
                       num_ignored_detections=n_ignored, iou_thresh=float(iou_thresh))


def precision_recall(m: FaceMatches) -> Tuple[np.ndarray, np.ndarray]:
    """Precision and recall (D,) after each detection of the ranking (recall nan without faces)."""
    ctp = np.cumsum(m.tp).astype(np.float64)
    n = np.arange(1, len(m.tp) + 1, dtype=np.float64)
    precision = ctp / np.maximum(n, 1)
    recall = ctp / m.num_faces if m.num_faces else np.full(len(ctp), np.nan)
    return precision, recall


def best_f1(m: FaceMatches) -> Dict[str, float]:
    """The score threshold with the best F1 = 2PR / (P + R).

    Thresholds are taken between distinct scores only (a threshold cannot split equal scores);
    keeping the detections with ``score >= threshold`` gives ``f1``, ``precision``, ``recall``.
    Without detections (or faces) F1 is 0 with a nan threshold.
    """
    if not len(m.scores) or not m.num_faces:
        return {"f1": 0.0, "threshold": float("nan"), "precision": float("nan"), "recall": 0.0}
    precision, recall = precision_recall(m)
    last = np.r_[m.scores[1:] != m.scores[:-1], True]  # last detection of each equal-score run
    p, r, s = precision[last], recall[last], m.scores[last]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    k = int(np.argmax(f1))  # first maximum = the highest threshold reaching it
    return {"f1": float(f1[k]), "threshold": float(s[k]), "precision": float(p[k]),
            "recall": float(r[k])}


def _bin_name(lo: float, hi: float) -> str:
    if lo <= 0:
        return f"<{hi:g}"
    if math.isinf(hi):
        return f">={lo:g}"
    return f"{lo:g}-{hi:g}"


def recall_by_size(m: FaceMatches, threshold: Optional[float] = None,
                   bins_px: Sequence[float] = SIZE_BINS_PX) -> List[Dict[str, Any]]:
    """Recall per face-size bin (sqrt(w*h) px, ``lo <= size < hi``).

    ``recall``: with every detection; ``recall_at_threshold``: with the detections scoring
    ``>= threshold`` (exact: VOC matching in score order does not depend on lower-scored boxes).
    """
    out = []
    for lo, hi in zip(bins_px[:-1], bins_px[1:]):
        sel = (m.face_sizes_px >= lo) & (m.face_sizes_px < hi)
        n = int(sel.sum())
        hit = m.face_hit_score[sel]
        row: Dict[str, Any] = {"size_px": _bin_name(lo, hi), "faces": n,
                               "recall": float(np.isfinite(hit).mean()) if n else float("nan")}
        if threshold is not None:
            ok = math.isfinite(threshold)
            row["recall_at_threshold"] = float((hit >= threshold).mean()) if n and ok else float("nan")
        out.append(row)
    return out


def score_voc(detections: Sequence[Detections], ground_truth: Sequence[GroundTruth],
              iou_thresh: float = 0.5) -> Dict[str, Any]:
    """AP at ``iou_thresh`` (all-point VOC), best F1 and recall by face size.

    Returns ``ap`` (nan without counted faces), ``precision``/``recall``/``scores`` (D,) curves,
    ``best_f1`` (see :func:`best_f1`), ``recall_by_size`` (recall_at_threshold = at the best-F1
    threshold), ``num_faces``, ``num_detections``, ``num_ignored_detections``, ``iou_thresh``.
    """
    m = match_detections(detections, ground_truth, iou_thresh)
    precision, recall = precision_recall(m)
    ap = voc_ap(recall, precision) if m.num_faces else float("nan")
    f1 = best_f1(m)
    return {
        "ap": ap,
        "precision": precision,
        "recall": recall,
        "scores": m.scores,
        "best_f1": f1,
        "recall_by_size": recall_by_size(m, f1["threshold"]),
        "num_faces": m.num_faces,
        "num_detections": int(len(m.scores) + m.num_ignored_detections),
        "num_ignored_detections": m.num_ignored_detections,
        "iou_thresh": float(iou_thresh),
    }
