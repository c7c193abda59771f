"""Matching with ignore regions, the multibox loss with an ignore label, the face crop policy,
the FPN-lite neck and the centred global-pool anchor."""
import mxnet as mx
import numpy as np
import pytest
from gluoncv.loss import SSDMultiBoxLoss

from ssd_mnv2.anchors import generate_anchors
from ssd_mnv2.boxes import BoxCoder, cxcywh_to_xyxy, iou_matrix
from ssd_mnv2.config import ConfigError
from ssd_mnv2.data.transforms import TrainAugment, random_face_crop
from ssd_mnv2.loss import MultiBoxLoss, diou_loss
from ssd_mnv2.matching import IGNORE, TargetEncoder
from ssd_mnv2.model.ssd import build_ssd
from tiny_configs import tiny_config


def _grid_anchors():
    """Anchors of 16 px every 8 px on a 64x64 input (cx cy w h)."""
    c = np.arange(4, 64, 8, dtype=np.float32)
    cy, cx = np.meshgrid(c, c, indexing="ij")
    return np.stack([cx.ravel(), cy.ravel(), np.full(cx.size, 16.0), np.full(cx.size, 16.0)], 1)


# ------------------------------------------------------------------ matching
def test_iou_threshold_sets_the_number_of_positives():
    anchors = _grid_anchors()
    face = np.array([[12, 8, 30, 30]], np.float32)  # IoUs with 16 px anchors: 0.65, 0.42, 0.33, ...
    n = {}
    for t in (0.5, 0.35):
        cls_t, box_t = TargetEncoder(anchors, iou_thresh=t)(face)
        pos = cls_t > 0
        ious = iou_matrix(cxcywh_to_xyxy(anchors), face)[:, 0]
        assert set(np.flatnonzero(pos)) == set(np.flatnonzero(ious >= t)) | {int(ious.argmax())}
        np.testing.assert_allclose(BoxCoder().decode(box_t[pos], anchors[pos]), np.repeat(face, pos.sum(), 0),
                                   atol=1e-3)
        n[t] = int(pos.sum())
    assert n[0.35] > n[0.5] >= 1


def test_ignore_regions_are_neither_positive_nor_background():
    anchors = _grid_anchors()
    faces = np.array([[10, 10, 30, 30], [44, 44, 50, 50]], np.float32)  # a face and a tiny one
    cls_t, _ = TargetEncoder(anchors, iou_thresh=0.35, ignore_iou=0.3)(faces, ignore=np.array([False, True]))
    centres = anchors[:, :2]
    in_tiny = ((centres >= 44) & (centres <= 50)).all(axis=1)
    assert in_tiny.any() and np.all(cls_t[in_tiny] == IGNORE)
    assert np.all(cls_t[cls_t > 0] == 1) and (cls_t > 0).sum() >= 1
    # without the flag the tiny face is a face: its best anchor is positive, nothing is ignored
    cls2, _ = TargetEncoder(anchors, iou_thresh=0.35)(faces)
    assert (cls2 == IGNORE).sum() == 0 and (cls2 > 0).sum() > (cls_t > 0).sum()
    # an image with only ignore regions: no positives at all
    cls3, box3 = TargetEncoder(anchors)(faces[1:], ignore=np.array([True]))
    assert (cls3 > 0).sum() == 0 and (cls3 == IGNORE).sum() >= 1 and not box3.any()


def test_a_real_face_wins_over_an_overlapping_ignore_region():
    anchors = _grid_anchors()
    faces = np.array([[8, 8, 24, 24], [8, 8, 24, 24]], np.float32)
    cls_t, _ = TargetEncoder(anchors, iou_thresh=0.5)(faces, ignore=np.array([True, False]))
    best = int(iou_matrix(cxcywh_to_xyxy(anchors), faces[:1])[:, 0].argmax())
    assert cls_t[best] == 1


