"""Training targets: match faces to anchors and encode them (GluonCV's SSDTargetGenerator).

Matching gives every face its best anchor (bipartite) plus every anchor whose IoU with a face is
above ``iou_thresh``. Hard-negative mining happens in the loss (:mod:`ssd_mnv2.loss`).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import mxnet as mx
import numpy as np
from gluoncv.model_zoo.ssd.target import SSDTargetGenerator

__all__ = ["TargetEncoder"]


class TargetEncoder:
    """Build ``(cls_targets (N,), box_targets (N, 4))`` for one image.

    ``cls_targets``: 0 = background, 1 + class index = matched face. ``box_targets``: encoded
    offsets (zero where unmatched). Runs in DataLoader workers (numpy in, numpy out).
    """

    def __init__(self, anchors_cxcywh_px: np.ndarray, iou_thresh: float = 0.5,
                 variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2)) -> None:
        self.anchors_cxcywh_px = np.asarray(anchors_cxcywh_px, dtype=np.float32)
        self.iou_thresh = float(iou_thresh)
        self.variances = tuple(float(v) for v in variances)
        self._gen = None

    def _generator(self) -> SSDTargetGenerator:
        if self._gen is None:  # built lazily so each worker process gets its own
            self._gen = SSDTargetGenerator(iou_thresh=self.iou_thresh, negative_mining_ratio=-1,
                                           stds=self.variances)
        return self._gen

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_gen"] = None
        return state

    def __call__(self, boxes_xyxy_px: np.ndarray, class_ids: np.ndarray | None = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes_xyxy_px, dtype=np.float32).reshape(-1, 4)
        n = self.anchors_cxcywh_px.shape[0]
        if boxes.shape[0] == 0:
            return np.zeros((n,), np.float32), np.zeros((n, 4), np.float32)
        ids = (np.zeros((boxes.shape[0], 1), np.float32) if class_ids is None
               else np.asarray(class_ids, np.float32).reshape(-1, 1))
        anchors = mx.nd.array(self.anchors_cxcywh_px[None])
        cls_t, box_t, _ = self._generator()(anchors, None, mx.nd.array(boxes[None]),
                                            mx.nd.array(ids[None]))
        return cls_t[0].asnumpy(), box_t[0].asnumpy()
