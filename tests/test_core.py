"""Core: config, anchors, box coding, matching, loss, model shapes/hybridize/export, bad input."""
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from ssd_mnv2.anchors import anchor_counts, feature_sizes, generate_anchors, level_anchors_cxcywh
from ssd_mnv2.boxes import BoxCoder, cxcywh_to_xyxy, iou_matrix
from ssd_mnv2.config import ConfigError, config_from_dict, load_config
from ssd_mnv2.loss import MultiBoxLoss
from ssd_mnv2.matching import TargetEncoder
from ssd_mnv2.model.ssd import SSDInference, build_ssd
from ssd_mnv2.predictor import Detector, ImageError, check_image, read_image
from tiny_configs import tiny_config, tiny_config_dict

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_YAML = ROOT / "ssd_mnv2" / "models" / "face_mnv2_300.yaml"


# ---------------------------------------------------------------- config
def test_default_config_loads_and_derives_levels():
    cfg = load_config(DEFAULT_YAML)
    assert cfg.model.num_levels == 6
    assert len(cfg.anchors.sizes) == 6
    assert cfg.anchors.per_location() == [len(s) * len(r) for s, r in zip(cfg.anchors.sizes, cfg.anchors.ratios)]


@pytest.mark.parametrize("patch, key", [
    ({"model": {"widht": 1.0}}, "model.widht"),
    ({"bogus": {}}, "bogus"),
    ({"anchors": {"ratios": [[1.0], [1.0], [0.0], [1.0], [1.0]]}}, "anchors.ratios[2]"),
    ({"anchors": {"sizes": [[16], [32], [48], [64]]}}, "anchors.sizes"),
    ({"train": {"lr": "fast"}}, "train.lr"),  # old spelling of solver.lr: named as written
    ({"solver": {"lr": "fast"}}, "solver.lr"),
    ({"decode": {"nms_iou": 1.5}}, "decode.nms_iou"),
    ({"train": {"batch_size": 2.5}}, "train.batch_size"),
    ({"model": {"head": "yolo"}}, "model.head"),
])
def test_config_errors_name_the_key(patch, key):
    d = tiny_config_dict()
    for section, values in patch.items():
        d.setdefault(section, {}).update(values)
    with pytest.raises(ConfigError) as e:
        config_from_dict(d)
    assert key in str(e.value)


def test_config_override_and_unknown_override(tmp_path):
    p = tmp_path / "c.yaml"
    import yaml
    p.write_text(yaml.safe_dump(tiny_config_dict()))
    cfg = load_config(p, ["solver.lr=0.05", "model.head=ssdlite"])
    assert cfg.solver.lr == 0.05 and cfg.model.head == "ssdlite"
    with pytest.raises(ConfigError, match="train.nope"):
        load_config(p, ["train.nope=1"])


