"""MXNet export round trip, ONNX vs MXNet, int8 quantization (tiny random model, seconds)."""
import mxnet as mx
import numpy as np
import pytest

from ssd_mnv2.data.synthetic import make_image
from tiny_configs import tiny_config
from ssd_mnv2 import export as ex
from ssd_mnv2.model.ssd import build_ssd
from ssd_mnv2.predictor import Detector


def _model(num_classes=1, pad_multiple=0, density=None):
    names = ["face"] if num_classes == 1 else ["face", "other"]
    cfg = tiny_config(model={"class_names": names}, decode={"max_detections": 50, "pre_nms_topk": 200},
                      eval={"pad_multiple": pad_multiple}, anchors={"density": density} if density else {})
    return random_detector(cfg)


def random_detector(cfg):
    """An unfused Detector of ``cfg`` with random BN statistics and class-head weights (distinct
    scores, no ties), for comparing backends."""
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    rng = np.random.default_rng(0)
    for k, p in ssd.collect_params().items():
        if k.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, p.shape)))
        elif k.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.normal(0, 0.3, p.shape)))
    for p in ssd.cls_heads.collect_params(".*weight").values():  # distinct scores: no ties
        p.set_data(mx.nd.array(rng.normal(0, 0.2, p.shape)))
    return Detector(cfg, ssd, fused=False, source="random")


def _assert_same_detections(b1, s1, b2, s2, score_tol, box_tol, top=20):
    """Same detections, order-insensitive among near-equal scores: each of the top ``top``
    detections of one has a twin (score and box within tolerance) in the other."""
    assert abs(len(s1) - len(s2)) <= 1
    for bs, ss, bo, so in ((b1, s1, b2, s2), (b2, s2, b1, s1)):
        for b, s in zip(bs[:top], ss[:top]):
            d = np.abs(so - s) <= score_tol
            assert d.any(), f"score {s} has no twin"
            assert (np.abs(bo[d] - b).max(axis=1) <= box_tol).any(), f"box {b} has no twin"


@pytest.fixture(scope="module")
def det():
    return _model()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    return [make_image(rng, (160, 120), 2)[0], make_image(rng, (200, 150), 3)[0]]


def assert_symbol_matches_detector(sb, det, images) -> None:
    """The exported symbol block ``sb`` (BGR 0..255 in) gives ``det``'s ids, scores and boxes."""
    for img in images:  # other sizes than the traced one: dynamic H, W
        x = mx.nd.array(img.transpose(2, 0, 1)[None].astype(np.float32))  # BGR, 0..255
        got = [o.asnumpy() for o in sb(x)]
        ref = [o.asnumpy() for o in det.net(det.preprocess(img)[0])]
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_allclose(got[1], ref[1], atol=1e-5)
        np.testing.assert_allclose(got[2], ref[2], atol=1e-3)


def test_export_mxnet_round_trip(tmp_path, det, images):
    paths = ex.export_mxnet(det, tmp_path, size="128x96")
    assert all(__import__("os").path.isfile(p) for p in paths.values())
    assert_symbol_matches_detector(ex.load_exported_mxnet(tmp_path / "face_detector"), det, images)
    from ssd_mnv2.config import load_config

    assert load_config(paths["config"]) == det.cfg


def test_export_cli(tmp_path, det, monkeypatch):
    from ssd_mnv2 import cli
    from ssd_mnv2.commands import export as cmd

    monkeypatch.setattr(cmd, "load_detector", lambda args, **kw: det)
    assert cli.main(["export", "--format", "mxnet", "--out", str(tmp_path), "--size", "128x96"]) == 0
    assert (tmp_path / "face_detector-symbol.json").is_file()


