"""Multibox loss: softmax cross-entropy with hard-negative mining + smooth-L1, / num positives.

A thin wrapper over GluonCV's ``SSDMultiBoxLoss``; it knows nothing of devices or configs.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from gluoncv.loss import SSDMultiBoxLoss
from mxnet import nd

__all__ = ["MultiBoxLoss"]


class MultiBoxLoss:
    """``(cls_preds, box_preds, cls_targets, box_targets)`` per device -> (cls, box, total).

    Shapes per device: ``cls_preds (B, N, C+1)``, ``box_preds (B, N, 4)``, ``cls_targets (B, N)``
    (0 = background), ``box_targets (B, N, 4)``. Negatives are the ``neg_ratio * num_pos``
    highest-loss background anchors of each image. Normalised by the number of positive anchors
    over the whole batch (all devices); a batch without any face gives a zero (finite) loss
    unless ``min_hard_negatives`` > 0.
    """

    def __init__(self, neg_ratio: float = 3.0, box_weight: float = 1.0, min_hard_negatives: int = 0):
        self._loss = SSDMultiBoxLoss(negative_mining_ratio=neg_ratio, lambd=box_weight,
                                     min_hard_negatives=min_hard_negatives)

    def __call__(self, cls_preds: Sequence[nd.NDArray], box_preds: Sequence[nd.NDArray],
                 cls_targets: Sequence[nd.NDArray], box_targets: Sequence[nd.NDArray]
                 ) -> Tuple[List[nd.NDArray], List[nd.NDArray], List[nd.NDArray]]:
        total, cls, box = self._loss(list(cls_preds), list(box_preds), list(cls_targets),
                                     list(box_targets))
        return cls, box, total
