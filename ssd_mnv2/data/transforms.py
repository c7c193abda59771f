"""Aspect-preserving face augmentation (numpy / OpenCV only).

All functions take and return ``image_rgb`` uint8 (H, W, 3) and ``boxes`` float32 (N, 4+)
``x1 y1 x2 y2`` in pixels.  Columns beyond the fourth (e.g. a class label or an id) are carried
along unchanged, so a box can be tracked through the pipeline.

Geometry never stretches: zoom-out pads, crops are square, the square crop is resized to a square
output with one factor for both axes, flips mirror.  A face that lies fully inside the crop keeps
its aspect ratio exactly (up to float rounding).

Randomness: every function takes an ``np.random.Generator``.  :class:`TrainAugment` creates a fresh
``np.random.default_rng()`` (seeded from OS entropy) per call when none is passed, so data-loader
workers never share an identical RNG state; pass ``rng`` for reproducibility.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from ..config.schema import BACKGROUND_KINDS

__all__ = ["photometric_distort", "random_zoom_out", "random_square_crop", "random_face_crop",
           "random_flip", "hflip", "face_free_crop", "blank_canvas", "BACKGROUND_KINDS",
           "resize_with_random_interp", "clip_and_filter", "TrainAugment", "ValTransform",
           "INTERPOLATIONS"]

INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST,
                  cv2.INTER_LANCZOS4)


def _as_boxes(boxes) -> np.ndarray:
    b = np.asarray(boxes, np.float32)
    if b.size == 0:
        return b.reshape(0, max(4, b.shape[-1] if b.ndim == 2 else 4))
    if b.ndim != 2 or b.shape[1] < 4:
        raise ValueError(f"boxes must have shape (N, 4+), got {b.shape}")
    return b.copy()


# --------------------------------------------------------------------------------------------
# photometric
# --------------------------------------------------------------------------------------------
def photometric_distort(img: np.ndarray, rng: np.random.Generator, brightness: float = 32.0,
                        contrast: Tuple[float, float] = (0.5, 1.5),
                        saturation: Tuple[float, float] = (0.5, 1.5), hue: float = 18.0,
                        p: float = 0.5) -> np.ndarray:
    """SSD-style colour jitter on an RGB uint8 image.

    Each of brightness (additive, +-``brightness``), contrast (multiplicative), saturation
    (HSV S scale) and hue (HSV H shift, +-``hue`` degrees) is applied with probability ``p``;
    contrast goes either before or after the HSV jitter (random order, as in SSD).
    """
    out = img.astype(np.float32)
    if rng.random() < p:
        out += rng.uniform(-brightness, brightness)

    def _contrast(x):
        if rng.random() < p:
            x = x * rng.uniform(*contrast)
        return x

    def _hsv(x):
        do_s, do_h = rng.random() < p, rng.random() < p
        if not (do_s or do_h):
            return x
        hsv = cv2.cvtColor(np.clip(x, 0, 255) / 255.0, cv2.COLOR_RGB2HSV)  # H in [0, 360)
        if do_s:
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation), 0.0, 1.0)
        if do_h:
            hsv[..., 0] = np.mod(hsv[..., 0] + rng.uniform(-hue, hue), 360.0)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0

    if rng.random() < 0.5:
        out = _hsv(_contrast(out))
    else:
        out = _contrast(_hsv(out))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------
def random_zoom_out(img: np.ndarray, boxes, rng: np.random.Generator, max_ratio: float = 2.0,
                    fill: Optional[Sequence[float]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Place the image on a canvas ``r`` times larger (``r ~ U(1, max_ratio)``, same on both axes)
    at a random offset; the canvas is filled with ``fill`` (default: the image's mean pixel).
    ``max_ratio <= 1`` returns the inputs unchanged."""
    boxes = _as_boxes(boxes)
    if max_ratio <= 1.0:
        return img, boxes
    h, w = img.shape[:2]
    r = rng.uniform(1.0, max_ratio)
    ch, cw = int(round(h * r)), int(round(w * r))
    if ch <= h and cw <= w:
        return img, boxes
    ch, cw = max(ch, h), max(cw, w)
    if fill is None:
        fill = img.reshape(-1, img.shape[2]).mean(axis=0)
    canvas = np.empty((ch, cw, img.shape[2]), img.dtype)
    canvas[...] = np.asarray(fill, np.float64).round().astype(img.dtype)
    oy, ox = int(rng.integers(0, ch - h + 1)), int(rng.integers(0, cw - w + 1))
    canvas[oy:oy + h, ox:ox + w] = img
    if len(boxes):
        boxes[:, [0, 2]] += ox
        boxes[:, [1, 3]] += oy
    return canvas, boxes


