"""The ``ssd-mnv2`` command line: one subcommand per module in :mod:`ssd_mnv2.commands`.

Each command module defines ``add_parser(subparsers)`` (arguments only, no heavy imports) and
a ``run(args)`` that makes one call into the library, so a notebook can make the same call.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from . import __version__

COMMANDS = ["train", "evaluate", "detect", "webcam", "anchors", "export", "quantize", "benchmark",
            "data", "launch"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssd-mnv2", description="MobileNetV2-SSD face detector (MXNet/Gluon)")
    parser.add_argument("--version", action="version", version=f"ssd_mnv2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"ssd_mnv2.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"ssd_mnv2.commands.{name}":
                continue  # command not installed in this build
            raise
        mod.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        # user-facing errors (bad config, missing file, bad image...) without a traceback
        print(f"ssd-mnv2 {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
