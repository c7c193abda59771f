"""How well a config's anchors cover the faces (best IoU, matched anchors), per size bin."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..anchors import anchor_counts, generate_anchors
from ..boxes import cxcywh_to_xyxy, iou_matrix
from .faces import BIN_LABELS, ConfigLike, FaceSet, as_config, config_name, size_bin
from .plots import plot_coverage
from .report import format_coverage_table, json_float

__all__ = ["coverage", "compare_coverage", "write_coverage"]

def coverage(anchor_cfg: ConfigLike, faces: FaceSet, thresholds: Sequence[float] = (0.5, 0.35),
             name: Optional[str] = None) -> Dict[str, Any]:
    """How well ``anchor_cfg``'s anchors cover ``faces`` (see the module doc), per size bin.

    Returns ``{"name", "anchors" (count at image_size x image_size), "per_location",
    "measure", "bins": [{bin, faces, cov_50, cov_35, mean_best_iou, mean_matched_50}],
    "overall": {...}, "seconds"}``; also the per-face ``best_iou`` / ``matched_50`` arrays
    under ``"_per_face"`` (dropped by :func:`write_coverage`).
    """
    t0 = time.perf_counter()
    nm = name or config_name(anchor_cfg)
    cfg = as_config(anchor_cfg)
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
        return {"faces": k, "cov_50": json_float((best_iou[m] >= t_hi).mean(), 4),
                "cov_35": json_float((best_iou[m] >= t_lo).mean(), 4),
                "mean_best_iou": json_float(best_iou[m].mean(), 4),
                "mean_matched_50": json_float(n_match[m].mean(), 3)}

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
             else [(config_name(c, i), c) for i, c in enumerate(anchor_cfgs)])
    return [coverage(c, faces, thresholds, name=n) for n, c in items]


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