# ------------------------------------------------------------------ loss
def _random_batch(seed=0, b=2, n=200):
    rng = np.random.default_rng(seed)
    cls_p = mx.nd.array(rng.normal(size=(b, n, 2)))
    box_p = mx.nd.array(rng.normal(size=(b, n, 4)))
    ct = np.zeros((b, n), np.float32)
    ct[0, [3, 50, 120]] = 1
    ct[1, [7]] = 1
    bt = np.where(ct[..., None] > 0, rng.normal(size=(b, n, 4)), 0).astype(np.float32)
    return cls_p, box_p, ct, mx.nd.array(bt)


def test_loss_equals_gluoncv_without_ignore_labels():
    cls_p, box_p, ct, bt = _random_batch()
    ours = MultiBoxLoss(neg_ratio=3, box_weight=1.0)([cls_p], [box_p], [mx.nd.array(ct)], [bt])
    total, cls, box = SSDMultiBoxLoss(negative_mining_ratio=3)([cls_p], [box_p], [mx.nd.array(ct)], [bt])
    np.testing.assert_allclose(ours[0][0].asnumpy(), cls[0].asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(ours[1][0].asnumpy(), box[0].asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(ours[2][0].asnumpy(), total[0].asnumpy(), rtol=1e-5)


def test_ignored_anchors_are_never_mined_and_add_no_loss():
    cls_p, box_p, ct, bt = _random_batch()
    # make background anchor 10 of image 0 the hardest negative by far
    c = cls_p.asnumpy()
    c[0, 10] = [-20.0, 20.0]
    cls_p = mx.nd.array(c)
    loss = MultiBoxLoss(neg_ratio=3)
    base = loss([cls_p], [box_p], [mx.nd.array(ct)], [bt])[0][0].asnumpy()
    ct_ign = ct.copy()
    ct_ign[0, 10] = IGNORE
    ign = loss([cls_p], [box_p], [mx.nd.array(ct_ign)], [bt])[0][0].asnumpy()
    assert base[0] > 20.0 / 4  # anchor 10 dominated image 0's loss (normalised by 4 positives)
    assert ign[0] < base[0] - 20.0 / 4 + 1.0  # ... and is gone once ignored
    assert ign[1] == pytest.approx(base[1])
    # ignoring everything except the positives leaves only the positives' loss
    ct_all = np.where(ct > 0, ct, IGNORE).astype(np.float32)
    only_pos = loss([cls_p], [box_p], [mx.nd.array(ct_all)], [bt])[0][0].asnumpy()
    logp = mx.nd.log_softmax(cls_p, axis=-1).asnumpy()
    expect = [-(logp[i][ct[i] > 0][:, 1]).sum() / 4 for i in range(2)]
    np.testing.assert_allclose(only_pos, expect, rtol=1e-5)


def test_diou_loss_matches_a_hand_computation():
    a = mx.nd.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    b = mx.nd.array([[0, 0, 10, 10],    # identical: 0
                     [5, 0, 15, 10],    # IoU 50/150, centres 5 apart, enclosing 15x10
                     [20, 0, 30, 10]])  # disjoint: IoU 0, centres 20 apart, enclosing 30x10
    got = diou_loss(a, b).asnumpy()
    np.testing.assert_allclose(got, [0.0, 1 - 1 / 3 + 25 / 325, 1 + 400 / 1000], rtol=1e-5, atol=1e-6)
    # disjoint boxes still pull together: the gradient moves the box towards the target
    x = mx.nd.array([[0, 0, 10, 10]])
    x.attach_grad()
    with mx.autograd.record():
        l = diou_loss(x, mx.nd.array([[20, 0, 30, 10]]))
    l.backward()
    g = x.grad.asnumpy()[0]
    assert g[0] + g[2] < 0 and abs(g[1] + g[3]) < 1e-6  # moving the box right (to it) lowers the loss


def test_diou_box_term_is_the_mean_diou_of_the_positives():
    cls_p, box_p, ct, bt, anchors = _batch_with_anchors()
    var = (0.1, 0.1, 0.2, 0.2)
    loss = MultiBoxLoss(neg_ratio=3, box_weight=2.0, box_loss="diou", variances=var)
    cls_l, box_l, total = loss([cls_p], [box_p], [mx.nd.array(ct)], [bt], [mx.nd.array(anchors[None])])
    coder = BoxCoder(var)
    pred, tgt = coder.decode(box_p.asnumpy(), anchors), coder.decode(bt.asnumpy(), anchors)
    per_anchor = diou_loss(mx.nd.array(pred), mx.nd.array(tgt)).asnumpy()
    expect = [(per_anchor[i] * (ct[i] > 0)).sum() / 4 for i in range(2)]  # 4 positives in the batch
    np.testing.assert_allclose(box_l[0].asnumpy(), expect, rtol=1e-4)
    np.testing.assert_allclose(total[0].asnumpy(), cls_l[0].asnumpy() + 2.0 * np.array(expect), rtol=1e-4)
    # the classification term is the smooth-L1 loss's: only the box term changed
    sl1 = MultiBoxLoss(neg_ratio=3)([cls_p], [box_p], [mx.nd.array(ct)], [bt])
    np.testing.assert_allclose(cls_l[0].asnumpy(), sl1[0][0].asnumpy(), rtol=1e-6)
    # a perfect prediction has no box loss
    perfect = loss([cls_p], [bt], [mx.nd.array(ct)], [bt], [mx.nd.array(anchors[None])])[1][0].asnumpy()
    np.testing.assert_allclose(perfect, 0.0, atol=1e-5)


def test_diou_loss_needs_anchors_and_a_known_name():
    cls_p, box_p, ct, bt = _random_batch()
    with pytest.raises(ValueError, match="needs the anchors"):
        MultiBoxLoss(box_loss="diou")([cls_p], [box_p], [mx.nd.array(ct)], [bt])
    with pytest.raises(ValueError, match="box_loss must be one of"):
        MultiBoxLoss(box_loss="giou")
    with pytest.raises(ConfigError, match="loss.box_loss"):
        tiny_config(loss={"box_loss": "iou"})


def _batch_with_anchors(seed=1):
    cls_p, box_p, ct, bt = _random_batch()
    rng = np.random.default_rng(seed)
    n = ct.shape[1]
    anchors = np.stack([rng.uniform(20, 280, n), rng.uniform(20, 280, n),
                        rng.uniform(8, 64, n), rng.uniform(8, 64, n)], 1).astype(np.float32)
    return cls_p, box_p * 0.3, ct, bt * 0.3, anchors


def test_iou_aware_target_is_a_soft_label_of_the_placement_iou():
    cls_p, box_p, ct, bt, anchors = _batch_with_anchors()
    var = (0.1, 0.1, 0.2, 0.2)
    args = ([cls_p], [box_p], [mx.nd.array(ct)], [bt], [mx.nd.array(anchors[None])])
    plain = MultiBoxLoss(neg_ratio=3, variances=var)(*args)[0][0].asnumpy()
    coder = BoxCoder(var)
    pred, tgt = coder.decode(box_p.asnumpy(), anchors), coder.decode(bt.asnumpy(), anchors)
    iou = np.array([[iou_matrix(pred[i, j:j + 1], tgt[i, j:j + 1])[0, 0] for j in range(ct.shape[1])]
                    for i in range(2)])
    logp = mx.nd.log_softmax(cls_p, axis=-1).asnumpy()
    for w in (1.0, 0.5):
        got = MultiBoxLoss(neg_ratio=3, variances=var, iou_target=w)(*args)[0][0].asnumpy()
        q = 1 - w + w * iou
        # only the positives' terms change: -(q log p_face + (1 - q) log p_bg) instead of -log p_face
        delta = [(((-(q[i] * logp[i, :, 1] + (1 - q[i]) * logp[i, :, 0])) + logp[i, :, 1])
                  * (ct[i] > 0)).sum() / 4 for i in range(2)]
        np.testing.assert_allclose(got, plain + np.array(delta), rtol=1e-4)
        assert (iou[ct > 0] < 0.99).all() and not np.allclose(got, plain)
    # boxes placed exactly on their faces: the target is (0, 1), the plain cross-entropy
    exact = MultiBoxLoss(neg_ratio=3, variances=var, iou_target=1.0)(
        [cls_p], [bt], [mx.nd.array(ct)], [bt], [mx.nd.array(anchors[None])])[0][0].asnumpy()
    np.testing.assert_allclose(exact, plain, rtol=1e-4)


def test_iou_aware_target_is_validated():
    with pytest.raises(ValueError, match="iou_target must be in"):
        MultiBoxLoss(iou_target=1.5)
    cls_p, box_p, ct, bt = _random_batch()
    with pytest.raises(ValueError, match="needs the anchors"):
        MultiBoxLoss(iou_target=0.5)([cls_p], [box_p], [mx.nd.array(ct)], [bt])
    with pytest.raises(ConfigError, match="loss.iou_target"):
        tiny_config(loss={"iou_target": -0.1})


# ------------------------------------------------------------------ crop policy
def test_face_crop_always_holds_a_whole_face_and_respects_the_scale():
    rng = np.random.default_rng(0)
    img = np.zeros((400, 600, 3), np.uint8)
    boxes = np.array([[20, 30, 60, 80, 0], [300, 200, 330, 240, 0], [500, 50, 520, 70, 1]], np.float32)
    sides = []
    for _ in range(200):
        crop, b = random_face_crop(img, boxes, rng, (0.2, 0.6), real=boxes[:, 4] == 0)
        side = crop.shape[0]
        assert crop.shape[:2] == (side, side) and 0.2 * 400 - 1 <= side <= 0.6 * 400 + 1
        whole = [(r[4] == 0 and abs((r[2] - r[0]) - 40) < 1e-3 and abs((r[3] - r[1]) - 50) < 1e-3) or
                 (r[4] == 0 and abs((r[2] - r[0]) - 30) < 1e-3 and abs((r[3] - r[1]) - 40) < 1e-3) for r in b]
        assert any(whole)
        sides.append(side)
    # log-uniform: the median side is near the geometric mean of the range
    assert abs(np.median(sides) - np.sqrt(0.2 * 0.6) * 400) < 25


def test_small_faces_become_ignore_regions_instead_of_vanishing():
    rng = np.random.default_rng(1)
    img = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[10, 10, 60, 60, 0], [70, 70, 74, 74, 0]], np.float32)
    aug = TrainAugment(50, crop_scale=(1.0, 1.0), photometric=False, flip=False, min_face_px=5,
                       small_faces="ignore")
    _, out = aug(img, boxes, rng)
    assert out.shape == (2, 5) and out[:, 4].tolist() == [0.0, 1.0]
    drop = TrainAugment(50, crop_scale=(1.0, 1.0), photometric=False, flip=False, min_face_px=5)
    assert len(drop(img, boxes, rng)[1]) == 1
    with pytest.raises(ValueError, match="fifth column"):
        aug(img, boxes[:, :4], rng)