def _crop_boxes(boxes: np.ndarray, x0: int, y0: int, side: int,
                min_visible: Optional[float] = None) -> np.ndarray:
    """Boxes of the square crop ``(x0, y0, side)``, clipped to it, in crop pixels.

    ``min_visible=None``: the faces whose centre is inside are kept, the others dropped.
    ``min_visible=v`` (boxes with an ignore-flag fifth column): every face the crop overlaps is
    kept, and one with less than ``v`` of its area inside the crop becomes an ignore region (a
    face part is neither a face to learn nor background to mine)."""
    if len(boxes) == 0:
        return boxes.copy()
    if min_visible is None:
        cx = (boxes[:, 0] + boxes[:, 2]) * 0.5
        cy = (boxes[:, 1] + boxes[:, 3]) * 0.5
        keep = (cx >= x0) & (cx < x0 + side) & (cy >= y0) & (cy < y0 + side)
    else:
        keep = np.ones(len(boxes), bool)
    out = boxes[keep].copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]] - x0, 0, side)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]] - y0, 0, side)
    ok = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    if min_visible is not None:
        area = (boxes[keep, 2] - boxes[keep, 0]) * (boxes[keep, 3] - boxes[keep, 1])
        seen = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
        out[seen < min_visible * area, 4] = 1.0
    return out[ok]


def random_square_crop(img: np.ndarray, boxes, rng: np.random.Generator,
                       scale_range: Tuple[float, float] = (0.3, 1.0), max_trials: int = 50,
                       min_visible: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Random square crop of side ``round(scale * min(H, W))``, ``scale ~ U(scale_range)``.

    Faces whose centre lies inside the crop are kept and clipped to it; the others are dropped
    (with ``min_visible``: see :func:`_crop_boxes`, cut faces become ignore regions).
    When the image has faces, crops with no face centre inside are rejected (up to
    ``max_trials`` tries); then the largest centred square of the image is used.
    """
    boxes = _as_boxes(boxes)
    h, w = img.shape[:2]
    short = min(h, w)
    lo, hi = scale_range
    for _ in range(max_trials):
        side = max(1, int(round(rng.uniform(lo, hi) * short)))
        side = min(side, short)
        x0 = int(rng.integers(0, w - side + 1))
        y0 = int(rng.integers(0, h - side + 1))
        cropped = _crop_boxes(boxes, x0, y0, side)  # the acceptance rule of both modes
        if len(boxes) == 0 or len(cropped) > 0:
            if min_visible is not None:
                cropped = _crop_boxes(boxes, x0, y0, side, min_visible)
            return np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side]), cropped
    x0, y0 = (w - short) // 2, (h - short) // 2
    return (np.ascontiguousarray(img[y0:y0 + short, x0:x0 + short]),
            _crop_boxes(boxes, x0, y0, short, min_visible))


def random_face_crop(img: np.ndarray, boxes, rng: np.random.Generator,
                     scale_range: Tuple[float, float] = (0.15, 1.0), real: Optional[np.ndarray] = None,
                     max_trials: int = 50, min_visible: Optional[float] = None
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Random square crop that holds at least one whole face (the face-detection crop policy).

    The side is ``c * min(H, W)`` with ``c`` log-uniform in ``scale_range`` (small crops, i.e.
    strong zoom-in, as often as large ones). A face is drawn among those that fit in a crop of
    that side (``real`` masks which boxes count as faces, e.g. not ignore regions), and the crop
    is placed uniformly among the positions that contain it whole. Other faces are kept when
    their centre is inside (clipped to the crop), as in :func:`random_square_crop` (and
    ``min_visible`` likewise). Without a face that fits, falls back to :func:`random_square_crop`.
    """
    boxes = _as_boxes(boxes)
    h, w = img.shape[:2]
    short = min(h, w)
    cand = np.ones(len(boxes), bool) if real is None else np.asarray(real, bool).copy()
    if not cand.any():
        return random_square_crop(img, boxes, rng, scale_range, max_trials, min_visible)
    lo, hi = np.log(scale_range[0]), np.log(scale_range[1])
    fw = boxes[:, 2] - boxes[:, 0]
    fh = boxes[:, 3] - boxes[:, 1]
    need = np.ceil(np.maximum(fw, fh))
    for _ in range(max_trials):
        side = int(round(np.exp(rng.uniform(lo, hi)) * short))
        side = max(1, min(side, short))
        fits = np.flatnonzero(cand & (need <= side))
        if fits.size == 0:
            continue
        k = int(fits[rng.integers(fits.size)])
        x1, y1, x2, y2 = boxes[k, :4]
        # x0 in [x2 - side, x1] (face inside) and [0, w - side] (crop inside the image)
        xa, xb = max(0, int(np.ceil(x2)) - side), min(int(np.floor(x1)), w - side)
        ya, yb = max(0, int(np.ceil(y2)) - side), min(int(np.floor(y1)), h - side)
        if xa > xb or ya > yb:
            continue
        x0, y0 = int(rng.integers(xa, xb + 1)), int(rng.integers(ya, yb + 1))
        return (np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side]),
                _crop_boxes(boxes, x0, y0, side, min_visible))
    return random_square_crop(img, boxes, rng, scale_range, max_trials, min_visible)


