"""Evaluation face sets: a Pascal VOC-format set (images + XML folders) or a COCO ``instances.json``.

    faces = load_voc_faceset("images/", "annotations/", classes="with_mask,without_mask")
    faces = load_coco_faceset("images/", "instances.json")

Each image becomes a :class:`FaceImage`: ``boxes_xyxy_px`` (float64 (N, 4), 0-based pixel edges of
the original image: VOC ``xmin ymin xmax ymax`` become ``xmin - 1, ymin - 1, xmax, ymax`` as in
:func:`~ssd_mnv2.data.voc.parse_voc_xml`; COCO ``x y w h`` become ``x, y, x + w, y + h``) and
``ignore`` (bool (N,)): VOC ``difficult`` and COCO ``iscrowd`` faces, which the scorers ignore (a
detection on them is neither a true nor a false positive).

Classes: by default every object is a face. ``classes`` (``"a,b"`` or a sequence) keeps only the
objects of those classes and counts each of them as "face": a mask data set's ``with_mask``,
``without_mask`` and ``mask_weared_incorrect`` classes become one face class that way.

Image keys are paths relative to the images folder without extension (``"sub/name"``); a VOC
image ``<images>/<key>.<ext>`` pairs with ``<annotations>/<key>.xml``.

Problems are reported, never skipped silently: malformed XML or JSON names the file; an
annotation whose image is missing, an image without an annotation (VOC), a JSON image entry
whose file is missing, an image whose size differs from its annotation. All of them are
collected into one :class:`FaceSetError` (first line: the first problem; then the list);
``skip_bad=True`` turns them into warnings and leaves those images out. An empty set is an error.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .voc import VOCError, parse_voc_xml
from ..imageio import image_size

__all__ = ["FaceImage", "FaceSet", "FaceSetError", "parse_classes", "load_voc_faceset",
           "load_coco_faceset", "load_faceset", "EVAL_IMAGE_EXTS"]

EVAL_IMAGE_EXTS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_MAX_LISTED = 20


class FaceSetError(ValueError):
    """A problem with an evaluation set; the first line names the file."""


@dataclass
class FaceImage:
    """One image of an evaluation set (boxes in pixels of the original image)."""

    key: str
    path: Optional[str]
    width: int
    height: int
    boxes_xyxy_px: np.ndarray
    ignore: np.ndarray

    @property
    def num_faces(self) -> int:
        """Faces that count (not ignored)."""
        return int((~self.ignore).sum())


@dataclass
class FaceSet:
    """An evaluation set: its images, where it came from, and what was left out (``skipped``)."""

    images: List[FaceImage]
    fmt: str
    annotations: str
    images_dir: Optional[str] = None
    classes: Optional[Tuple[str, ...]] = None
    skipped: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_faces(self) -> int:
        return sum(im.num_faces for im in self.images)

    @property
    def num_ignored(self) -> int:
        return sum(int(im.ignore.sum()) for im in self.images)

    def describe(self) -> Dict[str, object]:
        return {"format": self.fmt, "annotations": self.annotations, "images_dir": self.images_dir,
                "classes": list(self.classes) if self.classes else "all", "images": len(self.images),
                "faces": self.num_faces, "ignored_faces": self.num_ignored, "skipped": len(self.skipped)}


def parse_classes(classes: Union[None, str, Sequence[str]]) -> Optional[Tuple[str, ...]]:
    """``"a, b"`` or ``["a", "b"]`` -> ``("a", "b")``; ``None`` or ``""`` -> ``None`` (every object)."""
    if classes is None:
        return None
    items = classes.split(",") if isinstance(classes, str) else list(classes)
    names = tuple(dict.fromkeys(str(c).strip() for c in items))
    if not names or names == ("",):
        return None
    if any(not n for n in names):
        raise ValueError(f"--classes {classes!r}: empty class name (expected e.g. 'face' or 'a,b')")
    return names


def _report(problems: List[str], where: str, skip_bad: bool) -> List[str]:
    """Raise one FaceSetError listing ``problems`` or, with ``skip_bad``, warn about each."""
    if not problems:
        return []
    if not skip_bad:
        more = "".join(f"\n  {p}" for p in problems[:_MAX_LISTED])
        if len(problems) > _MAX_LISTED:
            more += f"\n  ... and {len(problems) - _MAX_LISTED} more"
        raise FaceSetError(f"{problems[0]} [{len(problems)} problem(s) in {where}; --skip-bad "
                           f"(skip_bad=True) leaves those images out]{more if len(problems) > 1 else ''}")
    for p in problems:
        warnings.warn(p, stacklevel=3)
    warnings.warn(f"{where}: left out {len(problems)} image(s) with problems", stacklevel=3)
    return list(problems)


def _index_files(folder: str, exts: Iterable[str]) -> Dict[str, List[str]]:
    """``{key: [paths]}`` of the files under ``folder`` (recursive) whose extension is in ``exts``."""
    exts = tuple(e.lower() for e in exts)
    out: Dict[str, List[str]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if name.startswith(".") or ext.lower() not in exts:
                continue
            rel = os.path.relpath(os.path.join(dirpath, stem), folder).replace(os.sep, "/")
            out.setdefault(rel, []).append(os.path.join(dirpath, name))
    return out


def _read_key_list(list_file: str) -> List[Tuple[int, str]]:
    """``(line number, key)`` of an image list: first token per line, extension dropped."""
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"image list not found: {list_file}")
    out, seen = [], set()
    with open(list_file, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            key = s.split()[0].replace("\\", "/")
            while key.startswith("./"):
                key = key[2:]
            stem, ext = os.path.splitext(key)
            if ext.lower() in EVAL_IMAGE_EXTS + (".xml",):
                key = stem
            if key in seen:
                raise FaceSetError(f"{list_file}:{lineno}: {key!r} is listed twice")
            seen.add(key)
            out.append((lineno, key))
    if not out:
        raise FaceSetError(f"{list_file}: the image list is empty")
    return out


def _check_dir(path: Optional[str], what: str) -> None:
    if path is not None and not os.path.isdir(path):
        raise FileNotFoundError(f"{what} folder not found: {path}")


def _check_image(path: str, width: int, height: int, ann: str) -> Optional[str]:
    """A problem message if the image header cannot be read or its size differs, else None."""
    try:
        wh = image_size(path)
    except Exception as e:  # PIL raises several types for unreadable files
        return f"{path}: unreadable image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    if tuple(wh) != (width, height):
        return f"{ann}: says the image is {width}x{height} but {path} is {wh[0]}x{wh[1]}"
    return None


def _empty_error(what: str) -> FaceSetError:
    return FaceSetError(f"{what}: the evaluation set is empty (no image with an annotation)")


def load_voc_faceset(images_dir: Optional[str], annotations_dir: str, list_file: Optional[str] = None,
                     classes: Union[None, str, Sequence[str]] = None, skip_bad: bool = False) -> FaceSet:
    """Read a VOC-format face set: ``<annotations_dir>/<key>.xml`` with ``<images_dir>/<key>.<ext>``.

    ``list_file`` (one id or file name per line) defines the set; otherwise every XML and every
    image under the two folders does, and an image without XML or an XML without image is a
    problem. ``images_dir=None`` (scoring prediction files) skips the image checks. Objects of
    ``classes`` (default: all) are faces; ``<difficult>1</difficult>`` ones are ignored.
    """
    _check_dir(annotations_dir, "annotations")
    _check_dir(images_dir, "images")
    names = parse_classes(classes)
    xmls = _index_files(annotations_dir, (".xml",))
    imgs = _index_files(images_dir, EVAL_IMAGE_EXTS) if images_dir is not None else {}
    problems: List[str] = []
    if list_file is not None:
        keys = []
        for lineno, key in _read_key_list(list_file):
            if key not in xmls:
                problems.append(f"{os.path.join(annotations_dir, key)}.xml: annotation not found "
                                f"(listed in {list_file}:{lineno})")
            else:
                keys.append(key)
    else:
        keys = sorted(xmls)
        for key in sorted(set(imgs) - set(xmls)):
            problems.append(f"{imgs[key][0]}: image has no annotation "
                            f"{os.path.join(annotations_dir, key)}.xml")
    images: List[FaceImage] = []
    for key in keys:
        xml_path = xmls[key][0]
        try:
            boxes, difficult, W, H = parse_voc_xml(xml_path, names)
        except VOCError as e:
            problems.append(str(e).splitlines()[0])
            continue
        path = None
        if images_dir is not None:
            found = imgs.get(key, [])
            if not found:
                problems.append(f"{xml_path}: image not found: "
                                f"{os.path.join(images_dir, key)}.{{{','.join(e[1:] for e in EVAL_IMAGE_EXTS)}}}")
                continue
            if len(found) > 1:
                problems.append(f"{xml_path}: several images for one annotation: {', '.join(found)}")
                continue
            path = found[0]
            bad = _check_image(path, W, H, xml_path)
            if bad:
                problems.append(bad)
                continue
        images.append(FaceImage(key, path, W, H, boxes.astype(np.float64).reshape(-1, 4),
                                np.asarray(difficult, bool).reshape(-1)))
    skipped = _report(problems, annotations_dir, skip_bad)
    if not images:
        raise _empty_error(list_file or annotations_dir)
    return FaceSet(images, "voc", annotations_dir, images_dir, names, skipped)


def _coco_num(v, path: str, what: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise FaceSetError(f"{path}: {what} is not a number: {v!r}") from None
    if not np.isfinite(x):
        raise FaceSetError(f"{path}: {what} is not finite: {v!r}")
    return x


def load_coco_faceset(images_dir: Optional[str], instances_json: str, list_file: Optional[str] = None,
                      classes: Union[None, str, Sequence[str]] = None, skip_bad: bool = False,
                      border_tol_px: float = 2.0) -> FaceSet:
    """Read a COCO-format face set: ``instances_json`` (``images``, ``annotations``, ``categories``)
    with the files ``<images_dir>/<file_name>``.

    The JSON's image list defines the set (``list_file`` restricts it; images in the folder that
    the JSON does not list are not evaluated); an image without annotations has no face.
    ``classes`` are category names (default: every category). ``iscrowd`` boxes are ignored.
    Boxes outside the image by more than ``border_tol_px`` are problems; smaller overshoots are
    clipped.
    """
    _check_dir(images_dir, "images")
    if not os.path.isfile(instances_json):
        raise FileNotFoundError(f"COCO annotation file not found: {instances_json}")
    try:
        with open(instances_json, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise FaceSetError(f"{instances_json}: not valid JSON: {e}") from None
    except UnicodeDecodeError:
        raise FaceSetError(f"{instances_json}: not a UTF-8 text file") from None
    if not isinstance(doc, dict):
        raise FaceSetError(f"{instances_json}: expected a JSON object with 'images', 'annotations', "
                           "'categories'")
    for k in ("images", "annotations", "categories"):
        if not isinstance(doc.get(k), list):
            raise FaceSetError(f"{instances_json}: missing or non-list '{k}'")
    cats: Dict[int, str] = {}
    for c in doc["categories"]:
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise FaceSetError(f"{instances_json}: category without 'id' and 'name': {c!r}")
        cats[int(c["id"])] = str(c["name"]).strip()
    names = parse_classes(classes)
    if names is not None:
        unknown = [n for n in names if n not in cats.values()]
        if unknown:
            raise FaceSetError(f"{instances_json}: class {unknown[0]!r} is not a category "
                               f"(categories: {', '.join(sorted(set(cats.values())))})")
    wanted = set(cats) if names is None else {i for i, n in cats.items() if n in names}

    problems: List[str] = []
    by_id: Dict[int, dict] = {}
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not {"id", "file_name", "width", "height"} <= set(im):
            raise FaceSetError(f"{instances_json}: images[{i}] needs 'id', 'file_name', 'width', 'height'")
        iid = int(im["id"])
        if iid in by_id:
            raise FaceSetError(f"{instances_json}: image id {iid} appears twice")
        by_id[iid] = im
    anns: Dict[int, List[dict]] = {i: [] for i in by_id}
    for j, a in enumerate(doc["annotations"]):
        if not isinstance(a, dict) or not {"image_id", "category_id", "bbox"} <= set(a):
            raise FaceSetError(f"{instances_json}: annotations[{j}] needs 'image_id', 'category_id', 'bbox'")
        iid = int(a["image_id"])
        if iid not in by_id:
            problems.append(f"{instances_json}: annotation {a.get('id', j)} refers to image id {iid}, "
                            "which is not in 'images'")
            continue
        if int(a["category_id"]) in wanted:
            anns[iid].append(a)

    order = sorted(by_id, key=lambda i: str(by_id[i]["file_name"]))
    if list_file is not None:
        key_to_id = {os.path.splitext(str(by_id[i]["file_name"]).replace("\\", "/"))[0]: i for i in by_id}
        order = []
        for lineno, key in _read_key_list(list_file):
            if key not in key_to_id:
                problems.append(f"{list_file}:{lineno}: {key!r} is not an image of {instances_json}")
            else:
                order.append(key_to_id[key])
    images: List[FaceImage] = []
    for iid in order:
        im = by_id[iid]
        fname = str(im["file_name"]).replace("\\", "/")
        what = f"image id {iid} ({fname})"
        W = _coco_num(im["width"], instances_json, f"width of {what}")
        H = _coco_num(im["height"], instances_json, f"height of {what}")
        if W <= 0 or H <= 0 or W != int(W) or H != int(H):
            problems.append(f"{instances_json}: {what} has a bad size {W:g}x{H:g}")
            continue
        W, H = int(W), int(H)
        boxes, ignore, bad = [], [], None
        for a in anns[iid]:
            bb = a["bbox"]
            if not isinstance(bb, list) or len(bb) != 4:
                bad = f"{instances_json}: annotation {a.get('id', '?')}: bbox must be [x, y, w, h], got {bb!r}"
                break
            x, y, w, h = (_coco_num(v, instances_json, f"bbox of annotation {a.get('id', '?')}") for v in bb)
            if w <= 0 or h <= 0:
                bad = f"{instances_json}: annotation {a.get('id', '?')} of {what} has w<=0 or h<=0: {bb}"
                break
            x1, y1, x2, y2 = x, y, x + w, y + h
            t = border_tol_px
            if x1 < -t or y1 < -t or x2 > W + t or y2 > H + t:
                bad = (f"{instances_json}: annotation {a.get('id', '?')} box {bb} is outside {what} of "
                       f"size {W}x{H} (tolerance {t:g} px)")
                break
            x1, x2 = min(max(x1, 0.0), W), min(max(x2, 0.0), W)
            y1, y2 = min(max(y1, 0.0), H), min(max(y2, 0.0), H)
            boxes.append((x1, y1, x2, y2))
            ignore.append(bool(a.get("iscrowd", 0)))
        if bad:
            problems.append(bad)
            continue
        path = None
        if images_dir is not None:
            path = os.path.join(images_dir, fname)
            if not os.path.isfile(path):
                problems.append(f"{instances_json}: image file not found for {what}: {path}")
                continue
            err = _check_image(path, W, H, f"{instances_json} ({what})")
            if err:
                problems.append(err)
                continue
        images.append(FaceImage(os.path.splitext(fname)[0], path, W, H,
                                np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(ignore, bool)))
    keys = [im.key for im in images]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise FaceSetError(f"{instances_json}: two images share the name {dup!r} (extension aside)")
    skipped = _report(problems, instances_json, skip_bad)
    if not images:
        raise _empty_error(list_file or instances_json)
    return FaceSet(images, "coco", instances_json, images_dir, names, skipped)


def load_faceset(fmt: str, images_dir: Optional[str], annotations: str, list_file: Optional[str] = None,
                 classes: Union[None, str, Sequence[str]] = None, skip_bad: bool = False) -> FaceSet:
    """:func:`load_voc_faceset` (``fmt='voc'``) or :func:`load_coco_faceset` (``fmt='coco'``)."""
    if fmt == "voc":
        return load_voc_faceset(images_dir, annotations, list_file, classes, skip_bad)
    if fmt == "coco":
        return load_coco_faceset(images_dir, annotations, list_file, classes, skip_bad)
    raise ValueError(f"unknown face-set format {fmt!r} (voc or coco)")
