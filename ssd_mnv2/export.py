"""Compatibility shim: the deployment code lives in :mod:`ssd_mnv2.deploy` (one job per module).

Old imports (``from ssd_mnv2.export import make_detector``, ``ssd_mnv2.export.OnnxDetector``, ...)
keep working through the re-exports below; new code imports from ``ssd_mnv2.deploy.*``.
"""
from __future__ import annotations

from .deploy.backends import default_backend, load_quantized, make_detector
from .deploy.calibration import calibration_batch as _calibration_batch
from .deploy.int8_onednn import QuantizedDetector, compare_ap, int8_available, quantize_detector
from .deploy.mxnet_symbol import (BGRInput, export_block as _export_block, export_files, export_mxnet,
                                  load_exported_mxnet, parse_wh as _parse_wh)
from .deploy.onnx import (ONNX_OPSET, OnnxDetector, _nms_numpy, _onnx_compat, cached_onnx_export,
                          decode_nms_numpy, export_onnx, onnx_available, onnx_cache_dir)

__all__ = ["BGRInput", "export_mxnet", "load_exported_mxnet", "export_onnx", "OnnxDetector",
           "onnx_available", "quantize_detector", "QuantizedDetector", "int8_available",
           "compare_ap", "make_detector", "decode_nms_numpy", "ONNX_OPSET", "cached_onnx_export",
           "onnx_cache_dir", "default_backend", "load_quantized", "export_files"]
