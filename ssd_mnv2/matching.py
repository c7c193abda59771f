"""Training targets: match faces to anchors, mark ignored anchors, encode the offsets.

Matching (numpy, runs in DataLoader workers):

* ``assigner="iou"``: every anchor whose best IoU with a (real) face is ``>= iou_thresh`` is
  positive for that face;
* ``assigner="atss"`` (ATSS, Zhang et al. 2020; SCRFD's assigner): per face, the ``topk``
  anchors of each level whose centres are nearest the face's centre are candidates; those whose
  IoU is at least the mean + standard deviation of the candidates' IoUs, and whose centre lies
  inside the face, are positive (an anchor claimed by several faces goes to the one it overlaps
  most). The threshold adapts to the face: a small face, whose candidates all overlap it little,
  still gets its best few anchors, a large one only the well-fitting ones;
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
                 variances: Sequence[float] = DEFAULT_VARIANCES, ignore_iou: float = 0.3,
                 assigner: str = "iou", topk: int = 9,
                 level_counts: Optional[Sequence[int]] = None) -> None:
        """``level_counts``: anchors per level, in the order of ``anchors_cxcywh_px`` (the
        ``"atss"`` assigner picks its candidates per level; :func:`ssd_mnv2.anchors.anchor_counts`)."""
        self.anchors_cxcywh_px = np.asarray(anchors_cxcywh_px, dtype=np.float32)
        self.anchors_xyxy_px = cxcywh_to_xyxy(self.anchors_cxcywh_px)
        if assigner not in ("iou", "atss"):
            raise ValueError(f"assigner must be iou or atss, got {assigner!r}")
        if assigner == "atss":
            if level_counts is None or sum(level_counts) != len(self.anchors_cxcywh_px):
                raise ValueError(f"the atss assigner needs level_counts summing to the {len(self.anchors_cxcywh_px)} "
                                 f"anchors, got {level_counts}")
            if topk < 1:
                raise ValueError(f"topk must be >= 1, got {topk}")
        self.assigner, self.topk = assigner, int(topk)
        self.level_counts = None if level_counts is None else [int(c) for c in level_counts]
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
            if self.assigner == "atss":
                pos, best_face = self._atss(iou, boxes[real])
            else:
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

    def _atss(self, iou: np.ndarray, faces_xyxy: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """ATSS positives for ``iou`` (N anchors, R faces): ``(pos (N,) bool, best_face (N,))``."""
        n, r = iou.shape
        a = self.anchors_cxcywh_px
        centres = (faces_xyxy[:, :2] + faces_xyxy[:, 2:4]) / 2.0  # (R, 2)
        dist = np.hypot(a[:, 0:1] - centres[None, :, 0], a[:, 1:2] - centres[None, :, 1])  # (N, R)
        cand = np.zeros((n, r), bool)
        start = 0
        for count in self.level_counts:
            k = min(self.topk, count)
            if k:
                nearest = np.argpartition(dist[start:start + count], k - 1, axis=0)[:k]  # (k, R)
                cand[start + nearest, np.arange(r)[None, :]] = True
            start += count
        cand_iou = np.where(cand, iou, np.nan)
        thresh = np.nanmean(cand_iou, axis=0) + np.nanstd(cand_iou, axis=0, ddof=1)  # (R,)
        inside = ((a[:, 0:1] > faces_xyxy[None, :, 0]) & (a[:, 0:1] < faces_xyxy[None, :, 2]) &
                  (a[:, 1:2] > faces_xyxy[None, :, 1]) & (a[:, 1:2] < faces_xyxy[None, :, 3]))
        ok = cand & inside & (iou >= thresh[None, :]) & (iou > 0)
        claimed = np.where(ok, iou, -1.0)
        best_face = claimed.argmax(axis=1)
        return claimed[np.arange(n), best_face] > 0, best_face
