"""Anchor lab: measure faces, compare anchor configurations, propose anchors, run short sweeps.

Everything the ``ssd-mnv2 anchors`` command does is a function here, so a notebook makes the
same calls (``notebooks/anchor_experiments.ipynb``).

Conventions
-----------
* **Face size** ``= sqrt(w * h)`` in pixels of the network input (the same convention as an
  anchor's ``size``: an anchor of size ``s`` and ratio ``r`` has ``w * h = s**2``);
  **aspect ratio** ``= w / h`` (the config's ratio convention).
* **Size bins**: ``<16, 16-32, 32-64, 64-128, 128-256, >256`` px; a face of size exactly 16
  is in ``16-32`` (lower edges inclusive).
* **Where faces are measured** (``measure``), for ``stats``, ``coverage`` and ``suggest``:

  - ``"train"`` (default): **the training resize**. A training sample is a square crop of side
    ``c * min(W, H)`` (``c ~ U(data.crop_scale)``) resized to ``model.image_size``; we take the
    least-zoomed crop ``c = 1``, i.e. every face of the image is scaled by
    ``f = image_size / min(W, H)``. To keep every face (not only those of one crop) the whole
    image is scaled by ``f`` and the anchors are those the fully convolutional network lays on
    that ``round(W f) x round(H f)`` input (:func:`ssd_mnv2.anchors.generate_anchors`); the
    anchor grid, its stride and sizes are the same as in the ``image_size`` square crop.
    Smaller crops (``c < 1``) make the faces of a training sample ``1 / c`` times larger
    (up to ``1 / crop_scale[0]``, x3.3 for the shipped ``[0.3, 1.0]``).
  - any size spec of :func:`ssd_mnv2.sizes.resolve_size` (``"max-side 640"``, ``"640x480"``,
    ``"original"``): the image resized exactly as :class:`ssd_mnv2.predictor.Detector` does
    at inference with that ``size`` (including the ``anchors.max_input_size`` cap).

  Faces are measured once with the *data* config (its ``model.image_size`` and data paths);
  each anchor config then lays its own anchors on those inputs.
* **Coverage**: for each face, IoU with every anchor of its image's input; a face is *covered*
  at ``t`` when its best IoU is ``>= t``. Matched anchors = anchors with IoU ``>= 0.5`` (what
  the target encoder's threshold matching uses with ``match.iou_thresh = 0.5``, before the
  bipartite best-anchor match which gives every face one anchor anyway).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .anchors import anchor_counts, feature_sizes, generate_anchors
from .boxes import cxcywh_to_xyxy, iou_matrix
from .config import Config, config_to_dict, dump_config, load_config

__all__ = [
    "SIZE_EDGES", "BIN_LABELS", "size_bin", "FaceSet", "input_geometry", "collect_faces",
    "face_stats", "format_stats_table", "plot_face_stats", "write_stats",
    "coverage", "compare_coverage", "format_coverage_table", "plot_coverage", "write_coverage",
    "centered_iou", "kmeans_iou", "assign_levels", "level_ranges", "suggest_anchors",
    "anchor_summary", "run_sweep", "format_sweep_table", "plot_sweep",
    "draw_level_anchors", "make_synthetic_widerface", "markdown_table",
]

SIZE_EDGES: Tuple[float, ...] = (16.0, 32.0, 64.0, 128.0, 256.0)
BIN_LABELS: Tuple[str, ...] = ("<16", "16-32", "32-64", "64-128", "128-256", ">256")

ConfigLike = Union[Config, str, Path]


# ------------------------------------------------------------------------------------- helpers
def size_bin(sizes: Union[float, Sequence[float], np.ndarray]) -> np.ndarray:
    """Index into :data:`BIN_LABELS` of each face size (lower edges inclusive: 16 -> ``16-32``)."""
    return np.digitize(np.asarray(sizes, dtype=np.float64), SIZE_EDGES, right=False)


def _as_config(c: ConfigLike) -> Config:
    return c if isinstance(c, Config) else load_config(c)


def _name_of(c: ConfigLike, i: int = 0) -> str:
    return Path(c).stem if not isinstance(c, Config) else f"config{i}"


def _f(x: Any, nd: int = 3) -> Any:
    """JSON-friendly float (NaN -> None)."""
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else round(x, nd)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (cells converted with ``str``; None -> ``-``)."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _savefig(fig, png: Union[str, Path]) -> str:
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(str(png), dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(png)


def _plt():
    """pyplot; headless (Agg) unless pyplot is already set up or we run inside a Jupyter kernel."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "ipykernel" not in sys.modules:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------------------ measuring
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
        from .sizes import resolve_size

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
    cfg = _as_config(cfg)
    if dataset is None:
        from .data.pipeline import build_dataset
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


