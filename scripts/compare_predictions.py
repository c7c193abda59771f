"""Are two WIDER-format prediction folders the same detections?

    python scripts/compare_predictions.py BEFORE_DIR AFTER_DIR [--tol 1e-4]

Both folders hold ``<event>/<name>.txt`` (what ``ssd-mnv2 evaluate --out D`` writes under
``D/predictions``). Per image: the same count, and each detection paired with one of the other
folder (near-tied scores may be written in either order) with its score within ``--tol`` and its
box within the files' print resolution (0.01 px) plus ``--tol``. Prints the
number of images and detections compared, the largest score and box differences and the first
mismatches; exits 1 on any mismatch (a restructuring must not change detections).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BOX_PRINT_RESOLUTION = 0.01  # the files hold x y w h with 2 decimals


def prediction_keys(pred_dir: Path) -> list:
    """``event/name`` of every ``<event>/<name>.txt`` under ``pred_dir``."""
    return sorted(f"{p.parent.name}/{p.stem}" for p in pred_dir.glob("*/*.txt"))


def match_detections(boxes_a: np.ndarray, scores_a: np.ndarray, boxes_b: np.ndarray,
                     scores_b: np.ndarray, tol: float) -> tuple:
    """Pair each detection of A with an unused one of B whose score is within ``tol`` (the closest
    box among those): near-tied scores may be written in either order. Returns the largest score
    and box differences of the pairs and the number of A's detections without a partner."""
    order = np.argsort(scores_b, kind="stable")
    sb_sorted = scores_b[order]
    used = np.zeros(len(scores_b), bool)
    max_ds = max_db = 0.0
    unmatched = 0
    for box, score in zip(boxes_a, scores_a):
        lo = np.searchsorted(sb_sorted, score - tol, side="left")
        hi = np.searchsorted(sb_sorted, score + tol, side="right")
        cand = order[lo:hi][~used[order[lo:hi]]]
        if not len(cand):
            unmatched += 1
            continue
        d = np.abs(boxes_b[cand] - box).max(axis=1)
        j = cand[int(np.argmin(d))]
        if d.min() > BOX_PRINT_RESOLUTION + tol:
            unmatched += 1
            continue
        used[j] = True
        max_ds = max(max_ds, abs(float(scores_b[j] - score)))
        max_db = max(max_db, float(d.min()))
    return max_ds, max_db, unmatched


def compare(before: Path, after: Path, tol: float) -> dict:
    """Compare the folders; returns counts, max differences and a list of mismatch messages."""
    from ssd_mnv2.evaluation.predictions import read_wider_predictions

    keys_b, keys_a = prediction_keys(before), prediction_keys(after)
    problems = []
    if keys_b != keys_a:
        only_b = sorted(set(keys_b) - set(keys_a))
        only_a = sorted(set(keys_a) - set(keys_b))
        problems.append(f"image sets differ: {len(only_b)} only in {before} (e.g. {only_b[:1]}), "
                        f"{len(only_a)} only in {after} (e.g. {only_a[:1]})")
    keys = sorted(set(keys_b) & set(keys_a))
    pb = read_wider_predictions(str(before), keys)
    pa = read_wider_predictions(str(after), keys)
    n_det, max_ds, max_db = 0, 0.0, 0.0
    for k in keys:
        (bb, sb), (ba, sa) = pb[k], pa[k]
        if len(sb) != len(sa):
            problems.append(f"{k}: {len(sb)} detections before, {len(sa)} after")
            continue
        n_det += len(sb)
        if not len(sb):
            continue
        ds, db, unmatched = match_detections(bb, sb, ba, sa, tol)
        max_ds, max_db = max(max_ds, ds), max(max_db, db)
        if unmatched:
            problems.append(f"{k}: {unmatched} detection(s) without a counterpart (score within {tol:g}, "
                            f"box within {BOX_PRINT_RESOLUTION + tol:g} px)")
    return {"images": len(keys), "detections": n_det, "max_score_diff": max_ds,
            "max_box_diff_px": max_db, "problems": problems}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--tol", type=float, default=1e-4, help="score tolerance (boxes: 0.01 px + tol)")
    args = p.parse_args(argv)
    r = compare(args.before, args.after, args.tol)
    print(f"{r['images']} images, {r['detections']} detections compared; "
          f"max score difference {r['max_score_diff']:.2e}, max box difference {r['max_box_diff_px']:.3f} px")
    for msg in r["problems"][:10]:
        print("  " + msg)
    if r["problems"]:
        print(f"MISMATCH: {len(r['problems'])} problem(s)")
        return 1
    print("same detections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
