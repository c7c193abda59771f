"""Multibox loss: softmax cross-entropy with hard-negative mining + smooth-L1, / num positives.

Same arithmetic as GluonCV's ``SSDMultiBoxLoss`` (which it replaces), plus an **ignore label**:
anchors with class target ``-1`` (:data:`ssd_mnv2.matching.IGNORE`) contribute nothing and are
never mined as hard negatives. It knows nothing of devices or configs.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from mxnet import nd

__all__ = ["MultiBoxLoss"]


class MultiBoxLoss:
    """``(cls_preds, box_preds, cls_targets, box_targets)`` per device -> (cls, box, total).

    Shapes per device: ``cls_preds (B, N, C+1)``, ``box_preds (B, N, 4)``, ``cls_targets (B, N)``
    (-1 = ignore, 0 = background, k >= 1 = class k - 1), ``box_targets (B, N, 4)``. Negatives are
    the ``max(min_hard_negatives, neg_ratio * num_pos)`` highest-loss background anchors of each
    image. Losses are ``(B,)`` per device, normalised by the number of positive anchors over the
    whole batch (all devices); a batch without any face gives a zero (finite) loss unless
    ``min_hard_negatives`` > 0. Box loss: smooth-L1 (``rho``) on positives, weighted by
    ``box_weight``.
    """

    def __init__(self, neg_ratio: float = 3.0, box_weight: float = 1.0, min_hard_negatives: int = 0,
                 rho: float = 1.0):
        self.neg_ratio = max(0.0, float(neg_ratio))
        self.box_weight = float(box_weight)
        self.min_hard_negatives = max(0, int(min_hard_negatives))
        self.rho = float(rho)

    def __call__(self, cls_preds: Sequence[nd.NDArray], box_preds: Sequence[nd.NDArray],
                 cls_targets: Sequence[nd.NDArray], box_targets: Sequence[nd.NDArray]
                 ) -> Tuple[List[nd.NDArray], List[nd.NDArray], List[nd.NDArray]]:
        num_pos_all = sum(float((ct > 0).sum().asscalar()) for ct in cls_targets)
        if num_pos_all < 1 and self.min_hard_negatives < 1:
            cls = [nd.sum(cp * 0, axis=0, exclude=True) for cp in cls_preds]
            box = [nd.sum(bp * 0, axis=0, exclude=True) for bp in box_preds]
            return cls, box, [c + b for c, b in zip(cls, box)]
        norm = max(1.0, num_pos_all)
        cls_out, box_out, total_out = [], [], []
        for cp, bp, ct, bt in zip(cls_preds, box_preds, cls_targets, box_targets):
            pos = ct > 0
            neg_cand = ct == 0
            ce = -nd.pick(nd.log_softmax(cp, axis=-1), nd.maximum(ct, 0), axis=-1, keepdims=False)
            # rank background anchors by loss (highest first); positives and ignored go last
            key = nd.where(neg_cand, -ce, nd.ones_like(ce) * 1e30)
            rank = key.argsort(axis=1).argsort(axis=1)
            quota = nd.maximum(self.min_hard_negatives, pos.sum(axis=1) * self.neg_ratio)
            hard_neg = (rank < quota.expand_dims(-1)) * neg_cand
            cls_l = nd.where((pos + hard_neg) > 0, ce, nd.zeros_like(ce))
            cls_out.append(nd.sum(cls_l, axis=0, exclude=True) / norm)
            diff = nd.abs(bp.reshape_like(bt) - bt)
            sl1 = nd.where(diff > self.rho, diff - 0.5 * self.rho, (0.5 / self.rho) * nd.square(diff))
            box_out.append(nd.sum(sl1 * pos.expand_dims(-1), axis=0, exclude=True) / norm)
            total_out.append(cls_out[-1] + self.box_weight * box_out[-1])
        return cls_out, box_out, total_out
