"""Calibration images for int8 quantization (both engines): a fixed random sample, resized."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = ["calibration_batch"]


def calibration_batch(images: Union[str, Path, Sequence[np.ndarray]], num: int, wh: Tuple[int, int],
                      seed: int = 0, bgr: bool = False) -> np.ndarray:
    """(n, 3, h, w) float32 batch: ``num`` images (random, fixed seed) resized to ``wh``; RGB
    (the SSD's input) or, with ``bgr``, BGR (the exported graphs' input)."""
    if isinstance(images, (str, Path)):
        from ..inference import collect_images
        from ..imageio import read_image

        paths = [p for p, _ in collect_images([images])]
        random.Random(seed).shuffle(paths)
        arrays = []
        for p in paths:
            if len(arrays) >= num:
                break
            try:
                arrays.append(read_image(p))
            except (ValueError, OSError):
                continue
    else:
        arrays = list(images)[:num]
    if not arrays:
        raise ValueError("no calibration image could be read")
    batch = np.empty((len(arrays), 3, wh[1], wh[0]), np.float32)
    for i, img in enumerate(arrays):
        im = cv2.resize(img, wh, interpolation=cv2.INTER_LINEAR)
        batch[i] = (im if bgr else cv2.cvtColor(im, cv2.COLOR_BGR2RGB)).transpose(2, 0, 1)
    return batch
