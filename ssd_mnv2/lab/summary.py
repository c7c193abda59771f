"""Per-level anchor counts of a config, with the model's parameter count."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ..anchors import anchor_counts, feature_sizes
from .faces import ConfigLike, as_config

__all__ = ["anchor_summary"]

def anchor_summary(cfg: ConfigLike, height: Optional[int] = None, width: Optional[int] = None,
                   with_params: bool = True) -> Tuple[str, Dict[str, Any]]:
    """The per-level table (:func:`ssd_mnv2.model.summary.format_summary`) with the parameter count.

    Returns ``(text, {"total_anchors", "per_level", "num_params"})``.
    """
    from ..model.summary import format_summary

    cfg = as_config(cfg)
    h = height or cfg.model.image_size
    w = width or cfg.model.image_size
    num_params = None
    if with_params:
        import mxnet as mx

        from ..model.ssd import build_ssd, count_parameters

        net = build_ssd(cfg)
        S = cfg.model.image_size
        net(mx.nd.zeros((1, 3, S, S)))
        num_params = count_parameters(net)
    counts = anchor_counts(cfg, h, w)
    return (format_summary(cfg, h, w, num_params),
            {"total_anchors": int(sum(counts)), "per_level": counts, "num_params": num_params,
             "feature_sizes": feature_sizes(cfg.model, h, w)})
