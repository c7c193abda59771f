"""What every detector offers (:class:`~ssd_mnv2.predictor.Detector`,
:class:`~ssd_mnv2.deploy.int8_onednn.QuantizedDetector`, :class:`~ssd_mnv2.deploy.onnx.OnnxDetector`,
:class:`~ssd_mnv2.tta.TTADetector`): the calls detect, webcam, evaluate and the benchmark make."""
from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from ..config import Config

__all__ = ["FaceDetector"]


@runtime_checkable
class FaceDetector(Protocol):
    """A face detector: its resolved config, ``predict`` on a BGR uint8 image, the network input
    size it would use, and a description for logs and reports."""

    cfg: Config

    def predict(self, image_bgr: np.ndarray, size: Optional[str] = None,
                threshold: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``boxes_xyxy_px (K, 4)``, ``scores (K,)`` in image pixels, best first."""
        ...

    def input_size(self, width: int, height: int, size: Optional[str] = None) -> Tuple[int, int]:
        """Network input (w, h) for an image of ``width`` x ``height`` (``size``: eval.size)."""
        ...

    def describe(self) -> Dict[str, Any]:
        """Model, backend and decoding settings (JSON-serialisable)."""
        ...
