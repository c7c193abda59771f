"""Tests for the anchor lab (ssd_mnv2.lab) and the ``ssd-mnv2 anchors`` command."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ssd_mnv2 import lab
from ssd_mnv2.anchors import generate_anchors
from ssd_mnv2.boxes import cxcywh_to_xyxy
from ssd_mnv2.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
ANCHOR_CONFIGS = sorted((ROOT / "configs" / "anchors").glob("*.yaml"))


class _FakeDataset:
    """``len``, ``image_size(i)`` and ``boxes(i)`` like WiderFaceDataset, no images on disk."""

    def __init__(self, sizes, boxes):
        self._sizes, self._boxes = list(sizes), [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]

    def __len__(self):
        return len(self._sizes)

    def image_size(self, i):
        return self._sizes[i]

    def boxes(self, i):
        return self._boxes[i].copy()


def test_size_bins():
    got = lab.size_bin([0.5, 15.99, 16, 31.9, 32, 63, 64, 127, 128, 255.9, 256, 1000]).tolist()
    assert got == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert lab.BIN_LABELS[lab.size_bin(20)] == "16-32"


def test_kmeans_recovers_known_clusters():
    rng = np.random.default_rng(0)
    truth = np.array([[10.0, 12.5], [40.0, 50.0], [120.0, 100.0]])
    wh = np.concatenate([c * np.exp(rng.normal(0, 0.03, size=(200, 2))) for c in truth])
    cent, assign, score = lab.kmeans_iou(wh, 3, seed=1)
    np.testing.assert_allclose(cent, truth, rtol=0.05)
    assert np.array_equal(np.bincount(assign), [200, 200, 200])
    assert score > 0.9
    iou = lab.centered_iou(np.array([[10.0, 10.0]]), np.array([[10.0, 10.0], [5.0, 10.0], [20.0, 20.0]]))
    np.testing.assert_allclose(iou, [[1.0, 0.5, 0.25]])


def test_coverage_of_own_anchors_is_perfect():
    cfg = load_config(TINY)
    W, H = 160, 128  # measure 'max-side 160' keeps this image as is
    anchors = generate_anchors(cfg, H, W)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(anchors), 40, replace=False)
    faces = cxcywh_to_xyxy(anchors[pick])
    inside = (faces[:, 0] >= 0) & (faces[:, 1] >= 0) & (faces[:, 2] <= W) & (faces[:, 3] <= H)
    faces = faces[inside]
    fs = lab.collect_faces(cfg, measure="max-side 160", dataset=_FakeDataset([(W, H)], [faces]))
    assert fs.inputs == [(W, H)] and fs.num_faces == len(faces)
    res = lab.coverage(cfg, fs, name="tiny")
    assert res["overall"]["cov_50"] == 1.0 and res["overall"]["cov_35"] == 1.0
    assert res["overall"]["mean_best_iou"] == pytest.approx(1.0)
    assert res["overall"]["mean_matched_50"] >= 1.0
    assert res["anchors"] == len(generate_anchors(cfg, 128, 128))
    assert sum(b["faces"] for b in res["bins"]) == len(faces)
    table = lab.format_coverage_table([res])
    assert "tiny" in table and "max-side 160" in table


def test_coverage_far_from_anchors_and_train_measure(tmp_path):
    cfg = load_config(TINY)
    # a 2x1 px face far smaller than any anchor, and the 'train' measure (x 128 / min(W, H))
    ds = _FakeDataset([(256, 512)], [[[10, 10, 12, 11], [0, 0, 64, 80]]])
    fs = lab.collect_faces(cfg, dataset=ds)
    assert fs.inputs == [(128, 256)]
    np.testing.assert_allclose(fs.boxes[0][1], [0, 0, 32, 40])
    res = lab.coverage(cfg, fs)
    assert res["bins"][0]["faces"] == 1 and res["bins"][0]["cov_35"] == 0.0
    files = lab.write_coverage([res, lab.coverage(cfg, fs, name="again")], tmp_path)
    assert json.loads(Path(files["json"]).read_text())[1]["name"] == "again"
    assert Path(files["png"]).stat().st_size > 0


def test_augmented_faces_follow_the_training_canvases():
    """The scale lab's training faces: one canvas per sample (data.canvas_sizes when set), the
    faces inside it, and faces are larger on the larger canvas (same crops); configs with
    data.cut_faces: ignore work too."""
    import dataclasses

    from ssd_mnv2.lab.scale import augmented_faces

    ds = _FakeDataset([(300, 200)] * 6, [[[40, 40, 90, 100], [150, 50, 200, 120]]] * 6)
    base = load_config(TINY)
    one = augmented_faces(base, dataset=ds, samples_per_image=2)
    S = base.model.image_size
    assert set(one.inputs) == {(S, S)} and "canvases" not in one.measure
    multi_cfg = base.replace(data=dataclasses.replace(base.data, canvas_sizes=(S, 2 * S)))
    multi = augmented_faces(multi_cfg, dataset=ds, samples_per_image=2)
    assert set(multi.inputs) == {(S, S), (2 * S, 2 * S)} and f"canvases [{S}, {2 * S}]" in multi.measure
    for (w, h), b in zip(multi.inputs, multi.boxes):
        assert len(b) and b.min() >= 0 and b[:, 2].max() <= w and b[:, 3].max() <= h
    wide = [np.median(b[:, 2] - b[:, 0]) for (w, _), b in zip(multi.inputs, multi.boxes) if w == 2 * S]
    narrow = [np.median(b[:, 2] - b[:, 0]) for (w, _), b in zip(multi.inputs, multi.boxes) if w == S]
    assert np.median(wide) > 1.3 * np.median(narrow)
    # the FPN stages' cut-face rule needs the ignore-flag column (it failed here before)
    cut = base.replace(data=dataclasses.replace(base.data, cut_faces="ignore"))
    assert sum(len(b) for b in augmented_faces(cut, dataset=ds, samples_per_image=2).boxes) > 0


def test_stats_table(tmp_path):
    cfg = load_config(TINY)
    ds = _FakeDataset([(128, 128)] * 2, [[[0, 0, 8, 10], [0, 0, 40, 50]], [[0, 0, 300 / 2, 200 / 2]]])
    fs = lab.collect_faces(cfg, dataset=ds)
    st = lab.write_stats(fs, tmp_path, anchor_cfg=cfg)
    counts = {r["bin"]: r["count"] for r in st["bins"]}
    assert counts == {"<16": 1, "16-32": 0, "32-64": 1, "64-128": 1, "128-256": 0, ">256": 0}
    assert st["bins"][0]["median_ratio"] == pytest.approx(0.8)
    assert "training resize" in (tmp_path / "face_stats.md").read_text()
    assert (tmp_path / "face_stats.png").stat().st_size > 0


# the founding six-level layout the anchor experiments build on (the default model has five levels)
PREVIOUS_MODEL_YAML = ROOT / "ssd_mnv2" / "models" / "face_mnv2_300.yaml"


def test_level_assignment_rule():
    cfg = load_config(PREVIOUS_MODEL_YAML)  # strides 8, 16, 32, 64, 128, 300 at image_size 300
    rng = lab.level_ranges(cfg)
    assert rng[0] == (16.0, 64.0) and rng[3] == (128.0, 300.0) and rng[5] == (300.0, 300.0)
    lv = lab.assign_levels(np.array([4, 32, 44, 46, 64, 128, 200, 290, 1000]), cfg)
    assert lv.tolist() == [0, 0, 0, 1, 1, 2, 3, 5, 5]


def test_suggest_writes_a_loadable_config(tmp_path):
    cfg = load_config(TINY)
    rng = np.random.default_rng(0)
    sizes, boxes = [], []
    for _ in range(30):
        b = []
        for s in (10, 20, 60):
            s = s * math.exp(rng.normal(0, 0.05))
            w, h = s * math.sqrt(0.8), s / math.sqrt(0.8)
            b.append([5, 5, 5 + w, 5 + h])
        sizes.append((128, 128))
        boxes.append(b)
    fs = lab.collect_faces(cfg, dataset=_FakeDataset(sizes, boxes))
    out = tmp_path / "suggested.yaml"
    new, report = lab.suggest_anchors(cfg, levels=4, k_per_level=2, faces=fs, out=out)
    again = load_config(out)
    assert again.anchors.sizes == new.anchors.sizes and again.model.num_levels == 4
    assert again.train.out_dir == "runs/anchors/suggested"  # never the base config's run folder
    assert report["per_level"][0]["faces"] == 60 and report["per_level"][3]["faces"] == 0
    assert new.anchors.ratios[0] == (0.8,)
    assert report["mean_centred_iou"] > 0.85
    # 5 levels from a 4-level base: one more extra level
    five, _ = lab.suggest_anchors(cfg, levels=5, k_per_level=1, faces=fs)
    assert five.model.num_levels == 5 and len(five.anchors.sizes) == 5


@pytest.mark.parametrize("path", [TINY] + ANCHOR_CONFIGS, ids=lambda p: Path(p).stem)
def test_summary_total_equals_generate_anchors(path):
    cfg = load_config(path)
    text, info = lab.anchor_summary(cfg, 240, 320, with_params=False)
    assert info["total_anchors"] == len(generate_anchors(cfg, 240, 320))
    assert f"total anchors: {info['total_anchors']}" in text


def test_anchor_experiments_differ_only_in_anchors():
    """The anchor experiments inherit (base:) from square_1.yaml, whose network, data and decoder
    are the previous shipped model's (face_mnv2_300, the founding layout); each changes only the
    anchors (and its run folder)."""
    import dataclasses

    shipped = load_config(PREVIOUS_MODEL_YAML)
    names = {p.stem for p in ANCHOR_CONFIGS}
    assert {"founding_ratios_0.5_1_2", "square_1", "ratio_1_0.8", "dense_small"} <= names
    square = load_config(ROOT / "configs/anchors/square_1.yaml")
    assert square.anchors == shipped.anchors
    for p in ANCHOR_CONFIGS:
        c = load_config(p)
        assert (c.model, c.data, c.decode, c.eval) == (shipped.model, shipped.data, shipped.decode, shipped.eval)
        assert c.train.out_dir == f"runs/anchors/{p.stem}"
        assert c.replace(anchors=square.anchors,
                         train=dataclasses.replace(c.train, out_dir=square.train.out_dir)) == square
    assert load_config(ROOT / "configs/anchors/ratio_1_0.8.yaml").anchors.ratios[0] == (1.0, 0.8)


def test_cli_anchors_summary_prints_total(capsys):
    from ssd_mnv2.cli import main

    assert main(["anchors", "summary", "--config", str(TINY), "--size", "160x128"]) == 0
    out = capsys.readouterr().out
    cfg = load_config(TINY)
    assert f"total anchors: {len(generate_anchors(cfg, 128, 160))}" in out
    assert "parameters:" in out


def test_cli_coverage_and_suggest_on_synthetic_data(tmp_path, monkeypatch, capsys):
    from ssd_mnv2.cli import main

    lab.make_synthetic_widerface(tmp_path / "tiny_data" / "widerface", n_train=6, n_val=4)
    monkeypatch.chdir(tmp_path)  # tiny.yaml's data paths are relative: tiny_data/widerface/...
    assert main(["anchors", "coverage", "--config", str(TINY), str(TINY), "--out", "cov"]) == 0
    assert "cov@0.5" in capsys.readouterr().out
    assert (tmp_path / "cov" / "coverage.png").is_file()
    assert main(["anchors", "suggest", "--data-config", str(TINY), "--levels", "4",
                 "--out", "s.yaml"]) == 0
    assert load_config(tmp_path / "s.yaml").model.num_levels == 4
    assert main(["anchors", "stats", "--config", str(TINY), "--split", "val", "--out", "st"]) == 0
    assert (tmp_path / "st" / "face_stats.json").is_file()


@pytest.mark.slow
def test_sweep_tiny_budget(tmp_path, monkeypatch):
    """Two configs, 2 iterations each, evaluation on 2 synthetic dev images."""
    lab.make_synthetic_widerface(tmp_path / "tiny_data" / "widerface", n_train=8, n_val=2)
    monkeypatch.chdir(tmp_path)
    dense = tmp_path / "tiny_dense.yaml"
    dense.write_text(TINY.read_text().replace("sizes: [[8, 12, 16]", "sizes: [[8, 10, 12, 16]"))
    rows = lab.run_sweep([TINY, dense], epochs=1, max_iters_per_epoch=2, batch_size=2,
                         eval_size="max-side 128", eval_images=2, out_dir="sweep")
    assert [r["name"] for r in rows] == ["tiny", "tiny_dense"]
    assert rows[1]["anchors"] > rows[0]["anchors"] and rows[0]["iterations"] == 2
    assert all(r["ap_hard"] is not None and 0 <= r["ap_hard"] <= 1 for r in rows)
    assert "AP hard" in (tmp_path / "sweep" / "sweep.md").read_text()
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 0