@pytest.mark.parametrize("graph", ["full", "raw"])
def test_onnx_matches_mxnet(tmp_path, det, images, graph):
    """ONNX Runtime vs MXNet on the same images. Tolerance: scores 1e-4, boxes 0.05 px."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    paths = ex.export_onnx(det, tmp_path, size="128x96", graph=graph)
    od = ex.OnnxDetector(paths["onnx"], threads=1)
    assert od.graph == graph
    for img in images:
        b1, s1 = det.predict(img, threshold=0.0)
        b2, s2 = od.predict(img, threshold=0.0)
        assert len(s1) > 5
        _assert_same_detections(b1, s1, b2, s2, 1e-4, 0.05)
        np.testing.assert_allclose(np.sort(s1)[-10:], np.sort(s2)[-10:], atol=1e-4)
    # the MXNet detector is unchanged by the export (still its own hybridization)
    b3, s3 = det.predict(images[0], threshold=0.0)
    assert np.array_equal(s3, det.predict(images[0], threshold=0.0)[1])


def test_onnx_of_a_densified_model_matches_mxnet(tmp_path, images):
    """anchors.density changes the anchor constants and the head shapes: the export carries both."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    dense = _model(density=[[2], [1], [1], [1], [1]])
    paths = ex.export_onnx(dense, tmp_path, size="128x96", graph="raw")
    od = ex.OnnxDetector(paths["onnx"], threads=1)
    for img in images:  # other sizes than the traced one
        b1, s1 = dense.predict(img, threshold=0.0)
        b2, s2 = od.predict(img, threshold=0.0)
        assert len(s1) > 5
        _assert_same_detections(b1, s1, b2, s2, 1e-4, 0.05)


def test_onnx_raw_multiclass_numpy_nms(tmp_path, images):
    pytest.importorskip("onnxruntime")
    det2 = _model(num_classes=2)
    paths = ex.export_onnx(det2, tmp_path)  # auto: raw graph for 2 classes
    od = ex.OnnxDetector(paths["onnx"], threads=1)
    assert od.graph == "raw"
    b1, s1 = det2.predict(images[0], threshold=0.0)
    b2, s2 = od.predict(images[0], threshold=0.0)
    _assert_same_detections(b1, s1, b2, s2, 1e-4, 0.05)


def test_onnx_backend_in_detect(tmp_path, det, images):
    pytest.importorskip("onnxruntime")
    import cv2

    from ssd_mnv2.inference import detect_paths

    paths = ex.export_onnx(det, tmp_path / "m")
    cv2.imwrite(str(tmp_path / "a.jpg"), images[0])
    od = ex.make_detector("onnxruntime", None, onnx=paths["onnx"])
    s = detect_paths(od, [tmp_path / "a.jpg"], tmp_path / "out", threshold=0.0, verbose=False)
    assert s.processed == 1 and s.faces > 0


def test_decode_nms_numpy_threshold_before_nms_is_exact():
    """Raising the score threshold before NMS keeps exactly the boxes above it (greedy NMS)."""

    det = _model()
    rng = np.random.default_rng(5)
    for p in det.ssd.cls_heads.collect_params(".*weight").values():  # many overlapping candidates
        p.set_data(mx.nd.array(rng.normal(0, 1.5, p.shape)))
    x, _ = det.preprocess(make_image(rng, (160, 120), 3)[0])
    logits, offsets, anchors = (o.asnumpy()[0] for o in det.ssd(x))
    ids0, s0, b0 = ex.decode_nms_numpy(logits, offsets, anchors, det.cfg)
    assert len(s0) > 10 and np.all(np.diff(s0) <= 0)
    for t in np.quantile(s0, [0.2, 0.5, 0.9]):
        ids1, s1, b1 = ex.decode_nms_numpy(logits, offsets, anchors, det.cfg, threshold=float(t))
        keep = s0 > t
        np.testing.assert_array_equal(s1, s0[keep])
        np.testing.assert_array_equal(b1, b0[keep])
    # the in-graph decoder (MXNet) agrees with the numpy one
    ids_g, s_g, b_g = (o.asnumpy()[0] for o in det.net(x))
    valid = ids_g[:, 0] >= 0
    np.testing.assert_allclose(np.sort(s_g[valid, 0])[::-1][:20], s0[:20], atol=1e-5)


