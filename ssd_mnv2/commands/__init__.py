"""CLI subcommands: each module has ``add_parser(subparsers)`` and ``run(args)``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

__all__ = ["add_config_args", "add_model_args", "add_engine_args", "add_backend_args", "backend_detector",
           "model_name", "load_detector", "display_overrides", "model_files", "add_tta_args",
           "tta_detector", "each_model"]


def add_config_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config`` and repeatable ``--set section.key=value``."""
    p.add_argument("--config", required=required, default=None,
                   help="YAML config (default: the shipped model's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set solver.lr=0.001 (repeatable)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--model`` (a shipped model) or ``--config``/``--params`` of a trained model."""
    from ..predictor import DEFAULT_MODEL, SHIPPED_MODELS

    add_config_args(p)
    p.add_argument("--model", default=None, choices=list(SHIPPED_MODELS),
                   help=f"a model shipped in the package (default: {DEFAULT_MODEL}; see MODEL_CARD.md)")
    p.add_argument("--params", default=None,
                   help="model .params (default: the shipped model; config defaults to the .yaml next to it)")


def each_model(args, checkpoints) -> Iterator[str]:
    """For each checkpoint folder (``model.params`` + ``config.yaml``), or without any the model
    of ``--model``/``--params``/``--config``: set ``args.params``/``args.config`` to it and yield
    its name (for benchmark scripts that score several models in one run)."""
    if not checkpoints:
        yield args.params or args.model or "shipped model"
        return
    for c in checkpoints:
        args.params, args.config = str(Path(c) / "model.params"), str(Path(c) / "config.yaml")
        yield str(c)


def display_overrides(args) -> list:
    """``args.overrides`` plus ``decode.score_threshold`` = the display threshold (--threshold or
    the config's ``eval.display_threshold``).

    Greedy NMS keeps exactly the same boxes above a threshold whether or not lower-scored boxes
    take part, so thresholding inside the graph gives identical results to filtering afterwards,
    while NMS only sorts the few confident boxes (detect/webcam speed).
    """
    from ..config import load_config
    from ..predictor import shipped_model_files

    name = model_name(args)
    if args.threshold is not None:
        t = args.threshold
    else:
        from pathlib import Path

        cfg_path = args.config or (None if args.params is None else str(Path(args.params).with_suffix(".yaml")))
        t = load_config(cfg_path or shipped_model_files(name)[1],
                        args.overrides).eval.display_threshold
    return list(args.overrides) + [f"decode.score_threshold={min(float(t), 0.999)}"]


def model_name(args) -> "str | None":
    """``--model``; an error if it is combined with ``--params``/``--config``."""
    from ..predictor import model_choice

    return model_choice(getattr(args, "model", None), args.params, args.config)


def model_files(args) -> list:
    """The ``.params`` and config files the model arguments (``--model``/``--params``/``--config``)
    read, e.g. to check that an output does not write over them."""
    from pathlib import Path

    from ..predictor import shipped_model_files

    name = model_name(args)
    if args.params is None and args.config is None:
        return list(shipped_model_files(name))
    if args.params is None:
        return [Path(args.config)]
    return [Path(args.params), Path(args.config) if args.config else Path(args.params).with_suffix(".yaml")]


def load_detector(args, **kwargs):
    """The Detector named by ``--model`` or ``--params``/``--config`` (default: the shipped one)."""
    from ..predictor import Detector

    name = model_name(args)
    if args.params is None and args.config is None:
        return Detector.default(overrides=args.overrides, model=name, **kwargs)
    if args.params is None:
        raise ValueError("--config given without --params: pass the .params file of the model")
    return Detector.from_files(args.params, args.config, overrides=args.overrides, **kwargs)


def add_engine_args(p) -> None:
    """``--backend``, ``--onnx``, ``--quantized``: which engine runs the model."""
    from ..deploy.backends import BACKEND_CHOICES

    p.add_argument("--backend", default="auto", choices=list(BACKEND_CHOICES),
                   help="auto (default: onnxruntime where installed, else mxnet), mxnet (oneDNN-fused; alias "
                        "mxnet-fused), mxnet-plain, onnxruntime (the model is exported once to a cache), int8 "
                        "(needs --quantized; mxnet-int8/onnxruntime-int8 also check the folder's engine)")
    p.add_argument("--onnx", default=None, help="ONNX model for --backend onnxruntime "
                   "(default: export the MXNet model once, cached in $SSD_MNV2_CACHE or ~/.cache/ssd_mnv2)")
    p.add_argument("--quantized", default=None,
                   help="folder made by `ssd-mnv2 quantize` (implies --backend int8; ONNX Runtime or oneDNN, "
                        "whichever the folder holds)")


def add_backend_args(p) -> None:
    add_engine_args(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="minimum score to keep a face (default: the config's eval.display_threshold)")
    p.add_argument("--size", default=None,
                   help="network input: original, WxH or 'max-side N' (default: the config's eval.size)")


def backend_detector(args):
    from ..deploy.backends import make_detector

    if args.backend in ("auto", "onnxruntime") and args.onnx:
        return make_detector("onnxruntime", None, onnx=args.onnx, overrides=args.overrides)
    return make_detector(args.backend, lambda fused: load_detector(args, fused=fused), onnx=args.onnx,
                         quantized=args.quantized, overrides=args.overrides)


def _tta_scales(text: str) -> str:
    """argparse type: a valid ``--tta-scales`` list (checked before any model is loaded)."""
    from ..tta import parse_scales

    try:
        parse_scales(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("--tta-scales: ", "")) from None
    return text


def _unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {v}")
    return v


def add_tta_args(p) -> None:
    """Test-time augmentation options (off by default): ``--tta-scales``, ``--tta-flip``,
    ``--tta-merge``, ``--tta-iou``."""
    g = p.add_argument_group("test-time augmentation (off by default; costs one model run per size "
                             "and flip)")
    g.add_argument("--tta-scales", default=None, metavar="LIST", type=_tta_scales,
                   help="run at several input sizes and merge, e.g. original,0.5x,1.5x (factors of "
                        "--size; WxH or 'max-side N' items also work)")
    g.add_argument("--tta-flip", action="store_true", help="also run on the horizontally flipped image")
    g.add_argument("--tta-merge", default="nms", choices=["nms", "vote"],
                   help="merge the passes' boxes by NMS (default) or box voting (score-weighted mean)")
    g.add_argument("--tta-iou", type=_unit_float, default=None,
                   help="IoU of the merge (default: the config's decode.nms_iou for nms, 0.3 for vote)")


def tta_detector(det, args):
    """``det`` wrapped in a :class:`~ssd_mnv2.tta.TTADetector` when a TTA option asks for it."""
    if not getattr(args, "tta_scales", None) and not getattr(args, "tta_flip", False):
        if getattr(args, "tta_iou", None) is not None or getattr(args, "tta_merge", "nms") != "nms":
            raise ValueError("--tta-merge/--tta-iou need --tta-scales and/or --tta-flip")
        return det
    from ..tta import TTADetector

    return TTADetector(det, scales=args.tta_scales or "original", flip=args.tta_flip,
                       merge=args.tta_merge, iou=args.tta_iou)
