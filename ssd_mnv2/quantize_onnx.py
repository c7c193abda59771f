"""Compatibility shim: int8 for ONNX Runtime lives in :mod:`ssd_mnv2.deploy.int8_onnx`.

Old imports (``from ssd_mnv2.quantize_onnx import quantize_onnx``) keep working through the
re-exports below; new code imports from ``ssd_mnv2.deploy.int8_onnx``.
"""
from __future__ import annotations

from .deploy.int8_onnx import CALIB_METHODS, _reader, find_quantized_onnx, quantize_onnx

__all__ = ["quantize_onnx", "find_quantized_onnx", "CALIB_METHODS"]
