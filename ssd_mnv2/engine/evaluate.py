"""Face detector evaluation: the official WIDER FACE protocol and VOC AP@0.5.

The WIDER FACE part follows the official evaluation (the MATLAB ``eval_tools`` and its
python port ``WiderFace-Evaluation``):

* predictions are stored in the submission layout ``<pred_dir>/<event>/<name>.txt``
  (image name, count, then ``x y w h score`` lines);
* scores are min-max normalised over the whole evaluated set (with the official
  initial values ``max = 0``, ``min = 1``);
* per image and subset (easy / medium / hard) every detection, in descending score order,
  is matched to the ground-truth face of maximum IoU (``+1`` pixel convention on
  ``x y x+w y+h`` boxes). If that IoU is at least ``iou_thresh``: a face outside the
  subset makes the detection "ignored" (neither TP nor FP); otherwise the face is recalled
  the first time it is hit (later hits are false positives);
* precision / recall are accumulated over 1000 score thresholds ``1 - (t + 1) / 1000`` and
  AP is the all-point VOC AP with the precision envelope.

As in the official code, an image without ground-truth faces or without detections adds
nothing but its counted faces (false positives on face-less images are not counted).

Ground truth comes from the official ``wider_face_val.mat`` and
``wider_{easy,medium,hard}_val.mat``; keys are ``"<event>/<name>"`` without extension.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

SUBSETS: Tuple[str, str, str] = ("easy", "medium", "hard")
GT_FILES: Dict[str, str] = {
    "all": "wider_face_val.mat",
    "easy": "wider_easy_val.mat",
    "medium": "wider_medium_val.mat",
    "hard": "wider_hard_val.mat",
}
IMAGE_EXTS: Tuple[str, ...] = (".jpg", ".jpeg", ".png")

Prediction = Tuple[np.ndarray, np.ndarray]  # (boxes_xywh_px (N,4), scores (N,))


# ----------------------------------------------------------------------------- ground truth
@dataclass
class WiderGT:
    """Ground truth of one image.

    ``boxes_xywh_px``: (N, 4) float64 ``x y w h`` in original image pixels.
    ``subsets``: subset name ('easy', 'medium', 'hard') -> (K,) int64 0-based indices of
    the faces that count in that subset (the other faces are ignored there).
    """

    boxes_xywh_px: np.ndarray
    subsets: Dict[str, np.ndarray] = field(default_factory=dict)

    def counted_mask(self, subset: str) -> np.ndarray:
        """(N,) bool mask of the faces that count in ``subset``."""
        mask = np.zeros(len(self.boxes_xywh_px), dtype=bool)
        mask[self.subsets[subset]] = True
        return mask


def _key_from_path(path: str) -> str:
    """``"event/name.jpg"`` (or with leading folders) -> ``"event/name"``."""
    path = path.strip().replace("\\", "/")
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        raise ValueError(f"expected an 'event/name.jpg' path, got {path!r}")
    return f"{parts[-2]}/{os.path.splitext(parts[-1])[0]}"


def _mat_str(cell: Any) -> str:
    """Unwrap a MATLAB string cell as loaded by scipy (nested object arrays)."""
    a = np.asarray(cell)
    while a.dtype == object and a.size == 1:
        a = np.asarray(a.reshape(-1)[0])
    return str(a.reshape(-1)[0]) if a.ndim else str(a)


def _mat_cells(cell: Any) -> List[Any]:
    """Flatten a MATLAB cell array (object array of shape (n,1) or (1,n)) into a list."""
    return list(np.asarray(cell).reshape(-1))


def _load_mat(gt_dir: str, fname: str) -> Dict[str, Any]:
    from scipy.io import loadmat

    path = os.path.join(gt_dir, fname)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"WIDER ground-truth file not found: {path}")
    try:
        return loadmat(path)
    except MemoryError:
        raise
    except Exception as e:  # scipy raises MatReadError, ValueError, OSError... for a bad file
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: not a readable MATLAB .mat file (truncated or corrupt?): {why}") from None


def _mat_per_image(mat: Mapping[str, Any], field_name: str, path: str) -> Dict[str, np.ndarray]:
    """Map ``"event/name"`` -> the per-image array of ``field_name`` in a WIDER .mat."""
    for k in ("event_list", "file_list", field_name):
        if k not in mat:
            raise ValueError(f"{path}: missing variable {k!r}")
    out: Dict[str, np.ndarray] = {}
    events = _mat_cells(mat["event_list"])
    files = _mat_cells(mat["file_list"])
    values = _mat_cells(mat[field_name])
    if not len(events) == len(files) == len(values):
        raise ValueError(f"{path}: event_list, file_list and {field_name} differ in length")
    for ev_cell, file_cell, val_cell in zip(events, files, values):
        event = _mat_str(ev_cell)
        names = _mat_cells(file_cell)
        vals = _mat_cells(val_cell)
        if len(names) != len(vals):
            raise ValueError(f"{path}: event {event}: file_list and {field_name} differ in length")
        for n, v in zip(names, vals):
            v = np.asarray(v)
            while v.dtype == object and v.size == 1:
                v = np.asarray(v.reshape(-1)[0])
            out[f"{event}/{_mat_str(n)}"] = v
    return out


def load_wider_ground_truth(
    gt_dir: str, image_list: Optional[Sequence[str]] = None
) -> Dict[str, WiderGT]:
    """Read the official WIDER FACE ground-truth .mat files from ``gt_dir``.

    Returns ``{"event/name": WiderGT}``. ``image_list`` (``"event/name.jpg"`` strings)
    restricts the result; an entry absent from the .mat files raises ValueError.
    A missing .mat file raises FileNotFoundError.
    """
    mats = {k: _load_mat(gt_dir, f) for k, f in GT_FILES.items()}
    boxes = _mat_per_image(mats["all"], "face_bbx_list", os.path.join(gt_dir, GT_FILES["all"]))
    subset_idx = {
        s: _mat_per_image(mats[s], "gt_list", os.path.join(gt_dir, GT_FILES[s])) for s in SUBSETS
    }
    if image_list is None:
        keys = list(boxes)
    else:
        keys = []
        for entry in image_list:
            key = _key_from_path(entry)
            if key not in boxes:
                raise ValueError(
                    f"image {entry!r} is not in {os.path.join(gt_dir, GT_FILES['all'])}"
                )
            keys.append(key)
    out: Dict[str, WiderGT] = {}
    for key in keys:
        b = np.asarray(boxes[key], dtype=np.float64)
        b = b.reshape(-1, 4) if b.size else np.zeros((0, 4), np.float64)
        subs: Dict[str, np.ndarray] = {}
        for s in SUBSETS:
            if key not in subset_idx[s]:
                raise ValueError(f"image {key!r} is not in {os.path.join(gt_dir, GT_FILES[s])}")
            idx = np.asarray(subset_idx[s][key]).astype(np.int64).reshape(-1) - 1  # 1-based
            if idx.size and (idx.min() < 0 or idx.max() >= len(b)):
                raise ValueError(
                    f"{GT_FILES[s]}: image {key!r} has face indices outside 1..{len(b)}"
                )
            subs[s] = idx
        out[key] = WiderGT(boxes_xywh_px=b, subsets=subs)
    return out


# ----------------------------------------------------------------------------- predictions
def write_wider_prediction(
    out_dir: str, key: str, boxes_xyxy_px: np.ndarray, scores: np.ndarray
) -> str:
    """Write one image's detections as ``<out_dir>/<event>/<name>.txt`` (official layout).

    ``boxes_xyxy_px``: (N, 4) ``x1 y1 x2 y2`` in original pixels; ``scores``: (N,).
    Lines are written as ``x y w h score`` sorted by descending score. Returns the path.
    """
    event, name = key.split("/") if key.count("/") == 1 else (None, None)
    if not event or not name:
        raise ValueError(f"prediction key must be 'event/name', got {key!r}")
    boxes_xyxy_px = np.asarray(boxes_xyxy_px, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes_xyxy_px) != len(scores):
        raise ValueError(f"{key}: {len(boxes_xyxy_px)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    b = boxes_xyxy_px[order]
    s = scores[order]
    event_dir = os.path.join(out_dir, event)
    os.makedirs(event_dir, exist_ok=True)
    path = os.path.join(event_dir, name + ".txt")
    lines = [name, str(len(s))]
    lines += [
        f"{x1:.2f} {y1:.2f} {x2 - x1:.2f} {y2 - y1:.2f} {sc:.9g}"
        for (x1, y1, x2, y2), sc in zip(b, s)
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _read_prediction_file(path: str, key: str) -> Prediction:
    """Parse one submission file; errors name the file and the 1-based line number."""
    with open(path, "r") as f:
        lines = [ln.strip() for ln in f.read().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected an image-name line and a count line")
    name = os.path.splitext(lines[0].replace("\\", "/").split("/")[-1])[0]
    if name != key.split("/")[-1]:
        raise ValueError(f"{path}:1: image name {lines[0]!r} does not match {key!r}")
    try:
        count = int(float(lines[1]))
    except ValueError:
        raise ValueError(f"{path}:2: bad count line {lines[1]!r}") from None
    rows = lines[2:]
    if count != len(rows):
        raise ValueError(f"{path}:2: count says {count} detections but the file has {len(rows)}")
    data = np.zeros((len(rows), 5), dtype=np.float64)
    for i, ln in enumerate(rows):
        fields = ln.split()
        if len(fields) != 5:
            raise ValueError(
                f"{path}:{i + 3}: expected 5 fields 'x y w h score', got {len(fields)}: {ln!r}"
            )
        try:
            data[i] = [float(v) for v in fields]
        except ValueError:
            raise ValueError(f"{path}:{i + 3}: non-numeric field in {ln!r}") from None
        if not np.all(np.isfinite(data[i])):
            raise ValueError(f"{path}:{i + 3}: non-finite value in {ln!r}")
        if data[i, 2] < 0 or data[i, 3] < 0:
            raise ValueError(f"{path}:{i + 3}: negative box width or height in {ln!r} "
                             "(expected 'x y w h score' with w, h >= 0)")
    return data[:, :4], data[:, 4]


def read_wider_predictions(pred_dir: str, keys: Iterable[str]) -> Dict[str, Prediction]:
    """Read ``<pred_dir>/<event>/<name>.txt`` for every key ``"event/name"``.

    Returns ``{key: (boxes_xywh_px (N,4) float64, scores (N,) float64)}``.
    Raises FileNotFoundError for a missing event folder or file, ValueError (with file
    and line) for a malformed file.
    """
    out: Dict[str, Prediction] = {}
    for key in keys:
        event, name = key.split("/")
        event_dir = os.path.join(pred_dir, event)
        if not os.path.isdir(event_dir):
            raise FileNotFoundError(f"prediction event folder missing: {event_dir}")
        path = os.path.join(event_dir, name + ".txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"prediction file missing: {path}")
        out[key] = _read_prediction_file(path, key)
    return out


# ----------------------------------------------------------------------------- WIDER AP
def bbox_overlaps_px(boxes_a_xyxy_px: np.ndarray, boxes_b_xyxy_px: np.ndarray) -> np.ndarray:
    """IoU (N, K) between (N,4) and (K,4) ``x1 y1 x2 y2`` boxes, ``+1`` pixel convention."""
    a = np.asarray(boxes_a_xyxy_px, dtype=np.float64)
    b = np.asarray(boxes_b_xyxy_px, dtype=np.float64)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(inter > 0, inter / union, 0.0)
    return iou


def _xywh_to_xyxy(boxes_xywh_px: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes_xywh_px, dtype=np.float64).reshape(-1, 4).copy()
    b[:, 2:] += b[:, :2]
    return b


def _image_eval(
    iou: np.ndarray, counted: np.ndarray, iou_thresh: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Official ``image_eval`` vectorised, detections already sorted by descending score.

    ``iou``: (N, G); ``counted``: (G,) bool. Returns ``pred_recall`` (N,) = number of
    counted faces recalled by detections ``0..h``, and ``proposal`` (N,) with 1 for a
    regular detection and -1 for one ignored (best match is a non-counted face).
    """
    n = iou.shape[0]
    best = iou.argmax(axis=1)
    hit = iou[np.arange(n), best] >= iou_thresh
    ignored = hit & ~counted[best]
    proposal = np.where(ignored, -1, 1)
    good = hit & counted[best]
    first_hit = np.zeros(n, dtype=np.int64)
    det_idx = np.nonzero(good)[0]
    if det_idx.size:
        _, first = np.unique(best[det_idx], return_index=True)
        first_hit[det_idx[first]] = 1
    return np.cumsum(first_hit), proposal


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point VOC AP (precision envelope) of a curve given as (T,) recall, precision."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], np.nan_to_num(precision), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def normalize_scores(predictions: Mapping[str, Prediction]) -> Dict[str, np.ndarray]:
    """Official min-max score normalisation over all images (``max`` starts at 0, ``min`` at 1).

    Returns ``{key: normalised scores (N,)}``. If all scores are equal (zero range) every
    score becomes 1.0 (the official code would divide by zero).
    """
    max_score, min_score = 0.0, 1.0
    for _, s in predictions.values():
        if len(s):
            max_score = max(max_score, float(np.max(s)))
            min_score = min(min_score, float(np.min(s)))
    diff = max_score - min_score
    out = {}
    for k, (_, s) in predictions.items():
        s = np.asarray(s, dtype=np.float64)
        out[k] = (s - min_score) / diff if diff > 0 else np.ones_like(s)
    return out


