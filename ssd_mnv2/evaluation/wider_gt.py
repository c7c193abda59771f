"""The official WIDER FACE ground truth: ``wider_face_val.mat`` (boxes) and
``wider_{easy,medium,hard}_val.mat`` (the faces that count in each subset); keys are
``"<event>/<name>"`` without extension."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .image_list import key_from_path

__all__ = ["SUBSETS", "GT_FILES", "WiderGT", "load_wider_ground_truth"]

SUBSETS: Tuple[str, str, str] = ("easy", "medium", "hard")
GT_FILES: Dict[str, str] = {
    "all": "wider_face_val.mat",
    "easy": "wider_easy_val.mat",
    "medium": "wider_medium_val.mat",
    "hard": "wider_hard_val.mat",
}


@dataclass
class WiderGT:
    """Ground truth of one image.

    ``boxes_xywh_px``: (N, 4) float64 ``x y w h`` in original image pixels.
    ``subsets``: subset name ('easy', 'medium', 'hard') -> (K,) int64 0-based indices of
    the faces that count in that subset (the other faces are ignored there).
    """

    boxes_xywh_px: np.ndarray
    subsets: Dict[str, np.ndarray] = field(default_factory=dict)

    def counted_mask(self, subset: str) -> np.ndarray:
        """(N,) bool mask of the faces that count in ``subset``."""
        mask = np.zeros(len(self.boxes_xywh_px), dtype=bool)
        mask[self.subsets[subset]] = True
        return mask


def _mat_str(cell: Any) -> str:
    """Unwrap a MATLAB string cell as loaded by scipy (nested object arrays)."""
    a = np.asarray(cell)
    while a.dtype == object and a.size == 1:
        a = np.asarray(a.reshape(-1)[0])
    return str(a.reshape(-1)[0]) if a.ndim else str(a)


def _mat_cells(cell: Any) -> List[Any]:
    """Flatten a MATLAB cell array (object array of shape (n,1) or (1,n)) into a list."""
    return list(np.asarray(cell).reshape(-1))


def _load_mat(gt_dir: str, fname: str) -> Dict[str, Any]:
    from scipy.io import loadmat

    path = os.path.join(gt_dir, fname)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"WIDER ground-truth file not found: {path}")
    try:
        return loadmat(path)
    except MemoryError:
        raise
    except Exception as e:  # scipy raises MatReadError, ValueError, OSError... for a bad file
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: not a readable MATLAB .mat file (truncated or corrupt?): {why}") from None


def _mat_per_image(mat: Mapping[str, Any], field_name: str, path: str) -> Dict[str, np.ndarray]:
    """Map ``"event/name"`` -> the per-image array of ``field_name`` in a WIDER .mat."""
    for k in ("event_list", "file_list", field_name):
        if k not in mat:
            raise ValueError(f"{path}: missing variable {k!r}")
    out: Dict[str, np.ndarray] = {}
    events = _mat_cells(mat["event_list"])
    files = _mat_cells(mat["file_list"])
    values = _mat_cells(mat[field_name])
    if not len(events) == len(files) == len(values):
        raise ValueError(f"{path}: event_list, file_list and {field_name} differ in length")
    for ev_cell, file_cell, val_cell in zip(events, files, values):
        event = _mat_str(ev_cell)
        names = _mat_cells(file_cell)
        vals = _mat_cells(val_cell)
        if len(names) != len(vals):
            raise ValueError(f"{path}: event {event}: file_list and {field_name} differ in length")
        for n, v in zip(names, vals):
            v = np.asarray(v)
            while v.dtype == object and v.size == 1:
                v = np.asarray(v.reshape(-1)[0])
            out[f"{event}/{_mat_str(n)}"] = v
    return out


def load_wider_ground_truth(
    gt_dir: str, image_list: Optional[Sequence[str]] = None
) -> Dict[str, WiderGT]:
    """Read the official WIDER FACE ground-truth .mat files from ``gt_dir``.

    Returns ``{"event/name": WiderGT}``. ``image_list`` (``"event/name.jpg"`` strings)
    restricts the result; an entry absent from the .mat files raises ValueError.
    A missing .mat file raises FileNotFoundError.
    """
    mats = {k: _load_mat(gt_dir, f) for k, f in GT_FILES.items()}
    boxes = _mat_per_image(mats["all"], "face_bbx_list", os.path.join(gt_dir, GT_FILES["all"]))
    subset_idx = {
        s: _mat_per_image(mats[s], "gt_list", os.path.join(gt_dir, GT_FILES[s])) for s in SUBSETS
    }
    if image_list is None:
        keys = list(boxes)
    else:
        keys = []
        for entry in image_list:
            key = key_from_path(entry)
            if key not in boxes:
                raise ValueError(
                    f"image {entry!r} is not in {os.path.join(gt_dir, GT_FILES['all'])}"
                )
            keys.append(key)
    out: Dict[str, WiderGT] = {}
    for key in keys:
        b = np.asarray(boxes[key], dtype=np.float64)
        b = b.reshape(-1, 4) if b.size else np.zeros((0, 4), np.float64)
        subs: Dict[str, np.ndarray] = {}
        for s in SUBSETS:
            if key not in subset_idx[s]:
                raise ValueError(f"image {key!r} is not in {os.path.join(gt_dir, GT_FILES[s])}")
            idx = np.asarray(subset_idx[s][key]).astype(np.int64).reshape(-1) - 1  # 1-based
            if idx.size and (idx.min() < 0 or idx.max() >= len(b)):
                raise ValueError(
                    f"{GT_FILES[s]}: image {key!r} has face indices outside 1..{len(b)}"
                )
            subs[s] = idx
        out[key] = WiderGT(boxes_xywh_px=b, subsets=subs)
    return out
