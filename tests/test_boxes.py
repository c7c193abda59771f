"""The one box coder (ssd_mnv2.boxes.BoxCoder): numpy and graph decoding agree, encode/decode
round trip, and the graph, the targets and the ONNX post-processing all use it."""
import mxnet as mx
import numpy as np
import pytest

from ssd_mnv2.boxes import BoxCoder, decode, decode_symbolic, encode


def _random_case(rng, n=200, batch=3):
    anchors_cxcywh_px = np.c_[rng.uniform(0, 640, (n, 2)), rng.uniform(4, 400, (n, 2))].astype(np.float32)
    offsets = rng.normal(0, 2, (batch, n, 4)).astype(np.float32)
    offsets[0, :5, 2:] = 40.0  # over the log-size clip (t * 0.2 > 4.135): clipped, not inf
    return offsets, anchors_cxcywh_px


@pytest.mark.parametrize("variances", [(0.1, 0.1, 0.2, 0.2), (0.2, 0.15, 0.3, 0.25)])
def test_numpy_decode_equals_graph_decode(variances):
    coder = BoxCoder(variances)
    offsets, anchors = _random_case(np.random.default_rng(0))
    boxes_xyxy_px = coder.decode(offsets, anchors)
    assert boxes_xyxy_px.shape == offsets.shape and boxes_xyxy_px.dtype == np.float32
    assert np.isfinite(boxes_xyxy_px).all()
    nd = coder.decode_symbolic(mx.nd, mx.nd.array(offsets), mx.nd.array(anchors[None])).asnumpy()
    np.testing.assert_allclose(nd, boxes_xyxy_px, rtol=1e-5, atol=1e-5)
    # the symbol (what is hybridized and exported) gives the same
    t, a = mx.sym.var("t"), mx.sym.var("a")
    out = coder.decode_symbolic(mx.sym, t, a).eval(ctx=mx.cpu(), t=mx.nd.array(offsets),
                                                   a=mx.nd.array(anchors[None]))[0].asnumpy()
    np.testing.assert_allclose(out, boxes_xyxy_px, rtol=1e-5, atol=1e-5)
    # anchors given per image (B, N, 4) or once (N, 4): same boxes
    np.testing.assert_array_equal(coder.decode(offsets, np.broadcast_to(anchors, offsets.shape)), boxes_xyxy_px)


def test_decode_clips_the_log_size():
    coder = BoxCoder()
    anchors = np.array([[50, 50, 10, 20]], np.float32)
    b = coder.decode(np.array([[0, 0, 100, 100]], np.float32), anchors)
    np.testing.assert_allclose(b[0, 2] - b[0, 0], 10 * np.exp(4.135), rtol=1e-5)
    np.testing.assert_allclose(b[0, 3] - b[0, 1], 20 * np.exp(4.135), rtol=1e-5)


def test_encode_decode_round_trip_and_known_values():
    rng = np.random.default_rng(1)
    coder = BoxCoder((0.1, 0.1, 0.2, 0.2))
    anchors = np.c_[rng.uniform(0, 300, (100, 2)), rng.uniform(8, 200, (100, 2))].astype(np.float32)
    xy = rng.uniform(0, 250, (100, 2))
    boxes_xyxy_px = np.c_[xy, xy + rng.uniform(4, 120, (100, 2))].astype(np.float32)
    offsets = coder.encode(boxes_xyxy_px, anchors)
    assert offsets.shape == (100, 4) and offsets.dtype == np.float32
    np.testing.assert_allclose(coder.decode(offsets, anchors), boxes_xyxy_px, atol=1e-3, rtol=1e-5)
    # hand-computed: box (10, 20)-(30, 60) = centre (20, 40), size (20, 40) on anchor (16, 36, 10, 20)
    t = coder.encode(np.array([[10, 20, 30, 60]]), np.array([[16, 36, 10, 20]]))
    np.testing.assert_allclose(t, [[4 / 10 / 0.1, 4 / 20 / 0.1, np.log(2) / 0.2, np.log(2) / 0.2]], rtol=1e-6)
    # the function shortcuts are the coder
    np.testing.assert_array_equal(encode(boxes_xyxy_px, anchors), offsets)
    np.testing.assert_array_equal(decode(offsets, anchors), coder.decode(offsets, anchors))
    np.testing.assert_array_equal(
        decode_symbolic(mx.nd, mx.nd.array(offsets[None]), mx.nd.array(anchors[None])).asnumpy(),
        coder.decode_symbolic(mx.nd, mx.nd.array(offsets[None]), mx.nd.array(anchors[None])).asnumpy())
    with pytest.raises(ValueError, match="4 variances"):
        BoxCoder((0.1, 0.2))


