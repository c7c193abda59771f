"""Tests for ssd_mnv2.model.pretrained (ImageNet MobileNetV2 weight import)."""
import os

import numpy as np
import pytest

mx = pytest.importorskip("mxnet")
from mxnet.gluon.model_zoo.vision import get_mobilenet_v2  # noqa: E402

from ssd_mnv2.model.pretrained import (  # noqa: E402
    load_gluon_params,
    load_pretrained_backbone,
    load_tflite_mobilenet_v2,
    read_tflite_convs,
    slice_mobilenet_v2,
)

DATA = os.environ.get(
    "SSD_MNV2_DATA",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"),
)
TFLITE = os.path.join(DATA, "weights", "mobilenet_v2_1.0_224_ptq.tflite")
LABELS = os.path.join(DATA, "weights", "imagenet_labels.txt")

needs_tflite = pytest.mark.skipif(not os.path.isfile(TFLITE), reason=f"{TFLITE} not available")


def _grace_hopper_nchw():
    import cv2
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        buf = np.frombuffer(f.read(), np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = rgb / 127.5 - 1.0
    return mx.nd.array(x.transpose(2, 0, 1)[None])


def _full_net(width=1.0):
    net = get_mobilenet_v2(width)
    net.initialize()
    net(mx.nd.zeros((1, 3, 224, 224)))  # resolve shapes
    return net


@needs_tflite
def test_tflite_parse_layout():
    convs = read_tflite_convs(TFLITE)
    assert len(convs) == 53
    assert convs[0].weight.shape == (32, 3, 3, 3)
    assert convs[1].kind == "DEPTHWISE_CONV_2D" and convs[1].weight.shape == (32, 1, 3, 3)
    assert convs[2].weight.shape == (16, 32, 1, 1)
    assert convs[-1].weight.shape == (1001, 1280, 1, 1) and convs[-1].bias.shape == (1001,)
    assert all(c.weight.dtype == np.float32 and np.isfinite(c.weight).all() for c in convs)


@needs_tflite
def test_tflite_classifies_grace_hopper():
    net = _full_net(1.0)
    layers = list(net.features)
    assert len(layers) == 24
    head = load_tflite_mobilenet_v2(layers, TFLITE, include_head=True)
    w, b = head
    assert w.shape == (1001, 1280, 1, 1) and b.shape == (1001,)

    # first block expansion conv is an identity, its BN identity
    first = layers[3].out
    np.testing.assert_array_equal(first[0].weight.data().asnumpy()[:, :, 0, 0], np.eye(32))
    np.testing.assert_array_equal(first[1].beta.data().asnumpy(), 0)

    feat = net.features(_grace_hopper_nchw())  # (1, 1280, 1, 1), inference mode BN
    logits = mx.nd.Convolution(feat, weight=mx.nd.array(w), bias=mx.nd.array(b),
                               kernel=(1, 1), num_filter=1001).reshape((1, -1))
    prob = mx.nd.softmax(logits, axis=1).asnumpy()[0]
    with open(LABELS) as f:
        labels = [ln.strip() for ln in f]
    assert len(labels) == 1001
    top5 = [labels[i] for i in np.argsort(-prob)[:5]]
    assert "military uniform" in top5, top5


@needs_tflite
def test_truncated_twenty_layers_and_shape_error():
    net = _full_net(1.0)
    layers = list(net.features)[:20]
    assert load_tflite_mobilenet_v2(layers, TFLITE) is None
    with pytest.raises(ValueError, match="include_head"):
        load_tflite_mobilenet_v2(layers, TFLITE, include_head=True)
    # a width-0.5 stack does not fit: the error names the Gluon parameter and the TFLite tensor
    small = list(_full_net(0.5).features)[:20]
    with pytest.raises(ValueError, match=r"Gluon parameter '.*conv0_weight'.*TFLite"):
        load_tflite_mobilenet_v2(small, TFLITE)


def test_gluon_params_round_trip(tmp_path):
    src = _full_net(0.5)
    path = str(tmp_path / "mobilenetv2_0.5-test.params")
    src.save_parameters(path)

    dst = _full_net(0.5)
    layers = list(dst.features)[:20]
    desc = load_pretrained_backbone(layers, path, 0.5)
    assert "params" in desc

    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 64, 64))
    ref = x
    for layer in list(src.features)[:20]:
        ref = layer(ref)
    out = x
    for layer in layers:
        out = layer(out)
    np.testing.assert_array_equal(out.asnumpy(), ref.asnumpy())