def test_config_rejects_python_tags(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("model: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


# ---------------------------------------------------------------- anchors
def test_feature_sizes_300_and_640x480():
    cfg = load_config(DEFAULT_YAML)
    assert feature_sizes(cfg.model, 300, 300) == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    assert feature_sizes(cfg.model, 480, 640)[:3] == [(60, 80), (30, 40), (15, 20)]


def test_golden_anchors_tiny_case():
    a = level_anchors_cxcywh([8.0], [1.0, 4.0], stride=16, feat_h=1, feat_w=2, offset=0.5)
    expected = np.array([[8, 8, 8, 8], [8, 8, 16, 4], [24, 8, 8, 8], [24, 8, 16, 4]], np.float32)
    np.testing.assert_allclose(a, expected, atol=1e-6)


def test_densified_anchors_tile_each_cell():
    # size 8 at density 2 (4 tiles a cell, at +-1/4 stride), size 16 at density 1, stride 16
    a = level_anchors_cxcywh([8.0, 16.0], [1.0], stride=16, feat_h=1, feat_w=2, offset=0.5,
                             density=[2, 1])
    expected = np.array([[4, 4, 8, 8], [12, 4, 8, 8], [4, 12, 8, 8], [12, 12, 8, 8], [8, 8, 16, 16],
                         [20, 4, 8, 8], [28, 4, 8, 8], [20, 12, 8, 8], [28, 12, 8, 8], [24, 8, 16, 16]],
                        np.float32)
    np.testing.assert_allclose(a, expected, atol=1e-6)
    # density 1 everywhere is the plain grid
    np.testing.assert_array_equal(
        level_anchors_cxcywh([8.0], [1.0, 4.0], 16, 2, 3, 0.5, density=[1]),
        level_anchors_cxcywh([8.0], [1.0, 4.0], 16, 2, 3, 0.5))


@pytest.mark.parametrize("hw,density", [((96, 96), None), ((80, 128), None),
                                        ((80, 128), [[3], [2], [1], [1], [1]])])
def test_anchor_counts_equal_head_outputs_and_net_anchors(hw, density):
    cfg = tiny_config(anchors={"density": density} if density else {})
    if density:
        assert cfg.anchors.per_location() == [9, 4, 1, 1, 1]
    net = build_ssd(cfg)
    h, w = hw
    cls, box, anchors = net(mx.nd.zeros((1, 3, h, w)))
    per_level = anchor_counts(cfg, h, w)
    fs = feature_sizes(cfg.model, h, w)
    assert per_level == [fh * fw * a for (fh, fw), a in zip(fs, cfg.anchors.per_location())]
    assert cls.shape == (1, sum(per_level), 2) and box.shape == (1, sum(per_level), 4)
    np.testing.assert_allclose(anchors[0].asnumpy(), generate_anchors(cfg, h, w), atol=1e-4)


# ---------------------------------------------------------------- boxes / matching / loss
def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    anchors = np.c_[rng.uniform(0, 300, (50, 2)), rng.uniform(8, 200, (50, 2))].astype(np.float32)
    xy = rng.uniform(0, 250, (50, 2))
    boxes = np.c_[xy, xy + rng.uniform(4, 120, (50, 2))].astype(np.float32)
    coder = BoxCoder()
    back = coder.decode(coder.encode(boxes, anchors), anchors)
    np.testing.assert_allclose(back, boxes, atol=1e-3, rtol=1e-5)
    # symbolic decode equals numpy decode (more in tests/test_boxes.py)
    t = coder.encode(boxes, anchors)
    sym = coder.decode_symbolic(mx.nd, mx.nd.array(t[None]), mx.nd.array(anchors[None]))
    np.testing.assert_allclose(sym[0].asnumpy(), boxes, atol=1e-3)


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 1 / 3, 0.0]], atol=1e-6)


def test_matching_gives_every_face_an_anchor():
    cfg = tiny_config()
    anchors = generate_anchors(cfg, 96, 96)
    # faces of awkward sizes/positions, including two sharing the same best anchor region
    faces = np.array([[2, 2, 9, 12], [40, 40, 52, 50], [41, 41, 53, 51], [10, 60, 90, 95]], np.float32)
    enc = TargetEncoder(anchors, iou_thresh=0.5)
    cls_t, box_t = enc(faces)
    assert cls_t.shape == (len(anchors),) and box_t.shape == (len(anchors), 4)
    pos = np.where(cls_t > 0)[0]
    ious = iou_matrix(cxcywh_to_xyxy(anchors[pos]), faces)
    assert set(ious.argmax(axis=1)) == set(range(len(faces)))
    # positive box targets decode back to their face
    dec = BoxCoder().decode(box_t[pos], anchors[pos])
    assert np.all(iou_matrix(dec, faces).max(axis=1) > 0.999)
    # empty image: all background
    c0, b0 = enc(np.zeros((0, 4), np.float32))
    assert c0.sum() == 0 and b0.sum() == 0


def test_loss_finite_without_faces_and_positive_with_faces():
    cfg = tiny_config()
    n = len(generate_anchors(cfg, 96, 96))
    cls_p = mx.nd.random.normal(shape=(2, n, 2))
    box_p = mx.nd.random.normal(shape=(2, n, 4))
    loss = MultiBoxLoss()
    c, b, t = loss([cls_p], [box_p], [mx.nd.zeros((2, n))], [mx.nd.zeros((2, n, 4))])
    assert np.isfinite(t[0].asnumpy()).all()
    ct = mx.nd.zeros((2, n)); ct[0, 5] = 1
    c, b, t = loss([cls_p], [box_p], [ct], [mx.nd.ones((2, n, 4))])
    v = t[0].asnumpy()
    assert np.isfinite(v).all() and v.sum() > 0