def test_graph_targets_and_onnx_postprocessing_share_the_coder(monkeypatch):
    """SSDInference, TargetEncoder and decode_nms_numpy decode / encode through BoxCoder with the
    configured variances (a coder that records its calls sees all three)."""
    from tiny_configs import tiny_config
    from ssd_mnv2.anchors import generate_anchors
    from ssd_mnv2.deploy import onnx as deploy_onnx
    from ssd_mnv2.matching import TargetEncoder
    from ssd_mnv2.model.ssd import SSDInference, build_ssd

    cfg = tiny_config(anchors={"variances": [0.2, 0.15, 0.3, 0.25]})
    inf = SSDInference(build_ssd(cfg), cfg.eval)
    assert isinstance(inf.box_coder, BoxCoder) and inf.box_coder.variances == (0.2, 0.15, 0.3, 0.25)
    enc = TargetEncoder(generate_anchors(cfg, 96, 96), variances=cfg.anchors.variances)
    assert isinstance(enc.box_coder, BoxCoder) and enc.box_coder.variances == (0.2, 0.15, 0.3, 0.25)

    calls = []
    real = BoxCoder.decode

    def spy(self, offsets, anchors_cxcywh_px):
        calls.append(self.variances)
        return real(self, offsets, anchors_cxcywh_px)

    monkeypatch.setattr(BoxCoder, "decode", spy)
    rng = np.random.default_rng(2)
    n = 50
    anchors = np.c_[rng.uniform(0, 96, (n, 2)), rng.uniform(8, 40, (n, 2))].astype(np.float32)
    logits = np.c_[np.zeros(n), rng.normal(0, 3, n)].astype(np.float32)
    offsets = rng.normal(0, 1, (n, 4)).astype(np.float32)
    ids, scores, boxes_xyxy_px = deploy_onnx.decode_nms_numpy(logits, offsets, anchors, cfg)
    assert calls == [(0.2, 0.15, 0.3, 0.25)] and len(scores) > 0
    full = real(BoxCoder(cfg.anchors.variances), offsets, anchors)
    for b in boxes_xyxy_px:  # every kept box is one of the decoded anchors' boxes
        assert np.abs(full - b).max(axis=1).min() == 0


def test_numpy_decode_is_bitwise_the_former_onnx_postprocessing():
    """decode_nms_numpy decoded inline before issue 15; the coder gives the same float32 bits, so
    the ONNX Runtime detections are unchanged."""
    rng = np.random.default_rng(3)
    offsets, anchors = _random_case(rng, n=500, batch=1)
    o, a, v = offsets[0], anchors, [0.1, 0.1, 0.2, 0.2]
    cx = o[:, 0] * v[0] * a[:, 2] + a[:, 0]
    cy = o[:, 1] * v[1] * a[:, 3] + a[:, 1]
    hw = np.exp(np.minimum(o[:, 2] * v[2], 4.135)) * a[:, 2] / 2
    hh = np.exp(np.minimum(o[:, 3] * v[3], 4.135)) * a[:, 3] / 2
    former = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1).astype(np.float32)
    np.testing.assert_array_equal(BoxCoder(v).decode(o, a), former)