# ---------------------------------------------------------------------------------- statistics
def face_stats(faces: FaceSet) -> Dict[str, Any]:
    """Count, share, median size and median ratio (w/h) per size bin and overall."""
    s, r = faces.sizes(), faces.ratios()
    b = size_bin(s)
    n = max(len(s), 1)
    rows = []
    for k, lab in enumerate(BIN_LABELS):
        m = b == k
        rows.append({"bin": lab, "count": int(m.sum()), "share": float(m.sum()) / n,
                     "median_size": _f(np.median(s[m])) if m.any() else None,
                     "median_ratio": _f(np.median(r[m])) if m.any() else None,
                     "p10_ratio": _f(np.percentile(r[m], 10)) if m.any() else None,
                     "p90_ratio": _f(np.percentile(r[m], 90)) if m.any() else None})
    overall = {"bin": "all", "count": int(len(s)), "share": 1.0 if len(s) else 0.0,
               "median_size": _f(np.median(s)) if len(s) else None,
               "median_ratio": _f(np.median(r)) if len(s) else None,
               "p10_ratio": _f(np.percentile(r, 10)) if len(s) else None,
               "p90_ratio": _f(np.percentile(r, 90)) if len(s) else None}
    return {"measure": faces.describe(), "bins": rows, "overall": overall,
            "num_images": faces.num_images}


def format_stats_table(stats: Mapping[str, Any]) -> str:
    header = ["size bin (px)", "faces", "share", "median size", "median w/h", "w/h p10-p90"]
    rows = []
    for r in list(stats["bins"]) + [stats["overall"]]:
        band = (f"{r['p10_ratio']:.2f}-{r['p90_ratio']:.2f}" if r["p10_ratio"] is not None else None)
        rows.append([r["bin"], r["count"], f"{100 * r['share']:.1f}%", r["median_size"],
                     r["median_ratio"], band])
    return f"Faces measured: {stats['measure']}\n\n" + markdown_table(header, rows)


def plot_face_stats(faces: FaceSet, png: Union[str, Path], anchor_cfg: Optional[Config] = None
                    ) -> str:
    """Histograms of face size (log) and aspect ratio, plus size vs ratio; anchor sizes as lines."""
    plt = _plt()
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
    return _savefig(fig, png)


