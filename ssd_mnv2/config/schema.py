"""The config schema: the frozen dataclass sections and :class:`Config`, with their validation.

Sections: :class:`ModelCfg` (``model``), :class:`AnchorCfg` (``anchors``), :class:`DataCfg`
(``data``), :class:`MatchCfg` (``match``, anchor matching), :class:`LossCfg` (``loss``),
:class:`SolverCfg` (``solver``, optimizer and LR schedule), :class:`TrainCfg` (``train``, the
training run), :class:`DecodeCfg` (``decode``, the decoder baked into exports) and
:class:`EvalCfg` (``eval``, evaluation/display settings). Each section checks its own values in
``validate()`` (cross-section checks, such as one anchor list per model level, are in
:meth:`Config.validate`) and raises :class:`ConfigError` naming the key. Derived values (number of
levels, anchors per location, strides) are computed from the config, never stored. Sequences
are stored as tuples (deeply frozen).

Reading YAML, type checking, old spellings, ``base:`` inheritance and ``--set`` overrides are
in :mod:`ssd_mnv2.config.loading`; this module does not depend on it.

Aspect-ratio convention: a ratio is **width / height**. An anchor of size ``s`` and
ratio ``r`` has ``w = s * sqrt(r)`` and ``h = s / sqrt(r)`` (same area as ``s x s``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional, Tuple

__all__ = [
    "ConfigError", "ModelCfg", "AnchorCfg", "DataCfg", "MatchCfg", "LossCfg", "SolverCfg",
    "TrainCfg", "DecodeCfg", "EvalCfg", "Config",
]


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


def _check_size(key: str, spec: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` if ``spec`` is not a valid size spec."""
    from ..sizes import parse_size  # local import: sizes has no config dependency

    try:
        parse_size(spec)
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from None


def _deep_tuple(value: Any) -> Any:
    """Lists (and tuples) -> tuples, recursively: the stored form of every config sequence."""
    if isinstance(value, (list, tuple)):
        return tuple(_deep_tuple(v) for v in value)
    return value


