"""Preview grid of augmented samples (matplotlib Agg canvas; no pyplot, no global backend change)."""
from __future__ import annotations

import inspect
import math
import os
from typing import Callable, Optional

import numpy as np

__all__ = ["save_preview_grid"]


def _accepts_rng(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "rng" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def save_preview_grid(dataset, augment: Optional[Callable], png_path: str, n: int = 16,
                      seed: int = 0) -> str:
    """Draw ``n`` samples of ``dataset`` passed through ``augment`` (``None``: raw samples) with
    their boxes on a grid and save it as a PNG.  ``augment`` gets ``rng=`` when it accepts it
    (e.g. :class:`~ssd_mnv2.data.transforms.TrainAugment`), so the grid is reproducible for a
    given ``seed``.  Returns ``png_path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if len(dataset) == 0:
        raise ValueError("save_preview_grid: the data set is empty")
    n = int(n)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset), size=n, replace=len(dataset) < n)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig = Figure(figsize=(3 * cols, 3 * rows), dpi=80)
    FigureCanvasAgg(fig)
    pass_rng = augment is not None and _accepts_rng(augment)
    for j in range(rows * cols):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.axis("off")
        if j >= n:
            continue
        i = int(idx[j])
        img, boxes = dataset[i]
        if augment is not None:
            img, boxes = augment(img, boxes, rng=rng) if pass_rng else augment(img, boxes)
        ax.imshow(img)
        boxes = np.asarray(boxes, np.float32)
        if boxes.ndim != 2:
            boxes = boxes.reshape(-1, 4)
        for b in boxes:
            ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False,
                                   edgecolor="lime", linewidth=1.0))
        ax.set_title(f"#{i}: {len(boxes)} faces, {img.shape[1]}x{img.shape[0]}", fontsize=8)
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(png_path))
    os.makedirs(d, exist_ok=True)
    fig.savefig(png_path, format="png")
    return png_path
