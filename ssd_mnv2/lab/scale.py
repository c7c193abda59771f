"""Face scale in training against evaluation: does the crop policy show the network faces at
the sizes it must find them at test time?

:func:`augmented_faces` runs the real training augmentation (the config's crop policy, zoom-out,
flip and resize; photometric jitter is skipped, it does not move boxes) on the training images
and measures the faces of the resulting samples in network-input pixels. :func:`scale_table`
and :func:`plot_face_scales` compare such sets with the evaluation faces (``lab.faces
.collect_faces(cfg, "val", measure="original")``). Used by ``ssd-mnv2 anchors scale``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np

from ..config import Config
from .faces import FaceSet, as_config, collect_faces
from .plots import plot_face_scales
from .report import scale_table

__all__ = ["augmented_faces", "scale_row", "scale_report"]

_EDGES = (8, 16, 32, 64, 128, 256)


def augmented_faces(cfg: Union[Config, str, Path], max_images: Optional[int] = None,
                    samples_per_image: int = 2, seed: int = 0, dataset=None) -> FaceSet:
    """Faces of training samples as the network sees them (``image_size`` square crops; with
    ``data.canvas_sizes`` each sample on a canvas drawn from them, as batches are in training).

    Every kept box counts, also faces that would then be dropped or ignored as too small
    (``data.min_train_face_px``) and ignore regions: the point is to see where faces land."""
    from ..data.pipeline import build_augment, build_dataset, canvas_sizes

    cfg = as_config(cfg)
    d = cfg.data
    if dataset is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = build_dataset(cfg, "train")
    aug = build_augment(cfg, photometric=False)
    aug.min_face_px, aug.small_faces = 0.0, "drop"  # keep every face: we look where faces land
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    sizes = canvas_sizes(cfg)
    inputs: List = []
    boxes: List[np.ndarray] = []
    for i in range(n):
        W, H = dataset.image_size(i)
        img = np.zeros((H, W, 3), np.uint8)  # geometry only: no need to decode the image
        faces = np.asarray(dataset.boxes(i), np.float32).reshape(-1, 4)
        faces = np.concatenate([faces, np.zeros((len(faces), 1), np.float32)], axis=1)  # ignore flag
        for k in range(samples_per_image):
            rng = np.random.default_rng([seed, k, i])
            size = sizes[int(rng.integers(len(sizes)))] if len(sizes) > 1 else sizes[0]
            _, b = aug(img, faces, rng, size)
            inputs.append((size, size))
            boxes.append(b[:, :4])
    src = getattr(dataset, "label_path", "train")
    canvases = f", canvases {list(sizes)}" if len(sizes) > 1 else ""
    return FaceSet(inputs, boxes, measure=f"augmented ({d.crop_policy} crops {list(d.crop_scale)}{canvases})",
                   source=str(src), image_size=cfg.model.image_size)


def scale_row(name: str, faces: FaceSet) -> Dict[str, Any]:
    """Percentiles of face size (sqrt(w*h), px at the network input) and shares per size bin."""
    s = faces.sizes()
    row: Dict[str, Any] = {"set": name, "faces": int(len(s)),
                           "faces_per_image": round(len(s) / max(1, faces.num_images), 2)}
    for q in (10, 25, 50, 75, 90):
        row[f"p{q}"] = float(np.percentile(s, q)) if len(s) else None
    lo = 0
    for e in _EDGES:
        row[f"{lo}-{e}"] = float(np.mean((s >= lo) & (s < e))) if len(s) else None
        lo = e
    row[f">={lo}"] = float(np.mean(s >= lo)) if len(s) else None
    return row


def scale_report(configs: Mapping[str, Union[Config, str, Path]], out_dir: Union[str, Path],
                 eval_size: str = "original", max_images: Optional[int] = None,
                 samples_per_image: int = 2, seed: int = 0) -> Dict[str, Any]:
    """Evaluation faces (the first config's val split at ``eval_size``) against the training
    samples of every config; writes ``scale.md``, ``scale.json`` and ``scale.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(configs)
    first = as_config(configs[names[0]])
    sets: Dict[str, FaceSet] = {f"evaluation ({eval_size})": collect_faces(first, "val", measure=eval_size)}
    for name in names:
        sets[f"training: {name}"] = augmented_faces(configs[name], max_images, samples_per_image, seed)
    rows = [scale_row(k, v) for k, v in sets.items()]
    table = scale_table(rows)
    (out / "scale.md").write_text(
        "Face size sqrt(w*h) in network-input pixels: percentiles, and the share of faces per "
        "size bin.\n\n" + table + "\n", encoding="utf-8")
    (out / "scale.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    png = plot_face_scales(sets, out / "scale.png")
    return {"rows": rows, "table": table, "png": png}
