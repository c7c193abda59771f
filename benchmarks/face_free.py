"""False faces on images that hold none: blank canvases, other synthetic patterns, real crops.

    python benchmarks/face_free.py                              # the shipped model
    python benchmarks/face_free.py runs/R/checkpoints/ep022-it000000 runs/S/checkpoints/...

Each positional argument is a checkpoint folder (``model.params`` + ``config.yaml``); without
any, the model of ``--model``/``--params``/``--config`` (default: the shipped model). Three sets
of face-free images, each scored at original size (the blank set also at 300x300):

- ``blank``: the regression test's images (white, black, grey, uniform noise; 640x480), at
  original size and 300x300: 8 cases (tests/test_shipped_model.py); and once more at original
  size without the input padding (``eval.pad_multiple=0``: a cut last cell of the coarsest
  levels), which shows how much a model relies on the padding;
- ``patterns``: synthetic images no training option draws (gradients, checkerboards, stripes,
  blurred colour noise, random shapes, salt-and-pepper; 640x480);
- ``dev crops``: from each WIDER FACE dev image, one random square crop (0.3-1 of the short side)
  that overlaps no labelled face (``invalid`` ones included), where one exists: real scenes with
  no face in them (WIDER leaves some tiny crowd faces unlabelled, so a few hits may be real).

Columns per set: images, the share with a detection >= 0.5, the mean and the largest top score.
Prints a Markdown table and writes it to ``--out``/face_free.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pattern_images(h: int = 480, w: int = 640) -> Dict[str, np.ndarray]:
    """Face-free synthetic BGR uint8 images that no training option (``data.background_kinds``) draws."""
    import cv2

    rng = np.random.default_rng(123)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out: Dict[str, np.ndarray] = {}
    out["gradient-h"] = np.repeat((xx / (w - 1) * 255)[..., None], 3, axis=2)
    out["gradient-v-colour"] = np.stack([yy / (h - 1) * 255, 255 - yy / (h - 1) * 255,
                                         np.full_like(yy, 90)], axis=2)
    r = np.hypot(xx - w / 2, yy - h / 2)
    out["gradient-radial"] = np.repeat((255 * (1 - r / r.max()))[..., None], 3, axis=2)
    for cell in (16, 64):
        board = (((xx // cell) + (yy // cell)) % 2) * 255
        out[f"checkerboard-{cell}"] = np.repeat(board[..., None], 3, axis=2)
    out["stripes"] = np.repeat((((xx + yy) // 24) % 2 * 200 + 30)[..., None], 3, axis=2)
    blurred = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 8)
    out["blurred-noise"] = (blurred - blurred.mean()) * 6 + 128
    shapes = np.full((h, w, 3), 200, np.uint8)
    for _ in range(25):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        a, b = int(rng.integers(10, 120)), int(rng.integers(10, 120))
        if rng.random() < 0.5:
            cv2.rectangle(shapes, (x, y), (x + a, y + b), colour, -1)
        else:
            cv2.ellipse(shapes, (x, y), (a, b), float(rng.uniform(0, 180)), 0, 360, colour, -1)
    out["shapes"] = shapes
    sp = np.full((h, w), 128, np.float32)
    u = rng.random((h, w))
    sp[u < 0.05], sp[u > 0.95] = 0, 255
    out["salt-and-pepper"] = np.repeat(sp[..., None], 3, axis=2)
    return {k: np.clip(v, 0, 255).astype(np.uint8) for k, v in out.items()}


def dev_crops(images_dir: str, labels: str) -> Dict[str, np.ndarray]:
    """One face-free square crop (0.3-1 of the short side) per dev image where one exists."""
    from ssd_mnv2.boxes import xywh_to_xyxy
    from ssd_mnv2.data.transforms import face_free_crop
    from ssd_mnv2.data.widerface import parse_wider_labels
    from ssd_mnv2.imageio import read_image_bgr

    out = {}
    for i, rec in enumerate(parse_wider_labels(labels, allow_degenerate=True)):
        img = read_image_bgr(os.path.join(images_dir, rec.rel_path))
        boxes_xyxy_px = xywh_to_xyxy(rec.boxes_xywh_px.reshape(-1, 4))
        crop = face_free_crop(img, boxes_xyxy_px, np.random.default_rng([7, i]), (0.3, 1.0))
        if crop is not None:
            out[rec.rel_path] = crop
    return out


def score_set(predict: Callable, images: Dict[str, np.ndarray], size: str) -> Dict[str, float]:
    top = [float(predict(img, size)[1].max(initial=0.0)) for img in images.values()]
    return {"images": len(top), "share_ge_0.5": float(np.mean(np.asarray(top) >= 0.5)) if top else 0.0,
            "mean_top": float(np.mean(top)) if top else 0.0, "max_top": max(top, default=0.0)}


def main(argv=None) -> int:
    from ssd_mnv2.commands import add_engine_args, add_model_args

    p = argparse.ArgumentParser(prog="benchmarks/face_free.py", description=__doc__.split("\n\n")[0])
    add_model_args(p)
    add_engine_args(p)
    p.add_argument("checkpoints", nargs="*", help="checkpoint folders (model.params + config.yaml)")
    p.add_argument("--dev-images", default="../shared/data/widerface/dev/images")
    p.add_argument("--dev-labels", default="../shared/data/widerface/dev/wider_face_dev_bbx_gt.txt")
    p.add_argument("--no-dev", action="store_true", help="skip the dev-crop set")
    p.add_argument("--out", default="outputs/face_free")
    args = p.parse_args(argv)
    from ssd_mnv2.commands import backend_detector, each_model
    from ssd_mnv2.data.synthetic import BLANK_IMAGES

    blanks = {k: f() for k, f in BLANK_IMAGES.items()}
    sets: List[Tuple[str, Dict[str, np.ndarray], str]] = [
        ("blank original", blanks, "original"), ("blank 300x300", blanks, "300x300"),
        ("patterns", pattern_images(), "original")]
    if not args.no_dev:
        sets.append(("dev crops", dev_crops(args.dev_images, args.dev_labels), "original"))
    rows = []
    for name in each_model(args, args.checkpoints):
        det = backend_detector(args)
        predict = lambda img, size: det.predict(img, size=size, threshold=0.0)  # noqa: E731
        scores = {s: score_set(predict, imgs, size) for s, imgs, size in sets}
        overrides = args.overrides
        args.overrides = list(overrides) + ["eval.pad_multiple=0"]
        unpadded = backend_detector(args)
        args.overrides = overrides
        scores["blank unpadded"] = score_set(
            lambda img, size: unpadded.predict(img, size=size, threshold=0.0), blanks, "original")
        rows.append({"model": name, "sets": scores})
        print(f"{name}: " + ", ".join(f"{s} {v['share_ge_0.5']:.3f} (max {v['max_top']:.2f})"
                                      for s, v in rows[-1]["sets"].items()), file=sys.stderr, flush=True)
    names = list(rows[0]["sets"])
    head = "| model | " + " | ".join(f"{s}: n, >= 0.5, mean top, max top" for s in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]
    for r in rows:
        cells = [f"{v['images']}, {v['share_ge_0.5']:.3f}, {v['mean_top']:.3f}, {v['max_top']:.3f}"
                 for v in r["sets"].values()]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "face_free.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    from ssd_mnv2.bench import run_script

    run_script(main, "benchmarks/face_free.py")
