"""Tests for the WIDER FACE evaluation protocol (ssd_mnv2.evaluation) and VOC AP@0.5."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from ssd_mnv2.evaluation.driver import evaluate_detector, evaluate_predictions
from ssd_mnv2.evaluation.predictions import read_wider_predictions, write_wider_prediction
from ssd_mnv2.evaluation.report import format_table
from ssd_mnv2.evaluation.wider_gt import SUBSETS, WiderGT, load_wider_ground_truth
from ssd_mnv2.evaluation.wider_protocol import wider_ap
from ssd_mnv2.data.synthetic import write_blank_images, write_wider_mats
from voc_reference import voc_ap50

REAL_DEV = Path("/work/shared/data/widerface/dev/images")
REAL_GT = Path("/work/shared/data/widerface/ground_truth")


def _gt(boxes_xywh: Sequence[Sequence[float]], easy, medium, hard) -> WiderGT:
    return WiderGT(
        boxes_xywh_px=np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4),
        subsets={
            "easy": np.asarray(easy, dtype=np.int64),
            "medium": np.asarray(medium, dtype=np.int64),
            "hard": np.asarray(hard, dtype=np.int64),
        },
    )


FACES = [[10, 10, 40, 50], [100, 20, 30, 30], [200, 200, 20, 25], [300, 50, 12, 12]]
FAR_AWAY = [600.0, 600.0, 30.0, 30.0]


def _all_counted(n: int) -> WiderGT:
    idx = list(range(n))
    return _gt(FACES[:n], idx, idx, idx)


# ----------------------------------------------------------------------------- AP values
def test_perfect_predictions_give_ap_one():
    gt = {
        "0--Parade/a": _gt(FACES, [0, 1], [0, 1, 2], [0, 1, 2, 3]),
        "1--Handshaking/b": _gt(FACES[:2], [0], [0, 1], [0, 1]),
    }
    preds = {
        k: (g.boxes_xywh_px.copy(), np.linspace(0.9, 0.5, len(g.boxes_xywh_px)))
        for k, g in gt.items()
    }
    res = wider_ap(preds, gt)
    for s in SUBSETS:
        assert res["ap"][s] == pytest.approx(1.0, abs=1e-12)
    assert res["num_faces"] == {"easy": 3, "medium": 5, "hard": 6}
    assert res["pr"]["hard"]["precision"].shape == (1000,)
    assert res["thresholds"][0] == pytest.approx(0.999) and res["thresholds"][-1] == 0.0


def test_one_false_positive_above_all_true_positives():
    # FP at 1.0, TPs at 0.9..0.6 -> PR points (1/2,1/4) (2/3,2/4) (3/4,3/4) (4/5,1);
    # the precision envelope is 4/5 everywhere, so AP = 4/5.
    gt = {"e/img": _all_counted(4)}
    boxes = np.array([FAR_AWAY] + FACES, dtype=np.float64)
    scores = np.array([1.0, 0.9, 0.8, 0.7, 0.6])
    res = wider_ap({"e/img": (boxes, scores)}, gt)
    for s in SUBSETS:
        assert res["ap"][s] == pytest.approx(0.8, abs=1e-12)


def test_detections_on_ignored_faces_change_nothing():
    # face 2 counts only for 'hard'; a top-scored detection on it must not change 'easy'
    gt = {"e/img": _gt(FACES[:3], [0, 1], [0, 1], [0, 1, 2])}
    base = (np.array(FACES[:2], float), np.array([0.9, 0.8]))
    with_ignored = (np.array([FACES[2]] + FACES[:2], float), np.array([0.95, 0.9, 0.8]))
    r0 = wider_ap({"e/img": base}, gt)
    r1 = wider_ap({"e/img": with_ignored}, gt)
    assert r0["ap"]["easy"] == r1["ap"]["easy"] == pytest.approx(1.0)
    assert r1["ap"]["medium"] == pytest.approx(1.0)
    assert r1["ap"]["hard"] == pytest.approx(1.0)  # counted and found there
    assert r0["ap"]["hard"] == pytest.approx(2 / 3)  # face 2 missed without it


def test_duplicate_detections_are_false_positives():
    # face0 0.9, duplicate of face0 0.8, face1 0.7 -> normalised 1.0, 0.5, 0.0
    # PR points (1, 1/2) (1/2, 1/2) (2/3, 1): AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    gt = {"e/img": _all_counted(2)}
    boxes = np.array([FACES[0], np.add(FACES[0], [1, 1, 0, 0]), FACES[1]], float)
    res = wider_ap({"e/img": (boxes, np.array([0.9, 0.8, 0.7]))}, gt)
    for s in SUBSETS:
        assert res["ap"][s] == pytest.approx(5 / 6, abs=1e-12)


def test_empty_prediction_files_give_zero_ap(tmp_path):
    gt = {"e/a": _all_counted(3), "f/b": _all_counted(1)}
    for k in gt:
        write_wider_prediction(str(tmp_path), k, np.zeros((0, 4)), np.zeros((0,)))
    assert (tmp_path / "e" / "a.txt").read_text().splitlines() == ["a", "0"]
    preds = read_wider_predictions(str(tmp_path), gt.keys())
    assert preds["e/a"][0].shape == (0, 4) and preds["e/a"][1].shape == (0,)
    res = wider_ap(preds, gt)
    for s in SUBSETS:
        assert res["ap"][s] == 0.0


# ----------------------------------------------------------------------------- file formats
def test_write_read_roundtrip_sorted_xywh(tmp_path):
    boxes_xyxy = np.array([[0, 0, 10, 20], [5, 5, 15.5, 9], [1, 2, 3, 4]], np.float32)
    scores = np.array([0.2, 0.9, 0.5], np.float32)
    path = write_wider_prediction(str(tmp_path), "3--Riot/3_Riot_x_12", boxes_xyxy, scores)
    lines = Path(path).read_text().splitlines()
    assert lines[0] == "3_Riot_x_12" and lines[1] == "3"
    (b, s), = read_wider_predictions(str(tmp_path), ["3--Riot/3_Riot_x_12"]).values()
    np.testing.assert_allclose(s, [0.9, 0.5, 0.2], rtol=1e-6)
    np.testing.assert_allclose(b, [[5, 5, 10.5, 4], [1, 2, 2, 2], [0, 0, 10, 20]], atol=0.01)


def test_bad_prediction_line_names_file_and_line(tmp_path):
    d = tmp_path / "e"
    d.mkdir()
    f = d / "img.txt"
    f.write_text("img\n2\n1 2 3 4 0.5\n1 2 3 0.4\n")
    with pytest.raises(ValueError, match=r"img\.txt:4"):
        read_wider_predictions(str(tmp_path), ["e/img"])
    f.write_text("img\n1\n1 2 three 4 0.5\n")
    with pytest.raises(ValueError, match=r"img\.txt:3"):
        read_wider_predictions(str(tmp_path), ["e/img"])
    f.write_text("img\n3\n1 2 3 4 0.5\n")
    with pytest.raises(ValueError, match=r"img\.txt:2.*3"):
        read_wider_predictions(str(tmp_path), ["e/img"])


def test_missing_event_folder_or_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="9--Press_Conference"):
        read_wider_predictions(str(tmp_path), ["9--Press_Conference/x"])
    (tmp_path / "e").mkdir()
    with pytest.raises(FileNotFoundError, match=r"e[/\\]nope\.txt"):
        read_wider_predictions(str(tmp_path), ["e/nope"])


# ----------------------------------------------------------------------------- .mat reading
TINY = {
    "0--Parade": {
        "0_Parade_a": ([[10, 10, 40, 50], [100, 20, 30, 30], [200, 200, 20, 25]],
                       {"easy": [1], "medium": [1, 2], "hard": [1, 2, 3]}),
        "0_Parade_b": ([[5, 6, 7, 8]], {"easy": [], "medium": [], "hard": [1]}),
    },
    "1--Handshaking": {
        "1_Handshaking_c": ([[50, 60, 70, 80], [1, 2, 30, 40]],
                            {"easy": [2, 1], "medium": [1, 2], "hard": [1, 2]}),
    },
}


def test_load_official_mat_structure(tmp_path):
    write_wider_mats(tmp_path / "gt", TINY)
    gt = load_wider_ground_truth(str(tmp_path / "gt"))
    assert sorted(gt) == ["0--Parade/0_Parade_a", "0--Parade/0_Parade_b",
                          "1--Handshaking/1_Handshaking_c"]
    a = gt["0--Parade/0_Parade_a"]
    np.testing.assert_array_equal(a.boxes_xywh_px, TINY["0--Parade"]["0_Parade_a"][0])
    assert a.subsets["easy"].tolist() == [0]
    assert a.subsets["medium"].tolist() == [0, 1]
    assert a.subsets["hard"].tolist() == [0, 1, 2]
    b = gt["0--Parade/0_Parade_b"]
    assert b.subsets["easy"].tolist() == [] and b.subsets["hard"].tolist() == [0]
    assert gt["1--Handshaking/1_Handshaking_c"].subsets["easy"].tolist() == [1, 0]

    sub = load_wider_ground_truth(str(tmp_path / "gt"), ["1--Handshaking/1_Handshaking_c.jpg"])
    assert list(sub) == ["1--Handshaking/1_Handshaking_c"]
    with pytest.raises(ValueError, match="0_Parade_zzz"):
        load_wider_ground_truth(str(tmp_path / "gt"), ["0--Parade/0_Parade_zzz.jpg"])
    os.remove(tmp_path / "gt" / "wider_hard_val.mat")
    with pytest.raises(FileNotFoundError, match="wider_hard_val.mat"):
        load_wider_ground_truth(str(tmp_path / "gt"))


def test_evaluate_detector_and_predictions_end_to_end(tmp_path):
    write_wider_mats(tmp_path / "gt", TINY)
    gt = load_wider_ground_truth(str(tmp_path / "gt"))
    images = tmp_path / "images"
    write_blank_images(images, gt, (320, 300))

    class GTDetector:
        """Returns the ground truth of the image with the matching content index."""

        def __init__(self):
            self.queue = [gt[k].boxes_xywh_px for k in sorted(gt)]

        def predict(self, image_bgr, size=None):
            assert image_bgr.shape == (300, 320, 3) and size == 128
            b = self.queue.pop(0).astype(np.float32)
            b[:, 2:] += b[:, :2]
            return b, np.linspace(0.9, 0.8, len(b)).astype(np.float32)

        def describe(self):
            return {"name": "gt-oracle"}

    out = tmp_path / "out"
    summary = evaluate_detector(GTDetector(), str(images), str(tmp_path / "gt"), size=128,
                                out_dir=str(out))
    for s in SUBSETS:
        assert summary["ap"][s] == pytest.approx(1.0)
    saved = json.loads((out / "wider_eval.json").read_text())
    assert saved["settings"]["size"] == 128
    assert saved["settings"]["detector"] == {"name": "gt-oracle"}
    assert saved["ms_per_image"] >= 0 and saved["num_images"] == 3
    assert (out / "wider_pr.png").stat().st_size > 0
    assert "easy" in format_table(summary)

    lst = tmp_path / "list.txt"
    lst.write_text("0--Parade/0_Parade_a.jpg\n")
    again = evaluate_predictions(summary["pred_dir"], str(tmp_path / "gt"), list_file=str(lst),
                                 out_dir=str(tmp_path / "out2"))
    assert again["num_images"] == 1 and again["ap"]["hard"] == pytest.approx(1.0)
    assert (tmp_path / "out2" / "wider_eval.json").exists()

    (images / "0--Parade" / "0_Parade_a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="0_Parade_a.jpg: not a readable image file"):
        evaluate_detector(GTDetector(), str(images), str(tmp_path / "gt"), out_dir=str(out))


# ----------------------------------------------------------------------------- VOC AP@0.5
def test_voc_ap50_single_class():
    gt_boxes = np.array([[10, 10, 50, 50], [100, 100, 150, 160], [0, 0, 5, 5]], float)
    difficult = np.array([False, False, True])
    perfect = [(gt_boxes[:2], np.array([0.9, 0.8]))]
    assert voc_ap50(perfect, [(gt_boxes, difficult)]) == pytest.approx(1.0)
    # a detection on the difficult face is ignored
    with_diff = [(gt_boxes, np.array([0.9, 0.8, 0.95]))]
    assert voc_ap50(with_diff, [(gt_boxes, difficult)]) == pytest.approx(1.0)
    # FP above both TPs: points (0, 0)... (1/2, 1/2) (2/3, 1) -> envelope 2/3 -> AP 2/3
    fp_first = [(np.vstack([[300, 300, 340, 340], gt_boxes[:2]]), np.array([0.99, 0.9, 0.8]))]
    assert voc_ap50(fp_first, [(gt_boxes, difficult)]) == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- real data
def test_real_dev_ground_truth_as_predictions():
    if not REAL_DEV.is_dir() or not REAL_GT.is_dir():
        pytest.skip("WIDER FACE dev data not available")
    image_list = sorted(f"{p.parent.name}/{p.name}" for p in REAL_DEV.glob("*/*.jpg"))
    gt = load_wider_ground_truth(str(REAL_GT), image_list)
    assert len(gt) == len(image_list) == 320
    preds = {k: (g.boxes_xywh_px, np.ones(len(g.boxes_xywh_px))) for k, g in gt.items()}
    res = wider_ap(preds, gt)
    for s in SUBSETS:
        assert res["ap"][s] > 0.99


def test_face_fates_sort_each_face_by_where_it_was_lost():
    from ssd_mnv2.evaluation.misses import face_fates, format_miss_table, miss_table

    faces = np.array([[0, 0, 20, 20],        # found: a final detection on it
                      [100, 0, 120, 20],     # outranked: NMS kept a worse-placed box of it
                      [200, 0, 220, 20],     # suppressed: a good box, no final detection near
                      [300, 0, 340, 40],     # low score: a good box below the floor
                      [400, 0, 410, 10],     # mislocated: an anchor at IoU >= 0.35, its box off
                      [500, 0, 580, 80]], np.float32)  # no anchor, no box
    raw = np.array([[0, 0, 20, 20], [100, 0, 120, 20], [200, 0, 220, 20], [300, 0, 340, 40],
                    [430, 0, 440, 10], [900, 900, 910, 910]], np.float32)
    scores = np.array([0.9, 0.3, 0.3, 0.01, 0.9, 0.9], np.float32)
    anchors = np.array([[0, 0, 20, 20], [100, 0, 120, 20], [200, 0, 220, 20], [300, 0, 340, 40],
                        [401, 0, 411, 10], [900, 900, 910, 910]], np.float32)
    dets = np.array([[0, 0, 20, 20], [104, 4, 124, 24]], np.float32)  # IoU 0.47 with face 2
    fates, best = face_fates(faces, scores, raw, anchors, dets, score_floor=0.02)
    assert fates == ["found", "outranked", "suppressed", "low score", "mislocated", "no anchor"]
    np.testing.assert_allclose(best, [0.9, 0.3, 0.3, 0.01, 0.0, 0.0])
    sides = np.sqrt((faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]))
    table = miss_table(fates, sides)
    assert table["16-32"] == {"found": 1, "outranked": 1, "suppressed": 1, "low score": 0,
                              "mislocated": 0, "no anchor": 0}
    assert table["0-16"]["mislocated"] == 1 and table["32-64"]["low score"] == 1
    assert table[">= 128"] == {f: 0 for f in table["all"]} and table["64-128"]["no anchor"] == 1
    assert sum(table["all"].values()) == 6
    text = format_miss_table(table)
    assert "| 16-32 | 3 | 0.33 | 0.33 | 0.33 | 0.00 | 0.00 | 0.00 |" in text
    with pytest.raises(ValueError, match="one of each per anchor"):
        face_fates(faces, scores[:3], raw, anchors, dets, 0.02)


def test_placements_measure_how_the_best_detection_sits_on_each_face():
    from ssd_mnv2.evaluation.misses import format_placement_table, placement_table, placements

    faces = np.array([[0, 0, 10, 10], [100, 100, 140, 140], [500, 500, 520, 520]], np.float32)
    dets = np.array([[0, 0, 12, 12],            # face 1: 20 % too wide and high, centre +0.1
                     [104, 100, 144, 140],      # face 2: shifted right by 0.1 of its width
                     [101, 101, 139, 139],      # face 2 again, better placed but low score
                     [900, 900, 950, 950]], np.float32)  # overlaps nothing (face 3 unmatched)
    scores = np.array([0.9, 0.8, 0.1, 0.9], np.float32)
    rows = placements(faces, dets, scores, min_score=0.3)
    assert rows.shape == (2, 6)
    np.testing.assert_allclose(rows[0], [10, 100 / 144, 1.2, 1.2, 0.1, 0.1], rtol=1e-5)
    np.testing.assert_allclose(rows[1], [40, 36 * 40 / (2 * 1600 - 36 * 40), 1.0, 1.0, 0.1, 0.0], rtol=1e-5)
    t = placement_table(rows)
    assert t["0-16"]["faces"] == 1 and t["0-16"]["w_ratio"] == pytest.approx(1.2)
    assert t["32-64"]["below_0.5"] == 0.0 and t["all"]["faces"] == 2 and t["16-32"] == {"faces": 0}
    text = format_placement_table(t)
    assert "| 0-16 | 1 | 0.69 | 0.00 | 1.200 | 1.200 | +0.100 | +0.100 |" in text
    assert "| 16-32 | 0 | - |" in text
    assert placements(faces, dets[:0], scores[:0]).shape == (0, 6)