# ---------------------------------------------------------------- model
def test_output_shapes_default_model_300_and_480x640():
    cfg = load_config(DEFAULT_YAML, ["train.pretrained_backbone=none"])
    net = build_ssd(cfg)
    for h, w in ((300, 300), (480, 640)):
        cls, box, anc = net(mx.nd.zeros((1, 3, h, w)))
        n = sum(anchor_counts(cfg, h, w))
        assert cls.shape == (1, n, 2) and box.shape == (1, n, 4) and anc.shape == (1, n, 4)


@pytest.mark.parametrize("head", ["ssd", "ssdlite"])
def test_hybridized_equals_imperative(head):
    cfg = tiny_config(model={"head": head})
    net = build_ssd(cfg)
    x = mx.nd.random.uniform(0, 255, (2, 3, 96, 96))
    ref = [o.asnumpy() for o in net(x)]
    net.hybridize()
    out = [o.asnumpy() for o in net(x)]
    for a, b in zip(ref, out):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_export_and_symbolblock_imports_identical(tmp_path):
    cfg = tiny_config()
    net = build_ssd(cfg)
    inf = SSDInference(net, cfg.decode)
    inf.hybridize()
    x = mx.nd.random.uniform(0, 255, (1, 3, 96, 128))
    ref = [o.asnumpy() for o in inf(x)]
    inf.export(str(tmp_path / "m"))
    sb = mx.gluon.SymbolBlock.imports(str(tmp_path / "m-symbol.json"), ["data"],
                                      str(tmp_path / "m-0000.params"))
    out = [o.asnumpy() for o in sb(x)]
    for a, b in zip(ref, out):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # the exported graph runs at another size too (anchors are sliced constants)
    sb(mx.nd.zeros((1, 3, 128, 96)))


def test_detector_predict_boxes_in_original_pixels():
    cfg = tiny_config()
    det = Detector(cfg, build_ssd(cfg), fused=False)
    img = (np.random.default_rng(0).random((120, 200, 3)) * 255).astype(np.uint8)
    for size in ("original", "96x96", "max-side 128"):
        boxes, scores = det.predict(img, size=size)
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(scores) == len(boxes)
        assert (boxes[:, [0, 2]] <= 200).all() and (boxes[:, [1, 3]] <= 120).all()
        assert np.all(np.diff(scores) <= 1e-6)  # sorted by score
        assert len(boxes) <= cfg.decode.max_detections


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("img, msg", [
    (np.zeros((50, 50), np.uint8), "grayscale"),
    (np.zeros((50, 50, 4), np.uint8), "4-channel"),
    (np.zeros((50, 50, 3), np.uint16), "uint8"),
    ("not an array", "numpy array"),
])
def test_bad_images_get_clear_errors(img, msg):
    with pytest.raises(ImageError, match=msg):
        check_image(img)


def test_not_an_image_file(tmp_path):
    p = tmp_path / "fake.jpg"
    p.write_text("hello")
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(p)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.jpg")


def test_threshold_inside_graph_gives_the_same_boxes():
    """Greedy NMS: boxes above t are the same whether or not lower-scored boxes take part."""
    import dataclasses
    mx.random.seed(0)  # a fixed init: with another test order the scores can tie at the threshold
    cfg = tiny_config()
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    rng = np.random.default_rng(1)
    for p in ssd.cls_heads.collect_params(".*weight").values():  # spread the scores
        p.set_data(mx.nd.array(rng.normal(0, 2.0, p.shape)))
    img = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    low = Detector(cfg, ssd, fused=False)
    t = float(np.quantile(low.predict(img)[1], 0.6))  # a threshold that keeps some boxes
    high = Detector(cfg.replace(decode=dataclasses.replace(cfg.decode, score_threshold=t)), ssd, fused=False)
    b1, s1 = low.predict(img, threshold=t)
    b2, s2 = high.predict(img, threshold=t)
    assert len(s1) > 3
    np.testing.assert_allclose(s1, s2, atol=1e-6)
    np.testing.assert_allclose(b1, b2, atol=1e-4)


