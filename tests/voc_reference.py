"""An independent single-class VOC AP@0.5 (gluoncv's VOC metric), the reference that the tests hold
:func:`ssd_mnv2.evaluation.voc_metrics.score_voc` against. Test-only: the library has one AP
implementation (``voc_metrics``)."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def voc_ap50(
    detections: Sequence[Tuple[np.ndarray, np.ndarray]],
    ground_truths: Sequence[Tuple[np.ndarray, np.ndarray]],
    use_07_metric: bool = False,
) -> float:
    """Single-class ('face') PASCAL VOC AP at IoU 0.5 via gluoncv's VOC metric.

    ``detections[i]``: ``(boxes_xyxy_px (N,4), scores (N,))``; ``ground_truths[i]``:
    ``(boxes_xyxy_px (M,4), difficult (M,) bool)``. All-point AP by default, the 11-point
    VOC07 AP with ``use_07_metric``. Returns nan when there is no non-difficult face.
    """
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric, VOCMApMetric

    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection entries but {len(ground_truths)} GT")
    metric_cls = VOC07MApMetric if use_07_metric else VOCMApMetric
    metric = metric_cls(iou_thresh=0.5, class_names=["face"])
    n_pos = 0
    for (det_boxes, det_scores), (gt_boxes, difficult) in zip(detections, ground_truths):
        det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
        det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        difficult = np.asarray(difficult, dtype=bool).reshape(-1)
        if len(difficult) != len(gt_boxes):
            raise ValueError("difficult flags and GT boxes differ in length")
        n_pos += int((~difficult).sum())
        metric.update(
            det_boxes[None], np.zeros((1, len(det_scores))), det_scores[None],
            gt_boxes[None], np.zeros((1, len(gt_boxes))), difficult[None].astype(np.float64),
        )
    if n_pos == 0:
        return float("nan")
    _, values = metric.get()
    return float(values[0])
