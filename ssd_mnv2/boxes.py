"""Box formats, IoU and center-size box coding with variances (numpy and symbolic versions).

Formats: ``xyxy`` = (x1, y1, x2, y2); ``cxcywh`` = (cx, cy, w, h); ``xywh`` = (x1, y1, w, h).
Encoding of a box ``g`` against anchor ``a`` (variances ``v``)::

    t = ((gcx - acx) / aw / v0, (gcy - acy) / ah / v1, log(gw / aw) / v2, log(gh / ah) / v3)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["xyxy_to_cxcywh", "cxcywh_to_xyxy", "xyxy_to_xywh", "xywh_to_xyxy", "iou_matrix",
           "encode", "decode", "decode_symbolic"]


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


def encode(boxes_xyxy: np.ndarray, anchors_cxcywh: np.ndarray,
           variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2)) -> np.ndarray:
    """Encode matched boxes ``(N, 4)`` against anchors ``(N, 4)`` -> offsets ``(N, 4)``."""
    g = xyxy_to_cxcywh(boxes_xyxy).astype(np.float64)
    a = np.asarray(anchors_cxcywh, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    t = np.stack([(g[:, 0] - a[:, 0]) / a[:, 2] / v[0], (g[:, 1] - a[:, 1]) / a[:, 3] / v[1],
                  np.log(g[:, 2] / a[:, 2]) / v[2], np.log(g[:, 3] / a[:, 3]) / v[3]], axis=1)
    return t.astype(np.float32)


def decode(offsets: np.ndarray, anchors_cxcywh: np.ndarray,
           variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2)) -> np.ndarray:
    """Inverse of :func:`encode`: offsets ``(..., N, 4)`` -> boxes ``(..., N, 4)`` xyxy."""
    t = np.asarray(offsets, dtype=np.float64)
    a = np.asarray(anchors_cxcywh, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    cx = t[..., 0] * v[0] * a[..., 2] + a[..., 0]
    cy = t[..., 1] * v[1] * a[..., 3] + a[..., 1]
    w = np.exp(t[..., 2] * v[2]) * a[..., 2]
    h = np.exp(t[..., 3] * v[3]) * a[..., 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).astype(np.float32)


def decode_symbolic(F, offsets, anchors_cxcywh, variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2),
                    max_log_wh: float = 4.135):
    """Graph version of :func:`decode` (``F`` is ``mx.nd`` or ``mx.sym``); exportable ops only.

    ``offsets``: (B, N, 4); ``anchors_cxcywh``: (1, N, 4). Returns (B, N, 4) xyxy. The log-size
    offsets are clipped at ``max_log_wh`` (= log(1000/16), as torchvision) to avoid overflow.
    """
    t = F.split(offsets, axis=-1, num_outputs=4)
    a = F.split(anchors_cxcywh, axis=-1, num_outputs=4)
    cx = F.broadcast_add(F.broadcast_mul(t[0] * variances[0], a[2]), a[0])
    cy = F.broadcast_add(F.broadcast_mul(t[1] * variances[1], a[3]), a[1])
    hw = F.broadcast_mul(F.exp(F.minimum(t[2] * variances[2], max_log_wh)), a[2]) / 2
    hh = F.broadcast_mul(F.exp(F.minimum(t[3] * variances[3], max_log_wh)), a[3]) / 2
    return F.concat(cx - hw, cy - hh, cx + hw, cy + hh, dim=-1)
