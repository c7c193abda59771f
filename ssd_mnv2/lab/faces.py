"""Faces of a data set measured at network-input scale (see the package doc for where faces are
measured), the face-size bins, and config arguments given as a Config or a YAML path."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..config import Config, load_config

__all__ = ["SIZE_EDGES", "BIN_LABELS", "ConfigLike", "size_bin", "as_config", "config_name",
           "input_geometry", "FaceSet", "collect_faces"]

SIZE_EDGES: Tuple[float, ...] = (16.0, 32.0, 64.0, 128.0, 256.0)
BIN_LABELS: Tuple[str, ...] = ("<16", "16-32", "32-64", "64-128", "128-256", ">256")
ConfigLike = Union[Config, str, Path]


def size_bin(sizes: Union[float, Sequence[float], np.ndarray]) -> np.ndarray:
    """Index into :data:`BIN_LABELS` of each face size (lower edges inclusive: 16 -> ``16-32``)."""
    return np.digitize(np.asarray(sizes, dtype=np.float64), SIZE_EDGES, right=False)


def as_config(c: ConfigLike) -> Config:
    return c if isinstance(c, Config) else load_config(c)


def config_name(c: ConfigLike, i: int = 0) -> str:
    return Path(c).stem if not isinstance(c, Config) else f"config{i}"


def input_geometry(cfg: Config, width: int, height: int, measure: str = "train"
                   ) -> Tuple[int, int, float, float]:
    """Network input ``(in_w, in_h, fx, fy)`` for an image of ``width x height`` under ``measure``.

    ``"train"``: scale ``f = model.image_size / min(W, H)`` (the training resize of a crop of
    scale 1, see the module doc); otherwise a size spec resolved as the Detector does.
    """
    limit = cfg.anchors.max_input_size
    if measure is None or str(measure).strip().lower() == "train":
        f = cfg.model.image_size / float(min(width, height))
        in_w, in_h = max(1, int(round(width * f))), max(1, int(round(height * f)))
    else:
        from ..sizes import resolve_size

        in_w, in_h = resolve_size(measure, width, height)
    if max(in_w, in_h) > limit:  # same cap as Detector.input_size
        s = limit / float(max(in_w, in_h))
        in_w, in_h = max(32, int(in_w * s)), max(32, int(in_h * s))
    return in_w, in_h, in_w / float(width), in_h / float(height)


@dataclass
class FaceSet:
    """Faces of a data set in network-input pixels, per image.

    ``inputs[i] = (in_w, in_h)`` is image i's network input; ``boxes[i]`` its faces, float32
    ``(N, 4)`` xyxy in that input's pixels.
    """

    inputs: List[Tuple[int, int]]
    boxes: List[np.ndarray]
    measure: str = "train"
    source: str = ""
    image_size: int = 0

    @property
    def num_images(self) -> int:
        return len(self.inputs)

    @property
    def num_faces(self) -> int:
        return int(sum(len(b) for b in self.boxes))

    def wh(self) -> np.ndarray:
        """(N, 2) widths and heights of all faces."""
        if not self.boxes:
            return np.zeros((0, 2), np.float64)
        b = np.concatenate([x.reshape(-1, 4) for x in self.boxes], 0).astype(np.float64)
        return b[:, 2:4] - b[:, 0:2]

    def sizes(self) -> np.ndarray:
        wh = self.wh()
        return np.sqrt(wh[:, 0] * wh[:, 1])

    def ratios(self) -> np.ndarray:
        wh = self.wh()
        return wh[:, 0] / np.maximum(wh[:, 1], 1e-9)

    def describe(self) -> str:
        if self.measure in (None, "train"):
            how = (f"training resize: faces x image_size/min(W,H) (image_size {self.image_size}, "
                   "crop scale 1)")
        else:
            how = f"inference resize '{self.measure}'"
        return f"{self.num_faces} faces in {self.num_images} images of {self.source}; {how}"


def collect_faces(cfg: ConfigLike, split: str = "val", measure: str = "train", dataset=None,
                  max_images: Optional[int] = None, min_face_px: float = 0.0) -> FaceSet:
    """Faces of ``cfg``'s data set (``split`` train/val) measured at network-input scale.

    ``dataset`` overrides the configured one (anything with ``len``, ``image_size(i) -> (W, H)``
    and ``boxes(i)``). ``min_face_px`` drops faces with ``max(w, h)`` below it after the resize.
    """
    cfg = as_config(cfg)
    if dataset is None:
        from ..data.pipeline import build_dataset
        import warnings

        with warnings.catch_warnings():  # skip_bad problems are summarised by the data set
            warnings.simplefilter("ignore")
            dataset = build_dataset(cfg, "train" if split == "train" else "val")
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    inputs, boxes = [], []
    for i in range(n):
        W, H = dataset.image_size(i)
        in_w, in_h, fx, fy = input_geometry(cfg, W, H, measure)
        b = np.asarray(dataset.boxes(i), np.float32).reshape(-1, 4)[:, :4].copy()
        b[:, [0, 2]] *= fx
        b[:, [1, 3]] *= fy
        if min_face_px > 0 and len(b):
            b = b[np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) >= min_face_px]
        inputs.append((in_w, in_h))
        boxes.append(b)
    src = getattr(dataset, "label_path", None) or getattr(dataset, "images_dir", None) or split
    return FaceSet(inputs, boxes, measure=str(measure or "train"), source=str(src),
                   image_size=cfg.model.image_size)
