"""COCO box AP of a single 'face' class, computed by ``pycocotools`` (COCOeval), not re-implemented.

Ground truth and detections are handed to COCOeval as one category. Ignored faces (VOC
``difficult``, COCO ``iscrowd``) are passed as COCO crowd regions (``iscrowd=1``), the usual
VOC-to-COCO conversion: COCOeval ignores detections matched to them, with its crowd overlap
(intersection over the detection's area). ``ap`` is AP averaged over IoU 0.50:0.05:0.95 and 101
recall points, all areas, at most ``max_dets`` detections per image (COCO's 100 by default).
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["coco_face_ap"]


def _coco_boxes_xywh(boxes_xyxy_px: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes_xyxy_px, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def coco_face_ap(detections: Sequence[Tuple[np.ndarray, np.ndarray]],
                 ground_truth: Sequence[Tuple[np.ndarray, np.ndarray]],
                 image_sizes: Sequence[Tuple[int, int]] = (), max_dets: int = 100) -> Dict[str, Any]:
    """COCO AP (0.5:0.95), AP50 and AP75 of single-class detections, by pycocotools.

    ``detections[i]``: ``(boxes_xyxy_px (N, 4), scores (N,))``; ``ground_truth[i]``:
    ``(boxes_xyxy_px (M, 4), ignore (M,) bool)``; ``image_sizes[i]``: ``(width, height)``
    (optional). Returns ``{"ap", "ap50", "ap75", "max_dets"}``; APs are nan without a counted
    face and 0 without detections.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:  # pragma: no cover - a core dependency
        raise RuntimeError("COCO AP needs pycocotools: pip install pycocotools") from None
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection entries but {len(ground_truth)} images")
    images: List[Dict[str, Any]] = []
    anns: List[Dict[str, Any]] = []
    dets: List[Dict[str, Any]] = []
    n_counted = 0
    for i, ((det_b, det_s), (gt_b, ignore)) in enumerate(zip(detections, ground_truth)):
        img_id = i + 1
        w, h = image_sizes[i] if len(image_sizes) else (0, 0)
        images.append({"id": img_id, "width": int(w), "height": int(h)})
        ignore = np.asarray(ignore, bool).reshape(-1)
        n_counted += int((~ignore).sum())
        for box, ig in zip(_coco_boxes_xywh(gt_b), ignore):
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1,
                         "bbox": [float(v) for v in box], "area": float(box[2] * box[3]),
                         "iscrowd": int(ig)})
        det_s = np.asarray(det_s, np.float64).reshape(-1)
        for box, s in zip(_coco_boxes_xywh(det_b), det_s):
            dets.append({"image_id": img_id, "category_id": 1, "bbox": [float(v) for v in box],
                         "score": float(s)})
    out: Dict[str, Any] = {"max_dets": int(max_dets)}
    if n_counted == 0:
        return {**out, "ap": float("nan"), "ap50": float("nan"), "ap75": float("nan")}
    if not dets:
        return {**out, "ap": 0.0, "ap50": 0.0, "ap75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": 1, "name": "face"}]}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.maxDets = [1, 10, int(max_dets)]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = ev.stats
    return {**out, "ap": float(stats[0]), "ap50": float(stats[1]), "ap75": float(stats[2])}
