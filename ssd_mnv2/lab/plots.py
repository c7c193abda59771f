"""Figures of the anchor lab: face statistics, coverage, sweep, face scales and the anchors of
each level drawn on an image. pyplot is headless (Agg) unless already set up or in Jupyter."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..anchors import feature_sizes
from ..config import Config
from .faces import BIN_LABELS, SIZE_EDGES, ConfigLike, FaceSet, as_config, input_geometry

__all__ = ["pyplot", "savefig", "plot_face_stats", "plot_coverage", "plot_sweep", "plot_face_scales",
           "draw_level_anchors"]

def savefig(fig, png: Union[str, Path]) -> str:
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(str(png), dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(png)


def pyplot():
    """pyplot; headless (Agg) unless pyplot is already set up or we run inside a Jupyter kernel."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "ipykernel" not in sys.modules:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_face_stats(faces: FaceSet, png: Union[str, Path], anchor_cfg: Optional[Config] = None
                    ) -> str:
    """Histograms of face size (log) and aspect ratio, plus size vs ratio; anchor sizes as lines."""
    plt = pyplot()
    s, r = faces.sizes(), faces.ratios()
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
    if len(s):
        bins = np.logspace(np.log10(max(s.min(), 1.0)), np.log10(max(s.max(), 2.0)), 40)
        ax[0].hist(s, bins=bins, color="tab:blue", alpha=.8)
        ax[0].set_xscale("log")
        for e in SIZE_EDGES:
            ax[0].axvline(e, color="gray", ls=":", lw=1)
        if anchor_cfg is not None:
            for lv in anchor_cfg.anchors.sizes:
                for a in lv:
                    ax[0].axvline(a, color="tab:red", lw=1, alpha=.7)
        ax[1].hist(np.clip(r, 0.2, 2.5), bins=np.linspace(0.2, 2.5, 47), color="tab:green", alpha=.8)
        ax[1].axvline(np.median(r), color="k", lw=1.5, label=f"median {np.median(r):.2f}")
        ax[1].legend()
        ax[2].scatter(s, np.clip(r, 0.2, 2.5), s=2, alpha=.25)
        ax[2].set_xscale("log")
    ax[0].set_xlabel("face size sqrt(w*h) px" + (" (red: anchor sizes)" if anchor_cfg else ""))
    ax[0].set_ylabel("faces")
    ax[1].set_xlabel("aspect ratio w/h (clipped to 0.2-2.5)")
    ax[2].set_xlabel("face size px")
    ax[2].set_ylabel("w/h")
    fig.suptitle(faces.describe(), fontsize=9)
    return savefig(fig, png)


