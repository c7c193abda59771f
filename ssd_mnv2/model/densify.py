"""Carry trained head weights into a densified anchor layout (``anchors.density`` changed).

A level's class and box heads predict, per location, ``k`` logits and 4 offsets for each of its
anchors (output channel ``a * k + c``). Densifying a size adds tiles of that same anchor at
shifted centres. :func:`densify_head_arrays` gives every new anchor the output rows of the old
anchor of the same size and ratio, and shifts the box bias by the centre offset, so the
densified network starts out predicting exactly the old boxes (each duplicated on its tiles,
which NMS merges) and a short fine-tuning only has to learn what the new tiles add.

Offsets are centre-size coded (:class:`ssd_mnv2.boxes.BoxCoder`): ``tx = (gx - ax) / (v0 * aw)``.
For a tile centred ``d`` pixels from the old anchor, the same box needs ``tx - d / (v0 * aw)``.
"""
from __future__ import annotations

import re
from typing import Dict, List, Tuple

import numpy as np

from ..config import Config

__all__ = ["anchor_layout", "densify_head_arrays"]


def anchor_layout(cfg: Config, level: int) -> List[Tuple[int, int, float, float]]:
    """Per anchor of one location of ``level``: ``(size index, ratio index, dx, dy)``, the shift
    in strides from the cell's anchor centre; the order of :func:`ssd_mnv2.anchors._shapes`."""
    a = cfg.anchors
    out = []
    for si, n in enumerate(a.densities()[level]):
        shifts = [(j + 0.5) / n - 0.5 for j in range(n)]
        for dy in shifts:
            for dx in shifts:
                out += [(si, ri, dx, dy) for ri in range(len(a.ratios[level]))]
    return out


def _check_same_but_density(old: Config, new: Config) -> List[int]:
    """The levels whose density differs; any other model/anchor difference is an error."""
    if old.model != new.model:
        raise ValueError("densify: the model sections differ (only anchors.density may change)")
    o, n = old.anchors, new.anchors
    if (o.sizes, o.ratios, o.offset, o.variances) != (n.sizes, n.ratios, n.offset, n.variances):
        raise ValueError("densify: anchor sizes, ratios, offset or variances differ "
                         "(only anchors.density may change)")
    return [lv for lv, (a, b) in enumerate(zip(o.densities(), n.densities())) if a != b]


def densify_head_arrays(old: Config, new: Config, arrays: Dict[str, np.ndarray]
                        ) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """``arrays`` (parameter name -> numpy array, a ``.params`` file of a model built from ``old``)
    mapped to ``new``'s densified heads. Returns ``(arrays, names of the mapped parameters)``."""
    out = dict(arrays)
    mapped: List[str] = []
    k = new.model.num_classes + 1
    strides = new.model.strides()
    v0, v1 = new.anchors.variances[:2]
    for lv in _check_same_but_density(old, new):
        old_lay, new_lay = anchor_layout(old, lv), anchor_layout(new, lv)
        src, shift_px = [], []
        for si, ri, dx, dy in new_lay:  # the old anchor of this size and ratio nearest the tile
            cands = [(abs(odx - dx) + abs(ody - dy), i, odx, ody)
                     for i, (osi, ori, odx, ody) in enumerate(old_lay) if (osi, ori) == (si, ri)]
            _, i, odx, ody = min(cands)
            src.append(i)
            shift_px.append(((dx - odx) * strides[lv], (dy - ody) * strides[lv]))
        r = new.anchors.ratios[lv]
        wh = [(new.anchors.sizes[lv][si] * np.sqrt(r[ri]), new.anchors.sizes[lv][si] / np.sqrt(r[ri]))
              for si, ri, _, _ in new_lay]
        for head, width in (("cls_heads", k), ("box_heads", 4)):
            pat = re.compile(rf"^{head}\.{lv}\.")
            for name, arr in arrays.items():
                if not pat.match(name) or arr.shape[0] != len(old_lay) * width:
                    continue  # a depthwise / BN part of an ssdlite head: per input channel
                rows = np.concatenate([np.arange(i * width, (i + 1) * width) for i in src])
                new_arr = arr[rows].copy()
                if head == "box_heads" and new_arr.ndim == 1:  # the bias: shift the centre offsets
                    for a, ((sx, sy), (w, h)) in enumerate(zip(shift_px, wh)):
                        new_arr[a * 4] -= sx / (v0 * w)
                        new_arr[a * 4 + 1] -= sy / (v1 * h)
                out[name] = new_arr
                mapped.append(name)
    return out, sorted(mapped)