def write_stats(faces: FaceSet, out_dir: Union[str, Path], anchor_cfg: Optional[Config] = None,
                prefix: str = "face_stats") -> Dict[str, Any]:
    """``<prefix>.md``, ``<prefix>.json`` and ``<prefix>.png`` in ``out_dir``; returns the stats."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    st = face_stats(faces)
    (out / f"{prefix}.md").write_text(format_stats_table(st) + "\n")
    (out / f"{prefix}.json").write_text(json.dumps(st, indent=1))
    plot_face_stats(faces, out / f"{prefix}.png", anchor_cfg)
    st["files"] = [str(out / f"{prefix}.{e}") for e in ("md", "json", "png")]
    return st


# ------------------------------------------------------------------------------------ coverage
def coverage(anchor_cfg: ConfigLike, faces: FaceSet, thresholds: Sequence[float] = (0.5, 0.35),
             name: Optional[str] = None) -> Dict[str, Any]:
    """How well ``anchor_cfg``'s anchors cover ``faces`` (see the module doc), per size bin.

    Returns ``{"name", "anchors" (count at image_size x image_size), "per_location",
    "measure", "bins": [{bin, faces, cov_50, cov_35, mean_best_iou, mean_matched_50}],
    "overall": {...}, "seconds"}``; also the per-face ``best_iou`` / ``matched_50`` arrays
    under ``"_per_face"`` (dropped by :func:`write_coverage`).
    """
    t0 = time.perf_counter()
    nm = name or _name_of(anchor_cfg)
    cfg = _as_config(anchor_cfg)
    t_hi, t_lo = float(thresholds[0]), float(thresholds[1])
    cache: Dict[Tuple[int, int], np.ndarray] = {}
    best, matched = [], []
    for (in_w, in_h), b in zip(faces.inputs, faces.boxes):
        if len(b) == 0:
            continue
        key = (in_h, in_w)
        if key not in cache:
            if len(cache) > 256:
                cache.clear()
            cache[key] = cxcywh_to_xyxy(generate_anchors(cfg, in_h, in_w))
        iou = iou_matrix(b, cache[key])  # (F, A)
        best.append(iou.max(axis=1))
        matched.append((iou >= t_hi).sum(axis=1))
    best_iou = np.concatenate(best) if best else np.zeros(0, np.float32)
    n_match = np.concatenate(matched) if matched else np.zeros(0, np.int64)
    sizes = faces.sizes()
    bins = size_bin(sizes)

    def agg(m: np.ndarray) -> Dict[str, Any]:
        k = int(m.sum())
        if k == 0:
            return {"faces": 0, "cov_50": None, "cov_35": None, "mean_best_iou": None,
                    "mean_matched_50": None}
        return {"faces": k, "cov_50": _f((best_iou[m] >= t_hi).mean(), 4),
                "cov_35": _f((best_iou[m] >= t_lo).mean(), 4),
                "mean_best_iou": _f(best_iou[m].mean(), 4),
                "mean_matched_50": _f(n_match[m].mean(), 3)}

    rows = [dict(bin=lab, **agg(bins == k)) for k, lab in enumerate(BIN_LABELS)]
    S = cfg.model.image_size
    return {"name": nm, "anchors": int(sum(anchor_counts(cfg, S, S))), "input": f"{S}x{S}",
            "per_location": cfg.anchors.per_location(), "sizes": [list(s) for s in cfg.anchors.sizes],
            "ratios": [list(r) for r in cfg.anchors.ratios], "thresholds": [t_hi, t_lo], "measure": faces.describe(),
            "bins": rows, "overall": dict(bin="all", **agg(np.ones(len(best_iou), bool))),
            "seconds": round(time.perf_counter() - t0, 2),
            "_per_face": {"best_iou": best_iou, "matched_50": n_match, "size": sizes}}


def compare_coverage(anchor_cfgs: Union[Sequence[ConfigLike], Mapping[str, ConfigLike]],
                     faces: FaceSet, thresholds: Sequence[float] = (0.5, 0.35)
                     ) -> List[Dict[str, Any]]:
    """:func:`coverage` of several configs (a list of paths/configs, or ``{name: config}``)."""
    items = (list(anchor_cfgs.items()) if isinstance(anchor_cfgs, Mapping)
             else [(_name_of(c, i), c) for i, c in enumerate(anchor_cfgs)])
    return [coverage(c, faces, thresholds, name=n) for n, c in items]


def format_coverage_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one overall table (one row per config) and one table per metric by size bin."""
    if not results:
        return "(no configs)"
    t_hi, t_lo = results[0]["thresholds"]
    lines = [f"Faces measured: {results[0]['measure']}.",
             f"Anchors counted at the {results[0]['input']} training input. Covered = best IoU "
             f">= threshold; matched = anchors with IoU >= {t_hi}.", ""]
    head = ["config", "anchors", "A/loc", f"cov@{t_hi}", f"cov@{t_lo}", "mean best IoU",
            f"matched/face@{t_hi}"]
    rows = [[r["name"], r["anchors"], "/".join(map(str, r["per_location"])), r["overall"]["cov_50"],
             r["overall"]["cov_35"], r["overall"]["mean_best_iou"], r["overall"]["mean_matched_50"]]
            for r in results]
    lines += ["**Overall**", "", markdown_table(head, rows), ""]
    counts = [r["faces"] for r in results[0]["bins"]]
    bin_head = ["config"] + [f"{lab} (n={c})" for lab, c in zip(BIN_LABELS, counts)] + \
               [f"all (n={results[0]['overall']['faces']})"]
    for key, title in (("cov_50", f"coverage @ IoU {t_hi}"), ("cov_35", f"coverage @ IoU {t_lo}"),
                       ("mean_best_iou", "mean best IoU"),
                       ("mean_matched_50", f"mean matched anchors per face @ IoU {t_hi}")):
        rows = [[r["name"]] + [b[key] for b in r["bins"]] + [r["overall"][key]] for r in results]
        lines += [f"**{title}** by face size (px)", "", markdown_table(bin_head, rows), ""]
    return "\n".join(lines)


