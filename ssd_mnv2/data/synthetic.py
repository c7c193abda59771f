"""Synthetic data, in one module: images with painted "faces", WIDER FACE sets (label files and the
official ``.mat`` ground truth), Pascal VOC annotations / devkit / flat face sets, photo folders,
blank images. Used by the tests, the anchor lab's notebook and ``configs/tiny.yaml``.

Conventions:

* images are ``uint8`` **BGR** arrays of shape ``(H, W, 3)`` (as ``cv2`` reads and writes them);
  sizes are given as ``(W, H)``;
* **xywh** boxes are ``x y w h`` in pixels (WIDER label files), **xyxy** boxes ``x1 y1 x2 y2``
  pixel edges, VOC boxes ``xmin ymin xmax ymax`` 1-based inclusive (as VOC XML stores them);
* deterministic: every generator takes a seed or a ``numpy`` Generator (or fixes its seed).

``cv2`` and ``scipy`` are imported inside the functions that need them, so importing this module
(or :mod:`ssd_mnv2.data`) stays light. Library modules do not import this module.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "draw_face", "make_image", "noise_face_image", "write_image",
    "wider_label_text", "write_wider", "write_wider_from_labels", "mat_cell", "write_wider_mats",
    "make_synthetic_widerface",
    "voc_xml", "write_voc_faceset", "write_voc_devkit", "BLOB_FACES", "write_blob_voc_set",
    "write_photos", "write_blank_images", "BLANK_IMAGES",
]


# ------------------------------------------------------------------------------------ images
def draw_face(img: np.ndarray, x: int, y: int, w: int, h: int, rng: np.random.Generator) -> None:
    """Paint a face-like blob into ``img`` (BGR (H, W, 3), in place) over the xywh box
    ``x y w h``: a filled skin ellipse (colour drawn from ``rng``) with two eyes and a mouth."""
    import cv2

    color = tuple(int(c) for c in rng.integers(120, 230, 3))
    cv2.ellipse(img, (x + w // 2, y + h // 2), (max(1, w // 2), max(1, h // 2)), 0, 0, 360, color, -1)
    ey = y + h // 3
    r = max(1, w // 10)
    cv2.circle(img, (x + w // 3, ey), r, (20, 20, 20), -1)
    cv2.circle(img, (x + 2 * w // 3, ey), r, (20, 20, 20), -1)
    cv2.line(img, (x + w // 3, y + 3 * h // 4), (x + 2 * w // 3, y + 3 * h // 4), (40, 20, 120), max(1, h // 15))


def make_image(rng: np.random.Generator, size: Tuple[int, int] = (160, 120), n_faces: int = 2
               ) -> Tuple[np.ndarray, np.ndarray]:
    """A dark noisy background with ``n_faces`` faces (:func:`draw_face`, 16 px .. min(W, H) / 2
    wide, h / w in 1.1 .. 1.3) for ``size = (W, H)``. Returns the BGR image (H, W, 3) and the
    faces as xywh px, float32 (n_faces, 4)."""
    W, H = size
    img = np.full((H, W, 3), rng.integers(30, 90), np.uint8)
    img += rng.integers(0, 25, img.shape, dtype=np.uint8)
    boxes = []
    for _ in range(n_faces):
        w = int(rng.integers(16, max(17, min(W, H) // 2)))
        h = int(w * rng.uniform(1.1, 1.3))
        h = min(h, H - 2)
        x = int(rng.integers(0, W - w))
        y = int(rng.integers(0, H - h))
        draw_face(img, x, y, w, h, rng)
        boxes.append([x, y, w, h])
    return img, np.asarray(boxes, np.float32).reshape(-1, 4)


def noise_face_image(w: int, h: int, boxes_xywh: Sequence[Sequence[int]] = (), seed: int = 0) -> np.ndarray:
    """Uniform noise (values 40-119, from ``seed``) of size ``w x h`` with a face
    (:func:`draw_face`) painted on each xywh box; BGR (h, w, 3)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(40, 120, size=(h, w, 3), dtype=np.uint8)
    for x, y, bw, bh in boxes_xywh:
        draw_face(img, int(x), int(y), int(bw), int(bh), rng)
    return img


