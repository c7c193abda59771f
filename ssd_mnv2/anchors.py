"""Anchor generation: the single source of anchor truth (the network uses it too).

Anchors are in **pixels of the network input**, in ``cx, cy, w, h`` format. On level ``l``
with stride ``s`` (8, 16, 32, 64, ...; with ``model.stride4`` a stride-4 level comes first), the
anchor centres are ``((x + offset) * s, (y + offset) * s)``. The global-pool level has one
location, centred on the actual input: ``(width / 2, height / 2)`` (the network adds the
input's centre in the graph). At each location the anchors are ordered ``for size in sizes[l]:
for ratio in ratios[l]``, with ``w = size * sqrt(ratio)``, ``h = size / sqrt(ratio)`` (ratio =
w/h). ``anchors.density`` (FaceBoxes' densification) tiles
a size ``n x n`` times per cell: ``for size: for tile row: for tile column: for ratio``, the
tiles' centres ``((j + 0.5) / n - 0.5) * stride`` from the cell's anchor centre. Locations are
ordered row-major (y, then x), which is the order of the flattened ``(B, H, W, A*k)`` head outputs.

The network holds, per level, an anchor grid large enough for ``anchors.max_input_size`` and
crops it to the feature map with ``slice_like`` (GluonCV's idea), so one trained model runs at
any input size up to that bound. :func:`generate_anchors` returns exactly what the net uses.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .config import Config, ModelCfg

__all__ = ["feature_sizes", "level_anchors_cxcywh", "generate_anchors", "anchor_grid",
           "anchor_counts", "is_global_level"]


def _half(n: int) -> int:
    """Output size of a 3x3 stride-2 pad-1 convolution."""
    return (n + 1) // 2


def feature_sizes(model: ModelCfg, height: int, width: int) -> List[Tuple[int, int]]:
    """Feature-map ``(h, w)`` per level for an input of ``height x width`` pixels."""
    h, w = _half(_half(height)), _half(_half(width))  # stride 2, 4
    out: List[Tuple[int, int]] = [(h, w)] if model.stride4 else []
    h, w = _half(h), _half(w)
    out.append((h, w))  # stride 8
    h, w = _half(h), _half(w)
    out.append((h, w))  # stride 16
    h, w = _half(h), _half(w)
    out.append((h, w))  # stride 32
    for _ in model.extra_channels:
        h, w = _half(h), _half(w)
        out.append((h, w))
    if model.global_pool:
        out.append((1, 1))
    return out


def _shapes(sizes: Sequence[float], ratios: Sequence[float],
            density: Optional[Sequence[int]] = None) -> np.ndarray:
    """(A, 4) anchors at one location: centre shift ``dx, dy`` (in strides, from the cell's
    anchor centre) and ``w, h``; ordered ``for size: for (row, col) of its n x n tiles: for ratio``."""
    out = []
    for s, n in zip(sizes, density or [1] * len(sizes)):
        shifts = [(j + 0.5) / n - 0.5 for j in range(n)]
        for dy in shifts:
            for dx in shifts:
                out += [(dx, dy, s * math.sqrt(r), s / math.sqrt(r)) for r in ratios]
    return np.asarray(out, dtype=np.float64)


def level_anchors_cxcywh(sizes: Sequence[float], ratios: Sequence[float], stride: float,
                         feat_h: int, feat_w: int, offset: float = 0.5,
                         density: Optional[Sequence[int]] = None) -> np.ndarray:
    """Anchors of one level, shape ``(feat_h * feat_w * A, 4)``, cx cy w h in pixels.

    ``density[i]`` (default 1) tiles ``sizes[i]`` n x n times per cell (FaceBoxes' densification)."""
    shape = _shapes(sizes, ratios, density)
    a = shape.shape[0]
    cy, cx = np.meshgrid((np.arange(feat_h) + offset) * stride,
                         (np.arange(feat_w) + offset) * stride, indexing="ij")
    out = np.empty((feat_h, feat_w, a, 4), dtype=np.float64)
    out[..., 0] = cx[..., None] + shape[:, 0] * stride
    out[..., 1] = cy[..., None] + shape[:, 1] * stride
    out[..., 2] = shape[:, 2]
    out[..., 3] = shape[:, 3]
    return out.reshape(-1, 4).astype(np.float32)


def is_global_level(cfg: Config, level: int) -> bool:
    """True for the global-pool level (one location, centred on the input)."""
    return bool(cfg.model.global_pool) and level == cfg.model.num_levels - 1


def anchor_grid(cfg: Config, level: int) -> np.ndarray:
    """The constant the network holds for ``level``: shape ``(1, 1, Gh, Gw, A*4)``.

    For the global-pool level the centres are 0: the network adds the input's centre."""
    stride = cfg.model.strides()[level]
    if is_global_level(cfg, level):
        anchors = level_anchors_cxcywh(cfg.anchors.sizes[level], cfg.anchors.ratios[level], 1.0,
                                       1, 1, 0.0)
        return anchors.reshape(1, 1, 1, 1, -1)
    g = int(math.ceil(cfg.anchors.max_input_size / stride))
    anchors = level_anchors_cxcywh(cfg.anchors.sizes[level], cfg.anchors.ratios[level], stride,
                                   g, g, cfg.anchors.offset, cfg.anchors.densities()[level])
    return anchors.reshape(1, 1, g, g, -1)


def generate_anchors(cfg: Config, height: int, width: int) -> np.ndarray:
    """All anchors ``(N, 4)`` cx cy w h px for an input of ``height x width``, as the net uses them."""
    if max(height, width) > cfg.anchors.max_input_size:
        raise ValueError(f"input {width}x{height} exceeds anchors.max_input_size="
                         f"{cfg.anchors.max_input_size}")
    levels = []
    strides = cfg.model.strides()
    for lv, (fh, fw) in enumerate(feature_sizes(cfg.model, height, width)):
        a = level_anchors_cxcywh(cfg.anchors.sizes[lv], cfg.anchors.ratios[lv],
                                 strides[lv], fh, fw, cfg.anchors.offset, cfg.anchors.densities()[lv])
        if is_global_level(cfg, lv):
            a[:, 0], a[:, 1] = width / 2.0, height / 2.0
        levels.append(a)
    return np.concatenate(levels, axis=0)


def anchor_counts(cfg: Config, height: int, width: int) -> List[int]:
    """Number of anchors per level: H * W * A."""
    per_loc = cfg.anchors.per_location()
    return [fh * fw * a for (fh, fw), a in zip(feature_sizes(cfg.model, height, width), per_loc)]
