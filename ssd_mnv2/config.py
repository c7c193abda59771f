"""Typed, validated configuration.

One YAML file -> one frozen :class:`Config` (model, anchors, data, train, eval).
Loading is strict: an unknown key, a value of the wrong type or per-level lists of
different lengths raise :class:`ConfigError` naming the key. Derived values (number of
levels, anchors per location, strides) are computed from the config, never stored.

Aspect-ratio convention: a ratio is **width / height**. An anchor of size ``s`` and
ratio ``r`` has ``w = s * sqrt(r)`` and ``h = s / sqrt(r)`` (same area as ``s x s``).
"""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

__all__ = [
    "ConfigError", "ModelCfg", "AnchorCfg", "DataCfg", "TrainCfg", "EvalCfg", "Config",
    "load_config", "config_from_dict", "config_to_dict", "dump_config", "apply_overrides",
    "DEFAULT_CONFIG", "yaml_load",
]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "models" / "face_mnv2_300.yaml"


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


class _YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads every float a person writes as a float.

    PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``1e-4``,
    ``1E5`` and ``1.0e4`` are strings there. Here they are floats, as in YAML 1.2 and Python;
    integers stay integers."""


_FLOAT_TAG = "tag:yaml.org,2002:float"
_YamlLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != _FLOAT_TAG]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YamlLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(stream: Any) -> Any:
    """Parse YAML text (or a file) safely (no Python objects), with :class:`_YamlLoader` floats."""
    loader = _YamlLoader(stream)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _check_size(key: str, spec: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` if ``spec`` is not a valid size spec."""
    from .sizes import parse_size  # local import: sizes has no config dependency

    try:
        parse_size(spec)
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from None


@dataclass(frozen=True)
class ModelCfg:
    """Network shape. Levels: 3 backbone stages (stride 8/16/32) + extras + optional global pool."""

    width: float = 1.0
    image_size: int = 300
    extra_channels: List[List[int]] = field(default_factory=lambda: [[256, 512], [128, 256]])
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
    class_names: List[str] = field(default_factory=lambda: ["face"])

    @property
    def num_levels(self) -> int:
        return 3 + len(self.extra_channels) + int(self.global_pool)

    @property
    def num_classes(self) -> int:
        """Number of foreground classes (background excluded)."""
        return len(self.class_names)

    def strides(self) -> List[int]:
        """Nominal stride per level (the global-pool level uses the training image size; its one
        location is centred on the actual input, whatever its size)."""
        s = [8, 16, 32] + [64 * 2 ** i for i in range(len(self.extra_channels))]
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
                    f"model.extra_channels[{i}]: must be [reduce_channels, out_channels] > 0, got {pair}")
        if self.head not in ("ssd", "ssdlite"):
            raise ConfigError(f"model.head: must be 'ssd' or 'ssdlite', got {self.head!r}")
        if self.neck not in ("none", "fpn"):
            raise ConfigError(f"model.neck: must be 'none' or 'fpn', got {self.neck!r}")
        if self.neck_channels < 8 or self.neck_channels % 8:
            raise ConfigError(f"model.neck_channels: must be a multiple of 8 (>= 8), got {self.neck_channels}")
        if self.context and self.neck == "none":
            raise ConfigError("model.context: the context module needs a neck (model.neck: fpn)")
        if not self.class_names:
            raise ConfigError("model.class_names: needs at least one class")