def write_image(path: Union[str, Path], img: np.ndarray) -> None:
    """Write ``img`` to ``path`` (parent folders made; the write must succeed)."""
    import cv2

    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cv2 could not write {path}")


# ------------------------------------------------------------------------------------ WIDER FACE
def wider_label_text(records: Dict[str, np.ndarray]) -> str:
    """WIDER label text for ``{"event/name.jpg": xywh boxes (n, 4)}``: per image its path, the
    face count and one ``x y w h 0 0 0 0 0 0`` line per face (a zero line when it has none)."""
    lines: List[str] = []
    for rel, boxes in records.items():
        boxes = np.asarray(boxes).reshape(-1, 4)
        lines += [rel, str(len(boxes))]
        if len(boxes) == 0:
            lines.append("0 0 0 0 0 0 0 0 0 0")
        lines += [f"{int(x)} {int(y)} {int(w)} {int(h)} 0 0 0 0 0 0" for x, y, w, h in boxes]
    return "\n".join(lines) + "\n"


def write_wider(root: Path, n_images: int = 6, seed: int = 0, size: Tuple[int, int] = (160, 120),
                zero_face_every: int = 0) -> Tuple[Path, Path]:
    """A WIDER-style set of ``n_images`` :func:`make_image` images (``size = (W, H)``, 1-3 faces,
    none for every ``zero_face_every``-th image when > 0; one generator seeded ``seed``):
    ``root/images/<i%2>--Event<i%2>/<i%2>_img_<i>.jpg`` and ``root/labels.txt``.
    Returns (images folder, labels file)."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    records: Dict[str, np.ndarray] = {}
    for i in range(n_images):
        rel = f"{i % 2}--Event{i % 2}/{i % 2}_img_{i}.jpg"
        n = 0 if zero_face_every and i % zero_face_every == 0 else int(rng.integers(1, 4))
        img, records[rel] = make_image(rng, size, n)
        write_image(images / rel, img)
    labels = root / "labels.txt"
    labels.write_text(wider_label_text(records))
    return images, labels


def write_wider_from_labels(root: Path, labels: str, sizes: Dict[str, Tuple[int, int]],
                            skip_images: Iterable[str] = ()) -> Tuple[str, str]:
    """A WIDER-style set from a given label text: ``root/images/<rel>`` (face-less noise images of
    ``sizes[rel] = (w, h)``, except ``skip_images``) and ``root/gt.txt``; returns (images, labels)."""
    img_dir = root / "images"
    for rel, (w, h) in sizes.items():
        if rel in skip_images:
            continue
        write_image(img_dir / rel, noise_face_image(w, h))
    img_dir.mkdir(exist_ok=True)
    label = root / "gt.txt"
    label.write_text(labels)
    return str(img_dir), str(label)


def mat_cell(items: List[Any]) -> np.ndarray:
    """A MATLAB cell array as scipy writes it: an (n, 1) object array."""
    c = np.empty((len(items), 1), dtype=object)
    for i, it in enumerate(items):
        c[i, 0] = it
    return c


def write_wider_mats(gt_dir: Path, data: Dict[str, Dict[str, Tuple[Any, Dict[str, Any]]]]) -> None:
    """The official WIDER ground-truth .mat files (``wider_face_val.mat`` and
    ``wider_{easy,medium,hard}_val.mat``) in ``gt_dir`` for ``data``: event -> name (no extension,
    in file order) -> (xywh boxes int (N, 4), {subset: 1-based indices of the faces it keeps})."""
    from scipy.io import savemat

    events = sorted(data)
    event_list = mat_cell([np.array([e]) for e in events])
    file_list = mat_cell([mat_cell([np.array([n]) for n in data[e]]) for e in events])
    boxes = mat_cell([mat_cell([np.asarray(v[0], np.int32).reshape(-1, 4) for v in data[e].values()])
                      for e in events])
    gt_dir.mkdir(parents=True, exist_ok=True)
    base = {"event_list": event_list, "file_list": file_list, "face_bbx_list": boxes}
    savemat(str(gt_dir / "wider_face_val.mat"), base)
    for s in ("easy", "medium", "hard"):
        gl = mat_cell([
            mat_cell([np.asarray(v[1][s], np.float64).reshape(-1, 1) if len(v[1][s])
                      else np.zeros((0, 1), np.uint8) for v in data[e].values()])
            for e in events
        ])
        savemat(str(gt_dir / f"wider_{s}_val.mat"), dict(base, gt_list=gl))


def _write_split(root: Path, split: str, n: int, rng: np.random.Generator, event: str
                 ) -> Dict[str, np.ndarray]:
    """``n`` images of ``root/<split>/images/<event>/`` (1-5 faces each, log-uniform sizes 8 px ..
    0.6 min(W, H), w / h ~ N(0.8, 0.1) clipped to 0.5 .. 1.2) and their WIDER label file;
    returns {name (no extension): xywh boxes int64 (n, 4)}."""
    images = root / split / "images"
    (images / event).mkdir(parents=True, exist_ok=True)
    prefix = event.replace("--", "_")
    records: Dict[str, np.ndarray] = {}
    for i in range(n):
        W, H = int(rng.choice([320, 400, 480])), int(rng.choice([240, 300, 360]))
        boxes = []
        for _ in range(int(rng.integers(1, 6))):
            s = float(np.exp(rng.uniform(np.log(8), np.log(0.6 * min(W, H)))))
            r = float(np.clip(rng.normal(0.8, 0.1), 0.5, 1.2))
            w, h = s * math.sqrt(r), s / math.sqrt(r)
            x1, y1 = rng.uniform(0, W - w), rng.uniform(0, H - h)
            boxes.append([round(x1), round(y1), max(2, round(w)), max(2, round(h))])
        name = f"{prefix}_{split}_{i:03d}"
        records[name] = np.asarray(boxes, np.int64)
        write_image(images / event / f"{name}.jpg", noise_face_image(W, H, boxes, seed=int(rng.integers(2**31))))
    labels = {f"{event}/{name}.jpg": boxes for name, boxes in records.items()}
    (root / split / f"wider_face_{split}_bbx_gt.txt").write_text(wider_label_text(labels))
    return records


def make_synthetic_widerface(root: Union[str, Path], n_train: int = 24, n_val: int = 8,
                             seed: int = 0, event: str = "0--Parade") -> List[str]:
    """Write a tiny WIDER-FACE-shaped data set under ``root``: noise images (W in 320/400/480,
    H in 240/300/360) with 1-5 faces each (sizes 8 px .. 0.6 min(W, H), w / h ~ 0.8), named
    ``<event with _>_<split>_<i:03d>.jpg`` (``0_Parade_dev_000.jpg``), official-format labels
    (``root/{train,dev}/wider_face_{split}_bbx_gt.txt``) and the dev split's ground-truth ``.mat``
    files (``root/ground_truth``, every face in every subset). Returns the ``--set`` overrides
    that point a config's data section at it."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    _write_split(root, "train", n_train, rng, event)
    val = _write_split(root, "dev", n_val, rng, event)
    gt = root / "ground_truth"
    every = {name: (boxes, {s: np.arange(1, len(boxes) + 1) for s in ("easy", "medium", "hard")})
             for name, boxes in sorted(val.items())}
    write_wider_mats(gt, {event: every})
    return [f"data.train_images={root / 'train' / 'images'}",
            f"data.train_labels={root / 'train' / 'wider_face_train_bbx_gt.txt'}",
            f"data.val_images={root / 'dev' / 'images'}",
            f"data.val_labels={root / 'dev' / 'wider_face_dev_bbx_gt.txt'}",
            f"data.val_gt_dir={gt}"]


