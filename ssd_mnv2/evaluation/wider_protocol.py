"""The official WIDER FACE average precision (easy / medium / hard).

The WIDER FACE part follows the official evaluation (the MATLAB ``eval_tools`` and its
python port ``WiderFace-Evaluation``):

* predictions are stored in the submission layout ``<pred_dir>/<event>/<name>.txt``
  (image name, count, then ``x y w h score`` lines);
* scores are min-max normalised over the whole evaluated set (with the official
  initial values ``max = 0``, ``min = 1``);
* per image and subset (easy / medium / hard) every detection, in descending score order,
  is matched to the ground-truth face of maximum IoU (``+1`` pixel convention on
  ``x y x+w y+h`` boxes). If that IoU is at least ``iou_thresh``: a face outside the
  subset makes the detection "ignored" (neither TP nor FP); otherwise the face is recalled
  the first time it is hit (later hits are false positives);
* precision / recall are accumulated over 1000 score thresholds ``1 - (t + 1) / 1000`` and
  AP is the all-point VOC AP with the precision envelope.

As in the official code, an image without ground-truth faces or without detections adds
nothing but its counted faces (false positives on face-less images are not counted).

Ground truth: :mod:`.wider_gt`; prediction files: :mod:`.predictions`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import numpy as np

from .predictions import Prediction
from .voc_metrics import voc_ap
from .wider_gt import SUBSETS, WiderGT

__all__ = ["bbox_overlaps_px", "normalize_scores", "wider_ap"]

def bbox_overlaps_px(boxes_a_xyxy_px: np.ndarray, boxes_b_xyxy_px: np.ndarray) -> np.ndarray:
    """IoU (N, K) between (N,4) and (K,4) ``x1 y1 x2 y2`` boxes, ``+1`` pixel convention."""
    a = np.asarray(boxes_a_xyxy_px, dtype=np.float64)
    b = np.asarray(boxes_b_xyxy_px, dtype=np.float64)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(inter > 0, inter / union, 0.0)
    return iou


def _xywh_to_xyxy(boxes_xywh_px: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes_xywh_px, dtype=np.float64).reshape(-1, 4).copy()
    b[:, 2:] += b[:, :2]
    return b


def _image_eval(
    iou: np.ndarray, counted: np.ndarray, iou_thresh: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Official ``image_eval`` vectorised, detections already sorted by descending score.

    ``iou``: (N, G); ``counted``: (G,) bool. Returns ``pred_recall`` (N,) = number of
    counted faces recalled by detections ``0..h``, and ``proposal`` (N,) with 1 for a
    regular detection and -1 for one ignored (best match is a non-counted face).
    """
    n = iou.shape[0]
    best = iou.argmax(axis=1)
    hit = iou[np.arange(n), best] >= iou_thresh
    ignored = hit & ~counted[best]
    proposal = np.where(ignored, -1, 1)
    good = hit & counted[best]
    first_hit = np.zeros(n, dtype=np.int64)
    det_idx = np.nonzero(good)[0]
    if det_idx.size:
        _, first = np.unique(best[det_idx], return_index=True)
        first_hit[det_idx[first]] = 1
    return np.cumsum(first_hit), proposal


def normalize_scores(predictions: Mapping[str, Prediction]) -> Dict[str, np.ndarray]:
    """Official min-max score normalisation over all images (``max`` starts at 0, ``min`` at 1).

    Returns ``{key: normalised scores (N,)}``. If all scores are equal (zero range) every
    score becomes 1.0 (the official code would divide by zero).
    """
    max_score, min_score = 0.0, 1.0
    for _, s in predictions.values():
        if len(s):
            max_score = max(max_score, float(np.max(s)))
            min_score = min(min_score, float(np.min(s)))
    diff = max_score - min_score
    out = {}
    for k, (_, s) in predictions.items():
        s = np.asarray(s, dtype=np.float64)
        out[k] = (s - min_score) / diff if diff > 0 else np.ones_like(s)
    return out


def wider_ap(
    predictions: Mapping[str, Prediction],
    ground_truth: Mapping[str, WiderGT],
    iou_thresh: float = 0.5,
    num_thresholds: int = 1000,
) -> Dict[str, Any]:
    """Official WIDER FACE AP for the easy / medium / hard subsets.

    ``predictions``: ``{key: (boxes_xywh_px (N,4), scores (N,))}`` covering every key of
    ``ground_truth`` (a missing key raises KeyError).

    Returns a dict with ``ap`` {subset: float} (nan when the subset has no face),
    ``pr`` {subset: {"precision": (T,), "recall": (T,)}} (precision nan at thresholds
    with no detection), ``thresholds`` (T,) (descending), ``num_faces`` {subset: int},
    ``num_images``, ``num_detections``, ``iou_thresh``, ``num_thresholds``.
    """
    missing = [k for k in ground_truth if k not in predictions]
    if missing:
        raise KeyError(f"no prediction for {len(missing)} image(s), e.g. {missing[0]!r}")
    preds = {k: predictions[k] for k in ground_truth}
    norm = normalize_scores(preds)
    t = np.arange(num_thresholds, dtype=np.float64)
    thresholds = 1 - (t + 1) / num_thresholds
    neg_thr = -thresholds

    pr_curve = {s: np.zeros((num_thresholds, 2), dtype=np.float64) for s in SUBSETS}
    count_face = {s: 0 for s in SUBSETS}
    num_det = 0
    for key, gt in ground_truth.items():
        boxes_xywh = np.asarray(preds[key][0], dtype=np.float64).reshape(-1, 4)
        scores = norm[key]
        num_det += len(scores)
        for s in SUBSETS:
            count_face[s] += len(gt.subsets[s])
        if len(gt.boxes_xywh_px) == 0 or len(scores) == 0:
            continue
        order = np.argsort(-scores, kind="stable")
        scores = scores[order]
        iou = bbox_overlaps_px(_xywh_to_xyxy(boxes_xywh[order]), _xywh_to_xyxy(gt.boxes_xywh_px))
        # number of detections with score >= each threshold
        n_above = np.searchsorted(-scores, neg_thr, side="right")
        for s in SUBSETS:
            pred_recall, proposal = _image_eval(iou, gt.counted_mask(s), iou_thresh)
            n_prop = np.concatenate(([0], np.cumsum(proposal == 1)))
            n_rec = np.concatenate(([0], pred_recall))
            pr_curve[s][:, 0] += n_prop[n_above]
            pr_curve[s][:, 1] += n_rec[n_above]

    result: Dict[str, Any] = {
        "ap": {},
        "pr": {},
        "thresholds": thresholds,
        "num_faces": dict(count_face),
        "num_images": len(ground_truth),
        "num_detections": int(num_det),
        "iou_thresh": float(iou_thresh),
        "num_thresholds": int(num_thresholds),
    }
    for s in SUBSETS:
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = pr_curve[s][:, 1] / pr_curve[s][:, 0]
            recall = pr_curve[s][:, 1] / count_face[s] if count_face[s] else np.full(
                num_thresholds, np.nan
            )
        result["pr"][s] = {"precision": precision, "recall": recall}
        result["ap"][s] = voc_ap(recall, precision) if count_face[s] else float("nan")
    return result