def test_data_options_are_validated():
    with pytest.raises(ConfigError, match="data.small_faces"):
        tiny_config(data={"small_faces": "keep"})
    with pytest.raises(ConfigError, match="data.crop_policy"):
        tiny_config(data={"crop_policy": "random"})
    with pytest.raises(ConfigError, match="model.context"):
        tiny_config(model={"context": True})


# ------------------------------------------------------------------ model
def test_global_pool_anchor_is_centred_on_the_actual_input():
    cfg = tiny_config()  # has a global-pool level
    net = build_ssd(cfg)
    for h, w in ((96, 96), (200, 320)):
        _, _, a = net(mx.nd.zeros((1, 3, h, w)))
        np.testing.assert_allclose(a[0, -1].asnumpy()[:2], [w / 2, h / 2])
        np.testing.assert_allclose(a[0].asnumpy(), generate_anchors(cfg, h, w), atol=1e-4)


@pytest.mark.parametrize("context", [False, True])
def test_fpn_neck_runs_at_any_size_hybridized_and_changes_the_small_levels(context):
    cfg = tiny_config(model={"neck": "fpn", "neck_channels": 16, "context": context})
    net = build_ssd(cfg)
    assert net.head_channels[:3] == [16, 16, 16]
    for h, w in ((96, 96), (101, 157)):
        x = mx.nd.random.uniform(0, 255, (1, 3, h, w))
        ref = [o.asnumpy() for o in net(x)]
        assert ref[0].shape[1] == len(generate_anchors(cfg, h, w))
    net.hybridize()
    out = [o.asnumpy() for o in net(x)]
    for r, o in zip(ref, out):
        np.testing.assert_allclose(r, o, rtol=1e-4, atol=1e-4)


