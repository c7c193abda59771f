"""Precision-recall plots of evaluation results (PNG, headless)."""
from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np

from .report import fmt_value
from .wider_gt import SUBSETS

__all__ = ["plot_pr_curves", "plot_faceset_pr"]

def plot_pr_curves(result: Mapping[str, Any], png_path: str) -> str:
    """Plot the easy / medium / hard PR curves of a :func:`wider_ap` result to ``png_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for s in SUBSETS:
        pr = result["pr"][s]
        ok = np.isfinite(pr["precision"]) & np.isfinite(pr["recall"])
        ax.plot(pr["recall"][ok], pr["precision"][ok], lw=2,
                label=f"{s} AP={result['ap'][s]:.4f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title("WIDER FACE precision-recall")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    d = os.path.dirname(os.path.abspath(png_path))
    os.makedirs(d, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def plot_faceset_pr(res: Mapping[str, Any], png_path: str, title: str = "precision-recall") -> str:
    """Plot the AP50 precision-recall curve of a :func:`score_faceset` result, best F1 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ok = np.isfinite(res["recall"]) & np.isfinite(res["precision"])
    ax.plot(res["recall"][ok], res["precision"][ok], lw=2,
            label=f"AP50={fmt_value(res['ap'])}, AP50:95={fmt_value(res['coco']['ap'])}")
    f1 = res["best_f1"]
    if math.isfinite(f1["threshold"]):
        ax.plot([f1["recall"]], [f1["precision"]], "o", color="C3",
                label=f"best F1={f1['f1']:.3f} at score {f1['threshold']:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    os.makedirs(os.path.dirname(os.path.abspath(png_path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