def wider_ap(
    predictions: Mapping[str, Prediction],
    ground_truth: Mapping[str, WiderGT],
    iou_thresh: float = 0.5,
    num_thresholds: int = 1000,
) -> Dict[str, Any]:
    """Official WIDER FACE AP for the easy / medium / hard subsets.

    ``predictions``: ``{key: (boxes_xywh_px (N,4), scores (N,))}`` covering every key of
    ``ground_truth`` (a missing key raises KeyError).

    Returns a dict with ``ap`` {subset: float} (nan when the subset has no face),
    ``pr`` {subset: {"precision": (T,), "recall": (T,)}} (precision nan at thresholds
    with no detection), ``thresholds`` (T,) (descending), ``num_faces`` {subset: int},
    ``num_images``, ``num_detections``, ``iou_thresh``, ``num_thresholds``.
    """
    missing = [k for k in ground_truth if k not in predictions]
    if missing:
        raise KeyError(f"no prediction for {len(missing)} image(s), e.g. {missing[0]!r}")
    preds = {k: predictions[k] for k in ground_truth}
    norm = normalize_scores(preds)
    t = np.arange(num_thresholds, dtype=np.float64)
    thresholds = 1 - (t + 1) / num_thresholds
    neg_thr = -thresholds

    pr_curve = {s: np.zeros((num_thresholds, 2), dtype=np.float64) for s in SUBSETS}
    count_face = {s: 0 for s in SUBSETS}
    num_det = 0
    for key, gt in ground_truth.items():
        boxes_xywh = np.asarray(preds[key][0], dtype=np.float64).reshape(-1, 4)
        scores = norm[key]
        num_det += len(scores)
        for s in SUBSETS:
            count_face[s] += len(gt.subsets[s])
        if len(gt.boxes_xywh_px) == 0 or len(scores) == 0:
            continue
        order = np.argsort(-scores, kind="stable")
        scores = scores[order]
        iou = bbox_overlaps_px(_xywh_to_xyxy(boxes_xywh[order]), _xywh_to_xyxy(gt.boxes_xywh_px))
        # number of detections with score >= each threshold
        n_above = np.searchsorted(-scores, neg_thr, side="right")
        for s in SUBSETS:
            pred_recall, proposal = _image_eval(iou, gt.counted_mask(s), iou_thresh)
            n_prop = np.concatenate(([0], np.cumsum(proposal == 1)))
            n_rec = np.concatenate(([0], pred_recall))
            pr_curve[s][:, 0] += n_prop[n_above]
            pr_curve[s][:, 1] += n_rec[n_above]

    result: Dict[str, Any] = {
        "ap": {},
        "pr": {},
        "thresholds": thresholds,
        "num_faces": dict(count_face),
        "num_images": len(ground_truth),
        "num_detections": int(num_det),
        "iou_thresh": float(iou_thresh),
        "num_thresholds": int(num_thresholds),
    }
    for s in SUBSETS:
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = pr_curve[s][:, 1] / pr_curve[s][:, 0]
            recall = pr_curve[s][:, 1] / count_face[s] if count_face[s] else np.full(
                num_thresholds, np.nan
            )
        result["pr"][s] = {"precision": precision, "recall": recall}
        result["ap"][s] = voc_ap(recall, precision) if count_face[s] else float("nan")
    return result