def test_fine_tuning_into_a_densified_level_reinitialises_only_its_heads(tmp_path):
    from ssd_mnv2.model.weights import load_params

    src = build_ssd(tiny_config())
    src(mx.nd.zeros((1, 3, 96, 96)))
    src.save_parameters(str(tmp_path / "src.params"))
    dense_cfg = tiny_config(anchors={"density": [[2], [1], [1], [1], [1]]})
    net = build_ssd(dense_cfg)
    with pytest.raises(ValueError, match=r"cls_heads.0.weight. has shape \(2, 8, 3, 3\) in the file but \(8, 8, 3, 3\)"):
        load_params(net, tmp_path / "src.params")  # the default: a mismatch is an error
    net(mx.nd.zeros((1, 3, 96, 96)))
    fresh = load_params(net, tmp_path / "src.params", mismatched="reinit")
    assert fresh and all(k.startswith(("cls_heads.0.", "box_heads.0.")) for k in fresh), fresh
    assert "cls_heads.0.weight" in fresh and "box_heads.0.bias" in fresh
    ref = src._collect_params_with_prefix()
    for k, p in net._collect_params_with_prefix().items():
        if k not in fresh and not k.endswith("anchors"):
            np.testing.assert_array_equal(p.data().asnumpy(), ref[k].data().asnumpy(), err_msg=k)
    with pytest.raises(ValueError, match="known shapes"):
        load_params(build_ssd(dense_cfg), tmp_path / "src.params", mismatched="reinit")


def test_densify_init_predicts_the_same_boxes_on_every_tile(tmp_path):
    from ssd_mnv2.model.weights import load_params

    src = build_ssd(tiny_config())
    x = mx.nd.array(np.random.default_rng(0).uniform(0, 255, (1, 3, 80, 112)))
    src(x)
    rng = np.random.default_rng(1)
    for k, p in src._collect_params_with_prefix().items():  # distinct values everywhere
        if k.startswith(("cls_heads.0.", "box_heads.0.")):
            p.set_data(mx.nd.array(rng.normal(0, 0.3, p.shape)))
    src.save_parameters(str(tmp_path / "src.params"))
    dense_cfg = tiny_config(anchors={"density": [[2], [1], [1], [1], [1]]})
    dense = build_ssd(dense_cfg)
    dense(x)
    mapped = load_params(dense, tmp_path / "src.params", mismatched="densify", source_cfg=src.cfg)
    assert mapped == ["box_heads.0.bias", "box_heads.0.weight", "cls_heads.0.bias", "cls_heads.0.weight"]
    coder = BoxCoder(src.cfg.anchors.variances)
    (c0, b0, a0), (c1, b1, a1) = ([o[0].asnumpy() for o in net(x)] for net in (src, dense))
    n0 = anchor_counts(src.cfg, 80, 112)[0]  # level 0: 1 anchor per location before, 4 tiles after
    box0 = coder.decode(b0[:n0], a0[:n0])
    box1 = coder.decode(b1[:4 * n0], a1[:4 * n0]).reshape(n0, 4, 4)
    np.testing.assert_allclose(box1, np.repeat(box0[:, None], 4, axis=1), atol=1e-3)
    np.testing.assert_allclose(c1[:4 * n0].reshape(n0, 4, -1), np.repeat(c0[:n0, None], 4, axis=1), atol=1e-5)
    assert not np.allclose(a1[:4 * n0].reshape(n0, 4, 4)[:, 0], a1[:4 * n0].reshape(n0, 4, 4)[:, 3])
    np.testing.assert_allclose(c1[4 * n0:], c0[n0:], atol=1e-5)  # the other levels are unchanged
    np.testing.assert_allclose(b1[4 * n0:], b0[n0:], atol=1e-5)
    with pytest.raises(ValueError, match="only anchors.density may change"):
        other = build_ssd(tiny_config(anchors={"sizes": [[12], [32], [48], [64], [90]]}))
        other(x)
        load_params(other, tmp_path / "src.params", mismatched="densify", source_cfg=src.cfg)