@dataclass(frozen=True)
class AnchorCfg:
    """Per-level anchor sizes (pixels at the network input) and aspect ratios (w/h)."""

    sizes: List[List[float]] = field(default_factory=lambda: [
        [16, 24], [32, 48], [64, 96], [128], [192], [256]])
    ratios: List[List[float]] = field(default_factory=lambda: [[1.0]] * 6)
    offset: float = 0.5
    variances: List[float] = field(default_factory=lambda: [0.1, 0.1, 0.2, 0.2])
    max_input_size: int = 2048
    clip: bool = False

    def per_location(self) -> List[int]:
        """Anchors per feature-map location, per level: len(sizes) * len(ratios)."""
        return [len(s) * len(r) for s, r in zip(self.sizes, self.ratios)]

    def validate(self, num_levels: int) -> None:
        if len(self.sizes) != num_levels:
            raise ConfigError(
                f"anchors.sizes: has {len(self.sizes)} levels but the model has {num_levels} "
                "(3 backbone stages + model.extra_channels + global_pool)")
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
            raise ConfigError(f"anchors.variances: needs 4 positive values, got {self.variances}")
        if self.max_input_size < 64:
            raise ConfigError(f"anchors.max_input_size: must be >= 64, got {self.max_input_size}")


@dataclass(frozen=True)
class DataCfg:
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
    crop_scale: List[float] = field(default_factory=lambda: [0.3, 1.0])
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
    num_workers: int = 2

    def validate(self) -> None:
        for key in ("small_faces", "invalid_faces"):
            if getattr(self, key) not in ("drop", "ignore"):
                raise ConfigError(f"data.{key}: must be drop or ignore, got {getattr(self, key)!r}")
        if self.crop_policy not in ("uniform", "face"):
            raise ConfigError(f"data.crop_policy: must be uniform or face, got {self.crop_policy!r}")
        if self.format not in ("widerface", "voc"):
            raise ConfigError(f"data.format: must be widerface or voc, got {self.format!r}")
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"data.crop_scale: needs [lo, hi] with 0 < lo <= hi <= 1, got {self.crop_scale}")
        if self.zoom_out < 1.0:
            raise ConfigError(f"data.zoom_out: must be >= 1 (1 = off), got {self.zoom_out}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers: must be >= 0, got {self.num_workers}")


@dataclass(frozen=True)
class TrainCfg:
    """Optimisation, schedule, checkpointing."""

    batch_size: int = 16
    epochs: int = 20
    stop_epoch: int = 0
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    wd: float = 4e-5
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    step_epochs: List[int] = field(default_factory=lambda: [14, 18])
    step_factor: float = 0.1
    iou_thresh: float = 0.5
    # an anchor whose centre lies in an ignored face, or whose IoU with one is >= ignore_iou, is
    # ignored (unless it is positive for a real face)
    ignore_iou: float = 0.3
    neg_ratio: float = 3.0
    min_hard_negatives: int = 0
    box_weight: float = 1.0
    clip_gradient: float = 0.0
    freeze_stages: int = 0
    freeze_bn: bool = True
    pretrained_backbone: str = "../shared/data/weights/mobilenet_v2_1.0_224_ptq.tflite"
    init_params: Optional[str] = None
    seed: int = 0
    ctx: str = "cpu"
    kvstore: str = "local"
    lr_scaling: str = "linear"
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
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"train.optimizer: must be sgd or adam, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step"):
            raise ConfigError(f"train.schedule: must be cosine or step, got {self.schedule!r}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr: must be > 0, got {self.lr}")
        if not 0 < self.iou_thresh <= 1:
            raise ConfigError(f"train.iou_thresh: must be in (0, 1], got {self.iou_thresh}")
        if not 0 < self.ignore_iou <= 1:
            raise ConfigError(f"train.ignore_iou: must be in (0, 1], got {self.ignore_iou}")
        if not 0 <= self.freeze_stages <= 3:
            raise ConfigError(f"train.freeze_stages: must be 0..3, got {self.freeze_stages}")
        if self.kvstore not in ("local", "device", "dist_sync", "dist_async", "dist_sync_device",
                                "horovod"):
            raise ConfigError(f"train.kvstore: unknown kvstore {self.kvstore!r}")
        _check_size("train.eval_size", self.eval_size)
        if self.lr_scaling not in ("linear", "none"):
            raise ConfigError(f"train.lr_scaling: must be linear or none, got {self.lr_scaling!r}")


