"""Pascal VOC style face data set (``JPEGImages/``, ``Annotations/*.xml``, ``ImageSets/Main/*.txt``).

Sample format (same as every data set of this package)::

    (image_rgb: np.ndarray uint8 (H, W, 3) RGB,  boxes_xyxy_px: np.ndarray float32 (N, 4))

Coordinates: VOC ``xmin ymin xmax ymax`` are 1-based inclusive pixel indices; they are converted
to 0-based pixel edges ``(xmin - 1, ymin - 1, xmax, ymax)`` (so a box covering the whole image is
``(0, 0, W, H)``).  Boxes exceeding the image by at most ``border_tol_px`` (2 px) are clipped;
beyond that, or with ``xmax <= xmin`` / ``ymax <= ymin``, the file is reported as bad.
Objects whose ``<name>`` is not in ``class_names`` are ignored.  ``<difficult>`` is optional
(default 0).
"""
from __future__ import annotations

import math
import os
import warnings
import xml.etree.ElementTree as ET
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..imageio import image_size, read_image_rgb
from .widerface import LabelError

__all__ = ["VOCError", "parse_voc_xml", "VOCFaceDataset"]

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


class VOCError(LabelError):
    """A problem in a VOC annotation; the message starts with the file name."""


def _num(node, tag: str, path: str, what: str) -> float:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise VOCError(f"{path}: missing <{tag}> in {what}")
    txt = child.text.strip()
    try:
        v = float(txt)
    except ValueError:
        raise VOCError(f"{path}: <{tag}> in {what} is not a number: {txt!r}") from None
    if not math.isfinite(v):
        raise VOCError(f"{path}: <{tag}> in {what} is not finite: {txt!r}")
    return v


def parse_voc_xml(path: str, class_names: Optional[Sequence[str]] = ("face",), border_tol_px: float = 2.0
                  ) -> Tuple[np.ndarray, np.ndarray, int, int]:
    """Parse one VOC annotation file.

    Returns ``(boxes_xyxy_px float32 (N, 4), difficult bool (N,), width, height)`` for the
    objects whose name is in ``class_names`` (``None``: every object).  Raises :class:`VOCError` (a ``ValueError``)
    naming the file for: XML syntax errors, missing ``size/width/height`` or ``bndbox`` fields,
    non-numbers, non-positive image size, ``xmax <= xmin`` or ``ymax <= ymin``, boxes outside
    the image by more than ``border_tol_px``.
    """
    path = os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise VOCError(f"{path}: XML error: {e}") from None
    size = root.find("size")
    if size is None:
        raise VOCError(f"{path}: missing <size>")
    width = _num(size, "width", path, "<size>")
    height = _num(size, "height", path, "<size>")
    if width <= 0 or height <= 0 or width != int(width) or height != int(height):
        raise VOCError(f"{path}: bad image size {width:g}x{height:g}")
    W, H = int(width), int(height)
    names = None if class_names is None else {c.strip() for c in class_names}
    boxes, difficult = [], []
    for k, obj in enumerate(root.iter("object")):
        name_node = obj.find("name")
        if name_node is None or name_node.text is None:
            raise VOCError(f"{path}: missing <name> in object #{k + 1}")
        if names is not None and name_node.text.strip() not in names:
            continue
        what = f"object #{k + 1} ({name_node.text.strip()})"
        bb = obj.find("bndbox")
        if bb is None:
            raise VOCError(f"{path}: missing <bndbox> in {what}")
        xmin, ymin, xmax, ymax = (_num(bb, t, path, what) for t in ("xmin", "ymin", "xmax", "ymax"))
        if xmax <= xmin or ymax <= ymin:
            raise VOCError(f"{path}: {what} has xmax<=xmin or ymax<=ymin: "
                           f"({xmin:g},{ymin:g},{xmax:g},{ymax:g})")
        x1, y1, x2, y2 = xmin - 1.0, ymin - 1.0, xmax, ymax
        tol = border_tol_px
        if x1 < -tol or y1 < -tol or x2 > W + tol or y2 > H + tol:
            raise VOCError(f"{path}: {what} box ({xmin:g},{ymin:g},{xmax:g},{ymax:g}) is outside the "
                           f"image of size {W}x{H} (tolerance {tol:g} px)")
        x1, x2 = min(max(x1, 0.0), W), min(max(x2, 0.0), W)
        y1, y2 = min(max(y1, 0.0), H), min(max(y2, 0.0), H)
        if x2 <= x1 or y2 <= y1:
            raise VOCError(f"{path}: {what} box has no area inside the image")
        d = obj.find("difficult")
        dv = 0
        if d is not None and d.text is not None and d.text.strip():
            try:
                dv = int(float(d.text.strip()))
            except ValueError:
                raise VOCError(f"{path}: <difficult> in {what} is not a number: {d.text!r}") from None
        boxes.append((x1, y1, x2, y2))
        difficult.append(bool(dv))
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(difficult, bool).reshape(-1),
            W, H)


