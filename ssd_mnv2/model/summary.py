"""Per-level model summary: feature size, channels, anchors per location, anchor counts."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..anchors import anchor_counts, feature_sizes
from ..config import Config
from .backbone import level_channels

__all__ = ["level_table", "format_summary"]


def level_table(cfg: Config, height: Optional[int] = None, width: Optional[int] = None
                ) -> List[Dict[str, Any]]:
    """One dict per level: name, stride, feature (h, w), channels, sizes, ratios, A, anchors."""
    h = height or cfg.model.image_size
    w = width or cfg.model.image_size
    m = cfg.model
    channels = level_channels(m.width, m.extra_channels, m.global_pool, m.stride4)
    names = ([f"stage s{s}" for s in m.strides()[:m.num_stage_levels]]
             + [f"extra {i + 1}" for i in range(len(m.extra_channels))]
             + ["global pool"] * int(m.global_pool))
    rows = []
    for lv, ((fh, fw), n, per_loc) in enumerate(zip(feature_sizes(m, h, w), anchor_counts(cfg, h, w),
                                                   cfg.anchors.per_location())):
        rows.append({"level": lv, "name": names[lv], "stride": m.strides()[lv], "feature": (fh, fw),
                     "channels": channels[lv], "sizes": list(cfg.anchors.sizes[lv]),
                     "ratios": list(cfg.anchors.ratios[lv]), "per_location": per_loc, "anchors": n})
    return rows


def format_summary(cfg: Config, height: Optional[int] = None, width: Optional[int] = None,
                   num_params: Optional[int] = None) -> str:
    """The ``ssd-mnv2 anchors summary`` table."""
    rows = level_table(cfg, height, width)
    h = height or cfg.model.image_size
    w = width or cfg.model.image_size
    head = f"{'lvl':>3} {'name':<12} {'stride':>6} {'feature':>9} {'ch':>5} {'A/loc':>5} {'anchors':>8}  sizes(px) x ratios(w/h)"
    lines = [f"input {w}x{h}, width {cfg.model.width}, head {cfg.model.head}", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['level']:>3} {r['name']:<12} {r['stride']:>6} {r['feature'][0]:>4}x{r['feature'][1]:<4} "
                     f"{r['channels']:>5} {r['per_location']:>5} {r['anchors']:>8}  "
                     f"{r['sizes']} x {r['ratios']}")
    lines.append("-" * len(head))
    lines.append(f"total anchors: {sum(r['anchors'] for r in rows)}")
    if num_params is not None:
        lines.append(f"parameters: {num_params:,} ({num_params * 4 / 2**20:.1f} MiB float32)")
    return "\n".join(lines)
