"""A tiny WIDER-FACE-shaped data set (noise images with ellipse "faces", labels, .mat ground truth)
for the notebook, the tests and ``configs/tiny.yaml``."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import numpy as np

__all__ = ["make_synthetic_widerface"]

def _synthetic_image(rng: np.random.Generator, w: int, h: int, boxes: np.ndarray) -> np.ndarray:
    import cv2

    img = rng.integers(30, 110, size=(h, w, 3), dtype=np.uint8)
    for x1, y1, x2, y2 in boxes:
        c = (int((x1 + x2) / 2), int((y1 + y2) / 2))
        ax = (max(1, int((x2 - x1) / 2)), max(1, int((y2 - y1) / 2)))
        cv2.ellipse(img, c, ax, 0, 0, 360, (150, 170, 205), -1)
        ey = int(y1 + 0.4 * (y2 - y1))
        for ex in (x1 + 0.3 * (x2 - x1), x1 + 0.7 * (x2 - x1)):
            cv2.circle(img, (int(ex), ey), max(1, int((x2 - x1) / 10)), (40, 40, 40), -1)
    return img


def _write_split(root: Path, split: str, n: int, rng: np.random.Generator, event: str
                 ) -> Dict[str, Tuple[np.ndarray, Tuple[int, int]]]:
    import cv2

    images = root / split / "images" / event
    images.mkdir(parents=True, exist_ok=True)
    lines, records = [], {}
    for i in range(n):
        W, H = int(rng.choice([320, 400, 480])), int(rng.choice([240, 300, 360]))
        boxes = []
        for _ in range(int(rng.integers(1, 6))):
            s = float(np.exp(rng.uniform(np.log(8), np.log(0.6 * min(W, H)))))
            r = float(np.clip(rng.normal(0.8, 0.1), 0.5, 1.2))
            w, h = s * math.sqrt(r), s / math.sqrt(r)
            x1, y1 = rng.uniform(0, W - w), rng.uniform(0, H - h)
            boxes.append([round(x1), round(y1), max(2, round(w)), max(2, round(h))])
        xywh = np.asarray(boxes, np.int64)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        name = f"{event.split('--')[0]}_{event.split('--')[1]}_{split}_{i:03d}"
        cv2.imwrite(str(images / f"{name}.jpg"),
                    cv2.cvtColor(_synthetic_image(rng, W, H, xyxy), cv2.COLOR_RGB2BGR))
        lines += [f"{event}/{name}.jpg", str(len(xywh))]
        lines += [f"{x} {y} {w} {h} 0 0 0 0 0 0" for x, y, w, h in xywh]
        records[name] = (xywh, (W, H))
    (root / split / f"wider_face_{split}_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    return records


def make_synthetic_widerface(root: Union[str, Path], n_train: int = 24, n_val: int = 8,
                             seed: int = 0, event: str = "0--Parade") -> List[str]:
    """Write a tiny WIDER-FACE-shaped data set (noise + ellipse "faces", ratio ~0.8, sizes
    8 px .. 0.6 min(W, H)) with official-format labels and ground-truth ``.mat`` files under
    ``root``. Returns the ``--set`` overrides that point a config's data section at it."""
    from scipy.io import savemat

    root = Path(root)
    rng = np.random.default_rng(seed)
    _write_split(root, "train", n_train, rng, event)
    val = _write_split(root, "dev", n_val, rng, event)

    def cell(items: List[Any]) -> np.ndarray:
        c = np.empty((len(items), 1), dtype=object)
        for i, it in enumerate(items):
            c[i, 0] = it
        return c

    names = sorted(val)
    gt = root / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    base = {"event_list": cell([np.array([event])]),
            "file_list": cell([cell([np.array([n]) for n in names])]),
            "face_bbx_list": cell([cell([val[n][0].astype(np.int32) for n in names])])}
    savemat(str(gt / "wider_face_val.mat"), base)
    for sub in ("easy", "medium", "hard"):
        gl = cell([cell([np.arange(1, len(val[n][0]) + 1, dtype=np.float64).reshape(-1, 1)
                         for n in names])])
        savemat(str(gt / f"wider_{sub}_val.mat"), dict(base, gt_list=gl))
    return [f"data.train_images={root / 'train' / 'images'}",
            f"data.train_labels={root / 'train' / 'wider_face_train_bbx_gt.txt'}",
            f"data.val_images={root / 'dev' / 'images'}",
            f"data.val_labels={root / 'dev' / 'wider_face_dev_bbx_gt.txt'}",
            f"data.val_gt_dir={gt}"]