def plot_coverage(results: Sequence[Mapping[str, Any]], png: Union[str, Path]) -> str:
    """Coverage @ both thresholds and mean best IoU vs face-size bin, one line per config."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    x = np.arange(len(BIN_LABELS))
    for r in results:
        for a, key in zip(ax, ("cov_50", "cov_35", "mean_best_iou")):
            y = [np.nan if b[key] is None else b[key] for b in r["bins"]]
            a.plot(x, y, marker="o", label=f"{r['name']} ({r['anchors']})")
    t_hi, t_lo = results[0]["thresholds"] if results else (0.5, 0.35)
    for a, t in zip(ax, (f"faces covered (best IoU >= {t_hi})", f"faces covered (best IoU >= {t_lo})",
                         "mean best IoU")):
        a.set_xticks(x)
        a.set_xticklabels(BIN_LABELS)
        a.set_xlabel("face size sqrt(w*h), px at the network input")
        a.set_title(t, fontsize=10)
        a.set_ylim(0, 1.02)
        a.grid(alpha=.3)
    ax[0].legend(fontsize=8, title="config (anchors)", title_fontsize=8)
    if results:
        fig.suptitle(results[0]["measure"], fontsize=9)
    return savefig(fig, png)


def plot_sweep(rows: Sequence[Mapping[str, Any]], png: Union[str, Path],
               budget: Optional[Mapping[str, Any]] = None) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(rows)), 4))
    x = np.arange(len(rows))
    for j, sub in enumerate(("easy", "medium", "hard")):
        v = [np.nan if r[f"ap_{sub}"] is None else r[f"ap_{sub}"] for r in rows]
        ax.bar(x + (j - 1) * 0.27, v, 0.27, label=sub)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r['name']}\n{r['anchors']} anchors" for r in rows], fontsize=8)
    ax.set_ylabel("WIDER dev AP")
    ax.legend()
    ax.grid(axis="y", alpha=.3)
    if budget:
        ax.set_title(f"{budget['epochs']}x{budget['max_iters_per_epoch']} it, batch "
                     f"{budget['batch_size']}, eval {budget['eval_size']} on "
                     f"{rows[0]['eval_images'] if rows else budget['eval_images']} imgs", fontsize=9)
    return savefig(fig, png)


def plot_face_scales(sets: Mapping[str, FaceSet], png: Union[str, Path]) -> str:
    """Histograms (log size axis) of face size, one line per set."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.logspace(0, np.log10(1024), 41)
    for name, fs in sets.items():
        s = fs.sizes()
        if len(s):
            ax.hist(s, bins=bins, weights=np.full(len(s), 1.0 / len(s)), histtype="step",
                    linewidth=1.6, label=f"{name} ({len(s)})")
    ax.set_xscale("log")
    ax.set_xlabel("face size sqrt(w*h), px at the network input")
    ax.set_ylabel("share of faces per bin (log-spaced bins)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("face scale: training samples vs evaluation")
    fig.tight_layout()
    return savefig(fig, png)


def draw_level_anchors(image_rgb: np.ndarray, cfg: ConfigLike, png: Optional[Union[str, Path]] = None,
                       locations: Sequence[Tuple[float, float]] = ((0.25, 0.3), (0.5, 0.5), (0.75, 0.7)),
                       faces_xyxy: Optional[np.ndarray] = None, measure: str = "train"):
    """One panel per level: the image resized to the network input (``measure``) with the full
    anchor set of that level drawn at a few ``locations`` (fractions of width/height, snapped to
    the nearest anchor centre) and, optionally, the faces. Returns the figure (saved to ``png``).

    Note: the global-pool level (if any) has one anchor centred at ``(image_size/2, image_size/2)``
    whatever the input size, exactly as the network uses it."""
    import cv2

    plt = pyplot()
    cfg = as_config(cfg)
    H, W = image_rgb.shape[:2]
    in_w, in_h, fx, fy = input_geometry(cfg, W, H, measure)
    img = cv2.resize(image_rgb, (in_w, in_h), interpolation=cv2.INTER_AREA)
    L = cfg.model.num_levels
    ncol = min(3, L)
    nrow = int(math.ceil(L / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 4.6 * nrow * in_h / max(in_w, 1) + 0.6))
    axes = np.atleast_1d(axes).ravel()
    strides = cfg.model.strides()
    fsz = feature_sizes(cfg.model, in_h, in_w)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for lv in range(L):
        a = axes[lv]
        a.imshow(img)
        if faces_xyxy is not None:
            for x1, y1, x2, y2 in np.asarray(faces_xyxy, np.float64).reshape(-1, 4):
                a.add_patch(plt.Rectangle((x1 * fx, y1 * fy), (x2 - x1) * fx, (y2 - y1) * fy,
                                          fill=False, ec="white", lw=0.8, ls="--"))
        fh, fw = fsz[lv]
        s = strides[lv]
        off = cfg.anchors.offset
        lim = [0.0, 0.0, float(in_w), float(in_h)]  # x0 y0 x1 y1 of everything drawn
        for (u, v) in locations:
            ix = int(min(fw - 1, max(0, round(u * in_w / s - off))))
            iy = int(min(fh - 1, max(0, round(v * in_h / s - off))))
            cx, cy = (ix + off) * s, (iy + off) * s
            k = 0
            for size in cfg.anchors.sizes[lv]:
                for r in cfg.anchors.ratios[lv]:
                    w, h = size * math.sqrt(r), size / math.sqrt(r)
                    a.add_patch(plt.Rectangle((cx - w / 2, cy - h / 2), w, h, fill=False,
                                              ec=colors[k % len(colors)], lw=1.4))
                    lim = [min(lim[0], cx - w / 2), min(lim[1], cy - h / 2),
                           max(lim[2], cx + w / 2), max(lim[3], cy + h / 2)]
                    k += 1
            a.plot([cx], [cy], "+", color="yellow", ms=6)
        a.set_title(f"level {lv}: stride {s}, {fh}x{fw} cells, {cfg.anchors.per_location()[lv]}/loc\n"
                    f"sizes {list(cfg.anchors.sizes[lv])} ratios {list(cfg.anchors.ratios[lv])}", fontsize=8)
        a.set_xlim(lim[0] - 4, lim[2] + 4)
        a.set_ylim(lim[3] + 4, lim[1] - 4)
        a.axis("off")
    for a in axes[L:]:
        a.axis("off")
    if png is not None:
        fig.tight_layout()
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(str(png), dpi=80)
    return fig
