"""Evaluate a detector (or another detector's prediction files) on a VOC- or COCO-format face set.

    faces = load_faceset("voc", "images/", "annotations/")          # ssd_mnv2.data.faceset
    summary = evaluate_faceset_detector(det, faces, "outputs/voc_eval")
    summary = evaluate_faceset_predictions("other_detector/", faces, "outputs/other_eval")

Reports (in ``<out>/<fmt>_eval.json``, a PR-curve PNG ``<out>/<fmt>_pr.png`` and a printed table):
AP at IoU 0.5 (all-point VOC, :mod:`~ssd_mnv2.evaluation.voc_metrics`), AP at 0.5:0.95 as COCO
averages it (pycocotools, :mod:`~ssd_mnv2.evaluation.coco_metrics`), the best F1 with its score
threshold, and recall by face size.

Prediction files (:mod:`.predictions`) use the per-image text format of WIDER FACE submissions,
one file per image at
``<pred_dir>/<key>.txt`` (``key``: the image path relative to the images folder, without
extension): the image name, the number of boxes, then ``x y w h score`` lines in original pixels.
A flat set's files may also sit one folder down, ``<pred_dir>/<images folder name>/<key>.txt``,
which is what ``ssd-mnv2 detect --wider-txt`` writes into ``<out>/wider``.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Mapping, Optional

from ..data.faceset import FaceSet
from .coco_metrics import coco_face_ap
from .plots import plot_faceset_pr
from .predictions import Prediction, read_faceset_predictions, write_prediction_txt
from .report import faceset_summary, format_faceset_table, jsonable
from .voc_metrics import score_voc

__all__ = ["score_faceset", "evaluate_faceset_detector", "evaluate_faceset_predictions"]

def score_faceset(faces: FaceSet, predictions: Mapping[str, Prediction], iou_thresh: float = 0.5,
                  coco_max_dets: int = 100) -> Dict[str, Any]:
    """Score ``predictions`` (``{key: (boxes_xyxy_px, scores)}``, every image of ``faces``).

    Returns the :func:`~ssd_mnv2.evaluation.voc_metrics.score_voc` result plus ``coco`` (AP
    0.5:0.95, AP50, AP75 by pycocotools), ``num_images`` and ``num_ignored_faces``.
    """
    missing = [im.key for im in faces.images if im.key not in predictions]
    if missing:
        raise KeyError(f"no prediction for {len(missing)} image(s), e.g. {missing[0]!r}")
    dets = [predictions[im.key] for im in faces.images]
    gts = [(im.boxes_xyxy_px, im.ignore) for im in faces.images]
    res = score_voc(dets, gts, iou_thresh)
    res["coco"] = coco_face_ap(dets, gts, [(im.width, im.height) for im in faces.images], coco_max_dets)
    res["num_images"] = len(faces)
    res["num_ignored_faces"] = faces.num_ignored
    return res


def _finish(faces: FaceSet, res: Mapping[str, Any], summary: Dict[str, Any], out_dir: Optional[str],
            verbose: bool) -> Dict[str, Any]:
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        json_path = os.path.join(out_dir, f"{faces.fmt}_eval.json")
        with open(json_path, "w") as f:
            json.dump(jsonable(summary), f, indent=2, sort_keys=True, default=str)
        png = plot_faceset_pr(res, os.path.join(out_dir, f"{faces.fmt}_pr.png"),
                              f"{faces.fmt.upper()} face set: {os.path.basename(faces.annotations)}")
        summary["outputs"] = {"json": json_path, "png": png}
    if verbose:
        print(format_faceset_table(summary))
    return summary


def evaluate_faceset_predictions(pred_dir: str, faces: FaceSet, out_dir: Optional[str] = None,
                                 verbose: bool = True) -> Dict[str, Any]:
    """Score another detector's prediction files (see the module doc) on ``faces``.

    Writes ``<fmt>_eval.json`` and ``<fmt>_pr.png`` to ``out_dir`` when given; returns the summary.
    """
    preds = read_faceset_predictions(pred_dir, faces)
    res = score_faceset(faces, preds)
    return _finish(faces, res, faceset_summary(faces, res, settings={"pred_dir": pred_dir}), out_dir, verbose)


def evaluate_faceset_detector(detector: Any, faces: FaceSet, out_dir: str, size: Optional[str] = None,
                              verbose: bool = True) -> Dict[str, Any]:
    """Run ``detector.predict(image_bgr, size=size)`` on every image of ``faces`` and score it.

    Works with any detector (MXNet, ONNX Runtime, int8, :class:`~ssd_mnv2.tta.TTADetector`).
    Images are read by :func:`ssd_mnv2.imageio.read_image` (EXIF orientation applied, as in
    training and inference).
    Predictions go to ``<out_dir>/predictions/<key>.txt`` and are scored from those files; the
    summary (with ms/image of ``predict``) to ``<out_dir>/<fmt>_eval.json``, the curve to
    ``<out_dir>/<fmt>_pr.png``.
    """
    from tqdm import tqdm

    from ..imageio import read_image

    if any(im.path is None for im in faces.images):
        raise ValueError("running a detector needs the images: load the face set with an images folder")
    pred_dir = os.path.join(out_dir, "predictions")
    total_s = 0.0
    for im in tqdm(faces.images, desc=f"{faces.fmt} eval", unit="img", disable=not verbose):
        img = read_image(im.path)
        t0 = time.perf_counter()
        boxes_xyxy_px, scores = detector.predict(img, size=size)
        total_s += time.perf_counter() - t0
        write_prediction_txt(pred_dir, im.key, boxes_xyxy_px, scores, os.path.basename(im.path))
    preds = read_faceset_predictions(pred_dir, faces)  # score what was written, as for --pred
    res = score_faceset(faces, preds)
    settings: Dict[str, Any] = {"size": size}
    describe = getattr(detector, "describe", None)
    if callable(describe):
        d = describe()
        if isinstance(d, dict):
            settings["detector"] = d
    summary = faceset_summary(faces, res, ms_per_image=1000.0 * total_s / max(len(faces), 1),
                       settings=settings, pred_dir=pred_dir)
    return _finish(faces, res, summary, out_dir, verbose)