def plot_coverage(results: Sequence[Mapping[str, Any]], png: Union[str, Path]) -> str:
    """Coverage @ both thresholds and mean best IoU vs face-size bin, one line per config."""
    plt = _plt()
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
    return _savefig(fig, png)


def write_coverage(results: Sequence[Mapping[str, Any]], out_dir: Union[str, Path],
                   prefix: str = "coverage") -> Dict[str, str]:
    """``<prefix>.md`` / ``.json`` / ``.png`` in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{prefix}.md"
    md.write_text(format_coverage_table(results) + "\n")
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    (out / f"{prefix}.json").write_text(json.dumps(clean, indent=1))
    plot_coverage(results, out / f"{prefix}.png")
    return {"md": str(md), "json": str(out / f"{prefix}.json"), "png": str(out / f"{prefix}.png")}


# ------------------------------------------------------------------------------ k-means / suggest
def centered_iou(wh_a: np.ndarray, wh_b: np.ndarray) -> np.ndarray:
    """IoU of boxes sharing a centre: ``(N, 2) x (K, 2) -> (N, K)``."""
    a = np.asarray(wh_a, np.float64)[:, None, :]
    b = np.asarray(wh_b, np.float64)[None, :, :]
    inter = np.minimum(a[..., 0], b[..., 0]) * np.minimum(a[..., 1], b[..., 1])
    union = a[..., 0] * a[..., 1] + b[..., 0] * b[..., 1] - inter
    return inter / np.maximum(union, 1e-12)


def kmeans_iou(wh: np.ndarray, k: int, n_init: int = 4, max_iter: int = 100, seed: int = 0
               ) -> Tuple[np.ndarray, np.ndarray, float]:
    """k-means on box shapes with the distance ``1 - IoU`` (centred boxes, YOLOv2 style).

    k-means++ seeding (with ``1 - IoU``), median update, ``n_init`` restarts; returns
    ``(centroids (k, 2) sorted by area, assignment (N,), mean IoU of each box with its centroid)``.
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    n = len(wh)
    if n == 0:
        raise ValueError("kmeans_iou: no boxes")
    k = int(min(k, len(np.unique(wh, axis=0))))
    if k < 1:
        raise ValueError("kmeans_iou: k must be >= 1")
    rng = np.random.default_rng(seed)
    best: Optional[Tuple[np.ndarray, np.ndarray, float]] = None
    for _ in range(max(1, n_init)):
        cent = wh[rng.integers(n)][None]
        while len(cent) < k:
            d = 1.0 - centered_iou(wh, cent).max(axis=1)
            p = d ** 2
            if p.sum() <= 0:
                break
            cent = np.vstack([cent, wh[rng.choice(n, p=p / p.sum())]])
        assign = np.full(n, -1)
        for _it in range(max_iter):
            new = centered_iou(wh, cent).argmax(axis=1)
            if np.array_equal(new, assign):
                break
            assign = new
            for j in range(len(cent)):
                m = assign == j
                if m.any():
                    cent[j] = np.median(wh[m], axis=0)
        iou = centered_iou(wh, cent)
        assign = iou.argmax(axis=1)
        score = float(iou.max(axis=1).mean())
        if best is None or score > best[2]:
            best = (cent.copy(), assign.copy(), score)
    cent, assign, score = best
    order = np.argsort(cent[:, 0] * cent[:, 1])
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return cent[order], remap[assign], score


