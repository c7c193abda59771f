"""Prediction files: the per-image text format of WIDER FACE submissions.

One file per image: the image name, the number of boxes, then ``x y w h score`` lines in original
pixels, best first. WIDER layout: ``<pred_dir>/<event>/<name>.txt``; a face set's layout:
``<pred_dir>/<key>.txt`` (see :mod:`ssd_mnv2.evaluation.faceset`).
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..data.faceset import FaceSet

__all__ = ["Prediction", "write_prediction_txt", "write_wider_prediction", "read_prediction_file",
           "read_wider_predictions", "read_faceset_predictions"]

Prediction = Tuple[np.ndarray, np.ndarray]  # (boxes (N, 4) px, scores (N,)); xywh or xyxy as each function says


def write_prediction_txt(pred_dir: str, key: str, boxes_xyxy_px: np.ndarray, scores: np.ndarray,
                         image_name: Optional[str] = None) -> str:
    """Write ``<pred_dir>/<key>.txt`` (image name, count, ``x y w h score`` lines, best first).

    ``image_name`` (default: the key's last part) is the first line. Returns the path.
    """
    b = np.asarray(boxes_xyxy_px, np.float64).reshape(-1, 4)
    s = np.asarray(scores, np.float64).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"{key}: {len(b)} boxes but {len(s)} scores")
    order = np.argsort(-s, kind="stable")
    path = os.path.join(pred_dir, *key.split("/")) + ".txt"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = [image_name or key.split("/")[-1], str(len(s))]
    lines += [f"{x1:.2f} {y1:.2f} {x2 - x1:.2f} {y2 - y1:.2f} {sc:.9g}" for (x1, y1, x2, y2), sc in
              zip(b[order], s[order])]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def write_wider_prediction(
    out_dir: str, key: str, boxes_xyxy_px: np.ndarray, scores: np.ndarray
) -> str:
    """Write one image's detections as ``<out_dir>/<event>/<name>.txt`` (official layout).

    ``boxes_xyxy_px``: (N, 4) ``x1 y1 x2 y2`` in original pixels; ``scores``: (N,).
    Lines are written as ``x y w h score`` sorted by descending score. Returns the path.
    """
    event, name = key.split("/") if key.count("/") == 1 else (None, None)
    if not event or not name:
        raise ValueError(f"prediction key must be 'event/name', got {key!r}")
    return write_prediction_txt(out_dir, key, boxes_xyxy_px, scores, name)


def read_prediction_file(path: str, key: str) -> Prediction:
    """Parse one submission file; errors name the file and the 1-based line number."""
    with open(path, "r") as f:
        lines = [ln.strip() for ln in f.read().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected an image-name line and a count line")
    name = os.path.splitext(lines[0].replace("\\", "/").split("/")[-1])[0]
    if name != key.split("/")[-1]:
        raise ValueError(f"{path}:1: image name {lines[0]!r} does not match {key!r}")
    try:
        count = int(float(lines[1]))
    except ValueError:
        raise ValueError(f"{path}:2: bad count line {lines[1]!r}") from None
    rows = lines[2:]
    if count != len(rows):
        raise ValueError(f"{path}:2: count says {count} detections but the file has {len(rows)}")
    data = np.zeros((len(rows), 5), dtype=np.float64)
    for i, ln in enumerate(rows):
        fields = ln.split()
        if len(fields) != 5:
            raise ValueError(
                f"{path}:{i + 3}: expected 5 fields 'x y w h score', got {len(fields)}: {ln!r}"
            )
        try:
            data[i] = [float(v) for v in fields]
        except ValueError:
            raise ValueError(f"{path}:{i + 3}: non-numeric field in {ln!r}") from None
        if not np.all(np.isfinite(data[i])):
            raise ValueError(f"{path}:{i + 3}: non-finite value in {ln!r}")
        if data[i, 2] < 0 or data[i, 3] < 0:
            raise ValueError(f"{path}:{i + 3}: negative box width or height in {ln!r} "
                             "(expected 'x y w h score' with w, h >= 0)")
    return data[:, :4], data[:, 4]


def read_wider_predictions(pred_dir: str, keys: Iterable[str]) -> Dict[str, Prediction]:
    """Read ``<pred_dir>/<event>/<name>.txt`` for every key ``"event/name"``.

    Returns ``{key: (boxes_xywh_px (N,4) float64, scores (N,) float64)}``.
    Raises FileNotFoundError for a missing event folder or file, ValueError (with file
    and line) for a malformed file.
    """
    out: Dict[str, Prediction] = {}
    for key in keys:
        event, name = key.split("/")
        event_dir = os.path.join(pred_dir, event)
        if not os.path.isdir(event_dir):
            raise FileNotFoundError(f"prediction event folder missing: {event_dir}")
        path = os.path.join(event_dir, name + ".txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"prediction file missing: {path}")
        out[key] = read_prediction_file(path, key)
    return out


def read_faceset_predictions(pred_dir: str, faces: FaceSet) -> Dict[str, Prediction]:
    """Read every image's prediction file (see the module doc for where it is looked for).

    Returns ``{key: (boxes_xyxy_px, scores)}``. Missing files raise one FileNotFoundError naming
    the first and counting the others; a malformed file raises ValueError with file and line.
    """
    if not os.path.isdir(pred_dir):
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    sub = os.path.basename(os.path.normpath(faces.images_dir)) if faces.images_dir else None
    out: Dict[str, Prediction] = {}
    missing: List[str] = []
    for im in faces.images:
        path = os.path.join(pred_dir, *im.key.split("/")) + ".txt"
        if not os.path.isfile(path) and sub and "/" not in im.key:
            alt = os.path.join(pred_dir, sub, im.key + ".txt")
            path = alt if os.path.isfile(alt) else path
        if not os.path.isfile(path):
            missing.append(path)
            continue
        xywh, scores = read_prediction_file(path, im.key)
        xyxy = xywh.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        out[im.key] = (xyxy, scores)
    if missing:
        raise FileNotFoundError(f"prediction file missing: {missing[0]}"
                                + (f" (and {len(missing) - 1} more of {len(faces)} images)"
                                   if len(missing) > 1 else ""))
    return out