def test_decode_nms_numpy_extreme_logits_no_overflow_warning():
    """Confident background (logit gap 1000) scores 0 without a numpy overflow warning; a
    confident face scores 1."""
    import warnings

    cfg = _model().cfg
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0]], np.float32)
    anchors = np.array([[50, 50, 20, 20], [80, 80, 20, 20]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids, scores, boxes = ex.decode_nms_numpy(logits, np.zeros((2, 4), np.float32), anchors, cfg)
    np.testing.assert_allclose(scores, [1.0])
    np.testing.assert_allclose(boxes, [[70, 70, 90, 90]], atol=1e-4)


def test_cached_onnx_export_reused_and_keyed_on_weights(tmp_path, images):
    pytest.importorskip("onnxruntime")
    d = _model()
    p1 = ex.cached_onnx_export(d, tmp_path)
    mtime = __import__("os").path.getmtime(p1)
    assert ex.cached_onnx_export(d, tmp_path) == p1 and __import__("os").path.getmtime(p1) == mtime
    assert [q.name for q in tmp_path.iterdir()] == [__import__("pathlib").Path(p1).parent.name]  # no temp left
    w = next(iter(d.ssd.cls_heads.collect_params(".*weight").values()))
    w.set_data(w.data() * 1.01)
    p2 = ex.cached_onnx_export(d, tmp_path)
    assert p2 != p1
    od = ex.OnnxDetector(p2, d.cfg, threads=1)
    b1, s1 = d.predict(images[0], threshold=0.0)
    b2, s2 = od.predict(images[0], threshold=0.0)
    _assert_same_detections(b1, s1, b2, s2, 1e-4, 0.05)


def test_auto_backend(tmp_path, det, monkeypatch):
    monkeypatch.setenv("SSD_MNV2_CACHE", str(tmp_path))
    from ssd_mnv2.deploy import onnx as deploy_onnx

    monkeypatch.setattr(deploy_onnx, "onnx_available", lambda: False)
    assert ex.default_backend() == "mxnet"
    assert ex.make_detector("auto", lambda fused: det) is det
    pytest.importorskip("onnxruntime")
    monkeypatch.undo()
    monkeypatch.setenv("SSD_MNV2_CACHE", str(tmp_path))
    od = ex.make_detector("auto", lambda fused: det)
    assert isinstance(od, ex.OnnxDetector) and od.graph == "raw"
    assert str(tmp_path) in od.source
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    monkeypatch.setenv("SSD_MNV2_CACHE", str(blocker))  # unwritable cache: a temporary export
    od2 = ex.make_detector("auto", lambda fused: det)
    assert isinstance(od2, ex.OnnxDetector) and str(blocker) not in od2.source
    with pytest.raises(ValueError, match="unknown backend"):
        ex.make_detector("tpu", lambda fused: det)


@pytest.mark.skipif(not ex.int8_available(), reason="no oneDNN int8 in this MXNet build")
def test_quantize_tiny(tmp_path, images):
    d = _model()
    d.net.hybridize(static_alloc=True)
    calib = [make_image(np.random.default_rng(i), (128, 96), 2)[0] for i in range(8)]
    paths = ex.quantize_detector(d, calib, tmp_path, num_calib=8, size="96x96", batch_size=4)
    q = ex.QuantizedDetector.from_dir(tmp_path)
    for img in images:
        b, s = q.predict(img, threshold=0.0)
        assert b.ndim == 2 and b.shape[1] == 4 and b.shape[0] == s.shape[0] > 0
        assert (b[:, 2] <= img.shape[1]).all() and (b[:, 3] <= img.shape[0]).all()
        # raw int8 network close to float (anchors excluded from quantization: exact)
        x, _ = d.preprocess(img)
        ref = [o.asnumpy() for o in d.ssd(x)]
        got = [o.asnumpy() for o in q.ssd(x)]
        assert [g.shape for g in got] == [r.shape for r in ref]
        np.testing.assert_array_equal(got[2], ref[2])
    assert q.describe()["backend"] == "int8"
    assert paths["dir"] == str(tmp_path)


@pytest.mark.skipif(not ex.onnx_available(), reason="onnx/onnxruntime not installed")
def test_quantize_onnx_tiny(tmp_path, det, images):
    from ssd_mnv2.quantize_onnx import find_quantized_onnx, quantize_onnx

    calib = [make_image(np.random.default_rng(i), (128, 96), 2)[0] for i in range(8)]
    paths = quantize_onnx(det, calib, tmp_path / "q", num_calib=8, size="96x96")
    meta = __import__("json").loads(open(paths["meta"]).read())
    assert meta["format"] == "onnx-int8" and meta["quantization"]["num_calib"] == 8
    assert find_quantized_onnx(tmp_path / "q") == __import__("pathlib").Path(paths["onnx"])
    assert find_quantized_onnx(tmp_path) is None  # no int8 model there
    q = ex.load_quantized(tmp_path / "q")  # --quantized DIR dispatches on what the folder holds
    assert isinstance(q, ex.OnnxDetector) and q.describe()["backend"] == "onnxruntime-int8"
    import onnx

    graph = onnx.load(paths["onnx"]).graph
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= {n.op_type for n in graph.node}
    # the class and box heads stay float: their weights are plain initializers, not dequantized
    heads = meta["quantization"]["float_convs"]
    assert len(heads) == 2 * det.cfg.model.num_levels
    inits = {i.name for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Conv":
            assert (n.input[1] in inits) == (n.name in heads), n.name
    fp = ex.OnnxDetector(ex.export_onnx(det, tmp_path / "f", graph="raw")["onnx"])
    for img in images:  # other sizes than the calibration one: dynamic H, W
        x, _ = q.preprocess(img)
        got, ref = q.forward(x), fp.forward(x)
        assert [g.shape for g in got] == [r.shape for r in ref]
        np.testing.assert_array_equal(got[2], ref[2])  # anchors are not quantized: exact
        # int8 logits/offsets track float ones (not equal: an int8 grid per tensor)
        for g, r in zip(got[:2], ref[:2]):
            assert np.corrcoef(g.ravel(), r.ravel())[0, 1] > 0.95
        b, s = q.predict(img, threshold=0.0)
        assert b.shape[1] == 4 and len(s) > 0 and (b[:, 2] <= img.shape[1]).all()
    with pytest.raises(ValueError, match="calibration method"):
        quantize_onnx(det, calib, tmp_path / "bad", num_calib=2, method="magic")


def test_input_padding_is_the_same_as_padding_the_image_yourself(images):
    """eval.pad_multiple: the input is padded at the bottom/right with mid-grey to a multiple
    (160x120 -> 192x128 for 64); detections are those on the padded image, clipped to the image."""
    import cv2

    from ssd_mnv2.predictor import PAD_VALUE, network_image

    img = images[0]  # 160 x 120
    net_img, scale = network_image(img, (160, 120), 64)
    assert net_img.shape == (128, 192, 3) and scale == (1.0, 1.0)
    np.testing.assert_array_equal(net_img[:120, :160], img)
    assert (net_img[120:] == PAD_VALUE).all() and (net_img[:, 160:] == PAD_VALUE).all()
    assert network_image(img, (128, 128), 64)[0].shape == (128, 128, 3)  # a multiple already: as is

    mx.random.seed(7)
    padded = _model(pad_multiple=64)
    mx.random.seed(7)
    plain = _model()  # the same weights
    b1, s1 = padded.predict(img, threshold=0.0)
    b2, s2 = plain.predict(cv2.copyMakeBorder(img, 0, 8, 0, 32, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3),
                           threshold=0.0)
    b2 = b2.copy()
    b2[:, 0::2] = b2[:, 0::2].clip(0, 160)
    b2[:, 1::2] = b2[:, 1::2].clip(0, 120)
    ok = (b2[:, 2] > b2[:, 0]) & (b2[:, 3] > b2[:, 1])
    assert len(s1) > 5 and (b1[:, 2] <= 160).all() and (b1[:, 3] <= 120).all()
    np.testing.assert_allclose(s1, s2[ok], atol=1e-6)
    np.testing.assert_allclose(b1, b2[ok], atol=1e-3)
    assert padded.preprocess(img)[0].shape == (1, 3, 128, 192)
    assert plain.preprocess(img)[0].shape == (1, 3, 120, 160)


def test_onnx_detector_pads_like_mxnet(tmp_path, images):
    pytest.importorskip("onnxruntime")
    det_pad = _model(pad_multiple=64)
    paths = ex.export_onnx(det_pad, tmp_path, size="128x96")
    od = ex.OnnxDetector(paths["onnx"], threads=1)
    assert od.cfg.eval.pad_multiple == 64
    for img in images:
        b1, s1 = det_pad.predict(img, threshold=0.0)
        b2, s2 = od.predict(img, threshold=0.0)
        _assert_same_detections(b1, s1, b2, s2, 1e-4, 0.05)


def test_pad_multiple_is_validated():
    from ssd_mnv2.config import ConfigError

    with pytest.raises(ConfigError, match="eval.pad_multiple: must be >= 0"):
        tiny_config(eval={"pad_multiple": -1})
    with pytest.raises(ConfigError, match=r"anchors.max_input_size \(512\) must be a multiple of it \(96\)"):
        tiny_config(eval={"pad_multiple": 96})