def test_gluon_params_legacy_names(tmp_path):
    src = _full_net(0.5)
    path = str(tmp_path / "legacy.params")
    src.collect_params().save(path, strip_prefix=src.prefix)  # 'features_conv0_weight' style
    dst = _full_net(0.5)
    names = load_gluon_params(list(dst.features)[:20], path)
    assert "features.3.out.0.weight" in names
    np.testing.assert_array_equal(dst.features[19].out[6].weight.data().asnumpy(),
                                  src.features[19].out[6].weight.data().asnumpy())


def test_gluon_params_width_mismatch(tmp_path):
    src = _full_net(0.5)
    path = str(tmp_path / "w05.params")
    src.save_parameters(path)
    with pytest.raises(ValueError, match=r"w05\.params.*features\.0\.weight"):
        load_gluon_params(list(_full_net(0.25).features)[:20], path)


def test_missing_file_and_bad_spec(tmp_path):
    layers = list(get_mobilenet_v2(1.0).features)[:20]
    missing = str(tmp_path / "nope.params")
    with pytest.raises(FileNotFoundError, match="nope.params"):
        load_pretrained_backbone(layers, missing, 1.0)
    with pytest.raises(FileNotFoundError, match="nope.tflite"):
        load_pretrained_backbone(layers, str(tmp_path / "nope.tflite"), 1.0)
    with pytest.raises(ValueError):
        load_pretrained_backbone(layers, "weights.bin", 1.0)
    assert "none" in load_pretrained_backbone(layers, "none", 0.5)


def _truncated(width, seed):
    mx.random.seed(seed)
    net = get_mobilenet_v2(width)
    net.initialize(mx.init.Xavier())
    layers = list(net.features)[:20]
    x = mx.nd.zeros((1, 3, 32, 32))
    for layer in layers:
        x = layer(x)
    for layer in layers:  # non-trivial BN statistics, so slicing them is checked too
        for name, p in layer.collect_params().items():
            if name.endswith(("running_mean", "running_var", "gamma", "beta")):
                p.set_data(mx.nd.random.uniform(0.5, 1.5, p.shape))
    return layers


def _run(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def test_slice_same_width_is_identity():
    src, dst = _truncated(1.0, 0), _truncated(1.0, 1)
    slice_mobilenet_v2(src, dst)
    x = mx.nd.random.uniform(-1, 1, (1, 3, 64, 64))
    np.testing.assert_allclose(_run(dst, x).asnumpy(), _run(src, x).asnumpy(), rtol=1e-5, atol=1e-5)


def test_slice_to_half_width_keeps_sub_tensors():
    src, dst = _truncated(1.0, 0), _truncated(0.5, 1)
    slice_mobilenet_v2(src, dst)
    out = _run(dst, mx.nd.random.uniform(-1, 1, (1, 3, 64, 64)))
    assert out.shape == (1, 160, 2, 2)
    assert np.isfinite(out.asnumpy()).all()
    # the stem: 16 of the 32 filters, whole (3 input channels)
    ws, wd = src[0].weight.data().asnumpy(), dst[0].weight.data().asnumpy()
    kept = [int(np.where((ws == f).all(axis=(1, 2, 3)))[0][0]) for f in wd]
    assert len(set(kept)) == 16 and kept == sorted(kept)
    np.testing.assert_array_equal(dst[1].gamma.data().asnumpy(), src[1].gamma.data().asnumpy()[kept])
    # the first bottleneck's expansion stays a slice on the same channels as the stem's output
    e_src = src[3].out[0].weight.data().asnumpy()
    e_dst = dst[3].out[0].weight.data().asnumpy()
    np.testing.assert_array_equal(e_dst, e_src[kept][:, kept])


def test_slice_rejects_mismatched_stacks():
    src = _truncated(1.0, 0)
    with pytest.raises(ValueError, match="shape mismatch"):
        slice_mobilenet_v2(_truncated(0.5, 0), src)  # narrow -> wide: nothing to keep


@needs_tflite
def test_tflite_into_narrower_width():
    layers = _truncated(0.5, 3)
    desc = load_pretrained_backbone(layers, TFLITE, 0.5)
    assert "sliced to width 0.5" in desc
    feats = _run(layers, _grace_hopper_nchw()).asnumpy()
    assert feats.shape == (1, 160, 7, 7) and np.isfinite(feats).all() and feats.std() > 0
