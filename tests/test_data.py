"""Tests for ssd_mnv2.data (WIDER FACE / VOC parsing, validation, augmentation, preview)."""
import os
import warnings

import cv2
import numpy as np
import pytest

from ssd_mnv2.data.synthetic import voc_xml, write_voc_devkit, write_wider_from_labels
from ssd_mnv2.data.preview import save_preview_grid
from ssd_mnv2.data.transforms import (TrainAugment, ValTransform, hflip, photometric_distort,
                                      random_flip, random_square_crop, random_zoom_out,
                                      resize_with_random_interp)
from ssd_mnv2.data.voc import VOCError, VOCFaceDataset, parse_voc_xml
from ssd_mnv2.data.widerface import LabelError, WiderFaceDataset, parse_wider_labels

REAL_WIDER = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "widerface")
if not os.path.isdir(REAL_WIDER):
    REAL_WIDER = "/work/shared/data/widerface"


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
GOOD_LABELS = """\
ev/a.jpg
2
10 10 20 30 0 0 0 0 0 0
50 20 16 16 1 0 0 1 0 0
ev/b.jpg
0
0 0 0 0 0 0 0 0 0 0
ev/c.jpg
1
5 5 4 6 2 1 0 0 1 1
"""


def _make_wider(tmp_path, labels=GOOD_LABELS, sizes=None, skip_images=()):
    sizes = sizes or {"ev/a.jpg": (96, 64), "ev/b.jpg": (80, 60), "ev/c.jpg": (64, 48)}
    return write_wider_from_labels(tmp_path, labels, sizes, skip_images)


# ------------------------------------------------------------------------------------------
# WIDER parser
# ------------------------------------------------------------------------------------------
def test_parse_wider_labels_including_zero_face_record(tmp_path):
    _, label = _make_wider(tmp_path)
    recs = parse_wider_labels(label)
    assert [r.rel_path for r in recs] == ["ev/a.jpg", "ev/b.jpg", "ev/c.jpg"]
    assert [r.line for r in recs] == [1, 5, 8]
    a, b, c = recs
    np.testing.assert_array_equal(a.boxes_xywh_px, [[10, 10, 20, 30], [50, 20, 16, 16]])
    assert a.boxes_xywh_px.dtype == np.float32
    np.testing.assert_array_equal(a.attributes[1], [1, 0, 0, 1, 0, 0])
    assert b.boxes_xywh_px.shape == (0, 4) and b.attributes.shape == (0, 6)
    np.testing.assert_array_equal(c.attributes[0], [2, 1, 0, 0, 1, 1])
    assert c.face_line(0) == 10


