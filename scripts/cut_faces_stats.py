"""How often the training crop cuts faces, with the real crop function (no image decoded).

For each training image, one random square crop per pass (``random_square_crop`` with the
config's ``data.crop_scale``, ``data.cut_faces: ignore`` bookkeeping): counts the faces kept as
faces, the faces less than ``min_visible`` inside whose centre is inside (the centre rule keeps
them as faces: face parts) and those whose centre is outside (the centre rule makes them
background). Faces under ``data.min_train_face_px`` after the resize are left out of all counts.

    python scripts/cut_faces_stats.py --config configs/face_mnv2_fpn_300.yaml [--passes 2]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/face_mnv2_fpn_300.yaml")
    p.add_argument("--passes", type=int, default=2, help="crops per image")
    p.add_argument("--min-visible", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from ssd_mnv2.config import load_config
    from ssd_mnv2.data.pipeline import build_dataset
    from ssd_mnv2.data.transforms import random_square_crop

    cfg = load_config(args.config)
    ds = build_dataset(cfg, "train")
    rng = np.random.default_rng(args.seed)
    size, min_px = cfg.model.image_size, cfg.data.min_train_face_px
    faces = parts = outside = 0

    def counted(out: np.ndarray, side: int) -> np.ndarray:  # big enough to be a target
        return np.maximum(out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]) * size / side >= min_px

    for _ in range(args.passes):
        for i in range(len(ds)):
            W, H = ds.image_size(i)
            b = ds.boxes(i).reshape(-1, 4)
            boxes = np.concatenate([b, np.zeros((len(b), 1), np.float32)], 1)
            img = np.broadcast_to(np.zeros(3, np.uint8), (H, W, 3))  # geometry only
            state = rng.bit_generator.state  # the same crop in both modes (they draw alike)
            crop, centre_rule = random_square_crop(img, boxes, rng, tuple(cfg.data.crop_scale))
            rng.bit_generator.state = state
            _, cut_rule = random_square_crop(img, boxes, rng, tuple(cfg.data.crop_scale),
                                             min_visible=args.min_visible)
            side = crop.shape[0]
            n_centre = int(counted(centre_rule, side).sum())             # centre inside
            n_whole = int((counted(cut_rule, side) & (cut_rule[:, 4] == 0)).sum())  # >= min_visible inside
            n_cut = int((counted(cut_rule, side) & (cut_rule[:, 4] == 1)).sum())
            faces += n_whole
            parts += n_centre - n_whole    # >= min_visible inside implies the centre is inside
            outside += n_cut - (n_centre - n_whole)
    n = faces + parts
    print(f"{args.config}: {args.passes} crop(s) per image, canvas {size}, crops {list(cfg.data.crop_scale)}")
    print(f"faces at least {args.min_visible:.0%} inside: {faces}")
    print(f"cut faces with the centre inside (kept as faces by the centre rule): {parts} "
          f"({parts / max(n, 1):.1%} of the faces that rule keeps)")
    print(f"cut faces with the centre outside (background under the centre rule): {outside} "
          f"({outside / max(n, 1):.1%} as many as the faces it keeps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
