"""WIDER FACE evaluation of a detector (``evaluate_detector``) or of a prediction folder
(``evaluate_predictions``): writes ``wider_eval.json`` and ``wider_pr.png``, prints the table."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Mapping, Optional

import numpy as np

from .image_list import find_images, key_from_path, read_image_list
from .plots import plot_pr_curves
from .predictions import read_wider_predictions, write_wider_prediction
from .report import format_table, jsonable, wider_summary
from .wider_gt import GT_FILES, load_wider_ground_truth
from .wider_protocol import wider_ap

__all__ = ["evaluate_predictions", "evaluate_detector"]

def _write_outputs(summary: Dict[str, Any], result: Mapping[str, Any], out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "wider_eval.json"), "w") as f:
        json.dump(jsonable(summary), f, indent=2, sort_keys=True, default=str)
    plot_pr_curves(result, os.path.join(out_dir, "wider_pr.png"))


def evaluate_predictions(
    pred_dir: str,
    gt_dir: str,
    list_file: Optional[str] = None,
    out_dir: Optional[str] = None,
    allow_missing: bool = False,
) -> Dict[str, Any]:
    """Score an existing prediction folder ``<pred_dir>/<event>/<name>.txt``.

    ``list_file`` (``event/name.jpg`` lines) defines the image set; without it, every image of
    the ground truth. An image of the set without a prediction file is an error (ValueError
    with the count); with ``allow_missing`` those images are left out, with a warning giving the
    count (``missing_predictions`` in the summary). A prediction file for an image that is not
    in the ground truth is an error. Writes ``wider_eval.json`` and ``wider_pr.png`` to
    ``out_dir`` when given. Returns the JSON summary (APs, counts, settings).
    """
    from ..io_utils import refuse_output_over_input

    if not os.path.isdir(pred_dir):
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    found = [
        f"{ev}/{n[:-4]}"
        for ev in sorted(os.listdir(pred_dir))
        if os.path.isdir(os.path.join(pred_dir, ev))
        for n in sorted(os.listdir(os.path.join(pred_dir, ev)))
        if n.endswith(".txt")
    ]
    if list_file is not None:
        gt = load_wider_ground_truth(gt_dir, read_image_list(list_file))
    else:
        if not found:
            raise FileNotFoundError(f"no prediction files under {pred_dir}/<event>/")
        gt = load_wider_ground_truth(gt_dir)
        extra = [k for k in found if k not in gt]
        if extra:
            raise ValueError(f"{os.path.join(pred_dir, extra[0])}.txt: image {extra[0]!r} is not in "
                             f"{os.path.join(gt_dir, GT_FILES['all'])} ({len(extra)} such file(s))")
    have = set(found)
    missing = [k for k in gt if k not in have]
    if missing:
        where = f"in {list_file}" if list_file else "of the ground truth"
        what = (f"{len(missing)} of the {len(gt)} images {where} have no prediction file in {pred_dir} "
                f"(e.g. {os.path.join(pred_dir, missing[0])}.txt)")
        if not allow_missing:
            raise ValueError(f"{what}; pass --allow-missing to score only the "
                             f"{len(gt) - len(missing)} images that have one"
                             + ("" if list_file else ", or --list to name the images to score"))
        if len(missing) == len(gt):
            raise ValueError(f"{what}: nothing to score")
        print(f"warning: {what}; scoring the other {len(gt) - len(missing)} (--allow-missing)")
        gt = {k: v for k, v in gt.items() if k in have}
    if out_dir is not None:
        refuse_output_over_input(
            [os.path.join(out_dir, "wider_eval.json"), os.path.join(out_dir, "wider_pr.png")],
            [pred_dir, gt_dir] + ([list_file] if list_file else []), "--out")
    preds = read_wider_predictions(pred_dir, gt.keys())
    result = wider_ap(preds, gt)
    summary = wider_summary(
        result, settings={"pred_dir": pred_dir, "gt_dir": gt_dir, "list_file": list_file},
        missing_predictions=len(missing),
    )
    if out_dir is not None:
        _write_outputs(summary, result, out_dir)
    print(format_table(summary))
    return summary


def evaluate_detector(
    detector: Any,
    images_dir: str,
    gt_dir: str,
    list_file: Optional[str] = None,
    size: Optional[int] = None,
    out_dir: str = "outputs/wider_eval",
) -> Dict[str, Any]:
    """Run ``detector.predict(image_bgr, size=size)`` on WIDER images and score them.

    ``detector.predict`` returns ``(boxes_xyxy_px (N,4), scores (N,))`` in original image
    pixels. Predictions go to ``<out_dir>/predictions/<event>/<name>.txt``; the summary to
    ``<out_dir>/wider_eval.json`` and the curves to ``<out_dir>/wider_pr.png``. Returns the
    summary dict (APs, counts, ms/image, settings).
    """
    from tqdm import tqdm

    from ..imageio import read_image
    from ..io_utils import refuse_output_over_input

    image_list = read_image_list(list_file) if list_file else find_images(images_dir)
    gt = load_wider_ground_truth(gt_dir, image_list)
    pred_dir = os.path.join(out_dir, "predictions")
    refuse_output_over_input(
        [pred_dir, os.path.join(out_dir, "wider_eval.json"), os.path.join(out_dir, "wider_pr.png")],
        [images_dir, gt_dir] + ([list_file] if list_file else []), "--out")
    total_s = 0.0
    for entry in tqdm(image_list, desc="WIDER eval", unit="img"):
        key = key_from_path(entry)
        path = os.path.join(images_dir, entry)
        img = read_image(path)
        t0 = time.perf_counter()
        boxes_xyxy_px, scores = detector.predict(img, size=size)
        total_s += time.perf_counter() - t0
        boxes_xyxy_px = np.asarray(boxes_xyxy_px, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        write_wider_prediction(pred_dir, key, boxes_xyxy_px, scores)
    # score the written files, so the result is what the official tool would see
    preds = read_wider_predictions(pred_dir, gt.keys())
    result = wider_ap(preds, gt)
    settings: Dict[str, Any] = {
        "size": size,
        "images_dir": images_dir,
        "gt_dir": gt_dir,
        "list_file": list_file,
    }
    describe = getattr(detector, "describe", None)
    if callable(describe):
        d = describe()
        if isinstance(d, dict):
            settings["detector"] = d
    summary = wider_summary(
        result,
        ms_per_image=1000.0 * total_s / max(len(image_list), 1),
        settings=settings,
        pred_dir=pred_dir,
    )
    _write_outputs(summary, result, out_dir)
    print(format_table(summary))
    return summary