# ----------------------------------------------------------------------------- reporting
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


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _summary(result: Mapping[str, Any], **extra: Any) -> Dict[str, Any]:
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


def _write_outputs(summary: Dict[str, Any], result: Mapping[str, Any], out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "wider_eval.json"), "w") as f:
        json.dump(_nan_to_none(summary), f, indent=2, sort_keys=True, default=str)
    plot_pr_curves(result, os.path.join(out_dir, "wider_pr.png"))


def read_image_list(list_file: str) -> List[str]:
    """Read ``event/name.jpg`` lines (blank lines and ``#`` comments skipped)."""
    with open(list_file, "r") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def find_images(images_dir: str) -> List[str]:
    """``event/name.ext`` of every image under ``images_dir/<event>/``, sorted."""
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"images folder not found: {images_dir}")
    found = []
    for event in sorted(os.listdir(images_dir)):
        ev_dir = os.path.join(images_dir, event)
        if not os.path.isdir(ev_dir):
            continue
        for name in sorted(os.listdir(ev_dir)):
            if name.lower().endswith(IMAGE_EXTS):
                found.append(f"{event}/{name}")
    if not found:
        raise FileNotFoundError(f"no images found under {images_dir}/<event>/")
    return found


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
    summary = _summary(
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
        key = _key_from_path(entry)
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
    summary = _summary(
        result,
        ms_per_image=1000.0 * total_s / max(len(image_list), 1),
        settings=settings,
        pred_dir=pred_dir,
    )
    _write_outputs(summary, result, out_dir)
    print(format_table(summary))
    return summary


# ----------------------------------------------------------------------------- VOC AP@0.5
def voc_ap50(
    detections: Sequence[Tuple[np.ndarray, np.ndarray]],
    ground_truths: Sequence[Tuple[np.ndarray, np.ndarray]],
    use_07_metric: bool = False,
) -> float:
    """Single-class ('face') PASCAL VOC AP at IoU 0.5 via gluoncv's VOC metric.

    ``detections[i]``: ``(boxes_xyxy_px (N,4), scores (N,))``; ``ground_truths[i]``:
    ``(boxes_xyxy_px (M,4), difficult (M,) bool)``. All-point AP by default, the 11-point
    VOC07 AP with ``use_07_metric``. Returns nan when there is no non-difficult face.
    """
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric, VOCMApMetric

    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection entries but {len(ground_truths)} GT")
    metric_cls = VOC07MApMetric if use_07_metric else VOCMApMetric
    metric = metric_cls(iou_thresh=0.5, class_names=["face"])
    n_pos = 0
    for (det_boxes, det_scores), (gt_boxes, difficult) in zip(detections, ground_truths):
        det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
        det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        difficult = np.asarray(difficult, dtype=bool).reshape(-1)
        if len(difficult) != len(gt_boxes):
            raise ValueError("difficult flags and GT boxes differ in length")
        n_pos += int((~difficult).sum())
        metric.update(
            det_boxes[None], np.zeros((1, len(det_scores))), det_scores[None],
            gt_boxes[None], np.zeros((1, len(gt_boxes))), difficult[None].astype(np.float64),
        )
    if n_pos == 0:
        return float("nan")
    _, values = metric.get()
    return float(values[0])