# ------------------------------------------------------------------------------------ Pascal VOC
def voc_xml(width: int, height: int, objects: Iterable[Tuple[str, Tuple[int, int, int, int], Any]]) -> str:
    """A VOC annotation: ``objects`` are ``(name, (xmin, ymin, xmax, ymax) 1-based inclusive, difficult)``."""
    objs = "".join(
        f"<object><name>{name}</name><difficult>{int(diff)}</difficult><bndbox><xmin>{x1}</xmin>"
        f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, (x1, y1, x2, y2), diff in objects)
    return (f"<annotation><filename>x.jpg</filename><size><width>{width}</width><height>{height}"
            f"</height><depth>3</depth></size>{objs}</annotation>")


def write_voc_faceset(root: Path, records: Dict[str, Tuple[Tuple[int, int], list]]) -> Tuple[Path, Path]:
    """Write ``root/images/<key>.jpg`` (uniform noise 0-254, seed 0) and ``root/annotations/<key>.xml``
    for ``{key: ((width, height), objects)}`` (objects as in :func:`voc_xml`); returns (images, annotations)."""
    images, anns = root / "images", root / "annotations"
    rng = np.random.default_rng(0)
    for key, ((w, h), objects) in records.items():
        (anns / key).parent.mkdir(parents=True, exist_ok=True)
        write_image(images / f"{key}.jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        (anns / f"{key}.xml").write_text(voc_xml(w, h, objects))
    return images, anns


def write_voc_devkit(parent: Path, extra_bad: Optional[str] = None) -> Path:
    """A VOC devkit layout under ``parent/voc`` (Annotations, JPEGImages, ImageSets/Main/trainval.txt):
    ``img1`` (80x60: a face, a difficult face, a person) and ``img2`` (64x64, no object), plus
    ``img3`` with the XML text ``extra_bad`` when given. Images are face-less noise. Returns the root."""
    root = parent / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    ann = {
        "img1": voc_xml(80, 60, [("face", (11, 11, 30, 40), 0), ("face", (41, 5, 60, 20), 1),
                                 ("person", (1, 1, 80, 60), 0)]),
        "img2": voc_xml(64, 64, []),
    }
    if extra_bad:
        ann["img3"] = extra_bad
    for k, xml in ann.items():
        (root / "Annotations" / f"{k}.xml").write_text(xml)
        w, h = (80, 60) if k == "img1" else (64, 64)
        write_image(root / "JPEGImages" / f"{k}.jpg", noise_face_image(w, h))
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(ann) + "\n")
    return root


