"""Text tables and JSON summaries of evaluation results (WIDER and face-set)."""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

from ..data.faceset import FaceSet
from .wider_gt import SUBSETS

__all__ = ["jsonable", "fmt_value", "format_table", "wider_summary", "format_faceset_table",
           "faceset_summary"]

def jsonable(x: Any) -> Any:
    """nan -> None in nested dicts and lists (strict JSON)."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def fmt_value(x: Optional[float], spec: str = ".4f") -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_table(result: Mapping[str, Any]) -> str:
    """Text table of AP and counted faces per subset (plus speed when present)."""
    lines = [f"{'subset':<8} {'AP':>8} {'faces':>7}", "-" * 25]
    for s in SUBSETS:
        ap = result["ap"][s]
        ap_txt = "nan" if ap is None or (isinstance(ap, float) and math.isnan(ap)) else f"{ap:.4f}"
        lines.append(f"{s:<8} {ap_txt:>8} {result['num_faces'][s]:>7d}")
    lines.append("-" * 25)
    lines.append(f"images {result['num_images']}, detections {result['num_detections']}")
    if result.get("ms_per_image") is not None:
        lines.append(f"speed {result['ms_per_image']:.1f} ms/image")
    return "\n".join(lines)


def wider_summary(result: Mapping[str, Any], **extra: Any) -> Dict[str, Any]:
    """JSON-friendly summary of a :func:`wider_ap` result (no curves)."""
    out = {
        "ap": {s: float(result["ap"][s]) for s in SUBSETS},
        "num_faces": {s: int(result["num_faces"][s]) for s in SUBSETS},
        "num_images": int(result["num_images"]),
        "num_detections": int(result["num_detections"]),
        "iou_thresh": float(result["iou_thresh"]),
        "num_thresholds": int(result["num_thresholds"]),
    }
    out.update(extra)
    return out


def format_faceset_table(summary: Mapping[str, Any]) -> str:
    """Text report: AP50, AP50:95, best F1, recall by face size, counts (and speed)."""
    f1 = summary["best_f1"]
    lines = [
        f"AP50 (VOC all-point)      {fmt_value(summary['ap50'])}",
        f"AP50:95 (COCO, pycocotools) {fmt_value(summary['ap50_95'])}",
        f"best F1                   {fmt_value(f1['f1'])} at score >= {fmt_value(f1['threshold'], '.3f')} "
        f"(precision {fmt_value(f1['precision'], '.3f')}, recall {fmt_value(f1['recall'], '.3f')})",
        "recall by face size (sqrt(w*h), px):",
        f"  {'size':<8} {'faces':>6} {'recall':>8} {'at best F1':>11}",
    ]
    for r in summary["recall_by_size"]:
        lines.append(f"  {r['size_px']:<8} {r['faces']:>6d} {fmt_value(r['recall'], '.3f'):>8} "
                     f"{fmt_value(r.get('recall_at_threshold'), '.3f'):>11}")
    lines.append(f"images {summary['num_images']}, faces {summary['num_faces']} "
                 f"(+{summary['num_ignored_faces']} ignored), detections {summary['num_detections']}")
    if summary.get("ms_per_image") is not None:
        lines.append(f"speed {summary['ms_per_image']:.1f} ms/image")
    return "\n".join(lines)


def faceset_summary(faces: FaceSet, res: Mapping[str, Any], **extra: Any) -> Dict[str, Any]:
    """JSON-friendly summary of a :func:`score_faceset` result (no curves)."""
    out = {
        "ap50": float(res["ap"]),
        "ap50_95": float(res["coco"]["ap"]),
        "coco": {k: res["coco"][k] for k in ("ap", "ap50", "ap75", "max_dets")},
        "best_f1": dict(res["best_f1"]),
        "recall_by_size": [dict(r) for r in res["recall_by_size"]],
        "num_images": int(res["num_images"]),
        "num_faces": int(res["num_faces"]),
        "num_ignored_faces": int(res["num_ignored_faces"]),
        "num_detections": int(res["num_detections"]),
        "num_ignored_detections": int(res["num_ignored_detections"]),
        "iou_thresh": float(res["iou_thresh"]),
        "faceset": faces.describe(),
    }
    if faces.skipped:
        out["skipped"] = list(faces.skipped)
    out.update(extra)
    return out
