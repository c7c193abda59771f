"""WIDER FACE data set (official ``wider_face_*_bbx_gt.txt`` label format).

Label file format (one record per image)::

    <event>/<name>.jpg                       <- path line
    <N>                                      <- face count
    x1 y1 w h blur expression illumination invalid occlusion pose   (N lines)

An image with ``N == 0`` is followed by ONE line of ten zeros (quirk of the official files);
the parser consumes it and yields a record with no faces.  ``N == 1`` followed by a line of ten
zeros (seen in the real files for images without faces) is read the same way.

Sample format returned by :class:`WiderFaceDataset` (shared by every data set of this package)::

    (image_rgb: np.ndarray uint8 (H, W, 3) RGB,  boxes_xyxy_px: np.ndarray float32 (N, 4))

with ``N`` possibly 0 (shape ``(0, 4)``); boxes are ``(x1, y1, x1 + w, y1 + h)`` in pixels.
Images are read by :func:`ssd_mnv2.imageio.read_image_rgb`: EXIF orientation applied, as by
evaluation and inference (the WIDER FACE files carry no EXIF orientation, so their pixels are the
stored ones).

Validation (at construction time, every record):

* structural errors of the label file always raise :class:`LabelError`
  (``"<file>:<line>: <what>"``);
* per face: non-finite numbers, ``w <= 0`` or ``h <= 0``, a box further than
  ``border_tol_px`` (default 2 px) outside the image.  Boxes that exceed the border by at most
  ``border_tol_px`` (rounding in the labels; the real train split has a few 1 px cases) are
  clipped to the image and counted in ``num_clipped``;
* per image: missing or unreadable image file.

With ``skip_bad=False`` (default) any problem raises a :class:`LabelError` listing the problems.
With ``skip_bad=True`` each problem gives a ``warnings.warn`` and is recorded in ``.skipped``;
a bad face is dropped from its image, a missing/unreadable image drops the whole record, and a
summary warning with the counts is issued.  Nothing is dropped silently: faces flagged
``invalid`` (when ``drop_invalid``) and faces smaller than ``min_face_px`` are counted in
``num_invalid_dropped`` / ``num_small_dropped``.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from ..imageio import image_size, read_image_rgb  # noqa: F401  (re-exported: the one reader)

__all__ = ["LabelError", "WiderRecord", "parse_wider_labels", "WiderFaceDataset",
           "read_image_rgb", "image_size"]

ATTRIBUTE_NAMES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


class LabelError(ValueError):
    """A problem in a label file; the message starts with ``"<file>:<line>: "``."""


@dataclass
class WiderRecord:
    """One image of a WIDER FACE label file.

    ``rel_path``: ``"event/name.jpg"``; ``boxes_xywh_px``: float32 (N, 4);
    ``attributes``: int64 (N, 6) ``[blur expression illumination invalid occlusion pose]``;
    ``line``: 1-based line number of the path line (face ``k`` is on line ``line + 2 + k``).
    """

    rel_path: str
    boxes_xywh_px: np.ndarray
    attributes: np.ndarray
    line: int

    def face_line(self, k: int) -> int:
        """1-based line number of face ``k`` (0-based) in the label file."""
        return self.line + 2 + k

    @property
    def num_faces(self) -> int:
        return int(self.boxes_xywh_px.shape[0])


def _looks_like_path(tokens: List[str]) -> bool:
    return len(tokens) == 1 and ("/" in tokens[0] or "." in tokens[0]) and not _is_number(tokens[0])


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_zero_line(line: str) -> bool:
    toks = line.split()
    if len(toks) != 10:
        return False
    try:
        return all(float(t) == 0 for t in toks)
    except ValueError:
        return False


def parse_wider_labels(label_path: str, allow_degenerate: bool = False) -> List[WiderRecord]:
    """Parse an official WIDER FACE ``*_bbx_gt.txt`` file into a list of :class:`WiderRecord`.

    A zero-face image is either ``0`` followed by one line of ten zeros (official quirk; the
    line is consumed, also accepted when absent) or ``1`` followed by a line of ten zeros (a
    variant present in the real files, e.g. ``37--Soccer/37_Soccer_soccer_ball_37_281.jpg``);
    both give a record with ``N == 0``.

    Raises :class:`LabelError` (``"<file>:<line>: <what>"``) for: a non-integer or negative
    count, a face line with the wrong number of fields, a non-number / NaN / inf, a
    non-integer attribute, ``w <= 0`` or ``h <= 0`` (unless ``allow_degenerate``; then such
    faces are kept and left to the caller to validate), a truncated record (fewer face lines
    than the count), a numeric line where an image path is expected (more face lines than the
    count), a zero-face record whose filler line is not all zeros, and a duplicated image path.
    """
    label_path = os.fspath(label_path)
    with open(label_path, "r", encoding="utf-8") as f:
        lines = f.read().splitlines()

    def err(lineno: int, what: str) -> LabelError:
        return LabelError(f"{label_path}:{lineno}: {what}")

    records: List[WiderRecord] = []
    seen = {}
    n = len(lines)
    i = 0  # 0-based index of the next line
    while i < n:
        path_tokens = lines[i].split()
        if not path_tokens:  # blank line between records / at the end
            i += 1
            continue
        path_lineno = i + 1
        if len(path_tokens) != 1 or _is_number(path_tokens[0]):
            raise err(path_lineno, f"expected an image path line, got {lines[i].strip()!r} "
                                   "(more face lines than the count of the previous record?)")
        rel_path = path_tokens[0]
        if rel_path in seen:
            raise err(path_lineno, f"duplicate image path {rel_path!r} (first at line {seen[rel_path]})")
        seen[rel_path] = path_lineno
        i += 1
        if i >= n:
            raise err(path_lineno, f"truncated file: no face count after image path {rel_path!r}")
        count_str = lines[i].strip()
        try:
            count = int(count_str)
        except ValueError:
            raise err(i + 1, f"face count is not an integer: {count_str!r}") from None
        if count < 0:
            raise err(i + 1, f"negative face count {count}")
        i += 1

        if count == 0:
            # official quirk: one line of ten zeros follows a zero-face record; consume it.
            if i < n:
                toks = lines[i].split()
                if toks and not _looks_like_path(toks):
                    try:
                        vals = [float(t) for t in toks]
                    except ValueError:
                        raise err(i + 1, "face count is 0 but the following line is neither the "
                                         f"zero filler line nor an image path: {lines[i].strip()!r}") from None
                    if any(v != 0 for v in vals):
                        raise err(i + 1, "face count is 0 but the following face line is not all "
                                         "zeros (wrong count?)")
                    i += 1
            records.append(WiderRecord(rel_path, np.zeros((0, 4), np.float32),
                                       np.zeros((0, 6), np.int64), path_lineno))
            continue

        if count == 1 and i < n and _is_zero_line(lines[i]):
            # variant of the quirk found in the real files: count 1 followed by the line of ten
            # zeros (an image without faces). Same meaning as count 0: no face.
            records.append(WiderRecord(rel_path, np.zeros((0, 4), np.float32),
                                       np.zeros((0, 6), np.int64), path_lineno))
            i += 1
            continue

        boxes = np.empty((count, 4), np.float32)
        attrs = np.empty((count, 6), np.int64)
        for k in range(count):
            if i >= n:
                raise err(i, f"truncated file: record {rel_path!r} (line {path_lineno}) declares "
                             f"{count} faces but only {k} face lines follow")
            toks = lines[i].split()
            lineno = i + 1
            if _looks_like_path(toks):
                raise err(lineno, f"truncated record: {rel_path!r} (line {path_lineno}) declares "
                                  f"{count} faces but only {k} face lines follow")
            if len(toks) != 10:
                raise err(lineno, f"face line has {len(toks)} fields, expected 10 "
                                  "(x1 y1 w h blur expression illumination invalid occlusion pose)")
            try:
                vals = [float(t) for t in toks]
            except ValueError:
                raise err(lineno, f"face line has a non-number: {lines[i].strip()!r}") from None
            if not all(math.isfinite(v) for v in vals):
                raise err(lineno, f"face line has NaN/inf: {lines[i].strip()!r}")
            x, y, w, h = vals[:4]
            if (w <= 0 or h <= 0) and not allow_degenerate:
                raise err(lineno, f"face box has w={w:g} h={h:g} (must be > 0)")
            a = vals[4:]
            if any(v != int(v) for v in a):
                raise err(lineno, f"face attributes must be integers: {' '.join(toks[4:])}")
            boxes[k] = (x, y, w, h)
            attrs[k] = [int(v) for v in a]
            i += 1
        records.append(WiderRecord(rel_path, boxes, attrs, path_lineno))
    return records


class WiderFaceDataset:
    """WIDER FACE images + official labels, validated at construction.

    Parameters
    ----------
    images_dir: folder holding ``<event>/<name>.jpg``.
    label_path: the ``wider_face_*_bbx_gt.txt`` file.
    min_face_px: drop faces with ``max(w, h) < min_face_px`` (counted in ``num_small_dropped``).
    drop_invalid: drop faces flagged ``invalid`` (counted in ``num_invalid_dropped``).
    skip_bad: warn and skip bad faces / images (see module doc) instead of raising.
    border_tol_px: boxes exceeding the image border by at most this are clipped; beyond: error.

    Attributes: ``records`` (kept :class:`WiderRecord`, raw labels, aligned with indices),
    ``skipped`` (problem messages), ``num_invalid_dropped``, ``num_small_dropped``,
    ``num_clipped``, ``num_faces`` (faces served), ``num_skipped_faces``, ``num_skipped_images``.
    """

    def __init__(self, images_dir: str, label_path: str, min_face_px: float = 0,
                 drop_invalid: bool = True, skip_bad: bool = False, border_tol_px: float = 2.0):
        self.images_dir = os.fspath(images_dir)
        self.label_path = os.fspath(label_path)
        self.min_face_px = float(min_face_px)
        self.drop_invalid = bool(drop_invalid)
        self.skip_bad = bool(skip_bad)
        self.border_tol_px = float(border_tol_px)
        if not os.path.isdir(self.images_dir):
            raise FileNotFoundError(f"images_dir {self.images_dir!r} is not a directory")

        parsed = parse_wider_labels(self.label_path, allow_degenerate=True)
        if not parsed:
            raise LabelError(f"{self.label_path}: no image records (an empty label file?)")
        self.num_records_in_file = len(parsed)
        self.num_faces_in_file = sum(r.num_faces for r in parsed)
        self.num_invalid_flagged = sum(int((r.attributes[:, 3] != 0).sum()) for r in parsed)

        self.records: List[WiderRecord] = []
        self._boxes: List[np.ndarray] = []
        self._face_idx: List[np.ndarray] = []
        self._ignored: List[np.ndarray] = []
        self._sizes: List[Tuple[int, int]] = []
        self.skipped: List[str] = []
        self.num_invalid_dropped = 0
        self.num_small_dropped = 0
        self.num_clipped = 0
        self.num_skipped_faces = 0
        self.num_skipped_images = 0
        problems: List[str] = []

        def where(line: int) -> str:
            return f"{self.label_path}:{line}"

        for rec in parsed:
            path = os.path.join(self.images_dir, rec.rel_path)
            try:
                wh = image_size(path)
            except FileNotFoundError:
                problems.append(f"{where(rec.line)}: image file not found: {path}")
                self.num_skipped_images += 1
                continue
            except Exception as e:  # unreadable header
                problems.append(f"{where(rec.line)}: unreadable image {path}: {e}")
                self.num_skipped_images += 1
                continue
            W, H = wh
            keep_boxes, keep_idx, ignored = [], [], []
            tol = self.border_tol_px
            for k in range(rec.num_faces):
                x, y, w, h = (float(v) for v in rec.boxes_xywh_px[k])
                loc = where(rec.face_line(k))
                if not all(math.isfinite(v) for v in (x, y, w, h)):
                    problems.append(f"{loc}: non-finite box {x} {y} {w} {h} in {rec.rel_path}")
                    self.num_skipped_faces += 1
                    continue
                if w <= 0 or h <= 0:
                    problems.append(f"{loc}: degenerate face box w={w:g} h={h:g} in {rec.rel_path}")
                    self.num_skipped_faces += 1
                    continue
                x1, y1, x2, y2 = x, y, x + w, y + h
                if x1 < -tol or y1 < -tol or x2 > W + tol or y2 > H + tol:
                    problems.append(f"{loc}: face box xyxy=({x1:g},{y1:g},{x2:g},{y2:g}) is outside "
                                    f"the image {rec.rel_path} of size {W}x{H} (tolerance {tol:g} px)")
                    self.num_skipped_faces += 1
                    continue
                cx1, cy1 = min(max(x1, 0.0), W), min(max(y1, 0.0), H)
                cx2, cy2 = min(max(x2, 0.0), W), min(max(y2, 0.0), H)
                if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
                    problems.append(f"{loc}: face box xyxy=({x1:g},{y1:g},{x2:g},{y2:g}) has no area "
                                    f"inside the image {rec.rel_path} of size {W}x{H}")
                    self.num_skipped_faces += 1
                    continue
                if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
                    self.num_clipped += 1
                if self.drop_invalid and rec.attributes[k, 3] != 0:
                    self.num_invalid_dropped += 1
                    ignored.append((cx1, cy1, cx2, cy2))
                    continue
                if max(cx2 - cx1, cy2 - cy1) < self.min_face_px:
                    self.num_small_dropped += 1
                    continue
                keep_boxes.append((cx1, cy1, cx2, cy2))
                keep_idx.append(k)
            self.records.append(rec)
            self._boxes.append(np.asarray(keep_boxes, np.float32).reshape(-1, 4))
            self._face_idx.append(np.asarray(keep_idx, np.int64))
            self._ignored.append(np.asarray(ignored, np.float32).reshape(-1, 4))
            self._sizes.append((W, H))

        if problems:
            if not self.skip_bad:
                shown = "\n  ".join(problems[:20])
                more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
                raise LabelError(f"{problems[0]}\n{len(problems)} problem(s) in {self.label_path} "
                                 f"(pass skip_bad=True to warn and skip them):\n  {shown}{more}")
            for msg in problems:
                warnings.warn(msg, stacklevel=2)
            self.skipped = problems
            warnings.warn(f"WiderFaceDataset({self.label_path}): skipped {len(problems)} problem(s): "
                          f"{self.num_skipped_faces} face(s) dropped, {self.num_skipped_images} "
                          f"image(s) dropped", stacklevel=2)
        if not self.records:
            raise LabelError(f"{self.label_path}: none of its {len(parsed)} image(s) is usable "
                             f"(first problem: {problems[0]})")
        self.num_faces = int(sum(b.shape[0] for b in self._boxes))

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, i: int) -> str:
        return os.path.join(self.images_dir, self.records[i].rel_path)

    def image_size(self, i: int) -> Tuple[int, int]:
        """``(width, height)`` of image ``i`` (from the header)."""
        return self._sizes[i]

    def boxes(self, i: int) -> np.ndarray:
        """Kept boxes of image ``i`` (xyxy float32 (N, 4)), without reading the image."""
        return self._boxes[i].copy()

    def ignored_boxes(self, i: int) -> np.ndarray:
        """Boxes of image ``i`` left out of the samples because they are flagged ``invalid``
        (xyxy float32 (K, 4)); training can use them as ignore regions."""
        return self._ignored[i].copy()

    def face_indices(self, i: int) -> np.ndarray:
        """Indices (0-based, into the record's face list of the label file) of the kept boxes."""
        return self._face_idx[i].copy()

    def __getitem__(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        path = self.image_path(i)
        img = read_image_rgb(path)
        W, H = self._sizes[i]
        if img.shape[:2] != (H, W):
            raise IOError(f"image {path!r} decodes to {img.shape[1]}x{img.shape[0]} but its header "
                          f"says {W}x{H}")
        return img, self._boxes[i].copy()

    def summary(self) -> str:
        return (f"{self.label_path}: {self.num_records_in_file} records, {self.num_faces_in_file} faces "
                f"({self.num_invalid_flagged} invalid-flagged); serving {len(self)} images, "
                f"{self.num_faces} faces; dropped {self.num_invalid_dropped} invalid, "
                f"{self.num_small_dropped} small (< {self.min_face_px:g} px); clipped {self.num_clipped}; "
                f"skipped {self.num_skipped_faces} bad face(s), {self.num_skipped_images} image(s)")

    def __repr__(self) -> str:
        return f"WiderFaceDataset({self.summary()})"
