"""Box formats, IoU and the box coder (centre-size coding with variances, numpy and graph).

Formats: ``xyxy`` = (x1, y1, x2, y2); ``cxcywh`` = (cx, cy, w, h); ``xywh`` = (x1, y1, w, h);
``_px`` = in input pixels (the anchors of :func:`ssd_mnv2.anchors.generate_anchors` are).

:class:`BoxCoder` is the one box coder: the training targets (:mod:`ssd_mnv2.matching`) encode
with it, the Gluon graph (:class:`~ssd_mnv2.model.ssd.SSDInference`) and the ONNX Runtime
post-processing (:func:`~ssd_mnv2.deploy.onnx.decode_nms_numpy`) decode with it. Encoding of a box
``g`` against anchor ``a`` (variances ``v``)::

    t = ((gcx - acx) / aw / v0, (gcy - acy) / ah / v1, log(gw / aw) / v2, log(gh / ah) / v3)

Decoding is its inverse, with the log-size offsets ``t2 * v2``, ``t3 * v3`` clipped at
``max_log_wh`` (= log(1000 / 16), as torchvision) so that ``exp`` cannot overflow. The decoding
formula is written once (:func:`_decode_parts`) and run by numpy and by ``mx.nd`` / ``mx.sym``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Tuple

import numpy as np

__all__ = ["xyxy_to_cxcywh", "cxcywh_to_xyxy", "xyxy_to_xywh", "xywh_to_xyxy", "iou_matrix",
           "BoxCoder", "DEFAULT_VARIANCES", "MAX_LOG_WH", "encode", "decode", "decode_symbolic"]

DEFAULT_VARIANCES: Tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
MAX_LOG_WH = 4.135  # log(1000 / 16): decoded sizes are at most ~62.5 x the anchor's


def xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float32)
    wh = b[..., 2:4] - b[..., 0:2]
    return np.concatenate([b[..., 0:2] + wh / 2, wh], axis=-1)


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float32)
    half = b[..., 2:4] / 2
    return np.concatenate([b[..., 0:2] - half, b[..., 0:2] + half], axis=-1)


def xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float32)
    return np.concatenate([b[..., 0:2], b[..., 2:4] - b[..., 0:2]], axis=-1)


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float32)
    return np.concatenate([b[..., 0:2], b[..., 0:2] + b[..., 2:4]], axis=-1)


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Pairwise IoU, ``(N, 4) x (M, 4) -> (N, M)``, vectorised."""
    a = np.asarray(a_xyxy, dtype=np.float32)[:, None, :]
    b = np.asarray(b_xyxy, dtype=np.float32)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def _decode_parts(t: Sequence[Any], a: Sequence[Any], v: Sequence[float], max_log_wh: float,
                  mul: Callable, add: Callable, exp: Callable, minimum: Callable) -> Tuple[Any, Any, Any, Any]:
    """The decoding formula, for any array backend. ``t`` = offsets (tx, ty, tw, th), ``a`` =
    anchors (cx, cy, w, h), each a component array (broadcastable against each other); ``mul`` /
    ``add`` broadcast. Returns ``(x1, y1, x2, y2)``."""
    cx = add(mul(t[0] * v[0], a[2]), a[0])
    cy = add(mul(t[1] * v[1], a[3]), a[1])
    hw = mul(exp(minimum(t[2] * v[2], max_log_wh)), a[2]) / 2
    hh = mul(exp(minimum(t[3] * v[3], max_log_wh)), a[3]) / 2
    return cx - hw, cy - hh, cx + hw, cy + hh