def level_ranges(cfg: Config) -> List[Tuple[float, float]]:
    """Face-size range each level is responsible for: ``[2 s, 8 s]`` for stride ``s``, clipped to
    ``[0, image_size]`` (a range starting above ``image_size`` collapses to ``image_size``)."""
    S = float(cfg.model.image_size)
    out = []
    for s in cfg.model.strides():
        hi = min(8.0 * s, S)
        out.append((min(2.0 * s, hi), hi))
    return out


def assign_levels(sizes: np.ndarray, cfg: Config) -> np.ndarray:
    """Level of each face size: the level whose range centre ``sqrt(lo * hi)`` (see
    :func:`level_ranges`) is nearest in log scale. With doubling strides the ranges ``[2s, 8s]``
    overlap by x4 and their centres are ``4 s``, so level ``l`` takes sizes within a factor
    sqrt(2) of ``4 s_l``; the finest level also takes everything smaller, the coarsest
    everything larger."""
    centres = np.log(np.array([math.sqrt(lo * hi) for lo, hi in level_ranges(cfg)]))
    ls = np.log(np.maximum(np.asarray(sizes, np.float64), 1e-6))
    return np.abs(ls[:, None] - centres[None, :]).argmin(axis=1)


def _round_size(x: float) -> float:
    return float(round(x * 2) / 2) if x < 64 else float(round(x))


