"""Anchors proposed from the data: faces assigned to levels by size, k-means per level."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..config import Config, config_to_dict, dump_config, load_config
from .faces import ConfigLike, FaceSet, as_config, collect_faces
from .kmeans import centered_iou, kmeans_iou

__all__ = ["level_ranges", "assign_levels", "suggest_anchors"]

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
    the backbone stage levels (3, 4 with ``model.stride4``) + extras (+ global pool, kept when
    the data config has it and ``levels`` leaves room for it); extra levels reuse the data
    config's ``extra_channels`` (then [128, 256]).
    Returns ``(config, report)``; with ``out`` the config is written there and re-loaded with
    :func:`load_config` to validate it.
    """
    base = as_config(data_cfg)
    L = int(levels or base.model.num_levels)
    n_stage = base.model.num_stage_levels
    if L < n_stage:
        raise ValueError(f"--levels {L}: the model has at least {n_stage} levels (the backbone stages)")
    gp = bool(base.model.global_pool and L > n_stage)
    n_extra = L - n_stage - int(gp)
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
    from ..config import config_from_dict

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