def hflip(img: np.ndarray, boxes) -> Tuple[np.ndarray, np.ndarray]:
    """Deterministic horizontal flip (image and boxes)."""
    boxes = _as_boxes(boxes)
    w = img.shape[1]
    out = np.ascontiguousarray(img[:, ::-1])
    if len(boxes):
        x1 = boxes[:, 0].copy()
        boxes[:, 0] = w - boxes[:, 2]
        boxes[:, 2] = w - x1
    return out, boxes


def random_flip(img: np.ndarray, boxes, rng: np.random.Generator, p: float = 0.5
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Horizontal flip with probability ``p``."""
    if rng.random() < p:
        return hflip(img, boxes)
    return img, _as_boxes(boxes)


def resize_with_random_interp(img: np.ndarray, boxes, size: int, rng: np.random.Generator
                              ) -> Tuple[np.ndarray, np.ndarray]:
    """Resize a square image to ``size x size`` with a random OpenCV interpolation; boxes are
    scaled by the same factor on both axes.  Raises ``ValueError`` for a non-square image."""
    boxes = _as_boxes(boxes)
    h, w = img.shape[:2]
    if h != w:
        raise ValueError(f"resize_with_random_interp needs a square image, got {w}x{h}")
    interp = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
    out = cv2.resize(img, (size, size), interpolation=interp)
    if len(boxes):
        boxes[:, :4] *= size / float(w)
        boxes[:, :4] = np.clip(boxes[:, :4], 0, size)
    return out, boxes


def clip_and_filter(boxes, width: int, height: int, min_size: float = 0.0) -> np.ndarray:
    """Clip boxes to the image and drop those with ``w <= 0``, ``h <= 0`` or
    ``max(w, h) < min_size``."""
    boxes = _as_boxes(boxes)
    if len(boxes) == 0:
        return boxes
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (bw > 0) & (bh > 0) & (np.maximum(bw, bh) >= min_size)
    return boxes[keep]


# --------------------------------------------------------------------------------------------
# face-free samples (kinds: BACKGROUND_KINDS, defined with the config that names them)


def face_free_crop(img: np.ndarray, boxes, rng: np.random.Generator,
                   scale_range: Tuple[float, float] = (0.3, 1.0), max_trials: int = 50
                   ) -> Optional[np.ndarray]:
    """A random square crop (side ``U(scale_range) * min(H, W)``) that overlaps no box at all
    (faces and ignore regions alike), or ``None`` when ``max_trials`` tries found none."""
    boxes = _as_boxes(boxes)
    h, w = img.shape[:2]
    short = min(h, w)
    for _ in range(max_trials):
        side = max(1, min(short, int(round(rng.uniform(*scale_range) * short))))
        x0 = int(rng.integers(0, w - side + 1))
        y0 = int(rng.integers(0, h - side + 1))
        if len(boxes):
            ix = np.minimum(boxes[:, 2], x0 + side) - np.maximum(boxes[:, 0], x0)
            iy = np.minimum(boxes[:, 3], y0 + side) - np.maximum(boxes[:, 1], y0)
            if ((ix > 0) & (iy > 0)).any():
                continue
        return np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side])
    return None


def blank_canvas(size: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A face-free ``(size, size, 3)`` uint8 canvas: ``"flat"`` (one random colour, often near
    black, white or grey, with faint noise) or ``"noise"`` (per-pixel noise of random mean and
    spread, sometimes blurred to a coarser grain, sometimes grey)."""
    if kind == "flat":
        base = rng.choice([0.0, 255.0, 128.0]) if rng.random() < 0.5 else rng.uniform(0, 255)
        colour = np.clip(base + rng.uniform(-24, 24, 3), 0, 255)
        out = colour + rng.normal(0.0, rng.uniform(0.0, 3.0), (size, size, 3))
    elif kind == "noise":
        mean, spread = rng.uniform(64, 192), rng.uniform(20, 128)
        shape = (size, size, 1) if rng.random() < 0.3 else (size, size, 3)
        out = mean + rng.uniform(-spread, spread, shape)
        if rng.random() < 0.5:
            k = int(rng.choice([3, 5, 9]))
            out = cv2.GaussianBlur(out.astype(np.float32), (k, k), 0).reshape(shape)
        out = np.broadcast_to(out, (size, size, 3))
    else:
        raise ValueError(f"blank canvas kind must be flat or noise, got {kind!r}")
    return np.clip(out, 0, 255).round().astype(np.uint8)


class TrainAugment:
    """Training augmentation: photometric jitter -> zoom-out -> random square crop -> flip ->
    resize to ``size x size`` (random interpolation) -> faces with ``max(w, h) < min_face_px``
    dropped (``small_faces="drop"``) or turned into ignore regions (``"ignore"``).
    ``cut_faces``: ``"keep"`` (a face whose centre is inside the crop is a face, clipped; the
    others are dropped, i.e. background) or ``"ignore"`` (a face with less than ``min_visible``
    of its area inside the crop is an ignore region, wherever its centre is).

    ``__call__(image_rgb, boxes_xyxy_px, rng=None, size=None) -> (uint8 (S, S, 3), float32 (M, 4+))``
    with ``S = size or self.size`` (a per-call canvas for multi-scale training: the crop does not
    depend on S, only its resize). Output boxes are inside the image with ``w, h > 0``.
    ``zoom_out`` is the maximum zoom-out ratio (1.0 disables it). ``crop_policy``: ``"uniform"`` (:func:`random_square_crop`) or
    ``"face"`` (:func:`random_face_crop`: log-uniform scale, at least one whole face).

    **Ignore flag.** When the boxes have a fifth column, it is the ignore flag (1 = an ignore
    region, not a face to learn): crops are placed around real faces only, and
    ``small_faces="ignore"`` (which needs that column) sets the flag instead of dropping.

    **Face-free samples.** With probability ``background_prob`` the sample is a face-free image
    instead (no boxes): a kind drawn from ``background_kinds``: ``"crop"`` (a crop of the image
    that overlaps no face nor ignore region, :func:`face_free_crop`; when there is none, the
    usual face sample), ``"flat"`` or ``"noise"`` (:func:`blank_canvas`). Every crop of the
    usual policy holds a face, so without them nothing teaches that a plain or noisy image has
    none. (They add loss only with ``loss.min_hard_negatives`` > 0: no positives, no quota.)
    """

    def __init__(self, size: int = 300, crop_scale: Tuple[float, float] = (0.3, 1.0),
                 zoom_out: float = 1.0, photometric: bool = True, flip: bool = True,
                 min_face_px: float = 0.0, max_trials: int = 50, crop_policy: str = "uniform",
                 small_faces: str = "drop", cut_faces: str = "keep", min_visible: float = 0.7,
                 background_prob: float = 0.0, background_kinds: Sequence[str] = BACKGROUND_KINDS):
        self.size = int(size)
        self.crop_scale = tuple(crop_scale)
        self.zoom_out = float(zoom_out)
        self.photometric = bool(photometric)
        self.flip = bool(flip)
        self.min_face_px = float(min_face_px)
        self.max_trials = int(max_trials)
        if crop_policy not in ("uniform", "face"):
            raise ValueError(f"crop_policy must be uniform or face, got {crop_policy!r}")
        if small_faces not in ("drop", "ignore"):
            raise ValueError(f"small_faces must be drop or ignore, got {small_faces!r}")
        if cut_faces not in ("keep", "ignore"):
            raise ValueError(f"cut_faces must be keep or ignore, got {cut_faces!r}")
        if not 0.0 < float(min_visible) <= 1.0:
            raise ValueError(f"min_visible must be in (0, 1], got {min_visible}")
        self.crop_policy = crop_policy
        self.small_faces = small_faces
        self.cut_faces = cut_faces
        self.min_visible = float(min_visible)
        if not 0.0 <= float(background_prob) <= 1.0:
            raise ValueError(f"background_prob must be in [0, 1], got {background_prob}")
        bad = [k for k in background_kinds if k not in BACKGROUND_KINDS]
        if bad or not background_kinds:
            raise ValueError(f"background_kinds must be a non-empty subset of {list(BACKGROUND_KINDS)}, "
                             f"got {list(background_kinds)}")
        self.background_prob = float(background_prob)
        self.background_kinds = tuple(background_kinds)

    def _background(self, img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                    size: int) -> Optional[np.ndarray]:
        """A face-free ``(size, size, 3)`` sample of a random kind, or None (no face-free crop)."""
        kind = self.background_kinds[int(rng.integers(len(self.background_kinds)))]
        if kind != "crop":
            return blank_canvas(size, kind, rng)
        crop = face_free_crop(img, boxes, rng, self.crop_scale, self.max_trials)
        if crop is None:
            return None
        no_boxes = np.zeros((0, 4), np.float32)
        if self.flip:
            crop, _ = random_flip(crop, no_boxes, rng)
        return resize_with_random_interp(crop, no_boxes, size, rng)[0]

    def __call__(self, image: np.ndarray, boxes, rng: Optional[np.random.Generator] = None,
                 size: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``size``: this sample's canvas (multi-scale training); default ``self.size``."""
        size = self.size if size is None else int(size)
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if rng is None:
            rng = np.random.default_rng()  # fresh OS entropy: distinct per worker and call
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        boxes = _as_boxes(boxes)
        has_flag = boxes.shape[1] >= 5
        for key in ("small_faces", "cut_faces"):
            if getattr(self, key) == "ignore" and not has_flag:
                raise ValueError(f"{key}='ignore' needs boxes with an ignore-flag fifth column")
        min_visible = self.min_visible if self.cut_faces == "ignore" else None
        img = image
        if self.photometric:
            img = photometric_distort(img, rng)
        if self.background_prob > 0 and rng.random() < self.background_prob:
            blank = self._background(img, boxes, rng, size)
            if blank is not None:
                return blank, np.zeros((0, boxes.shape[1]), np.float32)
        if self.zoom_out > 1.0:
            img, boxes = random_zoom_out(img, boxes, rng, self.zoom_out)
        if self.crop_policy == "face":
            real = boxes[:, 4] == 0 if has_flag else None
            img, boxes = random_face_crop(img, boxes, rng, self.crop_scale, real, self.max_trials,
                                          min_visible)
        else:
            img, boxes = random_square_crop(img, boxes, rng, self.crop_scale, self.max_trials,
                                            min_visible)
        if self.flip:
            img, boxes = random_flip(img, boxes, rng)
        img, boxes = resize_with_random_interp(img, boxes, size, rng)
        if self.small_faces == "ignore":
            boxes = clip_and_filter(boxes, size, size, 0.0)
            bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            boxes[np.maximum(bw, bh) < self.min_face_px, 4] = 1.0
        else:
            boxes = clip_and_filter(boxes, size, size, self.min_face_px)
        return img, boxes.astype(np.float32)

    def __repr__(self) -> str:
        return (f"TrainAugment(size={self.size}, crop_scale={self.crop_scale}, zoom_out={self.zoom_out}, "
                f"photometric={self.photometric}, flip={self.flip}, min_face_px={self.min_face_px}, "
                f"crop_policy={self.crop_policy!r}, small_faces={self.small_faces!r}, "
                f"cut_faces={self.cut_faces!r}, min_visible={self.min_visible}, "
                f"background_prob={self.background_prob}, background_kinds={list(self.background_kinds)})")


class ValTransform:
    """Plain resize to ``size x size`` (may stretch; for validation losses only).

    ``__call__(image_rgb, boxes_xyxy_px) -> (uint8 (size, size, 3), float32 (N, 4+))``.
    """

    def __init__(self, size: int = 300):
        self.size = int(size)

    def __call__(self, image: np.ndarray, boxes, rng=None) -> Tuple[np.ndarray, np.ndarray]:
        boxes = _as_boxes(boxes)
        h, w = image.shape[:2]
        out = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        if len(boxes):
            boxes[:, [0, 2]] *= self.size / float(w)
            boxes[:, [1, 3]] *= self.size / float(h)
        return out, clip_and_filter(boxes, self.size, self.size)