@dataclass(frozen=True)
class EvalCfg:
    """Decoder (score threshold, NMS, top-k) and evaluation/inference settings."""

    score_threshold: float = 0.02
    nms_iou: float = 0.4
    pre_nms_topk: int = 6000
    max_detections: int = 1000
    size: str = "original"
    display_threshold: float = 0.5
    max_image_pixels: int = 120_000_000  # images declaring more pixels are refused (0: no limit)

    def validate(self) -> None:
        if not 0 <= self.score_threshold < 1:
            raise ConfigError(f"eval.score_threshold: must be in [0, 1), got {self.score_threshold}")
        if not 0 < self.nms_iou <= 1:
            raise ConfigError(f"eval.nms_iou: must be in (0, 1], got {self.nms_iou}")
        if self.pre_nms_topk < 1 or self.max_detections < 1:
            raise ConfigError("eval.pre_nms_topk and eval.max_detections: must be >= 1")
        if self.max_detections > self.pre_nms_topk:
            raise ConfigError(
                f"eval.max_detections ({self.max_detections}) must be <= eval.pre_nms_topk ({self.pre_nms_topk})")
        _check_size("eval.size", self.size)
        if self.max_image_pixels < 0:
            raise ConfigError(f"eval.max_image_pixels: must be >= 0 (0 = no limit), got {self.max_image_pixels}")


@dataclass(frozen=True)
class Config:
    model: ModelCfg = field(default_factory=ModelCfg)
    anchors: AnchorCfg = field(default_factory=AnchorCfg)
    data: DataCfg = field(default_factory=DataCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    eval: EvalCfg = field(default_factory=EvalCfg)

    def validate(self) -> "Config":
        self.model.validate()
        self.anchors.validate(self.model.num_levels)
        self.data.validate()
        self.train.validate()
        self.eval.validate()
        return self

    def replace(self, **sections: Any) -> "Config":
        return dataclasses.replace(self, **sections).validate()


_SECTIONS = {f.name: f.type for f in fields(Config)}
_SECTION_TYPES = {"model": ModelCfg, "anchors": AnchorCfg, "data": DataCfg, "train": TrainCfg,
                  "eval": EvalCfg}


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """Check (and lightly coerce: int -> float) ``value`` against annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _check_type(key, value, inner)
    if origin in (list, List, Sequence):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        return [_check_type(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer():  # 2e8, 1.0e3: a whole number
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def _section_from_dict(name: str, cls: type, data: Any) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown key (known keys: {', '.join(sorted(known))})")
    kwargs = {k: _check_type(f"{name}.{k}", v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: Optional[Mapping[str, Any]]) -> Config:
    """Build and validate a :class:`Config` from a plain dict (as read from YAML)."""
    data = dict(data or {})
    unknown = sorted(set(data) - set(_SECTION_TYPES))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(_SECTION_TYPES)})")
    sections = {n: _section_from_dict(n, cls, data.get(n)) for n, cls in _SECTION_TYPES.items()}
    return Config(**sections).validate()


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def _set_path(data: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if len(parts) != 2 or parts[0] not in _SECTION_TYPES:
        raise ConfigError(f"{dotted}: overrides look like section.key=value "
                          f"(sections: {', '.join(_SECTION_TYPES)})")
    data.setdefault(parts[0], {})
    if data[parts[0]] is None:
        data[parts[0]] = {}
    data[parts[0]][parts[1]] = value


def apply_overrides(data: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a config dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        key, raw = item.split("=", 1)
        _set_path(data, key.strip(), yaml_load(raw))
    return data


def load_config(path: Optional[str | Path] = None, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config (default: the shipped model's) and apply ``--set`` overrides."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = yaml_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    data = apply_overrides(dict(data or {}), overrides)
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dump_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically: temp file then rename)."""
    from .io_utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
