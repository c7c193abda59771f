"""Recall by WIDER attribute on a hand-made case."""
import numpy as np
import pytest

from ssd_mnv2.evaluation.predictions import write_wider_prediction
from ssd_mnv2.failure_modes import format_recall_tables, recall_by_attribute


def test_recall_by_attribute(tmp_path):
    labels = tmp_path / "gt.txt"
    # face 1: clear, no occlusion, 20 px; face 2: heavy occlusion, atypical pose, 100 px;
    # face 3: invalid (ignored); image 2 has no faces (zero-face record)
    labels.write_text("0--A/0_a.jpg\n3\n10 10 20 20 0 0 0 0 0 0\n50 50 100 100 2 0 0 0 2 1\n"
                      "200 10 30 30 0 0 0 1 0 0\n0--A/0_b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    pred = tmp_path / "pred"
    write_wider_prediction(str(pred), "0--A/0_a", np.array([[10, 10, 30, 30], [300, 300, 320, 320]], np.float32),
                           np.array([0.9, 0.8], np.float32))  # hit face 1, one false positive
    write_wider_prediction(str(pred), "0--A/0_b", np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    res = recall_by_attribute(str(pred), str(labels), threshold=0.5)
    assert res["faces"] == 2 and res["recall"] == pytest.approx(0.5)
    assert res["false_positives_per_image"] == pytest.approx(0.5)
    occ = {r["value"]: r for r in res["by"]["occlusion"]}
    assert occ["none"]["recall"] == 1.0 and occ["heavy"]["recall"] == 0.0
    size = {r["value"]: r for r in res["by"]["size"]}
    assert size["16-32 px"]["recall"] == 1.0 and size["64-128 px"]["recall"] == 0.0
    assert "| pose | faces | recall |" in format_recall_tables(res)
