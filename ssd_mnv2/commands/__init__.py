"""CLI subcommands: each module has ``add_parser(subparsers)`` and ``run(args)``."""
from __future__ import annotations

import argparse

__all__ = ["add_config_args", "add_model_args"]


def add_config_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config`` and repeatable ``--set section.key=value``."""
    p.add_argument("--config", required=required, default=None,
                   help="YAML config (default: the shipped model's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=0.001 (repeatable)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--config``/``--params`` of a trained model (default: the shipped one)."""
    add_config_args(p)
    p.add_argument("--params", default=None,
                   help="model .params (default: the shipped model; config defaults to the .yaml next to it)")


def display_overrides(args) -> list:
    """``args.overrides`` plus ``eval.score_threshold`` = the display threshold (--threshold or
    the config's ``eval.display_threshold``).

    Greedy NMS keeps exactly the same boxes above a threshold whether or not lower-scored boxes
    take part, so thresholding inside the graph gives identical results to filtering afterwards,
    while NMS only sorts the few confident boxes (detect/webcam speed).
    """
    from ..config import load_config
    from ..predictor import DEFAULT_CONFIG

    if args.threshold is not None:
        t = args.threshold
    else:
        from pathlib import Path

        cfg_path = args.config or (None if args.params is None else str(Path(args.params).with_suffix(".yaml")))
        t = load_config(cfg_path or DEFAULT_CONFIG, args.overrides).eval.display_threshold
    return list(args.overrides) + [f"eval.score_threshold={min(float(t), 0.999)}"]


def load_detector(args, **kwargs):
    """The Detector named by ``--params``/``--config`` (or the shipped one)."""
    from ..predictor import Detector

    if args.params is None and args.config is None:
        return Detector.default(overrides=args.overrides, **kwargs)
    if args.params is None:
        raise ValueError("--config given without --params: pass the .params file of the model")
    return Detector.from_files(args.params, args.config, overrides=args.overrides, **kwargs)
