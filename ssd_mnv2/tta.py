"""Test-time augmentation (TTA) for any detector: several input sizes, horizontal flip, and the
detections of all passes merged by NMS or box voting.

    from ssd_mnv2.tta import TTADetector
    tta = TTADetector(det, scales="original,0.5x,1.5x", flip=True, merge="vote")
    boxes_xyxy_px, scores = tta.predict(image_bgr)      # same API as the wrapped detector

Works with any detector offering ``predict(image_bgr, size=..., threshold=...)`` (boxes in
original-image pixels) and ``input_size(w, h, size)``: the MXNet :class:`~ssd_mnv2.predictor.Detector`,
the ONNX Runtime and int8 detectors of :mod:`ssd_mnv2.export`.

Scales (comma-separated): ``original`` (= ``1x``: the base input, i.e. ``size`` or the config's
``eval.size``), ``<f>x`` (the base input scaled by ``f``, e.g. ``0.5x``, ``1.5x``; at least 32 px
and at most the config's ``anchors.max_input_size``), or an absolute size (``WxH``, ``max-side N``).

Merging (the boxes of every pass pooled):

* ``nms``: greedy NMS, a box suppressed by a higher-scored one with IoU > ``iou`` (default: the
  config's ``decode.nms_iou``, as inside the model);
* ``vote``: box voting as in the WIDER FACE test code of S3FD / PyramidBox / DSFD: the best
  remaining box and every box with IoU >= ``iou`` (default 0.3) with it form a cluster, replaced by
  the score-weighted mean box with the cluster's highest score. Unlike that code, a cluster of
  a single box is kept (it drops them).

At most ``decode.max_detections`` boxes are kept, best first. ``threshold`` is passed to every pass
(exact for NMS; box voting then averages only boxes above it).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .sizes import parse_size

__all__ = ["TTADetector", "parse_scales", "flip_boxes_xyxy_px", "merge_detections", "MERGE_METHODS",
           "DEFAULT_VOTE_IOU"]

MERGE_METHODS = ("nms", "vote")
DEFAULT_VOTE_IOU = 0.3
_FACTOR = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*x\s*$", re.IGNORECASE)


def _factor(item: str) -> Optional[float]:
    """``1.0`` for 'original', ``f`` for '<f>x', None for an absolute size spec."""
    s = item.strip().lower()
    if s == "original":
        return 1.0
    m = _FACTOR.match(s)
    return float(m.group(1)) if m else None


def parse_scales(scales: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """``"original,0.5x,1.5x"`` (or a list) -> validated items; ValueError naming a bad one."""
    items = scales.split(",") if isinstance(scales, str) else list(scales)
    items = [str(s).strip() for s in items if str(s).strip()]
    if not items:
        raise ValueError("--tta-scales: empty list (e.g. original,0.5x,1.5x)")
    for it in items:
        f = _factor(it)
        if f is not None:
            if not 0.05 <= f <= 8:
                raise ValueError(f"--tta-scales: factor {it!r} outside 0.05x..8x")
            continue
        try:
            parse_size(it)
        except ValueError:
            raise ValueError(f"--tta-scales: {it!r} is not 'original', a factor like 0.5x, 'WxH' "
                             "or 'max-side N'") from None
    if len(set(i.lower() for i in items)) != len(items):
        raise ValueError(f"--tta-scales: {scales!r} repeats a size")
    return tuple(items)


def flip_boxes_xyxy_px(boxes_xyxy_px: np.ndarray, width: int) -> np.ndarray:
    """Boxes found in the horizontally flipped image -> boxes in the image (``x -> width - x``)."""
    b = np.asarray(boxes_xyxy_px, np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] = width - b[:, [2, 0]]
    return b


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + area - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def merge_detections(boxes_xyxy_px: np.ndarray, scores: np.ndarray, method: str = "nms",
                     iou: Optional[float] = None, max_detections: Optional[int] = None
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Merge pooled detections ``(N, 4), (N,)`` by ``method`` ('nms' or 'vote', see the module doc).

    ``iou`` defaults to 0.4 for NMS and :data:`DEFAULT_VOTE_IOU` for voting. Returns
    ``boxes_xyxy_px (K, 4) float32, scores (K,) float32``, best first, ``K <= max_detections``.
    """
    if method not in MERGE_METHODS:
        raise ValueError(f"TTA merge {method!r}: expected one of {', '.join(MERGE_METHODS)}")
    iou = (0.4 if method == "nms" else DEFAULT_VOTE_IOU) if iou is None else float(iou)
    if not 0 < iou <= 1:
        raise ValueError(f"TTA merge IoU must be in (0, 1], got {iou}")
    b = np.asarray(boxes_xyxy_px, np.float64).reshape(-1, 4)
    s = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-s, kind="stable")
    b, s = b[order], s[order]
    limit = len(s) if max_detections is None else int(max_detections)
    out_b: List[np.ndarray] = []
    out_s: List[float] = []
    while len(s) and len(out_s) < limit:
        ov = _iou_one(b[0], b)
        if method == "nms":
            out_b.append(b[0])
            out_s.append(s[0])
            rest = ov <= iou
            rest[0] = False
        else:
            cluster = ov >= iou
            cluster[0] = True
            w = s[cluster]
            out_b.append((b[cluster] * w[:, None]).sum(axis=0) / w.sum())
            out_s.append(s[0])
            rest = ~cluster
        b, s = b[rest], s[rest]
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.asarray(out_b, np.float32), np.asarray(out_s, np.float32)


