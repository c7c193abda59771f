"""oneDNN int8: :func:`quantize_detector` quantizes the SSD network (not the decode/NMS, nor the
anchor constants) with ``mx.contrib.quantization.quantize_net_v2`` (oneDNN), calibrated on real
images; :class:`QuantizedDetector` loads the result; :func:`compare_ap` reports the AP change.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import mxnet as mx
import numpy as np

from ..config import dump_config, load_config
from ..predictor import Detector
from .calibration import calibration_batch
from .mxnet_symbol import load_exported_mxnet, parse_wh

__all__ = ["int8_available", "quantize_detector", "QuantizedDetector", "compare_ap"]


def int8_available() -> bool:
    """oneDNN (MKLDNN) int8 kernels exist in this MXNet build."""
    try:
        return bool(mx.runtime.Features().is_enabled("MKLDNN"))
    except Exception:  # pragma: no cover
        return False


def quantize_detector(detector: Detector, calib_images: Union[str, Path, Sequence[np.ndarray]],
                      out_dir: Union[str, Path], num_calib: int = 200, calib_mode: str = "naive",
                      size=None, name: str = "face_detector-int8", batch_size: int = 8,
                      exclude_heads: bool = False) -> Dict[str, str]:
    """Quantize the detector's SSD to int8 (oneDNN) and save ``<out>/<name>-symbol.json``,
    ``-0000.params`` and ``.yaml``. Calibration: ``num_calib`` images from the folder
    ``calib_images`` resized to ``size`` (default the training image size, square).

    Not quantized: the anchor constants (their concat/slices would be clipped to the calibrated
    range), every Concat, the decode and the NMS (they are outside the quantized graph)."""
    if not int8_available():
        raise RuntimeError("this MXNet build has no oneDNN (MKLDNN): int8 is unavailable")
    if calib_mode not in ("naive", "entropy", "none"):
        raise ValueError(f"calib_mode must be naive, entropy or none, got {calib_mode!r}")
    from mxnet.contrib.quantization import quantize_net_v2

    wh = parse_wh(size, detector.cfg)
    batch = calibration_batch(calib_images, num_calib, wh)
    bs = max(1, min(batch_size, len(batch)))
    n = (len(batch) // bs) * bs
    it = mx.io.NDArrayIter(data=mx.nd.array(batch[:n]), batch_size=bs, data_name="data")
    excl_match = ["anchorgrid"] + (["cls_heads", "box_heads", "hybridsequential1", "hybridsequential2"]
                                   if exclude_heads else [])
    ssd = detector.ssd
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qnet = quantize_net_v2(ssd, quantized_dtype="auto", quantize_mode="full",
                               exclude_layers_match=excl_match, exclude_operators=["Concat"],
                               calib_data=it if calib_mode != "none" else None,
                               data_shapes=None if calib_mode != "none" else [mx.io.DataDesc("data", (1, 3, wh[1], wh[0]))],
                               calib_mode=calib_mode, num_calib_examples=n, ctx=mx.cpu())
    detector._hybridize()  # quantize_net re-hybridized the shared SSD
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = str(out / name)
    qnet.hybridize(static_alloc=True)
    qnet(mx.nd.zeros((1, 3, wh[1], wh[0])))
    qnet.export(prefix, epoch=0)
    dump_config(detector.cfg, prefix + ".yaml")
    meta = {"format": "mxnet-int8", "calib_mode": calib_mode, "num_calib": int(n), "calib_size_wh": list(wh),
            "input": "(1, 3, H, W) float32 RGB 0..255 (the SSD's input; decode/NMS added at load)",
            "source": getattr(detector, "source", "")}
    Path(prefix + "-export.json").write_text(json.dumps(meta, indent=1))
    return {"symbol": prefix + "-symbol.json", "params": prefix + "-0000.params", "config": prefix + ".yaml",
            "meta": prefix + "-export.json", "dir": str(out)}


class QuantizedDetector(Detector):
    """A :class:`~ssd_mnv2.predictor.Detector` whose SSD is the int8 graph of :func:`quantize_detector`
    (decode + NMS stay float, in graph)."""

    @classmethod
    def from_dir(cls, path: Union[str, Path], overrides: Sequence[str] = ()) -> "QuantizedDetector":
        path = Path(path)
        if path.is_dir():
            syms = sorted(path.glob("*-symbol.json"))
            if len(syms) != 1:
                raise FileNotFoundError(f"{path}: expected one *-symbol.json of a quantized model, found {len(syms)}")
            prefix = str(syms[0])[: -len("-symbol.json")]
        else:
            prefix = str(path)
        if not int8_available():
            raise RuntimeError("this MXNet build has no oneDNN (MKLDNN): int8 models cannot run")
        cfg = load_config(prefix + ".yaml", overrides)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            block = load_exported_mxnet(prefix)
        block.cfg = cfg  # SSDInference reads ssd.cfg
        return cls(cfg, block, fused=False, source=prefix)

    def _hybridize(self) -> None:
        self.fused = False
        self.net.hybridize(static_alloc=True)

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        d["backend"] = "int8"
        return d


def compare_ap(fp32: Any, int8: Any, images_dir: str, gt_dir: str, out_dir: Union[str, Path],
               list_file: Optional[str] = None, size: Optional[str] = None) -> Dict[str, Any]:
    """WIDER Easy/Medium/Hard AP of both detectors (``evaluate_detector``) and the int8 change."""
    from ..evaluation.driver import evaluate_detector

    out = Path(out_dir)
    res = {}
    for tag, det in (("fp32", fp32), ("int8", int8)):
        res[tag] = evaluate_detector(det, images_dir, gt_dir, list_file=list_file,
                                     size=size or det.cfg.eval.size, out_dir=str(out / f"eval_{tag}"))
    delta = {"ap": {k: res["int8"]["ap"][k] - v for k, v in res["fp32"]["ap"].items()},
             "ms_per_image": {t: res[t].get("ms_per_image") for t in ("fp32", "int8")}}
    res["delta"] = delta
    (out / "int8_ap_change.json").write_text(json.dumps(res, indent=1, default=str))
    return res
