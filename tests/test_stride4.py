"""model.stride4: the optional stride-4 level of the FPN model (config, network vs anchors, unchanged
default models, freezing, training, export). Tiny random models, seconds."""
from __future__ import annotations

from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from ssd_mnv2.anchors import anchor_counts, feature_sizes, generate_anchors
from ssd_mnv2.config import ConfigError, dump_config, load_config
from ssd_mnv2.data.synthetic import make_image, write_wider
from ssd_mnv2.engine.hooks import Hook
from ssd_mnv2.engine.trainer import _freeze, fit
from ssd_mnv2.model.backbone import MobileNetV2Backbone, STAGE_SPLITS, STRIDE4_END
from ssd_mnv2.model.ssd import SSD, build_ssd
from tiny_configs import tiny_config

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "ssd_mnv2" / "models"

# the tiny model (one extra level + global pool) with a 16-channel FPN-lite neck, and its anchors
# with one more (stride-4) level in front
FPN = {"neck": "fpn", "neck_channels": 16}
S4_ANCHORS = {"sizes": [[8], [16], [32], [48], [64], [90]], "ratios": [[1.0]] * 6}


def s4_config(data_root=None, out_dir=None, **sections):
    """The tiny stride-4 FPN model; ``sections`` update its dicts (``model``, ``anchors``...)."""
    model = {**FPN, "stride4": True, **sections.pop("model", {})}
    anchors = {**S4_ANCHORS, **sections.pop("anchors", {})}
    return tiny_config(data_root, out_dir, model=model, anchors=anchors, **sections)


# --------------------------------------------------------------------------------- config
def test_stride4_config_derives_levels_and_strides():
    cfg = s4_config()
    m = cfg.model
    assert (m.num_stage_levels, m.num_levels) == (4, 6)
    assert m.strides() == [4, 8, 16, 32, 64, 96]
    assert cfg.anchors.per_location() == [1] * 6
    off = tiny_config(model=FPN).model
    assert (off.stride4, off.num_stage_levels, off.num_levels) == (False, 3, 5)
    assert off.strides() == [8, 16, 32, 64, 96]


def test_stride4_needs_the_fpn_neck():
    with pytest.raises(ConfigError, match=r"model\.stride4.*model\.neck: fpn"):
        tiny_config(model={"stride4": True}, anchors=S4_ANCHORS)


@pytest.mark.parametrize("anchors,key", [
    ({"sizes": [[16], [32], [48], [64], [90]], "ratios": [[1.0]] * 5},
     r"anchors\.sizes: has 5 levels but the model has 6"),
    ({"ratios": [[1.0]] * 5}, r"anchors\.ratios: has 5 levels"),
    ({"density": [[2], [1], [1], [1], [1]]}, r"anchors\.density: has 5 levels"),
])
def test_stride4_anchor_lists_need_one_more_level(anchors, key):
    with pytest.raises(ConfigError, match=key):
        s4_config(anchors=anchors)


def test_stride4_round_trips_through_yaml_and_defaults_off(tmp_path):
    cfg = s4_config(anchors={"density": [[2], [1], [1], [1], [1], [1]]})
    dump_config(cfg, tmp_path / "s4.yaml")
    assert load_config(tmp_path / "s4.yaml") == cfg
    assert load_config(MODELS / "face_mnv2_fpn_300.yaml").model.stride4 is False
    with pytest.raises(ConfigError, match=r"anchors\.sizes: has 6 levels but the model has 5"):
        load_config(tmp_path / "s4.yaml", overrides=["model.stride4=false"])


# ----------------------------------------------------------------------- network vs anchors
@pytest.mark.parametrize("width", [0.25, 0.5, 0.75, 1.0])
def test_backbone_levels_have_the_declared_channels_and_sizes(width):
    """Gluon's real MobileNetV2 channel counts and feature sizes, at every width."""
    m = s4_config(model={"width": width}).model
    bb = MobileNetV2Backbone(width, m.extra_channels, m.global_pool, stride4=True)
    bb.initialize()
    h, w = 70, 45
    feats = bb(mx.nd.zeros((1, 3, h, w)))
    assert [f.shape[1] for f in feats] == bb.level_channels
    assert [f.shape[2:] for f in feats] == feature_sizes(m, h, w)


