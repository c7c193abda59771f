"""Evaluate a detector (or another detector's prediction files) on a VOC- or COCO-format face set.

    faces = load_faceset("voc", "images/", "annotations/")          # ssd_mnv2.data.faceset
    summary = evaluate_faceset_detector(det, faces, "outputs/voc_eval")
    summary = evaluate_faceset_predictions("other_detector/", faces, "outputs/other_eval")

Reports (in ``<out>/<fmt>_eval.json``, a PR-curve PNG ``<out>/<fmt>_pr.png`` and a printed table):
AP at IoU 0.5 (all-point VOC, :mod:`~ssd_mnv2.engine.voc_metrics`), AP at 0.5:0.95 as COCO
averages it (pycocotools, :mod:`~ssd_mnv2.engine.coco_metrics`), the best F1 with its score
threshold, and recall by face size.

Prediction files use the per-image text format of WIDER FACE submissions, one file per image at
``<pred_dir>/<key>.txt`` (``key``: the image path relative to the images folder, without
extension): the image name, the number of boxes, then ``x y w h score`` lines in original pixels.
A flat set's files may also sit one folder down, ``<pred_dir>/<images folder name>/<key>.txt``,
which is what ``ssd-mnv2 detect --wider-txt`` writes into ``<out>/wider``.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..data.faceset import FaceSet
from .coco_metrics import coco_face_ap
from .evaluate import _read_prediction_file
from .voc_metrics import score_voc

__all__ = ["score_faceset", "evaluate_faceset_detector", "evaluate_faceset_predictions",
           "write_prediction_txt", "read_faceset_predictions", "format_faceset_table", "plot_faceset_pr"]

Prediction = Tuple[np.ndarray, np.ndarray]  # (boxes_xyxy_px (N, 4), scores (N,))


def write_prediction_txt(pred_dir: str, key: str, boxes_xyxy_px: np.ndarray, scores: np.ndarray,
                         image_name: Optional[str] = None) -> str:
    """Write ``<pred_dir>/<key>.txt`` (image name, count, ``x y w h score`` lines, best first).

    ``image_name`` (default: the key's last part) is the first line. Returns the path.
    """
    b = np.asarray(boxes_xyxy_px, np.float64).reshape(-1, 4)
    s = np.asarray(scores, np.float64).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"{key}: {len(b)} boxes but {len(s)} scores")
    order = np.argsort(-s, kind="stable")
    path = os.path.join(pred_dir, *key.split("/")) + ".txt"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = [image_name or key.split("/")[-1], str(len(s))]
    lines += [f"{x1:.2f} {y1:.2f} {x2 - x1:.2f} {y2 - y1:.2f} {sc:.9g}" for (x1, y1, x2, y2), sc in
              zip(b[order], s[order])]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def read_faceset_predictions(pred_dir: str, faces: FaceSet) -> Dict[str, Prediction]:
    """Read every image's prediction file (see the module doc for where it is looked for).

    Returns ``{key: (boxes_xyxy_px, scores)}``. Missing files raise one FileNotFoundError naming
    the first and counting the others; a malformed file raises ValueError with file and line.
    """
    if not os.path.isdir(pred_dir):
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    sub = os.path.basename(os.path.normpath(faces.images_dir)) if faces.images_dir else None
    out: Dict[str, Prediction] = {}
    missing: List[str] = []
    for im in faces.images:
        path = os.path.join(pred_dir, *im.key.split("/")) + ".txt"
        if not os.path.isfile(path) and sub and "/" not in im.key:
            alt = os.path.join(pred_dir, sub, im.key + ".txt")
            path = alt if os.path.isfile(alt) else path
        if not os.path.isfile(path):
            missing.append(path)
            continue
        xywh, scores = _read_prediction_file(path, im.key)
        xyxy = xywh.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        out[im.key] = (xyxy, scores)
    if missing:
        raise FileNotFoundError(f"prediction file missing: {missing[0]}"
                                + (f" (and {len(missing) - 1} more of {len(faces)} images)"
                                   if len(missing) > 1 else ""))
    return out


def score_faceset(faces: FaceSet, predictions: Mapping[str, Prediction], iou_thresh: float = 0.5,
                  coco_max_dets: int = 100) -> Dict[str, Any]:
    """Score ``predictions`` (``{key: (boxes_xyxy_px, scores)}``, every image of ``faces``).

    Returns the :func:`~ssd_mnv2.engine.voc_metrics.score_voc` result plus ``coco`` (AP
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


def _summary(faces: FaceSet, res: Mapping[str, Any], **extra: Any) -> Dict[str, Any]:
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


def _jsonable(x: Any) -> Any:
    """nan -> None in nested dicts and lists (strict JSON)."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _fmt(x: Optional[float], spec: str = ".4f") -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_faceset_table(summary: Mapping[str, Any]) -> str:
    """Text report: AP50, AP50:95, best F1, recall by face size, counts (and speed)."""
    f1 = summary["best_f1"]
    lines = [
        f"AP50 (VOC all-point)      {_fmt(summary['ap50'])}",
        f"AP50:95 (COCO, pycocotools) {_fmt(summary['ap50_95'])}",
        f"best F1                   {_fmt(f1['f1'])} at score >= {_fmt(f1['threshold'], '.3f')} "
        f"(precision {_fmt(f1['precision'], '.3f')}, recall {_fmt(f1['recall'], '.3f')})",
        "recall by face size (sqrt(w*h), px):",
        f"  {'size':<8} {'faces':>6} {'recall':>8} {'at best F1':>11}",
    ]
    for r in summary["recall_by_size"]:
        lines.append(f"  {r['size_px']:<8} {r['faces']:>6d} {_fmt(r['recall'], '.3f'):>8} "
                     f"{_fmt(r.get('recall_at_threshold'), '.3f'):>11}")
    lines.append(f"images {summary['num_images']}, faces {summary['num_faces']} "
                 f"(+{summary['num_ignored_faces']} ignored), detections {summary['num_detections']}")
    if summary.get("ms_per_image") is not None:
        lines.append(f"speed {summary['ms_per_image']:.1f} ms/image")
    return "\n".join(lines)


def plot_faceset_pr(res: Mapping[str, Any], png_path: str, title: str = "precision-recall") -> str:
    """Plot the AP50 precision-recall curve of a :func:`score_faceset` result, best F1 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ok = np.isfinite(res["recall"]) & np.isfinite(res["precision"])
    ax.plot(res["recall"][ok], res["precision"][ok], lw=2,
            label=f"AP50={_fmt(res['ap'])}, AP50:95={_fmt(res['coco']['ap'])}")
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


def _finish(faces: FaceSet, res: Mapping[str, Any], summary: Dict[str, Any], out_dir: Optional[str],
            verbose: bool) -> Dict[str, Any]:
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        json_path = os.path.join(out_dir, f"{faces.fmt}_eval.json")
        with open(json_path, "w") as f:
            json.dump(_jsonable(summary), f, indent=2, sort_keys=True, default=str)
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
    return _finish(faces, res, _summary(faces, res, settings={"pred_dir": pred_dir}), out_dir, verbose)


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
    summary = _summary(faces, res, ms_per_image=1000.0 * total_s / max(len(faces), 1),
                       settings=settings, pred_dir=pred_dir)
    return _finish(faces, res, summary, out_dir, verbose)