def suggest_anchors(data_cfg: ConfigLike, levels: Optional[int] = None, k_per_level: int = 2,
                    ratios_per_level: int = 1, split: str = "train", measure: str = "train",
                    faces: Optional[FaceSet] = None, out: Optional[Union[str, Path]] = None,
                    seed: int = 0, max_images: Optional[int] = None) -> Tuple[Config, Dict[str, Any]]:
    """Propose anchors from the data: k-means (1 - IoU) on face shapes per level.

    Rule (documented in the report): faces are measured with ``measure`` (default: the
    training resize) and faces smaller than ``data.min_train_face_px`` (not training targets)
    are dropped; each face goes to a level by :func:`assign_levels` (stride ``s`` -> sizes about
    ``[2 s, 8 s]``); per level, k-means with ``k_per_level`` clusters gives the sizes
    ``sqrt(w h)`` of the centroids and the level's ratios are the population-weighted quantiles
    of the centroid ratios (one ratio: the weighted median), rounded to 0.05. A level with no
    face gets one size at the centre of its range and the overall median ratio.

    ``levels`` = number of detection levels of the proposed model (default: the data config's):
    3 backbone stages + extras (+ global pool, kept when the data config has it and
    ``levels >= 4``); extra levels reuse the data config's ``extra_channels`` (then [128, 256]).
    Returns ``(config, report)``; with ``out`` the config is written there and re-loaded with
    :func:`load_config` to validate it.
    """
    base = _as_config(data_cfg)
    L = int(levels or base.model.num_levels)
    if L < 3:
        raise ValueError(f"--levels {L}: the model has at least 3 levels (the backbone stages)")
    gp = bool(base.model.global_pool and L >= 4)
    n_extra = L - 3 - int(gp)
    extras = [list(map(int, e)) for e in base.model.extra_channels][:n_extra]
    extras += [[128, 256]] * (n_extra - len(extras))
    d = config_to_dict(base)
    d["model"]["extra_channels"] = extras
    d["model"]["global_pool"] = gp
    # never train a proposal into the base config's run folder
    d["train"]["out_dir"] = f"runs/anchors/{Path(out).stem if out is not None else 'suggested'}"
    # placeholder anchors so the model section validates; replaced below
    d["anchors"]["sizes"] = [[16.0]] * L
    d["anchors"]["ratios"] = [[1.0]] * L
    from .config import config_from_dict

    shell = config_from_dict(d)
    if faces is None:
        faces = collect_faces(base, split, measure, max_images=max_images,
                              min_face_px=base.data.min_train_face_px)
    wh = faces.wh()
    wh = wh[(wh[:, 0] > 0) & (wh[:, 1] > 0)]
    if len(wh) == 0:
        raise ValueError("suggest: no faces in the data set")
    sizes = np.sqrt(wh[:, 0] * wh[:, 1])
    lv = assign_levels(sizes, shell)
    med_ratio = float(np.median(wh[:, 0] / wh[:, 1]))
    ranges = level_ranges(shell)
    out_sizes, out_ratios, per_level = [], [], []
    for l in range(L):
        m = lv == l
        lo, hi = ranges[l]
        if m.sum() == 0:
            s_l = [_round_size(math.sqrt(lo * hi))]
            r_l = [round(round(med_ratio / 0.05) * 0.05, 2)]
            per_level.append({"level": l, "stride": shell.model.strides()[l], "range": [lo, hi],
                              "faces": 0, "centroids": [], "mean_iou": None, "note": "no faces: "
                              "range centre and median ratio"})
        else:
            cent, assign, score = kmeans_iou(wh[m], k_per_level, seed=seed + l)
            counts = np.bincount(assign, minlength=len(cent)).astype(np.float64)
            s_l = sorted({_round_size(math.sqrt(w * h)) for w, h in cent})
            rat = cent[:, 0] / cent[:, 1]
            order = np.argsort(rat)
            cdf = np.cumsum(counts[order]) / counts.sum()
            r_l = []
            for q in ((np.arange(ratios_per_level) + 0.5) / ratios_per_level):
                v = float(rat[order][min(np.searchsorted(cdf, q), len(order) - 1)])
                r_l.append(max(0.05, round(round(v / 0.05) * 0.05, 2)))
            r_l = sorted(set(r_l))
            per_level.append({"level": l, "stride": shell.model.strides()[l], "range": [lo, hi],
                              "faces": int(m.sum()),
                              "centroids": [[round(float(w), 2), round(float(h), 2)] for w, h in cent],
                              "cluster_sizes": counts.astype(int).tolist(), "mean_iou": round(score, 4)})
        out_sizes.append(s_l)
        out_ratios.append(r_l)
    d["anchors"]["sizes"] = out_sizes
    d["anchors"]["ratios"] = out_ratios
    cfg = config_from_dict(d)
    # mean IoU of each face with the best proposed (centred) anchor shape of its level
    shapes_iou = []
    for l in range(L):
        m = lv == l
        if m.any():
            shp = np.array([(s * math.sqrt(r), s / math.sqrt(r)) for s in out_sizes[l]
                            for r in out_ratios[l]])
            shapes_iou.append(centered_iou(wh[m], shp).max(axis=1))
    report = {"faces": faces.describe(), "num_faces_used": int(len(wh)), "levels": L,
              "k_per_level": k_per_level, "ratios_per_level": ratios_per_level,
              "rule": "level of a face = nearest (log scale) centre sqrt(lo*hi) of the level's "
                      "[2*stride, 8*stride] range clipped to [0, image_size]",
              "per_level": per_level, "sizes": out_sizes, "ratios": out_ratios,
              "median_ratio": round(med_ratio, 3),
              "mean_centred_iou": round(float(np.concatenate(shapes_iou).mean()), 4)}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out)
        header = ("# Anchors proposed by `ssd-mnv2 anchors suggest` (k-means, 1 - IoU distance)\n"
                  f"# from: {faces.describe()}\n"
                  f"# {L} levels, k={k_per_level} per level; mean centred IoU "
                  f"{report['mean_centred_iou']:.3f}\n")
        out.write_text(header + out.read_text())
        cfg = load_config(out)  # validates the written file
        report["config_path"] = str(out)
    return cfg, report


# ------------------------------------------------------------------------------------- summary
def anchor_summary(cfg: ConfigLike, height: Optional[int] = None, width: Optional[int] = None,
                   with_params: bool = True) -> Tuple[str, Dict[str, Any]]:
    """The per-level table (:func:`ssd_mnv2.model.summary.format_summary`) with the parameter count.

    Returns ``(text, {"total_anchors", "per_level", "num_params"})``.
    """
    from .model.summary import format_summary

    cfg = _as_config(cfg)
    h = height or cfg.model.image_size
    w = width or cfg.model.image_size
    num_params = None
    if with_params:
        import mxnet as mx

        from .model.ssd import build_ssd, count_parameters

        net = build_ssd(cfg)
        S = cfg.model.image_size
        net(mx.nd.zeros((1, 3, S, S)))
        num_params = count_parameters(net)
    counts = anchor_counts(cfg, h, w)
    return (format_summary(cfg, h, w, num_params),
            {"total_anchors": int(sum(counts)), "per_level": counts, "num_params": num_params,
             "feature_sizes": feature_sizes(cfg.model, h, w)})


