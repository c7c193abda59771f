"""Training targets: match faces to anchors, mark ignored anchors, encode the offsets.

Matching (numpy, runs in DataLoader workers):

* every anchor whose best IoU with a (real) face is ``>= iou_thresh`` is positive for that face;
* every face also gets its single best anchor (so no face is left without an anchor), as in
  SSD / RetinaFace;
* **ignore regions** (faces too small to learn, faces flagged ``invalid`` / ``difficult``): an
  anchor that is not positive and whose centre lies inside an ignored face, or whose IoU with
  one is ``>= ignore_iou``, is *ignored*: label -1, neither positive nor negative, never mined
  as a hard negative by :mod:`ssd_mnv2.loss`;
* everything else is background (label 0).

Labels: ``-1`` ignore, ``0`` background, ``1 + class index`` face. Offsets are centre-size
coded with variances (:class:`ssd_mnv2.boxes.BoxCoder`), zero where not positive.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .boxes import DEFAULT_VARIANCES, BoxCoder, cxcywh_to_xyxy, iou_matrix

__all__ = ["TargetEncoder", "IGNORE"]

IGNORE = -1


class TargetEncoder:
    """Build ``(cls_targets (N,), box_targets (N, 4))`` for one image (numpy in, numpy out)."""

    def __init__(self, anchors_cxcywh_px: np.ndarray, iou_thresh: float = 0.5,
                 variances: Sequence[float] = DEFAULT_VARIANCES, ignore_iou: float = 0.3) -> None:
        self.anchors_cxcywh_px = np.asarray(anchors_cxcywh_px, dtype=np.float32)
        self.anchors_xyxy_px = cxcywh_to_xyxy(self.anchors_cxcywh_px)
        self.iou_thresh = float(iou_thresh)
        self.ignore_iou = float(ignore_iou)
        self.box_coder = BoxCoder(variances)
        self.variances = self.box_coder.variances

    def __call__(self, boxes_xyxy_px: np.ndarray, class_ids: Optional[np.ndarray] = None,
                 ignore: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``boxes_xyxy_px`` (M, 4); ``class_ids`` (M,) (default 0); ``ignore`` (M,) bool: these
        boxes are ignore regions, not faces to learn."""
        boxes = np.asarray(boxes_xyxy_px, dtype=np.float32).reshape(-1, 4)
        m = boxes.shape[0]
        n = self.anchors_cxcywh_px.shape[0]
        cls_t = np.zeros((n,), np.float32)
        box_t = np.zeros((n, 4), np.float32)
        if m == 0:
            return cls_t, box_t
        ids = np.zeros((m,), np.int64) if class_ids is None else np.asarray(class_ids, np.int64).reshape(-1)
        ign = np.zeros((m,), bool) if ignore is None else np.asarray(ignore, bool).reshape(-1)
        if ids.shape[0] != m or ign.shape[0] != m:
            raise ValueError(f"class_ids/ignore must have one entry per box ({m})")
        real = np.flatnonzero(~ign)
        pos = np.zeros((n,), bool)
        if real.size:
            iou = iou_matrix(self.anchors_xyxy_px, boxes[real])  # (N, R)
            best_face = iou.argmax(axis=1)
            pos = iou[np.arange(n), best_face] >= self.iou_thresh
            # each face gets its own best anchor (greedy bipartite: faces in order of their best
            # IoU; a face whose best anchor is taken gets its best free one)
            taken = np.zeros((n,), bool)
            for j in np.argsort(-iou.max(axis=0), kind="stable"):
                col = iou[:, j]
                a = int(col.argmax())
                if taken[a]:
                    col = np.where(taken, -1.0, col)
                    a = int(col.argmax())
                if col[a] <= 0:
                    continue
                taken[a] = True
                best_face[a] = j
                pos[a] = True
            matched = boxes[real][best_face[pos]]
            cls_t[pos] = 1 + ids[real][best_face[pos]]
            box_t[pos] = self.box_coder.encode(matched, self.anchors_cxcywh_px[pos])
        if ign.any():
            ib = boxes[ign]
            cx, cy = self.anchors_cxcywh_px[:, 0:1], self.anchors_cxcywh_px[:, 1:2]
            inside = ((cx >= ib[None, :, 0]) & (cx <= ib[None, :, 2]) &
                      (cy >= ib[None, :, 1]) & (cy <= ib[None, :, 3])).any(axis=1)
            near = iou_matrix(self.anchors_xyxy_px, ib).max(axis=1) >= self.ignore_iou
            cls_t[(inside | near) & ~pos] = IGNORE
        return cls_t, box_t
