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


def load_detector(args, **kwargs):
    """The Detector named by ``--params``/``--config`` (or the shipped one)."""
    from ..predictor import Detector

    if args.params is None and args.config is None:
        return Detector.default(overrides=args.overrides, **kwargs)
    if args.params is None:
        raise ValueError("--config given without --params: pass the .params file of the model")
    return Detector.from_files(args.params, args.config, overrides=args.overrides, **kwargs)
