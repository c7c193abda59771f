"""Face-size and aspect-ratio statistics of a :class:`~ssd_mnv2.lab.faces.FaceSet`, per size bin."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from ..config import Config
from .faces import BIN_LABELS, FaceSet, size_bin
from .plots import plot_face_stats
from .report import format_stats_table, json_float

__all__ = ["face_stats", "write_stats"]

def face_stats(faces: FaceSet) -> Dict[str, Any]:
    """Count, share, median size and median ratio (w/h) per size bin and overall."""
    s, r = faces.sizes(), faces.ratios()
    b = size_bin(s)
    n = max(len(s), 1)
    rows = []
    for k, lab in enumerate(BIN_LABELS):
        m = b == k
        rows.append({"bin": lab, "count": int(m.sum()), "share": float(m.sum()) / n,
                     "median_size": json_float(np.median(s[m])) if m.any() else None,
                     "median_ratio": json_float(np.median(r[m])) if m.any() else None,
                     "p10_ratio": json_float(np.percentile(r[m], 10)) if m.any() else None,
                     "p90_ratio": json_float(np.percentile(r[m], 90)) if m.any() else None})
    overall = {"bin": "all", "count": int(len(s)), "share": 1.0 if len(s) else 0.0,
               "median_size": json_float(np.median(s)) if len(s) else None,
               "median_ratio": json_float(np.median(r)) if len(s) else None,
               "p10_ratio": json_float(np.percentile(r, 10)) if len(s) else None,
               "p90_ratio": json_float(np.percentile(r, 90)) if len(s) else None}
    return {"measure": faces.describe(), "bins": rows, "overall": overall,
            "num_images": faces.num_images}


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
