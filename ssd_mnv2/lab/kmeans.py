"""k-means on box shapes with the distance ``1 - IoU`` of centred boxes (YOLOv2 style)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

__all__ = ["centered_iou", "kmeans_iou"]

def centered_iou(wh_a: np.ndarray, wh_b: np.ndarray) -> np.ndarray:
    """IoU of boxes sharing a centre: ``(N, 2) x (K, 2) -> (N, K)``."""
    a = np.asarray(wh_a, np.float64)[:, None, :]
    b = np.asarray(wh_b, np.float64)[None, :, :]
    inter = np.minimum(a[..., 0], b[..., 0]) * np.minimum(a[..., 1], b[..., 1])
    union = a[..., 0] * a[..., 1] + b[..., 0] * b[..., 1] - inter
    return inter / np.maximum(union, 1e-12)


def kmeans_iou(wh: np.ndarray, k: int, n_init: int = 4, max_iter: int = 100, seed: int = 0
               ) -> Tuple[np.ndarray, np.ndarray, float]:
    """k-means on box shapes with the distance ``1 - IoU`` (centred boxes, YOLOv2 style).

    k-means++ seeding (with ``1 - IoU``), median update, ``n_init`` restarts; returns
    ``(centroids (k, 2) sorted by area, assignment (N,), mean IoU of each box with its centroid)``.
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    n = len(wh)
    if n == 0:
        raise ValueError("kmeans_iou: no boxes")
    k = int(min(k, len(np.unique(wh, axis=0))))
    if k < 1:
        raise ValueError("kmeans_iou: k must be >= 1")
    rng = np.random.default_rng(seed)
    best: Optional[Tuple[np.ndarray, np.ndarray, float]] = None
    for _ in range(max(1, n_init)):
        cent = wh[rng.integers(n)][None]
        while len(cent) < k:
            d = 1.0 - centered_iou(wh, cent).max(axis=1)
            p = d ** 2
            if p.sum() <= 0:
                break
            cent = np.vstack([cent, wh[rng.choice(n, p=p / p.sum())]])
        assign = np.full(n, -1)
        for _it in range(max_iter):
            new = centered_iou(wh, cent).argmax(axis=1)
            if np.array_equal(new, assign):
                break
            assign = new
            for j in range(len(cent)):
                m = assign == j
                if m.any():
                    cent[j] = np.median(wh[m], axis=0)
        iou = centered_iou(wh, cent)
        assign = iou.argmax(axis=1)
        score = float(iou.max(axis=1).mean())
        if best is None or score > best[2]:
            best = (cent.copy(), assign.copy(), score)
    cent, assign, score = best
    order = np.argsort(cent[:, 0] * cent[:, 1])
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return cent[order], remap[assign], score