def test_fpn_model_exports_to_onnx_with_the_same_detections(tmp_path):
    pytest.importorskip("onnxruntime")
    from ssd_mnv2 import export as ex
    from ssd_mnv2.predictor import Detector

    cfg = tiny_config(model={"neck": "fpn", "neck_channels": 16, "context": True})
    det = Detector(cfg, build_ssd(cfg), fused=False)
    od = ex.OnnxDetector(ex.export_onnx(det, tmp_path, size="128x96")["onnx"], threads=1)
    img = np.random.default_rng(0).integers(0, 255, (150, 210, 3), dtype=np.uint8)
    b1, s1 = det.predict(img, size="original", threshold=0.3)
    b2, s2 = od.predict(img, size="original", threshold=0.3)
    assert len(s1) > 0 and len(s1) == len(s2)
    np.testing.assert_allclose(s1, s2, atol=1e-4)
    np.testing.assert_allclose(b1, b2, atol=1e-2)


def test_face_free_image_adds_loss_only_with_min_hard_negatives():
    """A face-free sample (no positive anchor) gets no negative quota from neg_ratio alone; with
    min_hard_negatives=k its k highest-loss background anchors are mined."""
    cls_p, box_p, ct, bt = _random_batch()
    ct[1] = 0  # image 1 has no face
    none = MultiBoxLoss(neg_ratio=3)([cls_p], [box_p], [mx.nd.array(ct)], [bt])[0][0].asnumpy()
    assert none[1] == 0.0
    k = 5
    mined = MultiBoxLoss(neg_ratio=3, min_hard_negatives=k)([cls_p], [box_p], [mx.nd.array(ct)], [bt])
    ce = -mx.nd.log_softmax(cls_p, axis=-1).asnumpy()[1, :, 0]
    np.testing.assert_allclose(mined[0][0].asnumpy()[1], np.sort(ce)[-k:].sum() / 3, rtol=1e-5)
    assert mined[1][0].asnumpy()[1] == 0.0  # no box loss without positives


