"""Tiny synthetic data for tests, in one module: images with drawn "faces" (blobs, ellipses, rectangles),
WIDER label files and official .mat ground truth, VOC XML and devkit layouts, configs. Deterministic:
every generator takes or fixes its seed."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from ssd_mnv2.config import LEGACY_KEYS, Config, config_from_dict


def draw_face(img: np.ndarray, x: int, y: int, w: int, h: int, rng: np.random.Generator) -> None:
    """A face-like blob: skin ellipse with two eyes and a mouth."""
    color = tuple(int(c) for c in rng.integers(120, 230, 3))
    cv2.ellipse(img, (x + w // 2, y + h // 2), (max(1, w // 2), max(1, h // 2)), 0, 0, 360, color, -1)
    ey = y + h // 3
    r = max(1, w // 10)
    cv2.circle(img, (x + w // 3, ey), r, (20, 20, 20), -1)
    cv2.circle(img, (x + 2 * w // 3, ey), r, (20, 20, 20), -1)
    cv2.line(img, (x + w // 3, y + 3 * h // 4), (x + 2 * w // 3, y + 3 * h // 4), (40, 20, 120), max(1, h // 15))


def make_image(rng: np.random.Generator, size: Tuple[int, int] = (160, 120), n_faces: int = 2
               ) -> Tuple[np.ndarray, np.ndarray]:
    """BGR image (H, W, 3) and its faces as xywh px (n, 4)."""
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


def write_wider(root: Path, n_images: int = 6, seed: int = 0, size: Tuple[int, int] = (160, 120),
                zero_face_every: int = 0) -> Tuple[Path, Path]:
    """Write ``root/images/<event>/<name>.jpg`` and ``root/labels.txt``; returns (images, labels)."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    lines: List[str] = []
    for i in range(n_images):
        event = f"{i % 2}--Event{i % 2}"
        name = f"{i % 2}_img_{i}.jpg"
        n = 0 if zero_face_every and i % zero_face_every == 0 else int(rng.integers(1, 4))
        img, boxes = make_image(rng, size, n)
        (images / event).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / event / name), img)
        lines += [f"{event}/{name}", str(len(boxes))]
        if len(boxes) == 0:
            lines.append("0 0 0 0 0 0 0 0 0 0")
        for b in boxes:
            lines.append(f"{int(b[0])} {int(b[1])} {int(b[2])} {int(b[3])} 0 0 0 0 0 0")
    labels = root / "labels.txt"
    labels.write_text("\n".join(lines) + "\n")
    return images, labels


def tiny_config_dict(data_root: Optional[Path] = None, out_dir: Optional[Path] = None,
                     **sections: Dict[str, Any]) -> Dict[str, Any]:
    """A tiny model (width 0.25, 96 px, one extra level + global pool) as a config dict."""
    d: Dict[str, Any] = {
        "model": {"width": 0.25, "image_size": 96, "extra_channels": [[32, 64]], "global_pool": True},
        "anchors": {"sizes": [[16], [32], [48], [64], [90]], "ratios": [[1.0]] * 5,
                    "max_input_size": 512},
        "data": {"num_workers": 0, "crop_scale": [0.5, 1.0]},
        "solver": {"optimizer": "adam", "lr": 0.001},
        "train": {"batch_size": 2, "epochs": 2, "pretrained_backbone": "none", "eval_every": 0,
                  "seed": 1, "freeze_bn": False},
        "decode": {"max_detections": 100, "pre_nms_topk": 400},
    }
    if data_root is not None:
        d["data"].update({"train_images": str(data_root / "images"), "train_labels": str(data_root / "labels.txt"),
                          "val_images": str(data_root / "images"), "val_labels": str(data_root / "labels.txt")})
    if out_dir is not None:
        d["train"]["out_dir"] = str(out_dir)
    for k, v in sections.items():  # old spellings (train={"lr": ...}) go to their new section
        for key, value in v.items():
            d.setdefault(LEGACY_KEYS.get((k, key), k), {})[key] = value
    return d


def tiny_config(data_root: Optional[Path] = None, out_dir: Optional[Path] = None, **sections) -> Config:
    return config_from_dict(tiny_config_dict(data_root, out_dir, **sections))


def voc_xml(width: int, height: int, objects) -> str:
    """A VOC annotation: ``objects`` are ``(name, (xmin, ymin, xmax, ymax) 1-based inclusive, difficult)``."""
    objs = "".join(
        f"<object><name>{name}</name><difficult>{int(diff)}</difficult><bndbox><xmin>{x1}</xmin>"
        f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, (x1, y1, x2, y2), diff in objects)
    return (f"<annotation><filename>x.jpg</filename><size><width>{width}</width><height>{height}"
            f"</height><depth>3</depth></size>{objs}</annotation>")


def write_voc_faceset(root: Path, records: Dict[str, Tuple[Tuple[int, int], list]]) -> Tuple[Path, Path]:
    """Write ``root/images/<key>.jpg`` and ``root/annotations/<key>.xml`` for
    ``{key: ((width, height), objects)}`` (objects as in :func:`voc_xml`); returns (images, annotations)."""
    images, anns = root / "images", root / "annotations"
    rng = np.random.default_rng(0)
    for key, ((w, h), objects) in records.items():
        (images / key).parent.mkdir(parents=True, exist_ok=True)
        (anns / key).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / f"{key}.jpg"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        (anns / f"{key}.xml").write_text(voc_xml(w, h, objects))
    return images, anns