class TTADetector:
    """Wrap a detector: ``predict`` runs it at each scale (and flipped) and merges the boxes.

    Everything else (``cfg``, ``input_size``, ...) is the wrapped detector's; ``describe()``
    adds a ``tta`` entry.
    """

    def __init__(self, detector: Any, scales: Union[str, Sequence[str]] = ("original",),
                 flip: bool = False, merge: str = "nms", iou: Optional[float] = None,
                 max_detections: Optional[int] = None) -> None:
        if merge not in MERGE_METHODS:
            raise ValueError(f"--tta-merge {merge!r}: expected one of {', '.join(MERGE_METHODS)}")
        if iou is not None and not 0 < float(iou) <= 1:
            raise ValueError(f"--tta-iou must be in (0, 1], got {iou}")
        self.detector = detector
        self.scales = parse_scales(scales)
        self.flip = bool(flip)
        self.merge = merge
        cfg_decode = getattr(getattr(detector, "cfg", None), "decode", None)
        if iou is None:
            iou = getattr(cfg_decode, "nms_iou", 0.4) if merge == "nms" else DEFAULT_VOTE_IOU
        self.iou = float(iou)
        if max_detections is None:
            max_detections = getattr(cfg_decode, "max_detections", None)
        self.max_detections = max_detections

    def __getattr__(self, name: str) -> Any:
        if name == "detector":  # not set yet (e.g. during unpickling): avoid recursion
            raise AttributeError(name)
        return getattr(self.detector, name)

    @property
    def num_passes(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    def pass_sizes(self, width: int, height: int, size: Optional[str] = None) -> List[str]:
        """The size spec of each scale for an image of ``width x height`` (base: ``size``)."""
        base = size if size is not None else self.detector.cfg.eval.size
        bw, bh = self.detector.input_size(width, height, base)
        specs = []
        for it in self.scales:
            f = _factor(it)
            if f is None:
                specs.append(it)
            elif f == 1.0:
                specs.append(base)
            else:
                specs.append(f"{max(32, int(round(bw * f)))}x{max(32, int(round(bh * f)))}")
        return specs

    def predict(self, image_bgr: np.ndarray, size: Optional[str] = None,
                threshold: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Faces in a BGR uint8 image: ``boxes_xyxy_px (K, 4)``, ``scores (K,)``, best first."""
        H, W = image_bgr.shape[:2]
        flipped = np.ascontiguousarray(image_bgr[:, ::-1]) if self.flip else None
        boxes, scores = [], []
        for spec in self.pass_sizes(W, H, size):
            b, s = self.detector.predict(image_bgr, size=spec, threshold=threshold)
            boxes.append(np.asarray(b, np.float32).reshape(-1, 4))
            scores.append(np.asarray(s, np.float32).reshape(-1))
            if flipped is not None:
                b, s = self.detector.predict(flipped, size=spec, threshold=threshold)
                boxes.append(flip_boxes_xyxy_px(b, W))
                scores.append(np.asarray(s, np.float32).reshape(-1))
        if len(boxes) == 1:
            return boxes[0], scores[0]
        return merge_detections(np.concatenate(boxes), np.concatenate(scores), self.merge, self.iou,
                                self.max_detections)

    def describe(self) -> Dict[str, Any]:
        describe = getattr(self.detector, "describe", None)
        d = dict(describe()) if callable(describe) else {}
        d["tta"] = {"scales": list(self.scales), "flip": self.flip, "merge": self.merge,
                    "iou": self.iou, "passes": self.num_passes}
        return d