def test_parse_wider_count_one_zero_line_is_zero_face(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("e/x.jpg\n1\n0 0 0 0 0 0 0 0 0 0\ne/y.jpg\n1\n1 1 2 2 0 0 0 0 0 0\n")
    recs = parse_wider_labels(p)
    assert recs[0].num_faces == 0 and recs[1].num_faces == 1 and recs[1].line == 4


@pytest.mark.parametrize("body, bad_line, what", [
    ("e/x.jpg\ntwo\n", 2, "not an integer"),
    ("e/x.jpg\n1\n1 2 3 4 0 0 0 0 0\n", 3, "fields"),
    ("e/x.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0 7\n", 4, "fields"),
    ("e/x.jpg\n1\n1 2 abc 4 0 0 0 0 0 0\n", 3, "non-number"),
    ("e/x.jpg\n1\n1 2 nan 4 0 0 0 0 0 0\n", 3, "NaN"),
    ("e/x.jpg\n1\n1 2 0 4 0 0 0 0 0 0\n", 3, "w=0"),
    ("e/x.jpg\n1\n1 2 3 -4 0 0 0 0 0 0\n", 3, "h=-4"),
    ("e/x.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0\n", 4, "truncated"),
    ("e/x.jpg\n2\n1 2 3 4 0 0 0 0 0 0\ne/y.jpg\n0\n", 4, "truncated"),
    ("e/x.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0\n", 4, "expected an image path"),
    ("e/x.jpg\n0\n1 2 3 4 0 0 0 0 0 0\n", 3, "not all zeros"),
])
def test_parse_wider_bad_lines(tmp_path, body, bad_line, what):
    p = tmp_path / "bad_gt.txt"
    p.write_text(body)
    with pytest.raises(LabelError) as ei:
        parse_wider_labels(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}:{bad_line}: "), msg
    assert what in msg
    assert isinstance(ei.value, ValueError)


# ------------------------------------------------------------------------------------------
# WIDER dataset
# ------------------------------------------------------------------------------------------
def test_wider_dataset_sample_format_and_invalid_drop(tmp_path):
    img_dir, label = _make_wider(tmp_path)
    ds = WiderFaceDataset(img_dir, label)
    assert len(ds) == 3 and ds.skipped == []
    assert ds.num_invalid_dropped == 1  # second face of a.jpg is invalid-flagged
    img, boxes = ds[0]
    assert img.dtype == np.uint8 and img.shape == (64, 96, 3)
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[10, 10, 30, 40]])
    assert ds.face_indices(0).tolist() == [0]
    _, boxes_b = ds[1]
    assert boxes_b.shape == (0, 4) and boxes_b.dtype == np.float32
    assert ds.image_path(2).endswith(os.path.join("ev", "c.jpg"))
    assert ds.records[2].rel_path == "ev/c.jpg"

    ds2 = WiderFaceDataset(img_dir, label, drop_invalid=False, min_face_px=10)
    assert ds2.num_invalid_dropped == 0
    assert ds2.num_small_dropped == 1  # c.jpg face is 4x6
    assert len(ds2.boxes(0)) == 2 and len(ds2.boxes(2)) == 0
    assert ds2.num_faces == 2