def noise_face_image(w: int, h: int, boxes_xyxy, seed: int = 0) -> np.ndarray:
    """Background noise (values 40-119, ``seed``) + one filled ellipse ("face") with a red outline per
    ``x1 y1 x2 y2`` box; BGR (h, w, 3)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(40, 120, size=(h, w, 3), dtype=np.uint8)
    for x1, y1, x2, y2 in boxes_xyxy:
        c = (int((x1 + x2) / 2), int((y1 + y2) / 2))
        ax = (max(1, int((x2 - x1) / 2)), max(1, int((y2 - y1) / 2)))
        cv2.ellipse(img, c, ax, 0, 0, 360, (200, 170, 150), -1)
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), (0, 0, 255), 1)
    return img


def write_image(path, img: np.ndarray) -> None:
    """Write ``img`` to ``path`` (parent folders made; the write must succeed)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), img)


def write_wider_from_labels(root: Path, labels: str, sizes: Dict[str, Tuple[int, int]],
                            skip_images=()) -> Tuple[str, str]:
    """A WIDER-style set from a given label text: ``root/images/<rel>`` (face-less noise images of
    ``sizes[rel] = (w, h)``, except ``skip_images``) and ``root/gt.txt``; returns (images, labels)."""
    img_dir = root / "images"
    for rel, (w, h) in sizes.items():
        if rel in skip_images:
            continue
        write_image(img_dir / rel, noise_face_image(w, h, []))
    img_dir.mkdir(exist_ok=True)
    label = root / "gt.txt"
    label.write_text(labels)
    return str(img_dir), str(label)


def write_voc_devkit(parent: Path, extra_bad: Optional[str] = None) -> Path:
    """A VOC devkit layout under ``parent/voc`` (Annotations, JPEGImages, ImageSets/Main/trainval.txt):
    ``img1`` (80x60: a face, a difficult face, a person) and ``img2`` (64x64, no object), plus
    ``img3`` with the XML text ``extra_bad`` when given. Returns the root."""
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
        write_image(root / "JPEGImages" / f"{k}.jpg", noise_face_image(w, h, []))
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(ann) + "\n")
    return root


BLOB_FACES = {"p1": [(10, 10, 50, 60), (100, 20, 140, 70)], "p2": [(30, 40, 90, 110)]}


def write_blob_voc_set(root: Path, faces: Dict[str, list] = BLOB_FACES) -> Tuple[Path, Path]:
    """Flat VOC face set of black 160x120 PNGs with white rectangles as faces (``{key: [x1 y1 x2 y2
    pixel edges]}``): ``root/images/<key>.png`` and ``root/annotations/<key>.xml``."""
    images, anns = root / "images", root / "annotations"
    images.mkdir()
    anns.mkdir()
    for key, boxes in faces.items():
        img = np.zeros((120, 160, 3), np.uint8)
        for x1, y1, x2, y2 in boxes:
            img[y1:y2, x1:x2] = 255
        cv2.imwrite(str(images / f"{key}.png"), img)
        (anns / f"{key}.xml").write_text(voc_xml(160, 120, [("face", (x1 + 1, y1 + 1, x2, y2), 0)
                                                             for x1, y1, x2, y2 in boxes]))
    return images, anns


def write_photos(folder: Path, n: int, seed: int = 0, first_in_sub: bool = False) -> Path:
    """``folder/img_<i>.jpg``: ``n`` 160x120 images with two faces each (:func:`make_image`, one
    generator seeded ``seed``); with ``first_in_sub`` image 0 goes to ``folder/sub/``."""
    (folder / "sub" if first_in_sub else folder).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, _ = make_image(rng, (160, 120), 2)
        cv2.imwrite(str(folder / ("sub" if first_in_sub and i == 0 else "") / f"img_{i}.jpg"), img)
    return folder


def write_blank_images(images: Path, keys, size: Tuple[int, int] = (320, 300)) -> None:
    """Black ``w x h`` JPEGs ``images/<event>/<name>.jpg`` for ``"event/name"`` keys."""
    w, h = size
    for key in keys:
        (images / key.split("/")[0]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / f"{key}.jpg"), np.zeros((h, w, 3), np.uint8))


def mat_cell(items: List) -> np.ndarray:
    """A MATLAB cell array as scipy writes it: an (n, 1) object array."""
    c = np.empty((len(items), 1), dtype=object)
    for i, it in enumerate(items):
        c[i, 0] = it
    return c


def write_wider_mats(gt_dir: Path, data: Dict[str, Dict[str, Tuple]]) -> None:
    """The official WIDER ground-truth .mat files (``wider_face_val.mat`` and
    ``wider_{easy,medium,hard}_val.mat``) for ``data``: event -> name -> (boxes_xywh int (N,4),
    {subset: 1-based indices})."""
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
