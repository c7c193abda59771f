"""Multibox loss: softmax cross-entropy with hard-negative mining + a box term, / num positives.

Same arithmetic as GluonCV's ``SSDMultiBoxLoss`` (which it replaces), plus an **ignore label**:
anchors with class target ``-1`` (:data:`ssd_mnv2.matching.IGNORE`) contribute nothing and are
never mined as hard negatives. It knows nothing of devices or configs.

Box term (``box_loss``): ``smooth_l1`` on the encoded offsets (SSD, RetinaFace), or ``diou``
(Distance-IoU, Zheng et al. 2020, SCRFD's box loss) on the decoded boxes: ``1 - IoU + d^2 / c^2``
with ``d`` the distance between the box centres and ``c`` the diagonal of the smallest box
enclosing both. DIoU needs the anchors (to decode offsets into boxes) and the box coder's
variances; it measures the overlap the evaluation counts (IoU >= 0.5), at every face size alike.

IoU-aware class target (``iou_target`` = w in [0, 1]): a positive anchor's class target is the
distribution ``(1 - q, q)`` with ``q = 1 - w + w * IoU(its decoded box, its face)`` (IoU held
constant), instead of ``(0, 1)``; so a face's boxes are ranked by how well they are placed, and
NMS keeps the best-placed one (YOLOv5's objectness target, GFL/VarifocalNet's quality score).
w = 0 is the plain cross-entropy. Negatives keep the target ``(1, 0)`` and are mined as before.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from mxnet import nd

from .boxes import DEFAULT_VARIANCES, BoxCoder

__all__ = ["MultiBoxLoss", "BOX_LOSSES", "box_iou", "diou_loss"]

BOX_LOSSES = ("smooth_l1", "diou")


def box_iou(pred_xyxy: nd.NDArray, target_xyxy: nd.NDArray, eps: float = 1e-7
            ) -> Tuple[nd.NDArray, List[nd.NDArray], List[nd.NDArray]]:
    """IoU ``(...)`` of matching boxes ``(..., 4)`` xyxy, and the two boxes' coordinates."""
    p = nd.split(pred_xyxy, axis=-1, num_outputs=4, squeeze_axis=True)
    g = nd.split(target_xyxy, axis=-1, num_outputs=4, squeeze_axis=True)
    inter = (nd.relu(nd.minimum(p[2], g[2]) - nd.maximum(p[0], g[0]))
             * nd.relu(nd.minimum(p[3], g[3]) - nd.maximum(p[1], g[1])))
    union = nd.relu(p[2] - p[0]) * nd.relu(p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
    return inter / (union + eps), p, g


def diou_loss(pred_xyxy: nd.NDArray, target_xyxy: nd.NDArray, eps: float = 1e-7) -> nd.NDArray:
    """Distance-IoU loss ``1 - IoU + d^2 / c^2`` of matching boxes ``(..., 4)`` xyxy -> ``(...)``.

    0 for identical boxes; in [0, 2) always (disjoint boxes still get a gradient from ``d``)."""
    iou, p, g = box_iou(pred_xyxy, target_xyxy, eps)
    cw = nd.maximum(p[2], g[2]) - nd.minimum(p[0], g[0])
    ch = nd.maximum(p[3], g[3]) - nd.minimum(p[1], g[1])
    d2 = nd.square((p[0] + p[2] - g[0] - g[2]) * 0.5) + nd.square((p[1] + p[3] - g[1] - g[3]) * 0.5)
    return 1.0 - iou + d2 / (nd.square(cw) + nd.square(ch) + eps)


class MultiBoxLoss:
    """``(cls_preds, box_preds, cls_targets, box_targets)`` per device -> (cls, box, total).

    Shapes per device: ``cls_preds (B, N, C+1)``, ``box_preds (B, N, 4)``, ``cls_targets (B, N)``
    (-1 = ignore, 0 = background, k >= 1 = class k - 1), ``box_targets (B, N, 4)``. Negatives are
    the ``max(min_hard_negatives, neg_ratio * num_pos)`` highest-loss background anchors of each
    image. Losses are ``(B,)`` per device, normalised by the number of positive anchors over the
    whole batch (all devices); a batch without any face gives a zero (finite) loss unless
    ``min_hard_negatives`` > 0. Box loss on positives, weighted by ``box_weight``: smooth-L1
    (``rho``) of the offsets, or ``diou`` of the boxes decoded against ``anchors`` (per device
    ``(1, N, 4)`` cxcywh px, the network's third output) with ``variances``.
    """

    def __init__(self, neg_ratio: float = 3.0, box_weight: float = 1.0, min_hard_negatives: int = 0,
                 rho: float = 1.0, box_loss: str = "smooth_l1",
                 variances: Sequence[float] = DEFAULT_VARIANCES, iou_target: float = 0.0):
        if box_loss not in BOX_LOSSES:
            raise ValueError(f"MultiBoxLoss: box_loss must be one of {BOX_LOSSES}, got {box_loss!r}")
        self.neg_ratio = max(0.0, float(neg_ratio))
        self.box_weight = float(box_weight)
        self.min_hard_negatives = max(0, int(min_hard_negatives))
        self.rho = float(rho)
        if not 0.0 <= iou_target <= 1.0:
            raise ValueError(f"MultiBoxLoss: iou_target must be in [0, 1], got {iou_target}")
        self.box_loss = box_loss
        self.iou_target = float(iou_target)
        self.coder = BoxCoder(variances)

    def __call__(self, cls_preds: Sequence[nd.NDArray], box_preds: Sequence[nd.NDArray],
                 cls_targets: Sequence[nd.NDArray], box_targets: Sequence[nd.NDArray],
                 anchors: Optional[Sequence[nd.NDArray]] = None
                 ) -> Tuple[List[nd.NDArray], List[nd.NDArray], List[nd.NDArray]]:
        if (self.box_loss == "diou" or self.iou_target > 0) and anchors is None:
            raise ValueError("MultiBoxLoss(box_loss='diou' or iou_target > 0) needs the anchors "
                             "(the network's third output)")
        num_pos_all = sum(float((ct > 0).sum().asscalar()) for ct in cls_targets)
        if num_pos_all < 1 and self.min_hard_negatives < 1:
            cls = [nd.sum(cp * 0, axis=0, exclude=True) for cp in cls_preds]
            box = [nd.sum(bp * 0, axis=0, exclude=True) for bp in box_preds]
            return cls, box, [c + b for c, b in zip(cls, box)]
        norm = max(1.0, num_pos_all)
        cls_out, box_out, total_out = [], [], []
        for d, (cp, bp, ct, bt) in enumerate(zip(cls_preds, box_preds, cls_targets, box_targets)):
            pos = ct > 0
            neg_cand = ct == 0
            logp = nd.log_softmax(cp, axis=-1)
            ce = -nd.pick(logp, nd.maximum(ct, 0), axis=-1, keepdims=False)
            if self.iou_target > 0:  # positives: soft target (1 - q) background + q face
                q = 1.0 - self.iou_target + self.iou_target * self._placement_iou(bp, bt, anchors, d)
                bg = -nd.pick(logp, nd.zeros_like(ct), axis=-1, keepdims=False)
                ce = nd.where(pos, q * ce + (1.0 - q) * bg, ce)
            # rank background anchors by loss (highest first); positives and ignored go last
            key = nd.where(neg_cand, -ce, nd.ones_like(ce) * 1e30)
            rank = key.argsort(axis=1).argsort(axis=1)
            quota = nd.maximum(self.min_hard_negatives, pos.sum(axis=1) * self.neg_ratio)
            hard_neg = (rank < quota.expand_dims(-1)) * neg_cand
            cls_l = nd.where((pos + hard_neg) > 0, ce, nd.zeros_like(ce))
            cls_out.append(nd.sum(cls_l, axis=0, exclude=True) / norm)
            box_l = self._box_term(bp.reshape_like(bt), bt, anchors, d)
            box_out.append(nd.sum(box_l * pos.expand_dims(-1), axis=0, exclude=True) / norm)
            total_out.append(cls_out[-1] + self.box_weight * box_out[-1])
        return cls_out, box_out, total_out

    def _decoded(self, bp: nd.NDArray, bt: nd.NDArray, anchors, device: int
                 ) -> Tuple[nd.NDArray, nd.NDArray]:
        """Predicted and target boxes ``(B, N, 4)`` xyxy px; the targets decode back to the
        matched faces (rows of non-positive anchors are meaningless and masked by the caller)."""
        a = anchors[device].as_in_context(bp.context)
        return (self.coder.decode_symbolic(nd, bp, a),
                nd.stop_gradient(self.coder.decode_symbolic(nd, bt, a)))

    def _box_term(self, bp: nd.NDArray, bt: nd.NDArray, anchors, device: int) -> nd.NDArray:
        """Box loss of offsets ``bp`` against targets ``bt`` ``(B, N, 4)``: ``(B, N, 4)`` per
        coordinate (smooth-L1) or ``(B, N, 1)`` per anchor (DIoU)."""
        if self.box_loss == "smooth_l1":
            diff = nd.abs(bp - bt)
            return nd.where(diff > self.rho, diff - 0.5 * self.rho, (0.5 / self.rho) * nd.square(diff))
        return diou_loss(*self._decoded(bp, bt, anchors, device)).expand_dims(-1)

    def _placement_iou(self, bp: nd.NDArray, bt: nd.NDArray, anchors, device: int) -> nd.NDArray:
        """``(B, N)`` IoU of each anchor's decoded box with its target box, without gradient."""
        pred, tgt = self._decoded(nd.stop_gradient(bp.reshape_like(bt)), bt, anchors, device)
        return nd.stop_gradient(nd.clip(box_iou(pred, tgt)[0], 0.0, 1.0))
