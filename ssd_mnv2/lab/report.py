"""Markdown tables of the anchor lab (statistics, coverage, sweep, scale) and JSON-friendly numbers."""
from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence

from .faces import BIN_LABELS

__all__ = ["json_float", "markdown_table", "format_stats_table", "format_coverage_table",
           "format_sweep_table", "scale_table"]

def json_float(x: Any, nd: int = 3) -> Any:
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


def format_stats_table(stats: Mapping[str, Any]) -> str:
    header = ["size bin (px)", "faces", "share", "median size", "median w/h", "w/h p10-p90"]
    rows = []
    for r in list(stats["bins"]) + [stats["overall"]]:
        band = (f"{r['p10_ratio']:.2f}-{r['p90_ratio']:.2f}" if r["p10_ratio"] is not None else None)
        rows.append([r["bin"], r["count"], f"{100 * r['share']:.1f}%", r["median_size"],
                     r["median_ratio"], band])
    return f"Faces measured: {stats['measure']}\n\n" + markdown_table(header, rows)


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


def scale_table(rows: List[Mapping[str, Any]]) -> str:
    keys = [k for k in rows[0] if k != "set"]

    def cell(k: str, v: Any) -> str:
        if v is None:
            return "-"
        if "-" in k or k.startswith(">="):
            return f"{100 * v:.1f} %"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    return markdown_table(["set"] + keys, [[r["set"]] + [cell(k, r[k]) for k in keys] for r in rows])