BLOB_FACES = {"p1": [(10, 10, 50, 60), (100, 20, 140, 70)], "p2": [(30, 40, 90, 110)]}


def write_blob_voc_set(root: Path, faces: Dict[str, list] = BLOB_FACES) -> Tuple[Path, Path]:
    """Flat VOC face set of black 160x120 PNGs with white rectangles as faces (``{key: [xyxy
    pixel edges]}``): ``root/images/<key>.png`` and ``root/annotations/<key>.xml``; returns
    (images, annotations)."""
    images, anns = root / "images", root / "annotations"
    images.mkdir()
    anns.mkdir()
    for key, boxes in faces.items():
        img = np.zeros((120, 160, 3), np.uint8)
        for x1, y1, x2, y2 in boxes:
            img[y1:y2, x1:x2] = 255
        write_image(images / f"{key}.png", img)
        (anns / f"{key}.xml").write_text(voc_xml(160, 120, [("face", (x1 + 1, y1 + 1, x2, y2), 0)
                                                             for x1, y1, x2, y2 in boxes]))
    return images, anns


# ------------------------------------------------------------------------------------ folders
def write_photos(folder: Path, n: int, seed: int = 0, first_in_sub: bool = False) -> Path:
    """``folder/img_<i>.jpg``: ``n`` 160x120 images with two faces each (:func:`make_image`, one
    generator seeded ``seed``); with ``first_in_sub`` image 0 goes to ``folder/sub/``."""
    (folder / "sub" if first_in_sub else folder).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, _ = make_image(rng, (160, 120), 2)
        write_image(folder / ("sub" if first_in_sub and i == 0 else "") / f"img_{i}.jpg", img)
    return folder


def write_blank_images(images: Path, keys: Iterable[str], size: Tuple[int, int] = (320, 300)) -> None:
    """Black ``size = (W, H)`` JPEGs ``images/<event>/<name>.jpg`` for ``"event/name"`` keys."""
    w, h = size
    for key in keys:
        write_image(images / f"{key}.jpg", np.zeros((h, w, 3), np.uint8))


#: The blank-image check's 640x480 face-free images (uint8 (480, 640, 3); noise is seeded), as
#: zero-argument makers: ``tests/test_shipped_model.py`` asserts no face >= 0.5 on each and
#: ``benchmarks/face_free.py`` reports the top score.
BLANK_IMAGES = {
    "white": lambda: np.full((480, 640, 3), 255, np.uint8),
    "black": lambda: np.zeros((480, 640, 3), np.uint8),
    "grey": lambda: np.full((480, 640, 3), 128, np.uint8),
    "noise": lambda: np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8),
}