# ------------------------------------------------------------------ ATSS
def _two_level_anchors():
    """Level 0: 8 px anchors every 8 px on a 64x64 input (64); level 1: 32 px every 32 px (4)."""
    def grid(step, size):
        c = np.arange(step / 2, 64, step, dtype=np.float32)
        cy, cx = np.meshgrid(c, c, indexing="ij")
        return np.stack([cx.ravel(), cy.ravel(), np.full(cx.size, size), np.full(cx.size, size)], 1)
    return np.concatenate([grid(8, 8.0), grid(32, 32.0)]), [64, 4]


def test_atss_picks_positives_by_the_face_own_iou_statistics():
    """ATSS (reference computed by hand from its definition): per face the topk anchors per level
    nearest its centre, positive at IoU >= mean + std (ddof 1) of those, centre inside the face."""
    anchors, counts = _two_level_anchors()
    face = np.array([[12, 12, 28, 28]], np.float32)  # 16 px, centred on the 8 px anchor at (20, 20)
    enc = TargetEncoder(anchors, assigner="atss", topk=4, level_counts=counts)
    cls_t, box_t = enc(face)
    ious = iou_matrix(cxcywh_to_xyxy(anchors), face)[:, 0]
    centre = np.array([20.0, 20.0])
    d = np.hypot(*(anchors[:, :2] - centre).T)
    cand = np.concatenate([np.argsort(d[:64], kind="stable")[:4], 64 + np.argsort(d[64:], kind="stable")[:4]])
    thr = ious[cand].mean() + ious[cand].std(ddof=1)
    inside = (anchors[:, 0] > 12) & (anchors[:, 0] < 28) & (anchors[:, 1] > 12) & (anchors[:, 1] < 28)
    want = {int(i) for i in cand if ious[i] >= thr and inside[i]}
    assert want and set(np.flatnonzero(cls_t > 0)) == want
    # the 8 px anchor at its centre (IoU 0.25) and the 32 px one at (16, 16) (IoU 0.25), not the
    # 8 px neighbours (0.11): threshold mean + std = 0.208
    assert want == {2 * 8 + 2, 64} and thr == pytest.approx(0.208, abs=1e-3)
    pos = cls_t > 0
    np.testing.assert_allclose(BoxCoder().decode(box_t[pos], anchors[pos]), np.repeat(face, pos.sum(), 0), atol=1e-3)