class BoxCoder:
    """Centre-size box coding with ``variances`` (see the module docstring for the formula).

    ``encode`` (numpy, float64 inside) makes the training targets; ``decode`` (numpy, float32)
    and ``decode_symbolic`` (``mx.nd`` / ``mx.sym``, exportable ops only) are the same formula.
    """

    def __init__(self, variances: Sequence[float] = DEFAULT_VARIANCES, max_log_wh: float = MAX_LOG_WH) -> None:
        if len(variances) != 4:
            raise ValueError(f"BoxCoder: needs 4 variances, got {list(variances)}")
        self.variances: Tuple[float, float, float, float] = tuple(float(x) for x in variances)  # type: ignore
        self.max_log_wh = float(max_log_wh)

    def __repr__(self) -> str:
        return f"BoxCoder(variances={self.variances}, max_log_wh={self.max_log_wh})"

    def encode(self, boxes_xyxy_px: np.ndarray, anchors_cxcywh_px: np.ndarray) -> np.ndarray:
        """Offsets ``(N, 4)`` float32 of boxes ``(N, 4)`` xyxy against their matched anchors
        ``(N, 4)`` cxcywh (same unit as the boxes)."""
        g = xyxy_to_cxcywh(boxes_xyxy_px).astype(np.float64)
        a = np.asarray(anchors_cxcywh_px, dtype=np.float64)
        v = self.variances
        t = np.stack([(g[:, 0] - a[:, 0]) / a[:, 2] / v[0], (g[:, 1] - a[:, 1]) / a[:, 3] / v[1],
                      np.log(g[:, 2] / a[:, 2]) / v[2], np.log(g[:, 3] / a[:, 3]) / v[3]], axis=1)
        return t.astype(np.float32)

    def decode(self, offsets: np.ndarray, anchors_cxcywh_px: np.ndarray) -> np.ndarray:
        """Boxes ``(..., N, 4)`` float32 xyxy (the anchors' unit) from offsets ``(..., N, 4)`` and
        anchors ``(N, 4)`` or ``(..., N, 4)`` cxcywh (numpy, float32, as the graph)."""
        t = np.asarray(offsets, dtype=np.float32)
        a = np.asarray(anchors_cxcywh_px, dtype=np.float32)
        parts = _decode_parts([t[..., i] for i in range(4)], [a[..., i] for i in range(4)], self.variances,
                              self.max_log_wh, np.multiply, np.add, np.exp, np.minimum)
        return np.stack(parts, axis=-1).astype(np.float32, copy=False)

    def decode_symbolic(self, F, offsets, anchors_cxcywh_px):
        """:meth:`decode` in the graph (``F`` is ``mx.nd`` or ``mx.sym``; exportable ops only).

        ``offsets``: (B, N, 4); ``anchors_cxcywh_px``: (1, N, 4). Returns (B, N, 4) xyxy.
        """
        t = F.split(offsets, axis=-1, num_outputs=4)
        a = F.split(anchors_cxcywh_px, axis=-1, num_outputs=4)
        parts = _decode_parts(t, a, self.variances, self.max_log_wh,
                              F.broadcast_mul, F.broadcast_add, F.exp, F.minimum)
        return F.concat(*parts, dim=-1)


# shortcuts (the API before BoxCoder): a coder made for the call
def encode(boxes_xyxy: np.ndarray, anchors_cxcywh: np.ndarray,
           variances: Sequence[float] = DEFAULT_VARIANCES) -> np.ndarray:
    """``BoxCoder(variances).encode(boxes_xyxy, anchors_cxcywh)``."""
    return BoxCoder(variances).encode(boxes_xyxy, anchors_cxcywh)


def decode(offsets: np.ndarray, anchors_cxcywh: np.ndarray,
           variances: Sequence[float] = DEFAULT_VARIANCES) -> np.ndarray:
    """``BoxCoder(variances).decode(offsets, anchors_cxcywh)``."""
    return BoxCoder(variances).decode(offsets, anchors_cxcywh)


def decode_symbolic(F, offsets, anchors_cxcywh, variances: Sequence[float] = DEFAULT_VARIANCES,
                    max_log_wh: float = MAX_LOG_WH):
    """``BoxCoder(variances, max_log_wh).decode_symbolic(F, offsets, anchors_cxcywh)``."""
    return BoxCoder(variances, max_log_wh).decode_symbolic(F, offsets, anchors_cxcywh)
