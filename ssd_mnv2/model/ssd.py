"""The SSD network (raw outputs for training) and its inference wrapper (decode + NMS in graph)."""
from __future__ import annotations

from typing import List

import mxnet as mx
import numpy as np
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..anchors import anchor_grid, is_global_level
from ..boxes import BoxCoder
from ..config import Config, DecodeCfg
from .backbone import MobileNetV2Backbone
from .heads import flatten_prediction, make_predictor
from .neck import FPNLite

__all__ = ["AnchorGrid", "SSD", "SSDInference", "build_ssd", "count_parameters"]


class AnchorGrid(HybridBlock):
    """One level's anchors as an exportable constant, cropped to the feature map (slice_like).

    ``centred``: the global-pool level; its grid holds centres 0 and the input image's centre
    ``(W / 2, H / 2)`` is added in the graph, so the anchor follows the actual input size."""

    def __init__(self, grid: np.ndarray, centred: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self._grid_shape = grid.shape
        self.centred = centred
        self.anchors = self.params.get_constant("anchors", mx.nd.array(grid))

    def hybrid_forward(self, F, feat, image=None, anchors=None):
        a = F.reshape(F.slice_like(anchors, feat, axes=(2, 3)), (1, -1, 4))  # (1, H*W*A, 4)
        if not self.centred:
            return a
        # the image's W and H as numbers, from shape-free ops (exportable, any input size)
        plane = F.slice_axis(F.slice_axis(image, axis=0, begin=0, end=1), axis=1, begin=0, end=1)
        w = F.sum(F.ones_like(F.slice_axis(plane, axis=2, begin=0, end=1)))
        h = F.sum(F.ones_like(F.slice_axis(plane, axis=3, begin=0, end=1)))
        zero = F.zeros_like(w)
        centre = F.reshape(F.concat(w * 0.5, h * 0.5, zero, zero, dim=0), (1, 1, 4))
        return F.broadcast_add(a, centre)


class SSD(HybridBlock):
    """MobileNetV2-SSD. Input: (B, 3, H, W) RGB float in [0, 255] (normalised inside).

    Returns ``cls_preds (B, N, C+1)`` logits, ``box_preds (B, N, 4)`` offsets and
    ``anchors (1, N, 4)`` cx cy w h px, with N = sum over levels of H_l * W_l * A_l.
    """

    def __init__(self, cfg: Config, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        m = cfg.model
        per_loc = cfg.anchors.per_location()
        k = m.num_classes + 1
        with self.name_scope():
            self.backbone = MobileNetV2Backbone(m.width, m.extra_channels, m.global_pool, m.stride4)
            self.cls_heads = nn.HybridSequential()
            self.box_heads = nn.HybridSequential()
            self.anchor_grids = nn.HybridSequential()
            # BN on the backbone stage outputs before the heads (their linear-bottleneck
            # outputs are unnormalised, std ~5; SSD used L2Norm on conv4_3 for the same reason)
            self.level_norms = nn.HybridSequential()
            stage_ch = self.backbone.level_channels[:m.num_stage_levels]
            if m.level_norm:
                for ch in stage_ch:
                    self.level_norms.add(nn.BatchNorm(in_channels=ch))
            self.neck = FPNLite(stage_ch, m.neck_channels, m.context) if m.neck == "fpn" else None
            for lv, (ch, a) in enumerate(zip(self.head_channels, per_loc)):
                self.cls_heads.add(make_predictor(m.head, ch, a * k))
                self.box_heads.add(make_predictor(m.head, ch, a * 4))
                self.anchor_grids.add(AnchorGrid(anchor_grid(cfg, lv), centred=is_global_level(cfg, lv)))
        self._num_classes = k

    @property
    def head_channels(self) -> List[int]:
        """Input channels of each level's heads (the neck's width on the stage levels)."""
        m = self.cfg.model
        ch = list(self.backbone.level_channels)
        if m.neck != "none":
            ch[:m.num_stage_levels] = [m.neck_channels] * m.num_stage_levels
        return ch

    # Anchor grids are constants derived from the config: they are not written to .params files
    # (smaller files, and anchors can never disagree with the config); exports include them.
    def save_parameters(self, filename: str, deduplicate: bool = False) -> None:
        arrays = {k: p._reduce() for k, p in self._collect_params_with_prefix().items()
                  if not k.endswith("anchors")}
        mx.nd.save(filename, arrays)

    def load_parameters(self, filename: str, ctx=None, allow_missing: bool = False,
                        ignore_extra: bool = False, cast_dtype: bool = False,
                        dtype_source: str = "current") -> None:
        loaded = {k: v for k, v in mx.nd.load(filename).items() if not k.endswith("anchors")}
        params = {k: p for k, p in self._collect_params_with_prefix().items() if not k.endswith("anchors")}
        for name, p in params.items():
            if name not in loaded:
                if allow_missing:
                    continue
                raise ValueError(f"{filename}: parameter {name!r} is missing from the file")
            p._load_init(loaded[name], ctx, cast_dtype=cast_dtype, dtype_source=dtype_source)
        for name, p in self._collect_params_with_prefix().items():
            if name.endswith("anchors") and p._data is None and p._deferred_init == ():
                p.initialize(ctx=ctx or mx.cpu())  # the constant's value comes from the config
        extra = sorted(set(loaded) - set(params))
        if extra and not ignore_extra:
            raise ValueError(f"{filename}: unexpected parameter {extra[0]!r} in the file")

    def hybrid_forward(self, F, x):
        x = x * (1.0 / 127.5) - 1.0  # the TFLite ImageNet weights expect [-1, 1]
        feats = self.backbone(x)
        feats = [norm(f) for norm, f in zip(self.level_norms, feats[:len(self.level_norms)])] + \
            feats[len(self.level_norms):]
        if self.neck is not None:
            n = self.cfg.model.num_stage_levels
            feats = list(self.neck(*feats[:n])) + feats[n:]
        cls, box, anchors = [], [], []
        for f, ch, bh, ag in zip(feats, self.cls_heads, self.box_heads, self.anchor_grids):
            cls.append(flatten_prediction(F, ch(f)))
            box.append(flatten_prediction(F, bh(f)))
            anchors.append(ag(f, x) if ag.centred else ag(f))
        cls_preds = F.reshape(F.concat(*cls, dim=1), (0, -1, self._num_classes))
        box_preds = F.reshape(F.concat(*box, dim=1), (0, -1, 4))
        anchors = F.concat(*anchors, dim=1)
        return cls_preds, box_preds, anchors


class SSDInference(HybridBlock):
    """SSD + softmax + decode + score threshold + NMS (box_nms) + top-k, all in the graph.

    Returns ``ids (B, K, 1)``, ``scores (B, K, 1)``, ``boxes_xyxy_px (B, K, 4)`` in network-input
    pixels, sorted by score; rows with id -1 are empty. K = ``decode.max_detections``.
    """

    def __init__(self, ssd: SSD, decode_cfg: DecodeCfg, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ssd = ssd
        self.decode_cfg = decode_cfg
        self.box_coder = BoxCoder(ssd.cfg.anchors.variances)
        self._num_fg = ssd.cfg.model.num_classes

    def hybrid_forward(self, F, x):
        e = self.decode_cfg
        cls_preds, box_preds, anchors = self.ssd(x)
        probs = F.softmax(cls_preds, axis=-1)
        boxes = self.box_coder.decode_symbolic(F, box_preds, anchors)  # (B, N, 4) xyxy px
        if self._num_fg == 1:
            scores = F.slice_axis(probs, axis=-1, begin=1, end=2)  # (B, N, 1)
            ids = F.zeros_like(scores)
        else:
            fg = F.transpose(F.slice_axis(probs, axis=-1, begin=1, end=None), (0, 2, 1))
            scores = F.reshape(fg, (0, -1, 1))  # (B, C*N, 1), class-major
            ids = F.reshape(F.broadcast_mul(F.ones_like(fg), F.reshape(
                F.arange(self._num_fg), (1, -1, 1))), (0, -1, 1))
            boxes = F.reshape(F.tile(F.expand_dims(boxes, 1), (1, self._num_fg, 1, 1)), (0, -3, 4))
        dets = F.concat(ids, scores, boxes, dim=-1)  # (B, N, 6)
        # pad with max_detections empty rows so that the final slice never exceeds N
        pad = F.tile(F.slice_axis(F.zeros_like(dets), axis=1, begin=0, end=1), (1, e.max_detections, 1)) - 1
        dets = F.concat(dets, pad, dim=1)
        dets = F.contrib.box_nms(dets, overlap_thresh=e.nms_iou, valid_thresh=e.score_threshold,
                                 topk=e.pre_nms_topk, coord_start=2, score_index=1, id_index=0,
                                 force_suppress=False, in_format="corner", out_format="corner")
        dets = F.slice_axis(dets, axis=1, begin=0, end=e.max_detections)
        ids = F.slice_axis(dets, axis=-1, begin=0, end=1)
        scores = F.slice_axis(dets, axis=-1, begin=1, end=2)
        boxes = F.slice_axis(dets, axis=-1, begin=2, end=6)
        return ids, scores, boxes


def build_ssd(cfg: Config, ctx=None, init: bool = True) -> SSD:
    """Create an SSD for ``cfg``; with ``init`` its parameters are initialised (Xavier)."""
    net = SSD(cfg)
    if init:
        ctx = ctx or mx.cpu()
        net.initialize(mx.init.Xavier(magnitude=2.0), ctx=ctx)
        # small predictor weights: the backbone's linear-bottleneck outputs are large, and
        # Xavier-initialised heads on them start with huge logits
        for heads in (net.cls_heads, net.box_heads):
            for p in heads.collect_params(".*weight").values():
                p.initialize(mx.init.Normal(0.01), ctx=ctx, force_reinit=True)
    return net


def count_parameters(net: HybridBlock) -> int:
    """Number of learnable (non-constant) parameter values."""
    total = 0
    for name, p in net.collect_params().items():
        if "running_" in name or name.endswith("anchors"):
            continue
        if p.shape is None or any(s == 0 for s in p.shape):
            continue
        total += int(np.prod(p.shape))
    return total
