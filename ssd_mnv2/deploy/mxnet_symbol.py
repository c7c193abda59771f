"""MXNet symbol export and loading: the detector (decode + NMS included) as ``-symbol.json`` +
``-0000.params``.

Exported graphs take **one float32 BGR image, NCHW, values 0..255** (``cv2.imread(...)``
resized to the chosen size, transposed to (1, 3, H, W), cast to float32). The BGR->RGB swap and
the [-1, 1] normalisation are inside the graph; resizing is the caller's job. Outputs (the
"full" graph): ``ids (1, K, 1)``, ``scores (1, K, 1)``, ``boxes_xyxy (1, K, 4)`` in input
pixels, best first, rows with id -1 empty (K = ``decode.max_detections``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

import mxnet as mx
from mxnet.gluon.block import HybridBlock

from ..config import Config, dump_config
from ..model.ssd import SSDInference
from ..predictor import Detector

__all__ = ["BGRInput", "parse_wh", "export_block", "export_files", "export_mxnet", "load_exported_mxnet"]


class BGRInput(HybridBlock):
    """Wrap a network taking RGB so that it takes BGR (channel swap inside the graph)."""

    def __init__(self, net: HybridBlock, **kwargs) -> None:
        super().__init__(**kwargs)
        self.net = net

    def hybrid_forward(self, F, x):
        rgb = F.concat(F.slice_axis(x, axis=1, begin=2, end=3), F.slice_axis(x, axis=1, begin=1, end=2),
                       F.slice_axis(x, axis=1, begin=0, end=1), dim=1)
        return self.net(rgb)


def parse_wh(size: Union[None, str, Tuple[int, int]], cfg: Config) -> Tuple[int, int]:
    """``size`` (None: the training size, square; 'WxH'; or a (w, h) pair) as (w, h)."""
    if size is None:
        return cfg.model.image_size, cfg.model.image_size
    if isinstance(size, str):
        from ..sizes import parse_size

        kind, wh = parse_size(size)
        if kind != "fixed":
            raise ValueError(f"export size must be WxH (e.g. 640x480), got {size!r}")
        return wh
    return int(size[0]), int(size[1])


def export_block(block: HybridBlock, prefix: str, wh: Tuple[int, int]) -> None:
    """Trace ``block`` at ``wh`` and write ``<prefix>-symbol.json`` / ``-0000.params``."""
    block.hybridize(static_alloc=False)
    block(mx.nd.zeros((1, 3, wh[1], wh[0])))
    block.export(prefix, epoch=0)


def export_files(out_dir: Union[str, Path], name: str, fmt: str) -> List[Path]:
    """The files :func:`export_mxnet` (``fmt`` 'mxnet') or :func:`export_onnx` ('onnx') write."""
    suffixes = {"mxnet": ("-symbol.json", "-0000.params"), "onnx": (".onnx",)}[fmt]
    return [Path(out_dir) / f"{name}{s}" for s in suffixes + (".yaml", "-export.json")]


def export_mxnet(detector: Detector, out_dir: Union[str, Path], size=None, name: str = "face_detector"
                 ) -> Dict[str, str]:
    """Write ``<out>/<name>-symbol.json``, ``-0000.params``, ``.yaml`` (resolved config) and
    ``-export.json`` (input description). ``size`` (WxH) is only used to trace the graph: the
    exported graph accepts any input size."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wh = parse_wh(size, detector.cfg)
    prefix = str(out / name)
    export_block(BGRInput(SSDInference(detector.ssd, detector.cfg.decode)), prefix, wh)
    detector._hybridize()  # tracing re-hybridized the shared SSD: restore the detector's mode
    dump_config(detector.cfg, prefix + ".yaml")
    meta = {"format": "mxnet", "input": {"name": "data", "layout": "NCHW", "channels": "BGR",
                                         "dtype": "float32", "range": [0, 255], "traced_size_wh": list(wh),
                                         "dynamic_hw": True},
            "outputs": ["ids (1,K,1)", "scores (1,K,1)", "boxes_xyxy_px (1,K,4)"],
            "source": getattr(detector, "source", "")}
    Path(prefix + "-export.json").write_text(json.dumps(meta, indent=1))
    return {"symbol": prefix + "-symbol.json", "params": prefix + "-0000.params",
            "config": prefix + ".yaml", "meta": prefix + "-export.json"}


def load_exported_mxnet(prefix: Union[str, Path], ctx=None) -> mx.gluon.SymbolBlock:
    """The exported graph as a SymbolBlock (input 'data': (1, 3, H, W) float32 BGR 0..255)."""
    prefix = str(prefix)
    for suffix in ("-symbol.json", "-0000.params"):
        if not os.path.isfile(prefix + suffix):
            raise FileNotFoundError(f"exported model file not found: {prefix + suffix}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params",
                                            ctx=ctx or mx.cpu())