def test_wider_dataset_rgb_order(tmp_path):
    img_dir, label = _make_wider(tmp_path)
    bgr = np.zeros((64, 96, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in BGR
    cv2.imwrite(os.path.join(img_dir, "ev", "a.png"), bgr)
    os.replace(os.path.join(img_dir, "ev", "a.png"), os.path.join(img_dir, "ev", "a.jpg"))
    img, _ = WiderFaceDataset(img_dir, label)[0]
    assert img[..., 0].mean() > 200 and img[..., 2].mean() < 50


def test_wider_box_outside_image_error_and_skip(tmp_path):
    labels = GOOD_LABELS.replace("10 10 20 30", "80 10 30 30")  # x2 = 110 > 96 + 2
    img_dir, label = _make_wider(tmp_path, labels)
    with pytest.raises(LabelError, match=r"gt\.txt:3: .*outside"):
        WiderFaceDataset(img_dir, label)
    with pytest.warns(UserWarning) as rec:
        ds = WiderFaceDataset(img_dir, label, skip_bad=True)
    msgs = [str(w.message) for w in rec]
    assert any("gt.txt:3:" in m and "outside" in m for m in msgs)
    assert any("skipped 1 problem" in m for m in msgs)
    assert len(ds.skipped) == 1 and ds.num_skipped_faces == 1
    assert len(ds) == 3 and len(ds.boxes(0)) == 0


def test_wider_box_within_tolerance_is_clipped(tmp_path):
    labels = GOOD_LABELS.replace("10 10 20 30", "80 -1 17 30")  # 1 px over on two sides
    img_dir, label = _make_wider(tmp_path, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = WiderFaceDataset(img_dir, label)
    assert ds.num_clipped == 1
    np.testing.assert_array_equal(ds.boxes(0), [[80, 0, 96, 29]])


def test_wider_degenerate_box_in_dataset_is_reported(tmp_path):
    labels = GOOD_LABELS.replace("5 5 4 6", "5 5 0 6")
    img_dir, label = _make_wider(tmp_path, labels)
    with pytest.raises(LabelError, match=r"gt\.txt:10: .*degenerate"):
        WiderFaceDataset(img_dir, label)
    with pytest.warns(UserWarning, match="degenerate"):
        ds = WiderFaceDataset(img_dir, label, skip_bad=True)
    assert ds.num_skipped_faces == 1 and len(ds) == 3


def test_wider_missing_image_error_and_skip(tmp_path):
    img_dir, label = _make_wider(tmp_path, skip_images=("ev/b.jpg",))
    with pytest.raises(LabelError, match=r"gt\.txt:5: image file not found"):
        WiderFaceDataset(img_dir, label)
    with pytest.warns(UserWarning, match="not found"):
        ds = WiderFaceDataset(img_dir, label, skip_bad=True)
    assert len(ds) == 2 and ds.num_skipped_images == 1 and len(ds.skipped) == 1
    assert [r.rel_path for r in ds.records] == ["ev/a.jpg", "ev/c.jpg"]


def test_wider_unreadable_image_raises_naming_path(tmp_path):
    img_dir, label = _make_wider(tmp_path)
    ds = WiderFaceDataset(img_dir, label)
    path = ds.image_path(0)
    with open(path, "r+b") as f:  # keep the header, destroy the scan data
        head = f.read(600)
        f.seek(0)
        f.truncate()
        f.write(head)
    with pytest.raises((IOError, OSError), match="a.jpg"):
        ds[0]


# ------------------------------------------------------------------------------------------
# VOC
# ------------------------------------------------------------------------------------------
def test_parse_voc_xml_with_difficult(tmp_path):
    root = write_voc_devkit(tmp_path)
    boxes, diff, w, h = parse_voc_xml(root / "Annotations" / "img1.xml")
    assert (w, h) == (80, 60)
    np.testing.assert_array_equal(boxes, [[10, 10, 30, 40], [40, 4, 60, 20]])
    assert diff.tolist() == [False, True]
    boxes, diff, _, _ = parse_voc_xml(root / "Annotations" / "img1.xml", ("face", "person"))
    assert len(boxes) == 3
    boxes, diff, _, _ = parse_voc_xml(root / "Annotations" / "img1.xml", None)  # every object
    assert len(boxes) == 3 and diff.tolist() == [False, True, False]


@pytest.mark.parametrize("xml, what", [
    ("<annotation><object><name>face</name></object></annotation>", "missing <size>"),
    (voc_xml(80, 60, [("face", (10, 10, 10, 40), 0)]), "xmax<=xmin"),
    (voc_xml(80, 60, [("face", (10, "ten", 20, 40), 0)]), "not a number"),
    (voc_xml(80, 60, [("face", (10, 10, 20, 90), 0)]), "outside"),
    ("<annotation><size><width>80</width></size></annotation>", "missing <height>"),
    ("<annotation><size>", "XML error"),
])
def test_parse_voc_xml_errors_name_the_file(tmp_path, xml, what):
    p = tmp_path / "bad.xml"
    p.write_text(xml)
    with pytest.raises(VOCError) as ei:
        parse_voc_xml(p)
    assert str(ei.value).startswith(str(p)) and what in str(ei.value)


def test_voc_dataset_difficult_and_skip_bad(tmp_path):
    root = write_voc_devkit(tmp_path)
    ds = VOCFaceDataset(root)
    assert len(ds) == 2
    img, boxes = ds[0]
    assert img.shape == (60, 80, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(boxes, [[10, 10, 30, 40]])
    assert len(ds.all_boxes(0)) == 2 and ds.difficult(0).tolist() == [False, True]
    assert ds[1][1].shape == (0, 4)
    assert len(VOCFaceDataset(root, keep_difficult=True)[0][1]) == 2

    bad_root = write_voc_devkit(tmp_path / "b", extra_bad=voc_xml(64, 64, [("face", (5, 5, 2, 9), 0)]))
    with pytest.raises(VOCError, match="img3.xml"):
        VOCFaceDataset(bad_root)
    with pytest.warns(UserWarning, match="img3.xml"):
        ds = VOCFaceDataset(bad_root, split=str(bad_root / "ImageSets" / "Main" / "trainval.txt"),
                            skip_bad=True)
    assert len(ds) == 2 and len(ds.skipped) == 1


# ------------------------------------------------------------------------------------------
# augmentation
# ------------------------------------------------------------------------------------------
def _aspect(b):
    return (b[2] - b[0]) / (b[3] - b[1])


def test_train_augment_boxes_valid_and_aspect_kept():
    rng = np.random.default_rng(123)
    aug = TrainAugment(size=128, crop_scale=(0.3, 1.0), zoom_out=2.0, min_face_px=0.0)
    tracked_inside = 0
    for t in range(200):
        h, w = int(rng.integers(60, 200)), int(rng.integers(60, 200))
        n = int(rng.integers(0, 5))
        x1 = rng.uniform(0, w - 12, n)
        y1 = rng.uniform(0, h - 12, n)
        bw = np.minimum(rng.uniform(4, 60, n), w - x1)
        bh = np.minimum(rng.uniform(4, 60, n), h - y1)
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh, np.arange(n)], 1).astype(np.float32)
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        out, ob = aug(img, boxes, rng=rng)
        assert out.shape == (128, 128, 3) and out.dtype == np.uint8
        assert ob.dtype == np.float32 and ob.shape[1] == 5
        if len(ob):
            assert (ob[:, :4] >= 0).all() and (ob[:, :4] <= 128).all()
            assert (ob[:, 2] > ob[:, 0]).all() and (ob[:, 3] > ob[:, 1]).all()
        # track each output box back to its source by the id column
        for b in ob:
            src = boxes[int(b[4])]
            # a box fully inside the crop is not clipped: its scale factor is the same on both
            # axes, so its aspect ratio is unchanged; a clipped box is smaller on a clipped side
            sx = (b[2] - b[0]) / (src[2] - src[0])
            sy = (b[3] - b[1]) / (src[3] - src[1])
            if abs(sx - sy) < 1e-3 * max(sx, sy):
                tracked_inside += 1
                assert abs(_aspect(b) - _aspect(src)) <= 1e-3 * _aspect(src)
    assert tracked_inside > 50


def test_square_crop_keeps_aspect_of_fully_inside_box_explicitly():
    rng = np.random.default_rng(7)
    img = np.zeros((120, 200, 3), np.uint8)
    src = np.array([[90, 50, 110, 80, 0]], np.float32)  # 20 x 30 face, aspect 2/3
    n_inside = 0
    for _ in range(200):
        crop, cb = random_square_crop(img, src, rng, (0.3, 1.0))
        side = crop.shape[0]
        assert crop.shape[:2] == (side, side)
        assert len(cb) == 1  # the image has a face: crops must keep it
        out, ob = resize_with_random_interp(crop, cb, 96, rng)
        b = ob[0]
        assert (b[:4] >= 0).all() and (b[:4] <= 96).all()
        if cb[0, 2] - cb[0, 0] == 20 and cb[0, 3] - cb[0, 1] == 30:  # fully inside the crop
            n_inside += 1
            assert abs(_aspect(b) - 2 / 3) < 1e-4
            assert abs((b[2] - b[0]) - 20 * 96 / side) < 1e-3
    assert n_inside > 20


def test_square_crop_fallback_and_no_faces():
    rng = np.random.default_rng(0)
    img = np.zeros((50, 100, 3), np.uint8)
    crop, b = random_square_crop(img, np.zeros((0, 4), np.float32), rng)
    assert crop.shape[0] == crop.shape[1] and b.shape == (0, 4)
    # a face at the far left can't be in a centred square; tiny scale forces the fallback path
    face = np.array([[0, 20, 4, 24]], np.float32)
    crop, b = random_square_crop(img, face, rng, scale_range=(0.05, 0.05), max_trials=1)
    assert crop.shape[:2] == (50, 50) and b.shape == (0, 4)  # largest centred square


def test_square_crop_cut_faces_become_ignore_regions():
    """min_visible: a face the crop cuts below that fraction of its area is an ignore region
    (centre inside or not), a face mostly inside stays a face (clipped), one outside is dropped;
    without it, the centre rule. The crop side is the image height (scale 1 of a 100 px short
    side), its x0 read back from the image (pixel value = column)."""
    img = np.zeros((100, 256, 3), np.uint8)
    img[:, :, 0] = np.arange(256, dtype=np.uint8)[None, :]
    #                 x1   y1   x2   y2  flag
    faces = np.array([[0,   10, 40,  50, 0],     # cut at x0 = 20: half visible, centre on the edge
                      [30,  10, 90,  50, 0],     # whole
                      [110, 10, 150, 50, 0],     # centre at 130 > x0 + 100 = 120: 25 % visible
                      [200, 10, 240, 50, 0],     # outside
                      [15,  60, 35,  80, 1]],    # an ignore region (invalid), 75 % visible
                     np.float32)
    for seed in range(3000):
        crop, kept = random_square_crop(img, faces, np.random.default_rng(seed), (1.0, 1.0))
        if int(crop[0, 0, 0]) == 20:
            break
    else:
        raise AssertionError("no crop at x0 = 20 in 3000 seeds")
    np.testing.assert_array_equal(kept, [[0, 10, 20, 50, 0], [10, 10, 70, 50, 0], [0, 60, 15, 80, 1]])
    crop2, cut = random_square_crop(img, faces, np.random.default_rng(seed), (1.0, 1.0), min_visible=0.7)
    np.testing.assert_array_equal(crop2, crop)  # the same crop: the option draws no random numbers
    np.testing.assert_array_equal(cut, [[0, 10, 20, 50, 1], [10, 10, 70, 50, 0], [90, 10, 100, 50, 1],
                                        [0, 60, 15, 80, 1]])


def test_train_augment_cut_faces_same_crops_and_fewer_faces():
    """cut_faces='ignore' sees the same crops as 'keep' (same rng); its faces are the kept faces
    that are at least min_visible inside; it needs the ignore-flag column; bad values are errors."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    xy = rng.uniform(0, 260, (30, 2))
    wh = rng.uniform(10, 80, (30, 2))
    faces = np.concatenate([xy, np.minimum(xy + wh, [320, 240]), np.zeros((30, 1))], 1).astype(np.float32)
    kw = dict(size=128, photometric=False, crop_scale=(0.3, 0.6))
    n_cut = 0
    for seed in range(10):
        a_img, a = TrainAugment(**kw)(img, faces, np.random.default_rng(seed))
        b_img, b = TrainAugment(cut_faces="ignore", min_visible=0.7, **kw)(img, faces, np.random.default_rng(seed))
        np.testing.assert_array_equal(a_img, b_img)
        real_b = b[b[:, 4] == 0]
        assert {tuple(r) for r in real_b.round(3)} <= {tuple(r) for r in a.round(3)}
        n_cut += int((b[:, 4] == 1).sum())
    assert n_cut > 0
    with pytest.raises(ValueError, match="cut_faces='ignore' needs boxes with an ignore-flag"):
        TrainAugment(cut_faces="ignore", **kw)(img, faces[:, :4], np.random.default_rng(0))
    with pytest.raises(ValueError, match="cut_faces must be keep or ignore"):
        TrainAugment(cut_faces="drop")
    with pytest.raises(ValueError, match="min_visible must be in"):
        TrainAugment(min_visible=0.0)


def test_flip_round_trip():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (40, 70, 3), dtype=np.uint8)
    boxes = np.array([[3, 4, 20, 30], [50, 0, 70, 40]], np.float32)
    fi, fb = hflip(img, boxes)
    np.testing.assert_array_equal(fb[0], [50, 4, 67, 30])
    ri, rb = hflip(fi, fb)
    np.testing.assert_array_equal(ri, img)
    np.testing.assert_array_equal(rb, boxes)
    seen = set()
    for _ in range(20):
        _, b = random_flip(img, boxes, rng)
        seen.add(float(b[0, 0]))
    assert seen == {3.0, 50.0}


def test_zoom_out_and_photometric():
    rng = np.random.default_rng(2)
    img = np.full((30, 40, 3), 100, np.uint8)
    boxes = np.array([[5, 5, 15, 20]], np.float32)
    out, ob = random_zoom_out(img, boxes, rng, max_ratio=3.0)
    assert out.shape[0] >= 30 and out.shape[1] >= 40
    assert abs(out.shape[0] / 30 - out.shape[1] / 40) < 0.1
    assert ob[0, 2] - ob[0, 0] == 10 and ob[0, 3] - ob[0, 1] == 15
    x1, y1 = int(ob[0, 0]) - 5, int(ob[0, 1]) - 5
    np.testing.assert_array_equal(out[y1:y1 + 30, x1:x1 + 40], img)
    p = photometric_distort(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8), rng)
    assert p.shape == (20, 20, 3) and p.dtype == np.uint8


def test_val_transform_and_default_rng():
    img = np.zeros((50, 100, 3), np.uint8)
    out, b = ValTransform(64)(img, np.array([[10, 10, 50, 30]], np.float32))
    assert out.shape == (64, 64, 3)
    np.testing.assert_allclose(b, [[6.4, 12.8, 32, 38.4]], rtol=1e-5)
    out, b = TrainAugment(32)(img, np.zeros((0, 4), np.float32))  # rng=None path
    assert out.shape == (32, 32, 3) and b.shape == (0, 4)


def test_min_face_px_after_resize():
    rng = np.random.default_rng(3)
    img = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[10, 10, 14, 14], [40, 40, 90, 90]], np.float32)
    aug = TrainAugment(50, crop_scale=(1.0, 1.0), photometric=False, flip=False, min_face_px=5)
    _, b = aug(img, boxes, rng=rng)  # sizes after resize: 2 px and 25 px
    np.testing.assert_allclose(b, [[20, 20, 45, 45]])


def test_preview_writes_png(tmp_path):
    img_dir, label = _make_wider(tmp_path)
    ds = WiderFaceDataset(img_dir, label)
    out = save_preview_grid(ds, TrainAugment(64), str(tmp_path / "prev" / "grid.png"), n=4)
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert save_preview_grid(ds, ValTransform(32), str(tmp_path / "g2.png"), n=2)


# ------------------------------------------------------------------------------------------
# real data (optional)
# ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.isdir(REAL_WIDER), reason="shared WIDER FACE copy not present")
def test_real_dev_split_loads():
    dev = os.path.join(REAL_WIDER, "dev")
    with pytest.warns(UserWarning):
        ds = WiderFaceDataset(os.path.join(dev, "images"),
                              os.path.join(dev, "wider_face_dev_bbx_gt.txt"), skip_bad=True)
    assert len(ds) == 320 and ds.num_faces_in_file == 2812
    assert ds.num_skipped_images == 0 and len(ds.skipped) == 3  # three zero-width faces
    img, boxes = ds[0]
    assert img.ndim == 3 and img.dtype == np.uint8 and len(boxes) > 0
    assert (boxes[:, 2] <= img.shape[1]).all() and (boxes[:, 3] <= img.shape[0]).all()


# ------------------------------------------------------------------ face-free samples
def test_face_free_crop_touches_no_box_and_gives_up_cleanly():
    from ssd_mnv2.data.transforms import face_free_crop

    img = np.zeros((300, 400, 3), np.uint8)
    boxes = np.array([[20, 20, 80, 90, 0], [250, 150, 300, 220, 1]], np.float32)
    for x1, y1, x2, y2, _ in boxes.astype(int):
        img[y1:y2, x1:x2] = 255  # faces and the ignore region are white, the rest black
    found = 0
    for seed in range(100):
        crop = face_free_crop(img, boxes, np.random.default_rng(seed), (0.2, 0.5))
        if crop is not None:
            found += 1
            assert crop.shape[0] == crop.shape[1] and 0.2 * 300 - 1 <= crop.shape[0] <= 0.5 * 300 + 1
            assert crop.max() == 0, seed  # no pixel of a face nor of the ignore region
    assert found > 50
    full = np.array([[0, 0, 400, 300, 0]], np.float32)  # a face covers the whole image
    assert face_free_crop(img, full, np.random.default_rng(0), (0.2, 0.5), max_trials=20) is None


def test_blank_canvases_are_uint8_and_vary():
    from ssd_mnv2.data.transforms import blank_canvas

    flats = [blank_canvas(64, "flat", np.random.default_rng(s)) for s in range(20)]
    noise = [blank_canvas(64, "noise", np.random.default_rng(s)) for s in range(20)]
    for c in flats + noise:
        assert c.shape == (64, 64, 3) and c.dtype == np.uint8
    assert max(c.reshape(-1, 3).std(axis=0).max() for c in flats) < 10  # one colour, faint noise
    assert min(c.std() for c in noise) > 2 and max(c.std() for c in noise) > 30
    assert len({tuple(c.reshape(-1, 3).mean(axis=0).round()) for c in flats}) > 10
    with pytest.raises(ValueError, match="flat or noise, got 'crop'"):
        blank_canvas(64, "crop", np.random.default_rng(0))


def test_train_augment_background_samples():
    """background_prob: that share of samples is face-free (no boxes, same shape and columns);
    0 (the default) leaves every sample as it was; a 'crop' with no face-free region falls back
    to the usual face sample; bad settings are errors."""
    img = np.random.default_rng(0).integers(0, 256, (200, 260, 3), dtype=np.uint8)
    faces = np.array([[30, 40, 90, 110, 0], [150, 60, 200, 120, 0]], np.float32)
    base = TrainAugment(size=96, crop_scale=(0.3, 1.0))
    off = TrainAugment(size=96, crop_scale=(0.3, 1.0), background_prob=0.0)
    for seed in range(5):
        (a, ab), (b, bb) = (t(img, faces, np.random.default_rng(seed)) for t in (base, off))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ab, bb)
    always = TrainAugment(size=96, background_prob=1.0, background_kinds=("flat", "noise"))
    for seed in range(10):
        out, b = always(img, faces, np.random.default_rng(seed))
        assert out.shape == (96, 96, 3) and out.dtype == np.uint8 and b.shape == (0, 5)
    some = TrainAugment(size=96, background_prob=0.25, background_kinds=("flat",))
    empty = [len(some(img, faces, np.random.default_rng(s))[1]) == 0 for s in range(400)]
    assert 0.18 < np.mean(empty) < 0.32
    full = np.array([[0, 0, 260, 200, 0]], np.float32)  # no face-free crop exists
    crop_only = TrainAugment(size=96, background_prob=1.0, background_kinds=("crop",), max_trials=10)
    _, b = crop_only(img, full, np.random.default_rng(0))
    assert len(b) == 1
    _, b = crop_only(img, faces, np.random.default_rng(0))
    assert len(b) == 0
    with pytest.raises(ValueError, match="background_prob must be in"):
        TrainAugment(background_prob=1.5)
    with pytest.raises(ValueError, match=r"background_kinds must be a non-empty subset.*got \['blur'\]"):
        TrainAugment(background_kinds=("blur",))


def test_face_free_benchmark_sets(tmp_path):
    """benchmarks/face_free.py: its dev crops come from a WIDER label file and touch no face
    (faces and invalid ones painted white on black images); an image covered by a face gives
    none; the synthetic patterns are 640x480 uint8 and not blank."""
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "face_free.py")
    spec = importlib.util.spec_from_file_location("face_free", path)
    face_free = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(face_free)
    faces = {"e/a.jpg": [(10, 10, 60, 70, 0), (200, 120, 40, 50, 1)], "e/full.jpg": [(0, 0, 160, 120, 0)],
             "e/b.jpg": [(150, 20, 30, 30, 0)]}
    sizes = {"e/a.jpg": (320, 240), "e/full.jpg": (160, 120), "e/b.jpg": (300, 200)}
    lines = []
    for rel, fs in faces.items():
        w, h = sizes[rel]
        img = np.zeros((h, w, 3), np.uint8)
        lines += [rel, str(len(fs))]
        for x, y, bw, bh, invalid in fs:
            img[y:y + bh, x:x + bw] = 255
            lines.append(f"{x} {y} {bw} {bh} 0 0 0 {invalid} 0 0")
        (tmp_path / "images" / "e").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "images" / rel), img)
    (tmp_path / "gt.txt").write_text("\n".join(lines) + "\n")
    crops = face_free.dev_crops(str(tmp_path / "images"), str(tmp_path / "gt.txt"))
    assert sorted(crops) == ["e/a.jpg", "e/b.jpg"]
    for crop in crops.values():
        assert crop.shape[0] == crop.shape[1] and crop.max() <= 8  # JPEG ringing at most
    patterns = face_free.pattern_images()
    assert len(patterns) == 9
    for name, img in patterns.items():
        assert img.shape == (480, 640, 3) and img.dtype == np.uint8 and img.std() > 5, name

def test_train_augment_per_call_canvas_scales_the_same_crop():
    """size= resizes the same crop to another canvas: the image is (S, S, 3) and the boxes are
    the default canvas's boxes times S / size (the crop does not depend on the canvas)."""
    img = np.random.default_rng(3).integers(0, 256, (200, 260, 3), dtype=np.uint8)
    faces = np.array([[30, 40, 90, 110], [150, 60, 200, 120]], np.float32)
    aug = TrainAugment(size=128, crop_scale=(0.5, 1.0), photometric=False)
    for seed in range(6):
        a, ab = aug(img, faces, np.random.default_rng(seed))
        b, bb = aug(img, faces, np.random.default_rng(seed), size=192)
        assert a.shape == (128, 128, 3) and b.shape == (192, 192, 3)
        assert len(ab) == len(bb) > 0
        np.testing.assert_allclose(bb, ab * 1.5, rtol=1e-5, atol=1e-3)
    flat = TrainAugment(size=128, background_prob=1.0, background_kinds=("flat", "noise"))
    assert flat(img, faces, np.random.default_rng(0), size=160)[0].shape == (160, 160, 3)
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        aug(img, faces, np.random.default_rng(0), size=0)


def test_batch_sampler_draws_one_canvas_per_batch_reproducibly():
    """With several sizes every batch has one canvas, drawn from (seed, epoch, batch): a
    mid-epoch resume sees the same canvases; each size turns up; one size is every batch's; no
    sizes keeps (epoch, i) pairs (each sample on the augmentation's own size)."""
    from ssd_mnv2.data.pipeline import EpochBatchSampler

    sizes = (448, 512, 576)
    full = list(EpochBatchSampler(160, 4, seed=5, epoch=2, sizes=sizes))
    assert len(full) == 40
    for batch in full:
        assert len(batch) == 4 and len({s for _, _, s in batch}) == 1 and batch[0][2] in sizes
        assert all(e == 2 for e, _, _ in batch)
    assert {b[0][2] for b in full} == set(sizes)
    plain = list(EpochBatchSampler(160, 4, seed=5, epoch=2))
    assert [[i for _, i, _ in b] for b in full] == [[i for _, i in b] for b in plain]
    assert list(EpochBatchSampler(160, 4, seed=5, epoch=2, start_batch=17, sizes=sizes)) == full[17:]
    other_epoch = list(EpochBatchSampler(160, 4, seed=5, epoch=3, sizes=sizes))
    assert [b[0][2] for b in other_epoch] != [b[0][2] for b in full]
    assert all(len(k) == 2 for b in EpochBatchSampler(16, 4) for k in b)
    assert all(k[2] == 576 for b in EpochBatchSampler(16, 4, sizes=(576,)) for k in b)


def test_train_samples_encode_each_canvas_with_its_own_anchors(tmp_path):
    """(epoch, i, size) gives an S x S image and targets for the anchors of an S x S input,
    as many as the network predicts at that size; a size without an encoder is a KeyError;
    data.canvas_sizes is validated at load time."""
    import mxnet as mx

    from ssd_mnv2.config import ConfigError
    from ssd_mnv2.data.pipeline import build_dataset, build_train_samples
    from ssd_mnv2.data.synthetic import write_wider
    from ssd_mnv2.model.ssd import build_ssd
    from tiny_configs import tiny_config

    write_wider(tmp_path / "d", n_images=4)
    cfg = tiny_config(tmp_path / "d", data={"canvas_sizes": [64, 128]})
    samples = build_train_samples(cfg, build_dataset(cfg, "train"))
    net = build_ssd(cfg)
    for size in (64, 96, 128):
        img, cls_t, box_t = samples[(0, 1, size)] if size != 96 else samples[(0, 1)]
        assert img.shape == (3, size, size)
        cls_p, box_p, anchors = net(mx.nd.zeros((1, 3, size, size)))
        assert cls_t.shape == (anchors.shape[1],) and box_t.shape == (anchors.shape[1], 4)
    with pytest.raises(KeyError, match=r"no target encoder for a 160 px canvas \(have \[64, 96, 128\]\)"):
        samples[(0, 1, 160)]
    for bad in ([100], [0], [512, 48]):
        with pytest.raises(ConfigError, match="data.canvas_sizes: every size must be a multiple of 32"):
            tiny_config(tmp_path / "d", data={"canvas_sizes": bad})