def test_atss_gives_a_small_face_anchors_that_a_fixed_threshold_refuses():
    """A 6 px face overlaps every 8 px anchor at IoU < 0.35: the IoU assigner gives it only its
    single best anchor, ATSS the ones that overlap it most relative to its candidates."""
    anchors, counts = _two_level_anchors()
    face = np.array([[5, 5, 11, 11]], np.float32)
    assert iou_matrix(cxcywh_to_xyxy(anchors), face).max() < 0.35
    n_iou = int((TargetEncoder(anchors, iou_thresh=0.35)(face)[0] > 0).sum())
    n_atss = int((TargetEncoder(anchors, assigner="atss", topk=4, level_counts=counts)(face)[0] > 0).sum())
    assert n_iou == 1 and n_atss >= 1
    # an anchor claimed by two faces goes to the one it overlaps most
    faces = np.array([[0, 0, 14, 14], [2, 2, 10, 10]], np.float32)
    cls_t, box_t = TargetEncoder(anchors, assigner="atss", topk=4, level_counts=counts)(faces)
    a0 = 0  # the anchor at (4, 4): IoU 0.33 with the first face, 0.39 with the second
    np.testing.assert_allclose(BoxCoder().decode(box_t[a0:1], anchors[a0:1]), faces[1:], atol=1e-3)


def test_atss_needs_level_counts_and_the_config_validates_it():
    anchors, counts = _two_level_anchors()
    with pytest.raises(ValueError, match="needs level_counts summing to the 68 anchors"):
        TargetEncoder(anchors, assigner="atss", level_counts=[64])
    with pytest.raises(ValueError, match="assigner must be iou or atss, got 'otsu'"):
        TargetEncoder(anchors, assigner="otsu")
    with pytest.raises(ConfigError, match="match.assigner: must be iou or atss"):
        tiny_config(None, "/tmp/x", match={"assigner": "otsu"})
    with pytest.raises(ConfigError, match="match.atss_topk: must be >= 1"):
        tiny_config(None, "/tmp/x", match={"assigner": "atss", "atss_topk": 0})


def test_the_training_pipeline_encodes_with_the_configured_assigner():
    from ssd_mnv2.anchors import anchor_counts
    from ssd_mnv2.data.pipeline import target_encoder

    cfg = tiny_config(None, "/tmp/x", match={"assigner": "atss", "atss_topk": 5})
    s = cfg.model.image_size
    enc = target_encoder(cfg, s)
    assert (enc.assigner, enc.topk, enc.level_counts) == ("atss", 5, anchor_counts(cfg, s, s))
    assert enc.anchors_cxcywh_px.shape == (sum(enc.level_counts), 4)
    assert target_encoder(tiny_config(None, "/tmp/x"), s).assigner == "iou"


def test_assigner_stats_counts_each_face_positives():
    """benchmarks/assigner_stats.py attributes every positive anchor to the face it encodes."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "assigner_stats.py"
    spec = importlib.util.spec_from_file_location("assigner_stats", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    anchors, counts = _two_level_anchors()
    faces = np.array([[12, 12, 28, 28], [40, 40, 60, 60], [2, 50, 6, 54]], np.float32)
    ignore = np.array([False, False, True])
    enc = TargetEncoder(anchors, iou_thresh=0.35)
    per_face = mod.positives_per_face(enc, faces, ignore)
    cls_t, _ = enc(faces, ignore=ignore)
    assert per_face.shape == (2,) and per_face.sum() == (cls_t > 0).sum() and per_face.min() >= 1
    alone = [int((enc(faces[k:k + 1])[0] > 0).sum()) for k in range(2)]  # the faces do not overlap
    assert per_face.tolist() == alone
