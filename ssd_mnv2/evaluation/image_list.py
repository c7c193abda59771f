"""Which images are evaluated: ``event/name.jpg`` list files, the images under ``<dir>/<event>/``,
and the ``"event/name"`` key of an image path."""
from __future__ import annotations

import os
from typing import List, Tuple

__all__ = ["IMAGE_EXTS", "key_from_path", "read_image_list", "find_images"]

IMAGE_EXTS: Tuple[str, ...] = (".jpg", ".jpeg", ".png")


def key_from_path(path: str) -> str:
    """``"event/name.jpg"`` (or with leading folders) -> ``"event/name"``."""
    path = path.strip().replace("\\", "/")
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        raise ValueError(f"expected an 'event/name.jpg' path, got {path!r}")
    return f"{parts[-2]}/{os.path.splitext(parts[-1])[0]}"


def read_image_list(list_file: str) -> List[str]:
    """Read ``event/name.jpg`` lines (blank lines and ``#`` comments skipped)."""
    with open(list_file, "r") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def find_images(images_dir: str) -> List[str]:
    """``event/name.ext`` of every image under ``images_dir/<event>/``, sorted."""
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"images folder not found: {images_dir}")
    found = []
    for event in sorted(os.listdir(images_dir)):
        ev_dir = os.path.join(images_dir, event)
        if not os.path.isdir(ev_dir):
            continue
        for name in sorted(os.listdir(ev_dir)):
            if name.lower().endswith(IMAGE_EXTS):
                found.append(f"{event}/{name}")
    if not found:
        raise FileNotFoundError(f"no images found under {images_dir}/<event>/")
    return found
