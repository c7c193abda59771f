"""Tiny synthetic data for tests: images with drawn 'faces' and WIDER/VOC label files."""
from __future__ import annotations

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