@pytest.mark.parametrize("hybridize", [False, True])
def test_predictions_equal_generate_anchors_at_any_input_size(hybridize):
    cfg = s4_config(anchors={"sizes": [[8, 12], [16], [32], [48], [64], [90]],
                             "density": [[1, 2], [1], [1], [1], [1], [1]]})
    net = build_ssd(cfg)
    if hybridize:
        net.hybridize()
    for h, w in ((96, 96), (80, 130)):
        cls, box, anchors = net(mx.nd.zeros((1, 3, h, w)))
        expected = generate_anchors(cfg, h, w)
        assert cls.shape == (1, len(expected), 2) and box.shape == (1, len(expected), 4)
        np.testing.assert_allclose(anchors[0].asnumpy(), expected, atol=1e-4)
        # level 0 has stride 4: ceil(h / 4) x ceil(w / 4) cells, centres (i + 0.5) * 4
        fh, fw = feature_sizes(cfg.model, h, w)[0]
        assert (fh, fw) == (-(-h // 4), -(-w // 4))
        n0 = anchor_counts(cfg, h, w)[0]
        assert n0 == fh * fw * 5  # sizes 8 (x1) and 12 (densified 2x2)
        level0 = expected[:n0].reshape(fh, fw, 5, 4)
        np.testing.assert_allclose(level0[0, :, 0, 0], (np.arange(fw) + 0.5) * 4)
        np.testing.assert_allclose(level0[:, 0, 0, 1], (np.arange(fh) + 0.5) * 4)


def test_the_stride4_level_is_the_first_stage_tapped_after_features_6():
    """The backbone's level 0 is the output of features[:6], its level 1 still that of features[:9]."""
    bb = MobileNetV2Backbone(0.25, ((32, 64),), True, stride4=True)
    bb.initialize()
    x = mx.nd.random.uniform(shape=(1, 3, 64, 48))
    feats = bb(x)
    ref = x
    for i, layer in enumerate(bb.feature_layers()[:STAGE_SPLITS[0][1]]):
        ref = layer(ref)
        if i + 1 == STRIDE4_END:
            np.testing.assert_allclose(feats[0].asnumpy(), ref.asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(feats[1].asnumpy(), ref.asnumpy(), rtol=1e-5)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_fpn_lite_fuses_any_number_of_levels(n):
    from ssd_mnv2.model.neck import FPNLite

    neck = FPNLite([8 * (i + 1) for i in range(n)], channels=16, context=True)
    neck.initialize()
    sizes = [(25, 17), (13, 9), (7, 5), (4, 3)][:n]  # odd sizes: upsampled maps are cropped
    outs = neck(*[mx.nd.ones((1, 8 * (i + 1), h, w)) for i, (h, w) in enumerate(sizes)])
    assert [o.shape for o in outs] == [(1, 16, h, w) for h, w in sizes]
    with pytest.raises(ValueError, match="at least 2 levels"):
        FPNLite([8], channels=16)


# -------------------------------------------------------------------- unchanged default models
@pytest.mark.parametrize("name", ["face_mnv2_fpn_300", "face_mnv2_300"])
def test_shipped_params_load_exactly_without_stride4(name):
    """SSD.load_parameters raises on any missing or extra parameter: the names are unchanged."""
    net = SSD(load_config(MODELS / f"{name}.yaml"))
    net.load_parameters(str(MODELS / f"{name}.params"))
    in_file = {k for k in mx.nd.load(str(MODELS / f"{name}.params")) if not k.endswith("anchors")}
    assert in_file == {k for k in net._collect_params_with_prefix() if not k.endswith("anchors")}


def test_stride4_keeps_every_backbone_name_and_adds_its_level():
    """The backbone (20 MobileNetV2 layers, extras) is named the same with stride4 (its weights
    carry over); the level norms, the neck and the heads get one more level."""
    def names(net):
        net(mx.nd.zeros((1, 3, 64, 64)))
        return {k: p.shape for k, p in net._collect_params_with_prefix().items()}

    def level(name):  # "neck.laterals.3.0.weight" -> "neck.laterals.3", "cls_heads.5.bias" -> "cls_heads.5"
        parts = name.split(".")
        return ".".join(parts[:3] if parts[0] == "neck" else parts[:2])

    off, on = names(build_ssd(tiny_config(model=FPN))), names(build_ssd(s4_config()))
    assert {k: s for k, s in on.items() if k.startswith("backbone.")} == \
        {k: s for k, s in off.items() if k.startswith("backbone.")}
    assert set(off) < set(on)
    assert {level(k) for k in set(on) - set(off)} == {
        "level_norms.3", "neck.laterals.3", "neck.smooth.3", "cls_heads.5", "box_heads.5", "anchor_grids.5"}


# ------------------------------------------------------------------------------- freezing
@pytest.mark.parametrize("freeze_stages", [1, 2])
def test_freeze_stages_freezes_the_same_founding_stages_with_stride4(freeze_stages):
    """freeze_stages=1 freezes features[:9] (the stride-4 and stride-8 layers), 2 features[:16];
    freeze_bn fixes the statistics of the same backbone BatchNorms (not the level norms)."""
    end = STAGE_SPLITS[freeze_stages - 1][1]

    def frozen(cfg):
        net = build_ssd(cfg)
        by_name = net._collect_params_with_prefix()
        trainable = {k for k, p in by_name.items() if p.grad_req != "null"}  # not running stats
        _freeze(net, cfg)
        null = {k for k in trainable if by_name[k].grad_req == "null"}
        features = {p.name for layer in net.backbone.feature_layers()[:end]
                    for p in layer.collect_params().values()}
        assert {by_name[k].name for k in null} == features & {by_name[k].name for k in trainable}
        assert all(bn._kwargs["use_global_stats"] for bn in net.backbone.batchnorms(3))
        assert not any(bn._kwargs.get("use_global_stats") for bn in net.level_norms)
        return null, len(net.backbone.batchnorms(3))

    train = {"freeze_stages": freeze_stages, "freeze_bn": True}
    off = frozen(tiny_config(model=FPN, train=train))
    assert off[0] and off == frozen(s4_config(train=train))


# ------------------------------------------------------------------------------- training
def test_two_iterations_of_a_stride4_model_train_with_finite_losses(tmp_path):
    write_wider(tmp_path / "d", n_images=4)
    losses, grads = [], []

    class Record(Hook):
        def on_backward(self, run, loss):  # the stride-4 lateral learns (its input stage is frozen)
            # (not necessarily in every batch: hard-negative mining may pick no stride-4 anchor)
            grads.append(float(run.net.neck.laterals[0][0].weight.grad().abs().sum().asscalar()))

        def on_batch_end(self, run, batch_losses):
            losses.append(dict(batch_losses))

    cfg = s4_config(tmp_path / "d", tmp_path / "run", train={"freeze_stages": 1})
    res = fit(cfg, max_iters=2, progress=False, hooks=[Record()])
    assert res.global_step == 2 and len(losses) == 2
    assert all(np.isfinite(v) for row in losses for v in row.values())
    assert losses[0]["loss"] > 0 and max(grads) > 0


# -------------------------------------------------------------------------------- export
@pytest.fixture(scope="module")
def s4_detector():
    from test_export import random_detector

    return random_detector(s4_config(decode={"max_detections": 50, "pre_nms_topk": 200}))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    return [make_image(rng, (160, 120), 2)[0], make_image(rng, (200, 150), 3)[0]]


def test_onnx_of_a_stride4_model_matches_mxnet(tmp_path, s4_detector, images):
    """Traced at one size, run at others (dynamic H, W): same detections as MXNet."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from ssd_mnv2 import export as ex
    from test_export import _assert_same_detections

    paths = ex.export_onnx(s4_detector, tmp_path, size="128x96", graph="raw")
    od = ex.OnnxDetector(paths["onnx"], threads=1)
    for img in images:
        b1, s1 = s4_detector.predict(img, threshold=0.0)
        b2, s2 = od.predict(img, threshold=0.0)
        assert len(s1) > 5
        _assert_same_detections(b1, s1, b2, s2, 1e-4, 0.05)


def test_mxnet_symbol_of_a_stride4_model_matches(tmp_path, s4_detector, images):
    from ssd_mnv2 import export as ex

    from test_export import assert_symbol_matches_detector

    ex.export_mxnet(s4_detector, tmp_path, size="128x96")
    assert_symbol_matches_detector(ex.load_exported_mxnet(tmp_path / "face_detector"), s4_detector, images)


def test_fused_detector_from_files_matches_the_unfused_one(tmp_path, s4_detector, images):
    """Detector.from_files (strict load of a stride-4 .params) with the oneDNN-fused graph."""
    from ssd_mnv2.predictor import Detector

    s4_detector.ssd.save_parameters(str(tmp_path / "s4.params"))
    dump_config(s4_detector.cfg, tmp_path / "s4.yaml")
    fused = Detector.from_files(tmp_path / "s4.params", fused=True)
    for img in images:
        b1, s1 = s4_detector.predict(img, threshold=0.0)
        b2, s2 = fused.predict(img, threshold=0.0)
        np.testing.assert_allclose(np.sort(s1)[-10:], np.sort(s2)[-10:], atol=1e-4)


# ------------------------------------------------------------------------ anchor tools
def test_summary_and_suggest_know_the_stride4_level():
    from ssd_mnv2 import lab
    from ssd_mnv2.lab.faces import FaceSet

    cfg = s4_config()
    text, info = lab.anchor_summary(cfg, 96, 128, with_params=False)
    assert info["total_anchors"] == len(generate_anchors(cfg, 96, 128))
    assert [ln.split()[1:3] for ln in text.splitlines()[3:5]] == [["stage", "s4"], ["stage", "s8"]]
    rng = np.random.default_rng(0)
    boxes = [np.array([[5, 5, 5 + s, 5 + s] for s in rng.uniform(6, 60, 4)], np.float32) for _ in range(10)]
    faces = FaceSet([(96, 96)] * 10, boxes)
    new, report = lab.suggest_anchors(cfg, faces=faces)
    assert new.model.stride4 and new.model.num_levels == 6 and report["per_level"][0]["stride"] == 4
    four, _ = lab.suggest_anchors(cfg, levels=4, faces=faces)  # the stage levels only
    assert (four.model.num_levels, four.model.global_pool, four.model.extra_channels) == (4, False, ())
    with pytest.raises(ValueError, match="at least 4 levels"):
        lab.suggest_anchors(cfg, levels=3, faces=faces)


def test_densifying_the_stride4_level_keeps_its_boxes(tmp_path):
    from ssd_mnv2.boxes import BoxCoder
    from ssd_mnv2.model.weights import load_params

    x = mx.nd.array(np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 80)))
    src = build_ssd(s4_config())
    src(x)
    src.save_parameters(str(tmp_path / "src.params"))
    dense = build_ssd(s4_config(anchors={"density": [[2], [1], [1], [1], [1], [1]]}))
    dense(x)
    mapped = load_params(dense, tmp_path / "src.params", mismatched="densify", source_cfg=src.cfg)
    assert mapped == ["box_heads.0.bias", "box_heads.0.weight", "cls_heads.0.bias", "cls_heads.0.weight"]
    (c0, b0, a0), (c1, b1, a1) = ([o[0].asnumpy() for o in net(x)] for net in (src, dense))
    n0 = anchor_counts(src.cfg, 64, 80)[0]
    coder = BoxCoder(src.cfg.anchors.variances)
    tiles = coder.decode(b1[:4 * n0], a1[:4 * n0]).reshape(n0, 4, 4)
    np.testing.assert_allclose(tiles, np.repeat(coder.decode(b0[:n0], a0[:n0])[:, None], 4, axis=1), atol=1e-3)
    np.testing.assert_allclose(c1[4 * n0:], c0[n0:], atol=1e-5)
