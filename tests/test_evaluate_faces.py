"""Evaluation on one's own face sets (VOC / COCO format) and test-time augmentation.

The AP values are computed by hand in the comments (VOC all-point AP; COCO's 101-point AP).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ssd_mnv2.data.synthetic import voc_xml, write_blob_voc_set, write_voc_faceset
from tiny_configs import tiny_config
from ssd_mnv2 import cli
from ssd_mnv2.data.faceset import FaceSetError, load_coco_faceset, load_voc_faceset
from ssd_mnv2.evaluation.coco_metrics import coco_face_ap
from ssd_mnv2.evaluation.faceset import evaluate_faceset_detector, evaluate_faceset_predictions
from ssd_mnv2.evaluation.predictions import read_faceset_predictions, write_prediction_txt
from ssd_mnv2.evaluation.voc_metrics import best_f1, match_detections, score_voc
from ssd_mnv2.sizes import resolve_size
from ssd_mnv2.tta import TTADetector, flip_boxes_xyxy_px, merge_detections, parse_scales
from voc_reference import voc_ap50

# ----------------------------------------------------------------------------- the hand-computed set
# Pixel edges (x1 y1 x2 y2); the XML holds them 1-based inclusive: (x1 + 1, y1 + 1, x2, y2).
#   image a (64x32): F1 with_mask [0,0,10,10], F2 without_mask [20,0,30,10],
#                    D with_mask difficult [40,0,50,10]
#   image b (64x32): F3 without_mask [0,0,20,20], H hand [40,0,50,10]
SET = {
    "a": ((64, 32), [("with_mask", (1, 1, 10, 10), 0), ("without_mask", (21, 1, 30, 10), 0),
                     ("with_mask", (41, 1, 50, 10), 1)]),
    "b": ((64, 32), [("without_mask", (1, 1, 20, 20), 0), ("hand", (41, 1, 50, 10), 0)]),
}
# detections (x y w h score):
#   a: d3 0.95 on D (ignored), d1 0.90 on F1 (TP), d2 0.88 on F1 again, IoU 90/110 (duplicate: FP),
#      d4 0.70 on D (ignored), d5 0.60 far from every face (FP); F2 is missed
#   b: d6 0.85 on F3 (TP), d7 0.50 on F3 again (duplicate: FP), d8 0.30 on the hand
PRED = {
    "a": [(40, 0, 10, 10, 0.95), (0, 0, 10, 10, 0.90), (1, 0, 10, 10, 0.88), (40, 0, 10, 10, 0.70),
          (55, 20, 8, 10, 0.60)],
    "b": [(0, 0, 20, 20, 0.85), (0, 0, 20, 20, 0.50), (40, 0, 10, 10, 0.30)],
}
# --classes with_mask,without_mask: 3 faces (F1 F2 F3; D ignored; the hand is not a face).
# ranking without the ignored: 0.90 TP, 0.88 FP, 0.85 TP, 0.60 FP, 0.50 FP, 0.30 FP
#   precision 1, 1/2, 2/3, 1/2, 2/5, 1/3;  recall 1/3, 1/3, 2/3, 2/3, 2/3, 2/3
#   envelope: 1 up to recall 1/3, 2/3 up to 2/3 -> AP50 = 1/3 * 1 + 1/3 * 2/3 = 5/9
#   F1 at each distinct score: .5, .4, 2/3, .571, .5, .444 -> best 2/3 at score 0.85
#   COCO AP50 (101 recall points, D a crowd region): 34 points (0 .. 0.33) at 1, 33 points
#   (0.34 .. 0.66) at 2/3 -> (34 + 22) / 101 = 56/101
AP50_MASK = 5 / 9
COCO_AP50_MASK = 56 / 101
# every object a face (the hand too): 4 faces; d8 becomes a TP
#   precision 1, 1/2, 2/3, 1/2, 2/5, 1/2; recall 1/4, 1/4, 1/2, 1/2, 1/2, 3/4
#   AP50 = 1/4 * 1 + 1/4 * 2/3 + 1/4 * 1/2 = 13/24
AP50_ALL = 13 / 24
MASK_CLASSES = "with_mask,without_mask"


def _write_pred(pred_dir: Path, pred=PRED) -> Path:
    pred_dir.mkdir(parents=True, exist_ok=True)
    for key, rows in pred.items():
        lines = [f"{key}.jpg", str(len(rows))] + [" ".join(f"{v:g}" for v in r) for r in rows]
        (pred_dir / f"{key}.txt").write_text("\n".join(lines) + "\n")
    return pred_dir


def _pred_arrays(pred=PRED):
    out = {}
    for key, rows in pred.items():
        a = np.asarray(rows, np.float64).reshape(-1, 5)
        out[key] = (np.c_[a[:, :2], a[:, :2] + a[:, 2:4]], a[:, 4])
    return out


def test_voc_cli_hand_computed_ap_difficult_duplicates_and_classes(tmp_path, capsys):
    images, anns = write_voc_faceset(tmp_path / "set", SET)
    pred = _write_pred(tmp_path / "pred")
    out = tmp_path / "out"
    rc = cli.main(["evaluate", "--format", "voc", "--images", str(images), "--annotations", str(anns),
                   "--classes", MASK_CLASSES, "--pred", str(pred), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "AP50 (VOC all-point)      0.5556" in text and "best F1" in text
    s = json.loads((out / "voc_eval.json").read_text())
    assert s["ap50"] == pytest.approx(AP50_MASK, abs=1e-12)
    assert s["coco"]["ap50"] == pytest.approx(COCO_AP50_MASK, abs=1e-12)
    assert s["ap50_95"] == pytest.approx(COCO_AP50_MASK, abs=1e-12)  # the TPs have IoU 1: same at 0.95
    assert s["best_f1"] == pytest.approx({"f1": 2 / 3, "threshold": 0.85, "precision": 2 / 3,
                                          "recall": 2 / 3})
    assert s["num_faces"] == 3 and s["num_ignored_faces"] == 1 and s["num_images"] == 2
    assert s["num_detections"] == 8 and s["num_ignored_detections"] == 2
    bins = {r["size_px"]: r for r in s["recall_by_size"]}
    assert bins["<16"]["faces"] == 2 and bins["<16"]["recall"] == 0.5  # F1 found, F2 missed
    assert bins["16-32"]["faces"] == 1 and bins["16-32"]["recall_at_threshold"] == 1.0
    assert bins[">=128"]["faces"] == 0 and bins[">=128"]["recall"] is None  # nan -> null
    assert s["faceset"]["classes"] == ["with_mask", "without_mask"]
    assert (out / "voc_pr.png").stat().st_size > 1000

    # every object is a face by default: the hand counts, and the detection on it is a TP
    all_faces = evaluate_faceset_predictions(str(pred), load_voc_faceset(str(images), str(anns)),
                                             verbose=False)
    assert all_faces["ap50"] == pytest.approx(AP50_ALL, abs=1e-12) and all_faces["num_faces"] == 4
    # the images folder is optional when scoring prediction files
    no_images = evaluate_faceset_predictions(str(pred), load_voc_faceset(None, str(anns), classes=MASK_CLASSES),
                                             verbose=False)
    assert no_images["ap50"] == pytest.approx(AP50_MASK, abs=1e-12)


def test_voc_scorer_equals_gluoncv_voc_metric_on_random_sets():
    rng = np.random.default_rng(3)
    dets, gts = [], []
    for _ in range(30):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, (n, 2))
        gt = np.c_[xy, xy + rng.uniform(8, 60, (n, 2))]
        ignore = rng.random(n) < 0.2
        # jittered copies of the faces (some twice: duplicates) and random false positives
        src = gt[rng.integers(0, n, int(rng.integers(0, 2 * n + 1)))] if n else np.zeros((0, 4))
        jit = src + rng.normal(0, 2, src.shape)
        fp_xy = rng.uniform(0, 200, (int(rng.integers(0, 4)), 2))
        boxes = np.vstack([jit, np.c_[fp_xy, fp_xy + 20]])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = np.r_[rng.uniform(0.3, 1.0, len(jit)), rng.uniform(0.0, 0.7, len(fp_xy))]
        order = np.argsort(-scores)  # gluoncv matches in the given order: give it best first
        dets.append((boxes[order], scores[order]))
        gts.append((gt, ignore))
    ours = score_voc(dets, gts)["ap"]
    # gluoncv adds 1 to x2, y2 (integer-pixel boxes): subtract it so both see the same IoU
    minus1 = lambda b: np.c_[b[:, :2], b[:, 2:] - 1]  # noqa: E731
    theirs = voc_ap50([(minus1(b), s) for b, s in dets], [(minus1(g), i) for g, i in gts])
    assert 0.2 < ours < 0.95
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_best_f1_does_not_split_equal_scores():
    gt = [(np.array([[0, 0, 10, 10.]]), np.array([False]))]
    det = [(np.array([[0, 0, 10, 10.], [50, 50, 60, 60]]), np.array([0.9, 0.9]))]
    f1 = best_f1(match_detections(det, gt))
    # both boxes are kept at any threshold that keeps one: P 1/2, R 1 -> F1 2/3 (not 1.0)
    assert f1 == pytest.approx({"f1": 2 / 3, "threshold": 0.9, "precision": 0.5, "recall": 1.0})
    assert best_f1(match_detections([(np.zeros((0, 4)), np.zeros(0))], gt))["f1"] == 0.0


def test_coco_ap_by_pycocotools_hand_computed():
    face = np.array([[0, 0, 100, 100.]])
    # shifted by 16 px: IoU 84/116 = 0.724 -> a match at IoU 0.50..0.70 (5 of the 10 thresholds)
    res = coco_face_ap([(np.array([[16, 0, 116, 100.]]), np.array([0.9]))], [(face, np.array([False]))])
    assert res["ap"] == pytest.approx(0.5) and res["ap50"] == pytest.approx(1.0) and res["ap75"] == 0.0
    # a crowd (ignored) face: the detection on it is neither TP nor FP
    gt = (np.array([[0, 0, 100, 100.], [200, 200, 240, 240]]), np.array([False, True]))
    res = coco_face_ap([(np.array([[200, 200, 240, 240], [0, 0, 100, 100.]]), np.array([0.9, 0.5]))], [gt])
    assert res["ap"] == pytest.approx(1.0)
    assert coco_face_ap([(np.zeros((0, 4)), np.zeros(0))], [gt])["ap"] == 0.0
    assert np.isnan(coco_face_ap([(face, np.array([0.5]))], [(face, np.array([True]))])["ap"])


def _coco_doc():
    """The hand-computed SET as a COCO instances.json (D as a crowd region)."""
    cats = [{"id": 1, "name": "with_mask"}, {"id": 2, "name": "without_mask"}, {"id": 7, "name": "hand"}]
    ids = {"with_mask": 1, "without_mask": 2, "hand": 7}
    images, anns = [], []
    for i, (key, ((w, h), objects)) in enumerate(SET.items(), 1):
        images.append({"id": i, "file_name": f"{key}.jpg", "width": w, "height": h})
        for name, (x1, y1, x2, y2), diff in objects:
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": ids[name],
                         "bbox": [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1], "iscrowd": diff})
    return {"images": images, "annotations": anns, "categories": cats}


def test_coco_faceset_scores_like_the_voc_one(tmp_path):
    images, _ = write_voc_faceset(tmp_path / "set", SET)
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps(_coco_doc()))
    pred = _write_pred(tmp_path / "pred")
    out = tmp_path / "out"
    rc = cli.main(["evaluate", "--format", "coco", "--images", str(images), "--annotations", str(ann),
                   "--classes", MASK_CLASSES, "--pred", str(pred), "--out", str(out)])
    assert rc == 0
    s = json.loads((out / "coco_eval.json").read_text())
    assert s["ap50"] == pytest.approx(AP50_MASK, abs=1e-12)
    assert s["coco"]["ap50"] == pytest.approx(COCO_AP50_MASK, abs=1e-12)
    assert (out / "coco_pr.png").is_file()
    faces = load_coco_faceset(str(images), str(ann))
    assert faces.num_faces == 4 and faces.num_ignored == 1
    np.testing.assert_array_equal(faces.images[0].boxes_xyxy_px[0], [0, 0, 10, 10])
    with pytest.raises(FaceSetError, match="'mask' is not a category"):
        load_coco_faceset(str(images), str(ann), classes="mask")
    ann.write_text('{"images": [')
    with pytest.raises(FaceSetError, match=f"^{ann}: not valid JSON"):
        load_coco_faceset(str(images), str(ann))
    doc = _coco_doc()
    doc["images"][1]["file_name"] = "gone.jpg"
    ann.write_text(json.dumps(doc))
    with pytest.raises(FaceSetError, match="image file not found.*gone.jpg"):
        load_coco_faceset(str(images), str(ann))
    with pytest.warns(UserWarning, match="gone.jpg"):
        assert len(load_coco_faceset(str(images), str(ann), skip_bad=True)) == 1


# ----------------------------------------------------------------------------- bad input
def test_bad_voc_sets_are_reported_naming_the_file(tmp_path, capsys):
    images, anns = write_voc_faceset(tmp_path / "set", SET)
    # malformed XML: the CLI's one-line error names the file
    (anns / "b.xml").write_text("<annotation><size>")
    rc = cli.main(["evaluate", "--format", "voc", "--images", str(images), "--annotations", str(anns),
                   "--pred", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{anns / 'b.xml'}: XML error" in err.splitlines()[0]
    (anns / "b.xml").write_text(voc_xml(64, 32, [("face", (1, 1, 20, 20), 0)]))

    cv2.imwrite(str(images / "extra.jpg"), np.zeros((8, 8, 3), np.uint8))   # image without XML
    (anns / "lonely.xml").write_text(voc_xml(64, 32, []))                    # XML without image
    with pytest.raises(FaceSetError) as ei:
        load_voc_faceset(str(images), str(anns))
    msg = str(ei.value)
    assert "extra.jpg: image has no annotation" in msg and "lonely.xml: image not found" in msg
    assert "2 problem(s)" in msg.splitlines()[0]
    with pytest.warns(UserWarning, match="lonely.xml"):
        faces = load_voc_faceset(str(images), str(anns), skip_bad=True)
    assert [im.key for im in faces.images] == ["a", "b"] and len(faces.skipped) == 2

    # an image whose size differs from <size>
    (anns / "extra.xml").write_text(voc_xml(64, 32, []))
    (anns / "lonely.xml").unlink()
    with pytest.raises(FaceSetError, match="extra.xml: says the image is 64x32 but .*extra.jpg is 8x8"):
        load_voc_faceset(str(images), str(anns))

    # --list: an unknown id is reported with the list's line
    lst = tmp_path / "list.txt"
    lst.write_text("a.jpg\n\nnope\n")
    with pytest.raises(FaceSetError, match=r"nope.xml: annotation not found \(listed in .*list.txt:3\)"):
        load_voc_faceset(str(images), str(anns), list_file=str(lst))
    lst.write_text("a\nb\n")
    assert len(load_voc_faceset(str(images), str(anns), list_file=str(lst))) == 2

    # empty sets
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceSetError, match="empty"):
        load_voc_faceset(None, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="annotations folder not found"):
        load_voc_faceset(None, str(tmp_path / "nowhere"))

    # prediction files: a missing one is named, a bad line names file and line
    pred = _write_pred(tmp_path / "pred")
    faces = load_voc_faceset(str(images), str(anns), list_file=str(lst))
    (pred / "b.txt").unlink()
    with pytest.raises(FileNotFoundError, match=f"prediction file missing: {pred / 'b.txt'}"):
        read_faceset_predictions(str(pred), faces)
    (pred / "b.txt").write_text("b.jpg\n1\n1 2 3 x 0.5\n")
    with pytest.raises(ValueError, match="b.txt:3: non-numeric"):
        read_faceset_predictions(str(pred), faces)


def test_cli_option_errors(tmp_path, capsys):
    images, anns = write_voc_faceset(tmp_path / "set", SET)
    base = ["evaluate", "--format", "voc", "--images", str(images)]
    assert cli.main(base) == 2 and "needs --annotations" in capsys.readouterr().err
    assert cli.main(base + ["--annotations", str(anns), "--gt", "x"]) == 2
    assert "--gt is the WIDER" in capsys.readouterr().err
    rc = cli.main(base + ["--annotations", str(anns), "--pred", str(tmp_path), "--tta-flip"])
    assert rc == 2 and "cannot be used with --pred" in capsys.readouterr().err
    assert cli.main(["evaluate", "--classes", "a"]) == 2
    assert "--format voc or coco" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: checked before a model is loaded
        cli.main(base + ["--annotations", str(anns), "--tta-scales", "original,0.5y"])
    assert "0.5y" in capsys.readouterr().err


# ----------------------------------------------------------------------------- detector + TTA
class BlobDetector:
    """A stand-in model: white rectangles on black are faces. It looks at the image resized to the
    requested size (as a real model does), so boxes at small scales are coarser."""

    def __init__(self):
        self.cfg = tiny_config()
        self.calls = []

    def input_size(self, width, height, size=None):
        return resolve_size(size if size is not None else self.cfg.eval.size, width, height)

    def predict(self, image_bgr, size=None, threshold=None):
        H, W = image_bgr.shape[:2]
        w, h = self.input_size(W, H, size)
        self.calls.append((size, (w, h), int(image_bgr[:, : W // 2].sum() > image_bgr[:, W // 2:].sum())))
        small = cv2.resize(image_bgr[:, :, 0], (w, h), interpolation=cv2.INTER_AREA)
        n, _, stats, _ = cv2.connectedComponentsWithStats((small > 127).astype(np.uint8))
        st = stats[1:].astype(np.float32)
        boxes = np.c_[st[:, 0] * W / w, st[:, 1] * H / h, (st[:, 0] + st[:, 2]) * W / w,
                      (st[:, 1] + st[:, 3]) * H / h]
        return boxes.astype(np.float32), np.full(len(boxes), 0.9, np.float32)

    def describe(self):
        return {"name": "blobs"}


def test_evaluate_detector_with_tta_on_a_voc_set(tmp_path):
    images, anns = write_blob_voc_set(tmp_path)
    faces = load_voc_faceset(str(images), str(anns))
    det = BlobDetector()
    s = evaluate_faceset_detector(det, faces, str(tmp_path / "out"), verbose=False)
    assert s["ap50"] == pytest.approx(1.0) and s["ap50_95"] == pytest.approx(1.0)
    assert s["settings"]["detector"] == {"name": "blobs"} and s["ms_per_image"] >= 0
    assert (tmp_path / "out" / "predictions" / "p1.txt").read_text().startswith("p1.png\n2\n10.00 10.00 40.00 50.00")
    assert (tmp_path / "out" / "voc_eval.json").is_file()

    tta = TTADetector(BlobDetector(), scales="original,0.5x", flip=True, merge="vote")
    s = evaluate_faceset_detector(tta, faces, str(tmp_path / "tta"), size="original", verbose=False)
    assert s["ap50"] == pytest.approx(1.0) and s["num_detections"] == 3  # 4 passes merged to one box each
    assert s["settings"]["detector"]["tta"] == {"scales": ["original", "0.5x"], "flip": True,
                                                "merge": "vote", "iou": 0.3, "passes": 4}
    # per image: original, flipped original, half size, flipped half size
    assert [c[:2] for c in tta.detector.calls[:4]] == [("original", (160, 120)), ("original", (160, 120)),
                                                     ("80x60", (80, 60)), ("80x60", (80, 60))]
    # p2's face is mostly in the left half: the flipped passes see it on the right
    assert [c[2] for c in tta.detector.calls[4:8]] == [1, 0, 1, 0]


def test_tta_merge_hand_computed():
    a, b, c = [0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]  # IoU(a, b) = 90/110
    boxes, scores = np.array([c, b, a], float), np.array([0.5, 0.6, 0.9])
    nb, ns = merge_detections(boxes, scores, "nms", iou=0.4)
    np.testing.assert_allclose(nb, [a, c])
    np.testing.assert_allclose(ns, [0.9, 0.5])
    vb, vs = merge_detections(boxes, scores, "vote", iou=0.3)
    # (0.9 a + 0.6 b) / 1.5 = [0.4, 0, 10.4, 10] with the cluster's best score; c alone is kept
    np.testing.assert_allclose(vb, [[0.4, 0, 10.4, 10], c], atol=1e-5)
    np.testing.assert_allclose(vs, [0.9, 0.5], atol=1e-6)
    assert len(merge_detections(boxes, scores, "nms", iou=0.95)[0]) == 3  # IoU 0.82 < 0.95: kept
    assert len(merge_detections(boxes, scores, "vote", max_detections=1)[0]) == 1
    assert merge_detections(np.zeros((0, 4)), np.zeros(0), "vote")[0].shape == (0, 4)
    with pytest.raises(ValueError, match="merge 'mean'"):
        merge_detections(boxes, scores, "mean")


def test_tta_sizes_flip_and_a_real_backend(tmp_path):
    import mxnet as mx

    from ssd_mnv2.model.ssd import build_ssd
    from ssd_mnv2.predictor import Detector

    assert parse_scales("original, 0.5x,1.5x ,640x480") == ("original", "0.5x", "1.5x", "640x480")
    for bad in ("", "0.5y", "original,1x,original", "100x"):
        with pytest.raises(ValueError, match="--tta-scales"):
            parse_scales(bad)
    b = np.array([[10, 5, 30, 25]], np.float32)
    np.testing.assert_array_equal(flip_boxes_xyxy_px(b, 100), [[70, 5, 90, 25]])
    np.testing.assert_array_equal(flip_boxes_xyxy_px(flip_boxes_xyxy_px(b, 100), 100), b)
    tta = TTADetector(BlobDetector(), scales="original,0.5x,1.5x,max-side 64")
    assert tta.pass_sizes(200, 100) == ["original", "100x50", "300x150", "max-side 64"]
    assert tta.pass_sizes(200, 100, "max-side 400") == ["max-side 400", "200x100", "600x300", "max-side 64"]
    assert tta.pass_sizes(100, 40)[1] == "50x32"  # at least 32 px

    cfg = tiny_config(decode={"max_detections": 20, "pre_nms_topk": 200})
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    det = Detector(cfg, ssd, fused=False)
    img = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    plain = det.predict(img)
    same = TTADetector(det).predict(img)  # one pass: exactly the detector's output
    np.testing.assert_array_equal(plain[0], same[0])
    np.testing.assert_array_equal(plain[1], same[1])
    tb, ts = TTADetector(det, "original,1.5x", flip=True, merge="vote").predict(img, threshold=0.0)
    assert 0 < len(ts) <= 20 and np.all(np.diff(ts) <= 0)
    assert tb.min() >= 0 and tb[:, 2].max() <= 120 and tb[:, 3].max() <= 90
    assert np.all(tb[:, 2] > tb[:, 0]) and np.all(tb[:, 3] > tb[:, 1])


def test_detect_cli_with_tta(tmp_path, monkeypatch):
    from ssd_mnv2.commands import detect

    images, _ = write_blob_voc_set(tmp_path)
    monkeypatch.setattr(detect, "backend_detector", lambda args: BlobDetector())
    out = tmp_path / "out"
    rc = cli.main(["detect", str(images), "--out", str(out), "--no-images", "--tta-scales",
                   "original,0.5x", "--tta-flip", "--tta-merge", "vote"])
    assert rc == 0
    doc = json.loads((out / "detections.json").read_text())
    assert doc["model"]["tta"]["passes"] == 4
    assert [r["num_faces"] for r in doc["images"]] == [2, 1]
    np.testing.assert_allclose(doc["images"][1]["boxes_xyxy_px"][0], [30, 40, 90, 110], atol=1.0)


def test_write_prediction_txt_roundtrip(tmp_path):
    path = write_prediction_txt(str(tmp_path), "sub/x.v2", np.array([[1, 2, 11, 22], [0, 0, 5, 5.]]),
                                np.array([0.2, 0.7]), image_name="x.v2.jpg")
    assert Path(path) == tmp_path / "sub" / "x.v2.txt"
    assert Path(path).read_text().splitlines()[:3] == ["x.v2.jpg", "2", "0.00 0.00 5.00 5.00 0.7"]