# --------------------------------------------------------------------------------------- sweep
def _first_val_images(cfg: Config, n: int) -> List[str]:
    d = cfg.data
    if d.val_list:
        from .engine.evaluate import read_image_list

        imgs = read_image_list(d.val_list)
    else:
        imgs = sorted(f"{p.parent.name}/{p.name}" for p in Path(d.val_images).glob("*/*.jpg"))
    return imgs[:n] if n and n > 0 else imgs


def run_sweep(configs: Sequence[Union[str, Path]], epochs: int = 1,
              max_iters_per_epoch: int = 50, width: Optional[float] = None,
              out_dir: Union[str, Path] = "runs/anchor_sweep", batch_size: int = 8,
              image_size: Optional[int] = None, eval_size: str = "max-side 640",
              eval_images: int = 100, seed: int = 0, overrides: Sequence[str] = (),
              num_workers: Optional[int] = None, progress: bool = False) -> List[Dict[str, Any]]:
    """Train each anchor config briefly with the same seed and budget, then evaluate it.

    Each config trains with :func:`ssd_mnv2.engine.trainer.fit` in ``out_dir/<name>`` (``epochs``
    x ``max_iters_per_epoch`` iterations of ``batch_size``; ``width``/``image_size`` override the
    model; the TFLite ImageNet backbone only fits width 1.0, other widths start from scratch)
    and is scored on the first ``eval_images`` dev images (0 = all) with the official WIDER
    protocol (:func:`ssd_mnv2.engine.evaluate.evaluate_detector`) at ``eval_size``. Writes
    ``sweep.md``, ``sweep.json`` and ``sweep.png`` to ``out_dir``; returns the rows.
    """
    from .engine.checkpoint import latest_checkpoint
    from .engine.evaluate import evaluate_detector
    from .engine.run_folder import run_files
    from .engine.trainer import fit
    from .predictor import Detector

    out = Path(out_dir)
    for path in configs:  # one run per folder: refuse before training anything
        held = run_files(out / Path(path).stem)
        if held:
            raise RuntimeError(f"sweep: {out / Path(path).stem} already holds a run ({', '.join(held)}); "
                               "choose another --out, or move the old sweep away")
    out.mkdir(parents=True, exist_ok=True)
    rows: List[Dict[str, Any]] = []
    budget = {"epochs": epochs, "max_iters_per_epoch": max_iters_per_epoch, "batch_size": batch_size,
              "width": width, "image_size": image_size, "eval_size": eval_size,
              "eval_images": eval_images, "seed": seed, "overrides": list(overrides)}
    for path in configs:
        name = Path(path).stem
        run_dir = out / name
        ov = [f"train.out_dir={run_dir}", f"train.epochs={int(epochs)}",
              f"train.max_iters_per_epoch={int(max_iters_per_epoch)}",
              f"train.batch_size={int(batch_size)}", f"train.seed={int(seed)}", "train.eval_every=0",
              "solver.warmup_epochs=0.0"]
        if width is not None:
            ov.append(f"model.width={float(width)}")
        if image_size is not None:
            ov.append(f"model.image_size={int(image_size)}")
        if num_workers is not None:
            ov.append(f"data.num_workers={int(num_workers)}")
        cfg = load_config(path, ov + list(overrides))
        backbone = cfg.train.pretrained_backbone
        if cfg.model.width != 1.0 and backbone.lower().endswith(".tflite"):
            cfg = load_config(path, ov + list(overrides) + ["train.pretrained_backbone=none"])
            backbone = "none"
        t0 = time.perf_counter()
        res = fit(cfg, progress=progress)
        train_s = time.perf_counter() - t0
        ck = latest_checkpoint(run_dir)
        if ck is None:
            raise RuntimeError(f"sweep: training {name} left no checkpoint in {run_dir}")
        det = Detector.from_files(ck / "model.params", ck / "config.yaml", fused=False)
        imgs = _first_val_images(cfg, eval_images)
        list_file = run_dir / "eval_list.txt"
        list_file.write_text("\n".join(imgs) + "\n")
        ev = evaluate_detector(det, cfg.data.val_images, cfg.data.val_gt_dir, list_file=str(list_file),
                               size=eval_size, out_dir=str(run_dir / "eval"))
        S = cfg.model.image_size
        last = res.history[-1] if res.history else {}
        rows.append({"name": name, "config": str(path), "anchors": int(sum(anchor_counts(cfg, S, S))),
                     "per_location": cfg.anchors.per_location(),
                     "ap_easy": _f(ev["ap"].get("easy"), 4), "ap_medium": _f(ev["ap"].get("medium"), 4),
                     "ap_hard": _f(ev["ap"].get("hard"), 4),
                     "ms_per_image": _f(ev.get("ms_per_image"), 1), "iterations": res.global_step,
                     "final_loss": _f(last.get("loss"), 4), "train_s": round(train_s, 1),
                     "backbone": backbone, "width": cfg.model.width, "image_size": S,
                     "eval_images": len(imgs)})
        (out / "sweep.json").write_text(json.dumps({"budget": budget, "rows": rows}, indent=1))
    (out / "sweep.md").write_text(format_sweep_table(rows, budget) + "\n")
    plot_sweep(rows, out / "sweep.png", budget)
    return rows