class VOCFaceDataset:
    """Pascal VOC layout face data set.

    ``root/JPEGImages/<id>.jpg``, ``root/Annotations/<id>.xml``, ids from
    ``root/ImageSets/Main/<split>.txt`` (or ``split`` is a path to an image-set file; only the
    first token of each line is used).  All annotations are parsed and every image's header size
    is checked against ``<size>`` at construction.  Difficult boxes are left out of samples
    unless ``keep_difficult``; :meth:`all_boxes` / :meth:`difficult` give them for evaluation.
    With ``skip_bad=True`` a bad annotation or missing image gives a warning, is recorded in
    ``.skipped`` and the image is left out; otherwise a :class:`VOCError` is raised.
    """

    def __init__(self, root: str, split: str = "trainval", class_names: Sequence[str] = ("face",),
                 keep_difficult: bool = False, skip_bad: bool = False):
        self.root = os.fspath(root)
        self.class_names = tuple(class_names)
        self.keep_difficult = bool(keep_difficult)
        self.skip_bad = bool(skip_bad)
        split = os.fspath(split)
        if os.path.isfile(split):
            set_file = split
        else:
            set_file = os.path.join(self.root, "ImageSets", "Main", f"{split}.txt")
        if not os.path.isfile(set_file):
            raise FileNotFoundError(f"image-set file {set_file!r} not found")
        self.set_file = set_file
        with open(set_file, "r", encoding="utf-8") as f:
            ids = [ln.split()[0] for ln in f if ln.strip()]
        if not ids:
            raise VOCError(f"{set_file}: no image ids (an empty image-set file?)")

        self.ids: List[str] = []
        self._paths: List[str] = []
        self._boxes: List[np.ndarray] = []
        self._difficult: List[np.ndarray] = []
        self._sizes: List[Tuple[int, int]] = []
        self.skipped: List[str] = []
        problems: List[str] = []
        for lineno, img_id in enumerate(ids, 1):
            xml_path = os.path.join(self.root, "Annotations", img_id + ".xml")
            if not os.path.isfile(xml_path):
                problems.append(f"{xml_path}: annotation not found (id {img_id!r} from {set_file})")
                continue
            try:
                boxes, diff, W, H = parse_voc_xml(xml_path, self.class_names)
            except VOCError as e:
                problems.append(str(e))
                continue
            img_path = self._find_image(img_id)
            if img_path is None:
                problems.append(f"{xml_path}: image file not found: "
                                f"{os.path.join(self.root, 'JPEGImages', img_id)}.jpg")
                continue
            try:
                wh = image_size(img_path)
            except Exception as e:
                problems.append(f"{xml_path}: unreadable image {img_path}: {e}")
                continue
            if wh != (W, H):
                problems.append(f"{xml_path}: <size> says {W}x{H} but image {img_path} is {wh[0]}x{wh[1]}")
                continue
            self.ids.append(img_id)
            self._paths.append(img_path)
            self._boxes.append(boxes)
            self._difficult.append(diff)
            self._sizes.append((W, H))
        if problems:
            if not self.skip_bad:
                shown = "\n  ".join(problems[:20])
                raise VOCError(f"{problems[0]}\n{len(problems)} problem(s) in {self.root} "
                               f"(pass skip_bad=True to warn and skip them):\n  {shown}")
            for msg in problems:
                warnings.warn(msg, stacklevel=2)
            self.skipped = problems
            warnings.warn(f"VOCFaceDataset({self.root}): skipped {len(problems)} image(s)", stacklevel=2)
        if not self.ids:
            raise VOCError(f"{set_file}: none of its {len(ids)} image(s) is usable (first problem: {problems[0]})")
        self.num_difficult = int(sum(d.sum() for d in self._difficult))
        self.num_faces = int(sum(b.shape[0] for b in self._boxes))

    def _find_image(self, img_id: str):
        base = os.path.join(self.root, "JPEGImages", img_id)
        for ext in _IMAGE_EXTS:
            if os.path.isfile(base + ext):
                return base + ext
        return None

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, i: int) -> str:
        return self._paths[i]

    def image_size(self, i: int) -> Tuple[int, int]:
        return self._sizes[i]

    def all_boxes(self, i: int) -> np.ndarray:
        """All boxes of image ``i`` including difficult ones (xyxy float32 (N, 4))."""
        return self._boxes[i].copy()

    def difficult(self, i: int) -> np.ndarray:
        """Difficult flags (bool (N,)) aligned with :meth:`all_boxes`."""
        return self._difficult[i].copy()

    def boxes(self, i: int) -> np.ndarray:
        """Boxes served by ``__getitem__`` (difficult excluded unless keep_difficult)."""
        b = self._boxes[i]
        return b.copy() if self.keep_difficult else b[~self._difficult[i]].copy()

    def ignored_boxes(self, i: int) -> np.ndarray:
        """Difficult boxes left out of the samples (none when keep_difficult), xyxy (K, 4);
        training can use them as ignore regions."""
        if self.keep_difficult:
            return np.zeros((0, 4), np.float32)
        return self._boxes[i][self._difficult[i]].copy()

    def __getitem__(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        img = read_image_rgb(self._paths[i])
        W, H = self._sizes[i]
        if img.shape[:2] != (H, W):
            raise IOError(f"image {self._paths[i]!r} decodes to {img.shape[1]}x{img.shape[0]}, "
                          f"annotation says {W}x{H}")
        return img, self.boxes(i)