class _Section:
    """Mixin of every config section: sequences given as lists are stored as tuples, so a
    frozen section is frozen all the way down (``cfg.anchors.sizes[0].append`` is impossible)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (list, tuple)):
                object.__setattr__(self, f.name, _deep_tuple(v))


@dataclass(frozen=True)
class ModelCfg(_Section):
    """Network shape. Levels: the backbone stages (stride 8/16/32, with ``stride4`` also 4, first)
    + extras + optional global pool."""

    width: float = 1.0
    image_size: int = 300
    extra_channels: Tuple[Tuple[int, ...], ...] = ((256, 512), (128, 256))
    global_pool: bool = True
    head: str = "ssd"
    level_norm: bool = True
    # feature-fusion neck over the three backbone stages (strides 8/16/32) feeding their heads:
    # "none" (the founding plain SSD) or "fpn" (top-down FPN-lite: 1x1 laterals, nearest
    # upsampling + add, depthwise-separable 3x3 smoothing)
    neck: str = "none"
    neck_channels: int = 64
    # SSH-style context module on the neck outputs (3x3 + 5x5 + 7x7 receptive fields from
    # stacked depthwise-separable convolutions, concatenated); only with a neck
    context: bool = False
    # a stride-4 level in front of the stride-8 one (RetinaFace's P2): MobileNetV2's features[:6]
    # (24 x width channels), fused by the FPN-lite neck (needs neck: fpn); one more level, so
    # anchors.sizes / ratios / density need one more entry, the first
    stride4: bool = False
    class_names: Tuple[str, ...] = ("face",)

    @property
    def num_stage_levels(self) -> int:
        """Levels taken from the backbone stages (and fused by the neck): 3, 4 with ``stride4``."""
        return 3 + int(self.stride4)

    @property
    def num_levels(self) -> int:
        return self.num_stage_levels + len(self.extra_channels) + int(self.global_pool)

    @property
    def num_classes(self) -> int:
        """Number of foreground classes (background excluded)."""
        return len(self.class_names)

    def strides(self) -> List[int]:
        """Nominal stride per level (the global-pool level uses the training image size; its one
        location is centred on the actual input, whatever its size)."""
        s = [4] * int(self.stride4) + [8, 16, 32] + [64 * 2 ** i for i in range(len(self.extra_channels))]
        if self.global_pool:
            s.append(self.image_size)
        return s

    def validate(self) -> None:
        if self.width not in (1.0, 0.75, 0.5, 0.25):
            raise ConfigError(f"model.width: must be one of 1.0, 0.75, 0.5, 0.25, got {self.width}")
        if self.image_size < 32:
            raise ConfigError(f"model.image_size: must be >= 32, got {self.image_size}")
        for i, pair in enumerate(self.extra_channels):
            if len(pair) != 2 or any(int(c) <= 0 for c in pair):
                raise ConfigError(
                    f"model.extra_channels[{i}]: must be [reduce_channels, out_channels] > 0, got {list(pair)}")
        if self.head not in ("ssd", "ssdlite"):
            raise ConfigError(f"model.head: must be 'ssd' or 'ssdlite', got {self.head!r}")
        if self.neck not in ("none", "fpn"):
            raise ConfigError(f"model.neck: must be 'none' or 'fpn', got {self.neck!r}")
        if self.neck_channels < 8 or self.neck_channels % 8:
            raise ConfigError(f"model.neck_channels: must be a multiple of 8 (>= 8), got {self.neck_channels}")
        if self.context and self.neck == "none":
            raise ConfigError("model.context: the context module needs a neck (model.neck: fpn)")
        if self.stride4 and self.neck != "fpn":
            raise ConfigError(f"model.stride4: the stride-4 level needs the FPN-lite neck (model.neck: fpn), "
                              f"got model.neck: {self.neck}")
        if not self.class_names:
            raise ConfigError("model.class_names: needs at least one class")


@dataclass(frozen=True)
class AnchorCfg(_Section):
    """Per-level anchor sizes (pixels at the network input) and aspect ratios (w/h)."""

    sizes: Tuple[Tuple[float, ...], ...] = (
        (16.0, 24.0), (32.0, 48.0), (64.0, 96.0), (128.0,), (192.0,), (256.0,))
    ratios: Tuple[Tuple[float, ...], ...] = ((1.0,),) * 6
    offset: float = 0.5
    variances: Tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)
    max_input_size: int = 2048
    clip: bool = False
    # anchor densification (FaceBoxes): per level, per size, n tiles that anchor n x n times in
    # each cell, centres at ((j + 0.5) / n - 0.5) strides from the cell's own centre; empty: 1 for all
    density: Tuple[Tuple[int, ...], ...] = ()

    def densities(self) -> List[Tuple[int, ...]]:
        """Per level, the density of each size (1 everywhere when ``density`` is empty)."""
        if not self.density:
            return [(1,) * len(s) for s in self.sizes]
        return [tuple(d) for d in self.density]

    def per_location(self) -> List[int]:
        """Anchors per feature-map location, per level: sum over sizes of density^2, times
        len(ratios) (len(sizes) * len(ratios) without densification)."""
        return [sum(n * n for n in d) * len(r) for d, r in zip(self.densities(), self.ratios)]

    def validate(self, num_levels: int, global_pool: bool = False) -> None:
        if len(self.sizes) != num_levels:
            raise ConfigError(
                f"anchors.sizes: has {len(self.sizes)} levels but the model has {num_levels} "
                "(3 backbone stages (4 with model.stride4) + model.extra_channels + global_pool)")
        if len(self.ratios) != num_levels:
            raise ConfigError(
                f"anchors.ratios: has {len(self.ratios)} levels but anchors.sizes/model have {num_levels}")
        for name, lists in (("sizes", self.sizes), ("ratios", self.ratios)):
            for i, lv in enumerate(lists):
                if not lv:
                    raise ConfigError(f"anchors.{name}[{i}]: must not be empty")
                for v in lv:
                    if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                        raise ConfigError(f"anchors.{name}[{i}]: every value must be > 0, got {v!r}")
        if not 0.0 <= self.offset <= 1.0:
            raise ConfigError(f"anchors.offset: must be in [0, 1], got {self.offset}")
        if len(self.variances) != 4 or any(v <= 0 for v in self.variances):
            raise ConfigError(f"anchors.variances: needs 4 positive values, got {list(self.variances)}")
        if self.max_input_size < 64:
            raise ConfigError(f"anchors.max_input_size: must be >= 64, got {self.max_input_size}")
        if self.density:
            if len(self.density) != num_levels:
                raise ConfigError(f"anchors.density: has {len(self.density)} levels but anchors.sizes/"
                                  f"model have {num_levels}")
            for i, (d, sz) in enumerate(zip(self.density, self.sizes)):
                if len(d) != len(sz):
                    raise ConfigError(f"anchors.density[{i}]: needs one value per size "
                                      f"({len(sz)}: {list(sz)}), got {list(d)}")
                if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in d):
                    raise ConfigError(f"anchors.density[{i}]: every value must be an integer >= 1, got {list(d)}")
            if global_pool and any(n != 1 for n in self.density[-1]):
                raise ConfigError(f"anchors.density[{num_levels - 1}]: the global-pool level has one "
                                  f"location and cannot be densified, got {list(self.density[-1])}")


#: The kinds of face-free training sample (``data.background_kinds``; drawn by
#: :class:`ssd_mnv2.data.transforms.TrainAugment`).
BACKGROUND_KINDS: Tuple[str, ...] = ("crop", "flat", "noise")


@dataclass(frozen=True)
class DataCfg(_Section):
    """Where the data is and how training samples are augmented."""

    format: str = "widerface"
    train_images: str = "../shared/data/widerface/train/images"
    train_labels: str = "../shared/data/widerface/train/wider_face_train_bbx_gt.txt"
    val_images: str = "../shared/data/widerface/dev/images"
    val_labels: str = "../shared/data/widerface/dev/wider_face_dev_bbx_gt.txt"
    val_gt_dir: str = "../shared/data/widerface/ground_truth"
    val_list: Optional[str] = None
    min_face_px: float = 0.0
    drop_invalid: bool = True
    skip_bad: bool = False
    crop_scale: Tuple[float, ...] = (0.3, 1.0)
    zoom_out: float = 1.0
    photometric: bool = True
    flip: bool = True
    min_train_face_px: float = 0.0
    # what happens to faces below min_train_face_px after the training resize, and to faces
    # flagged invalid (WIDER) / difficult (VOC): "drop" (they become background, as before) or
    # "ignore" (their anchors are neither positive nor negative, and never mined)
    small_faces: str = "drop"
    invalid_faces: str = "drop"
    # random square crops: "uniform" (side = c * short side, c ~ U(crop_scale), any crop with a
    # face centre inside) or "face" (the face-detection policy: c from crop_scale, log-uniform;
    # the crop holds at least one whole face)
    crop_policy: str = "uniform"
    # faces the crop cuts: "keep" (a face whose centre is inside is a face, clipped to the crop;
    # the others are background) or "ignore" (a face with less than min_visible of its area
    # inside the crop is an ignore region: a face part is neither a face nor background)
    cut_faces: str = "keep"
    min_visible: float = 0.7
    # face-free training samples: this share of the samples is a face-free image instead, of a
    # kind drawn from background_kinds: "crop" (a crop of the image touching no face), "flat"
    # (one colour) or "noise". They add loss only with loss.min_hard_negatives > 0.
    background_prob: float = 0.0
    background_kinds: Tuple[str, ...] = BACKGROUND_KINDS
    # multi-scale training: each batch is resized to a canvas drawn from this list instead of
    # model.image_size (the same crops: faces scale with the canvas); sizes that are not whole
    # cells of the coarsest level also train the cut last cell that an unpadded input has.
    # Empty: model.image_size only.
    canvas_sizes: Tuple[int, ...] = ()
    num_workers: int = 2

    def validate(self) -> None:
        for key in ("small_faces", "invalid_faces"):
            if getattr(self, key) not in ("drop", "ignore"):
                raise ConfigError(f"data.{key}: must be drop or ignore, got {getattr(self, key)!r}")
        if self.cut_faces not in ("keep", "ignore"):
            raise ConfigError(f"data.cut_faces: must be keep or ignore, got {self.cut_faces!r}")
        if not 0 < self.min_visible <= 1:
            raise ConfigError(f"data.min_visible: must be in (0, 1], got {self.min_visible}")
        if not 0.0 <= self.background_prob <= 1.0:
            raise ConfigError(f"data.background_prob: must be in [0, 1], got {self.background_prob}")
        bad = [k for k in self.background_kinds if k not in BACKGROUND_KINDS]
        if bad or not self.background_kinds:
            raise ConfigError(f"data.background_kinds: must be a non-empty list of {', '.join(BACKGROUND_KINDS)}, "
                              f"got {list(self.background_kinds)}")
        bad = [c for c in self.canvas_sizes if not isinstance(c, int) or isinstance(c, bool)
               or c < 32 or c % 32]
        if bad:
            raise ConfigError(f"data.canvas_sizes: every size must be a multiple of 32 px (>= 32), "
                              f"got {list(self.canvas_sizes)}")
        if self.crop_policy not in ("uniform", "face"):
            raise ConfigError(f"data.crop_policy: must be uniform or face, got {self.crop_policy!r}")
        if self.format not in ("widerface", "voc"):
            raise ConfigError(f"data.format: must be widerface or voc, got {self.format!r}")
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"data.crop_scale: needs [lo, hi] with 0 < lo <= hi <= 1, got {list(self.crop_scale)}")
        if self.zoom_out < 1.0:
            raise ConfigError(f"data.zoom_out: must be >= 1 (1 = off), got {self.zoom_out}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers: must be >= 0, got {self.num_workers}")


@dataclass(frozen=True)
class MatchCfg(_Section):
    """Anchor matching (training targets). Old spelling: ``train.iou_thresh`` etc."""

    # "iou": an anchor is positive at IoU >= iou_thresh; "atss": ATSS (per face, the atss_topk
    # anchors per level nearest its centre are candidates, positive at IoU >= their mean + std
    # with the centre inside the face; iou_thresh is then unused). Either way each face also gets
    # its best anchor (ssd_mnv2/matching.py)
    assigner: str = "iou"
    iou_thresh: float = 0.5
    atss_topk: int = 9
    # an anchor whose centre lies in an ignored face, or whose IoU with one is >= ignore_iou, is
    # ignored (unless it is positive for a real face)
    ignore_iou: float = 0.3

    def validate(self) -> None:
        if self.assigner not in ("iou", "atss"):
            raise ConfigError(f"match.assigner: must be iou or atss, got {self.assigner!r}")
        if self.atss_topk < 1:
            raise ConfigError(f"match.atss_topk: must be >= 1, got {self.atss_topk}")
        if not 0 < self.iou_thresh <= 1:
            raise ConfigError(f"match.iou_thresh: must be in (0, 1], got {self.iou_thresh}")
        if not 0 < self.ignore_iou <= 1:
            raise ConfigError(f"match.ignore_iou: must be in (0, 1], got {self.ignore_iou}")


@dataclass(frozen=True)
class LossCfg(_Section):
    """MultiBox loss: hard-negative mining and the box term. Old spelling: ``train.neg_ratio`` etc."""

    neg_ratio: float = 3.0
    min_hard_negatives: int = 0
    box_weight: float = 1.0
    box_loss: str = "smooth_l1"  # smooth_l1 (encoded offsets) | diou (decoded boxes, SCRFD)
    # IoU-aware class target of positives: q = 1 - w + w * IoU(decoded box, face); 0 = plain CE
    iou_target: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.iou_target <= 1.0:
            raise ConfigError(f"loss.iou_target: must be in [0, 1] (the IoU's weight in the positives' "
                              f"class target), got {self.iou_target}")
        if self.box_loss not in ("smooth_l1", "diou"):
            raise ConfigError(f"loss.box_loss: must be 'smooth_l1' or 'diou', got {self.box_loss!r}")
        if not self.neg_ratio > 0:
            raise ConfigError(f"loss.neg_ratio: must be > 0 (negatives per positive), got {self.neg_ratio}")
        if self.min_hard_negatives < 0:
            raise ConfigError(f"loss.min_hard_negatives: must be >= 0, got {self.min_hard_negatives}")
        if self.box_weight < 0:
            raise ConfigError(f"loss.box_weight: must be >= 0, got {self.box_weight}")


@dataclass(frozen=True)
class SolverCfg(_Section):
    """Optimizer and learning-rate schedule (the schedule's length is ``train.epochs``).
    Old spelling: ``train.lr`` etc."""

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    wd: float = 4e-5
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    step_epochs: Tuple[int, ...] = (14, 18)
    step_factor: float = 0.1
    clip_gradient: float = 0.0
    lr_scaling: str = "linear"

    def validate(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"solver.optimizer: must be sgd or adam, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step"):
            raise ConfigError(f"solver.schedule: must be cosine or step, got {self.schedule!r}")
        if not self.lr > 0:
            raise ConfigError(f"solver.lr: must be > 0, got {self.lr}")
        if self.lr_scaling not in ("linear", "none"):
            raise ConfigError(f"solver.lr_scaling: must be linear or none, got {self.lr_scaling!r}")


@dataclass(frozen=True)
class TrainCfg(_Section):
    """The training run: batch, length, initialisation, freezing, devices, output folder,
    in-training evaluation."""

    batch_size: int = 16
    epochs: int = 20
    stop_epoch: int = 0
    freeze_stages: int = 0
    freeze_bn: bool = True
    pretrained_backbone: str = "../shared/data/weights/mobilenet_v2_1.0_224_ptq.tflite"
    init_params: Optional[str] = None
    # parameters whose shape differs from init_params' or the resumed checkpoint's (a changed
    # head, e.g. anchors.density in a fine-tuning arm): "error"; "reinit" (they keep their
    # fresh initialisation); "densify" (only anchors.density changed: the old heads' rows are
    # mapped onto the new anchors, predicting the same boxes). Either way they start with no
    # optimizer state; everything else loads as it is
    init_mismatched: str = "error"
    seed: int = 0
    ctx: str = "cpu"
    kvstore: str = "local"
    hybridize: bool = True
    out_dir: str = "runs/face"
    eval_every: int = 1
    eval_size: str = "max-side 640"
    eval_max_images: int = 0
    max_iters_per_epoch: int = 0
    log_interval: int = 10

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size: must be >= 1, got {self.batch_size}")
        if self.epochs < 1:
            raise ConfigError(f"train.epochs: must be >= 1, got {self.epochs}")
        if not 0 <= self.stop_epoch <= self.epochs:
            raise ConfigError(f"train.stop_epoch: must be in [0, train.epochs] (0 = train.epochs), "
                              f"got {self.stop_epoch}")
        if not 0 <= self.freeze_stages <= 3:
            raise ConfigError(f"train.freeze_stages: must be 0..3, got {self.freeze_stages}")
        if self.init_mismatched not in ("error", "reinit", "densify"):
            raise ConfigError(f"train.init_mismatched: must be error, reinit or densify, got {self.init_mismatched!r}")
        if self.kvstore not in ("local", "device", "dist_sync", "dist_async", "dist_sync_device",
                                "horovod"):
            raise ConfigError(f"train.kvstore: unknown kvstore {self.kvstore!r}")
        _check_size("train.eval_size", self.eval_size)


@dataclass(frozen=True)
class DecodeCfg(_Section):
    """The decoder (score threshold, NMS, top-k): part of the inference graph, baked into
    exports. Old spelling: ``eval.score_threshold`` etc."""

    score_threshold: float = 0.02
    nms_iou: float = 0.4
    pre_nms_topk: int = 6000
    max_detections: int = 1000

    def validate(self) -> None:
        if not 0 <= self.score_threshold < 1:
            raise ConfigError(f"decode.score_threshold: must be in [0, 1), got {self.score_threshold}")
        if not 0 < self.nms_iou <= 1:
            raise ConfigError(f"decode.nms_iou: must be in (0, 1], got {self.nms_iou}")
        if self.pre_nms_topk < 1 or self.max_detections < 1:
            raise ConfigError("decode.pre_nms_topk and decode.max_detections: must be >= 1")
        if self.max_detections > self.pre_nms_topk:
            raise ConfigError(f"decode.max_detections ({self.max_detections}) must be <= "
                              f"decode.pre_nms_topk ({self.pre_nms_topk})")


@dataclass(frozen=True)
class EvalCfg(_Section):
    """Evaluation / inference settings outside the graph: default input size, input padding,
    display threshold, image-size limit."""

    size: str = "original"
    # pad the network input at the bottom and right to a multiple of this many pixels (0: off)
    # with mid-grey (~0 after the model's normalisation, as the convolutions' own zero padding),
    # so that no level's feature map has a cut-off last row or column; the padding is never
    # part of a box. The largest stride of the model (e.g. 128) makes every level's map whole.
    pad_multiple: int = 0
    display_threshold: float = 0.5
    max_image_pixels: int = 120_000_000  # images declaring more pixels are refused (0: no limit)

    def validate(self) -> None:
        _check_size("eval.size", self.size)
        if self.pad_multiple < 0:
            raise ConfigError(f"eval.pad_multiple: must be >= 0 (0 = no padding), got {self.pad_multiple}")
        if self.max_image_pixels < 0:
            raise ConfigError(f"eval.max_image_pixels: must be >= 0 (0 = no limit), got {self.max_image_pixels}")


@dataclass(frozen=True)
class Config:
    model: ModelCfg = field(default_factory=ModelCfg)
    anchors: AnchorCfg = field(default_factory=AnchorCfg)
    data: DataCfg = field(default_factory=DataCfg)
    match: MatchCfg = field(default_factory=MatchCfg)
    loss: LossCfg = field(default_factory=LossCfg)
    solver: SolverCfg = field(default_factory=SolverCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    decode: DecodeCfg = field(default_factory=DecodeCfg)
    eval: EvalCfg = field(default_factory=EvalCfg)

    def validate(self) -> "Config":
        self.model.validate()
        self.anchors.validate(self.model.num_levels, self.model.global_pool)
        for name in ("data", "match", "loss", "solver", "train", "decode", "eval"):
            getattr(self, name).validate()
        m, limit = self.eval.pad_multiple, self.anchors.max_input_size
        if m and limit % m:
            raise ConfigError(f"eval.pad_multiple: anchors.max_input_size ({limit}) must be a multiple of "
                              f"it ({m}), so a padded input stays within the anchor grid")
        return self

    def replace(self, **sections: Any) -> "Config":
        return dataclasses.replace(self, **sections).validate()