def _budget_line(b: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    r0 = rows[0] if rows else {}
    return (f"Budget: {b['epochs']} epoch(s) x {b['max_iters_per_epoch']} iterations, batch "
            f"{b['batch_size']}, width {r0.get('width', b.get('width'))}, image_size "
            f"{r0.get('image_size', b.get('image_size'))}, backbone {r0.get('backbone', '?')}, seed "
            f"{b['seed']}; evaluated with the official WIDER protocol at '{b['eval_size']}' on the "
            f"first {r0.get('eval_images', b['eval_images'])} dev images. Anchors counted at the "
            "image_size x image_size training input.")


def format_sweep_table(rows: Sequence[Mapping[str, Any]], budget: Mapping[str, Any]) -> str:
    head = ["config", "anchors", "A/loc", "AP easy", "AP medium", "AP hard", "ms/image",
            "final loss", "train s"]
    def num(v: Any, fmt: str) -> Optional[str]:
        return None if v is None else format(v, fmt)

    body = [[r["name"], r["anchors"], "/".join(map(str, r["per_location"])), r["ap_easy"],
             r["ap_medium"], r["ap_hard"], num(r["ms_per_image"], ".0f"), num(r["final_loss"], ".3f"),
             num(r["train_s"], ".0f")] for r in rows]
    return _budget_line(budget, rows) + "\n\n" + markdown_table(head, body)


def plot_sweep(rows: Sequence[Mapping[str, Any]], png: Union[str, Path],
               budget: Optional[Mapping[str, Any]] = None) -> str:
    plt = _plt()
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
    return _savefig(fig, png)


# ------------------------------------------------------------------------------------- drawing
def draw_level_anchors(image_rgb: np.ndarray, cfg: ConfigLike, png: Optional[Union[str, Path]] = None,
                       locations: Sequence[Tuple[float, float]] = ((0.25, 0.3), (0.5, 0.5), (0.75, 0.7)),
                       faces_xyxy: Optional[np.ndarray] = None, measure: str = "train"):
    """One panel per level: the image resized to the network input (``measure``) with the full
    anchor set of that level drawn at a few ``locations`` (fractions of width/height, snapped to
    the nearest anchor centre) and, optionally, the faces. Returns the figure (saved to ``png``).

    Note: the global-pool level (if any) has one anchor centred at ``(image_size/2, image_size/2)``
    whatever the input size, exactly as the network uses it."""
    import cv2

    plt = _plt()
    cfg = _as_config(cfg)
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


# ------------------------------------------------------------------------------ synthetic data
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
