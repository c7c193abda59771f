"""Drawing detections on BGR images and anonymising faces (blur / pixelate).

All functions take and return BGR uint8 ``(H, W, 3)`` images and boxes ``xyxy`` in pixels of
that image; they return a modified copy unless ``inplace=True``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["box_pixels", "draw_detections", "blur_faces", "draw_text", "draw_fps"]

GREEN = (0, 220, 0)


def box_pixels(boxes_xyxy_px: np.ndarray, image_hw: Tuple[int, int]) -> np.ndarray:
    """Integer pixel rectangles ``(K, 4)`` x1, y1, x2, y2 (x2/y2 exclusive), clipped to the image.

    A box covers the pixels whose centres lie inside it (rounding), so pixels outside every box
    are never touched by :func:`blur_faces`.
    """
    H, W = image_hw
    b = np.asarray(boxes_xyxy_px, dtype=np.float64).reshape(-1, 4)
    r = np.round(b).astype(np.int64)
    r[:, 0::2] = np.clip(r[:, 0::2], 0, W)
    r[:, 1::2] = np.clip(r[:, 1::2], 0, H)
    return r


def draw_text(img: np.ndarray, text: str, org: Tuple[int, int], color=GREEN, scale: float = 0.5,
              thickness: int = 1) -> None:
    """Text with a dark background box (in place), kept inside the image."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(min(max(org[0], 0), max(img.shape[1] - tw - 2, 0)))
    y = int(min(max(org[1], th + 2), img.shape[0] - 2))
    cv2.rectangle(img, (x, y - th - 2), (x + tw + 2, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 1, y - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness,
                cv2.LINE_AA)


def draw_detections(image_bgr: np.ndarray, boxes_xyxy_px: np.ndarray, scores: Optional[np.ndarray] = None,
                    color=GREEN, thickness: Optional[int] = None, show_scores: bool = True,
                    inplace: bool = False) -> np.ndarray:
    """Rectangles (and scores) for each detection."""
    img = image_bgr if inplace else image_bgr.copy()
    H, W = img.shape[:2]
    t = thickness or max(1, int(round(min(H, W) / 300)))
    boxes = np.asarray(boxes_xyxy_px, dtype=np.float64).reshape(-1, 4)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(img, p1, p2, color, t, cv2.LINE_AA)
        if show_scores and scores is not None and i < len(scores):
            draw_text(img, f"{float(scores[i]):.2f}", (p1[0], p1[1] - 2), color, 0.4 + 0.1 * t, 1)
    return img


def blur_faces(image_bgr: np.ndarray, boxes_xyxy_px: np.ndarray, method: str = "gaussian",
               strength: float = 0.5, inplace: bool = False) -> np.ndarray:
    """Anonymise each box: strong Gaussian blur or pixelation, strictly inside the box.

    ``strength``: blur kernel (or pixel block) as a fraction of the box's smaller side.
    """
    if method not in ("gaussian", "pixelate"):
        raise ValueError(f"blur method must be 'gaussian' or 'pixelate', got {method!r}")
    img = image_bgr if inplace else image_bgr.copy()
    for x1, y1, x2, y2 in box_pixels(boxes_xyxy_px, img.shape[:2]):
        w, h = x2 - x1, y2 - y1
        if w < 2 or h < 2:
            continue
        roi = img[y1:y2, x1:x2]
        if method == "gaussian":
            k = max(3, int(min(w, h) * strength) | 1)
            out = cv2.GaussianBlur(roi, (k, k), 0)
            out = cv2.GaussianBlur(out, (k, k), 0)  # twice: no recognisable detail left
        else:
            n = max(1, int(round(1.0 / max(strength, 1e-3) * 2)))  # ~4 blocks across at 0.5
            small = cv2.resize(roi, (min(n, w), min(n, h)), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        img[y1:y2, x1:x2] = out
    return img


def draw_fps(image_bgr: np.ndarray, fps: float, ms: Optional[float] = None, faces: Optional[int] = None,
             inplace: bool = True) -> np.ndarray:
    """FPS / latency / face-count overlay in the top-left corner."""
    img = image_bgr if inplace else image_bgr.copy()
    parts: Sequence[str] = [f"{fps:.1f} FPS"]
    if ms is not None:
        parts = list(parts) + [f"{ms:.1f} ms"]
    if faces is not None:
        parts = list(parts) + [f"{faces} faces"]
    draw_text(img, "  ".join(parts), (4, 18), (0, 255, 255), 0.55, 1)
    return img
