"""int8 for ONNX Runtime: static QDQ quantization of the raw network, calibrated on real images.

``quantize_onnx(detector, images, out_dir)`` exports the raw graph (network only; decode and NMS
stay float, in :func:`~ssd_mnv2.deploy.onnx.decode_nms_numpy`), calibrates the activation ranges on
``num_calib`` images (MinMax) and writes ``<out>/<name>.onnx`` with int8
per-channel weights and uint8 activations, plus the config and an ``-export.json`` meta.
Only convolutions are quantized, and by default not the prediction heads: the anchor constants and their slices/concats stay float (a
uint8 grid over 0..2048 px would move anchors by 8 px). :class:`~ssd_mnv2.deploy.onnx.OnnxDetector`
runs the result like any ONNX export; on CPUs with VNNI it is several times faster than float.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np

from ..predictor import Detector
from .calibration import calibration_batch
from .mxnet_symbol import parse_wh
from .onnx import export_onnx

__all__ = ["quantize_onnx", "find_quantized_onnx", "CALIB_METHODS"]

# MinMax only: onnxruntime's MinMax calibrator adds ReduceMin/ReduceMax to the graph and keeps two
# numbers per tensor and image, while its histogram methods (percentile, entropy) keep every
# activation of every calibration image in memory (percentile on 200 images at 300x300 went past
# 16 GiB here and was killed), and CalibMaxIntermediateOutputs, its memory cap, drops the data it
# flushes in onnxruntime 1.32 instead of merging it.
CALIB_METHODS = ("minmax",)


def _reader(batch_bgr: np.ndarray, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        """One (1, 3, H, W) float32 BGR image at a time (the exported graph's input)."""

        def __init__(self) -> None:
            self._i = 0

        def get_next(self):
            if self._i >= len(batch_bgr):
                return None
            self._i += 1
            return {input_name: batch_bgr[self._i - 1:self._i]}

        def rewind(self) -> None:
            self._i = 0

    return _Reader()


def quantize_onnx(detector: Detector, calib_images: Union[str, Path, Sequence[np.ndarray]],
                  out_dir: Union[str, Path], num_calib: int = 200, size=None,
                  method: str = "minmax", name: str = "face_detector-int8",
                  per_channel: bool = True, float_heads: bool = True) -> Dict[str, str]:
    """Quantize ``detector`` for ONNX Runtime; returns the paths written (``onnx``, ``config``,
    ``meta``, ``dir``). Calibration: ``num_calib`` images of the folder ``calib_images`` (random,
    fixed seed) resized to ``size`` (default: the training size, square). ``float_heads``: keep
    the class and box prediction convolutions in float (every convolution outside the backbone)."""
    try:
        import onnx
        from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise RuntimeError("ONNX int8 needs: pip install onnx onnxruntime") from None
    if method not in CALIB_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(CALIB_METHODS)}, got {method!r}")
    wh = parse_wh(size, detector.cfg)
    batch = calibration_batch(calib_images, num_calib, wh, bgr=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".quantize-", dir=str(out)))
    try:
        raw = export_onnx(detector, tmp, name="raw", graph="raw")
        pre = tmp / "pre.onnx"
        quant_pre_process(raw["onnx"], str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        for node in model.graph.node:  # the exporter leaves nodes unnamed: name them by output
            if not node.name:
                node.name = node.output[0]
        onnx.save(model, str(pre))
        input_name = model.graph.input[0].name
        heads = [n.name for n in model.graph.node
                 if n.op_type == "Conv" and "backbone" not in n.input[1]] if float_heads else []
        q_tmp = tmp / f"{name}.onnx"
        import logging

        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # per-channel axis notes on BN vectors
        try:
            quantize_static(str(pre), str(q_tmp), _reader(batch, input_name),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                            nodes_to_exclude=heads,
                            per_channel=per_channel, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        finally:
            logging.getLogger().setLevel(level)
        onnx_path = out / f"{name}.onnx"
        shutil.move(str(q_tmp), str(onnx_path))  # same folder: an atomic rename
        shutil.move(raw["config"], str(out / f"{name}.yaml"))
        meta = json.loads(Path(raw["meta"]).read_text())
        meta.update(format="onnx-int8", quantization={
            "engine": "onnxruntime.quantization.quantize_static", "format": "QDQ",
            "ops": ["Conv"], "float_convs": heads, "weights": "int8 per-channel" if per_channel else "int8 per-tensor",
            "activations": "uint8", "calibration": method, "num_calib": int(len(batch)),
            "calib_size_wh": list(wh)})
        meta_path = out / f"{name}-export.json"
        meta_path.write_text(json.dumps(meta, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"onnx": str(onnx_path), "config": str(out / f"{name}.yaml"), "meta": str(meta_path),
            "dir": str(out)}


def find_quantized_onnx(path: Union[str, Path]) -> Optional[Path]:
    """The int8 ``.onnx`` of a folder written by :func:`quantize_onnx` (or ``path`` itself)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".onnx":
        return path
    if path.is_dir():
        found = sorted(path.glob("*-int8.onnx"))
        if len(found) > 1:
            raise FileNotFoundError(f"{path}: several *-int8.onnx models: pass one file")
        return found[0] if found else None
    return None
