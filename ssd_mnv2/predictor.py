"""Detector: load a model (params + its config) and find faces in BGR images.

    det = Detector.from_files("model.params", "model.yaml")   # or Detector.default()
    boxes_xyxy_px, scores = det.predict(read_image("photo.jpg"))   # ssd_mnv2.imageio: BGR, EXIF applied
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import cv2
import mxnet as mx
import numpy as np

from .config import Config, load_config
from .imageio import ImageError, image_file_problem, read_image  # noqa: F401  (re-exported API)
from .model.ssd import SSD, SSDInference
from .model.weights import load_params, mxnet_error_reason  # noqa: F401  (re-exported)
from .sizes import resolve_size

__all__ = ["Detector", "load_params", "mxnet_error_reason", "check_image", "network_image", "read_image", "ImageError",
           "image_file_problem",
           "SHIPPED_MODELS", "DEFAULT_MODEL", "shipped_model_files", "DEFAULT_PARAMS", "DEFAULT_CONFIG"]

MODELS_DIR = Path(__file__).resolve().parent / "models"
# The trained models in the package (``ssd_mnv2/models/<name>.params`` + ``<name>.yaml``), see
# MODEL_CARD.md. ``DEFAULT_MODEL`` is what every command uses without --model/--params.
SHIPPED_MODELS: Dict[str, str] = {
    "face_mnv2_fpn_300": "MobileNetV2 width 1.0 + FPN-lite neck, 300, 448 then 512 px training crops, anchors 10-384 px",
    "face_mnv2_300": "MobileNetV2 width 1.0, 300 px training input, square anchors (the previous model)",
}
DEFAULT_MODEL = "face_mnv2_fpn_300"


def shipped_model_files(name: Optional[str] = None) -> Tuple[Path, Path]:
    """``(params, yaml)`` of the shipped model ``name`` (default: :data:`DEFAULT_MODEL`)."""
    name = DEFAULT_MODEL if name is None else name
    if name not in SHIPPED_MODELS:
        raise ValueError(f"unknown shipped model {name!r}; choose from {', '.join(SHIPPED_MODELS)} "
                         "(or pass --params/--config of your own model)")
    return MODELS_DIR / f"{name}.params", MODELS_DIR / f"{name}.yaml"


DEFAULT_PARAMS, DEFAULT_CONFIG = shipped_model_files()


def model_choice(model: Optional[str], params: Optional[str], config: Optional[str]) -> Optional[str]:
    """``model`` (a shipped model's name, or None); an error if combined with ``params``/``config``."""
    if model is not None and (params is not None or config is not None):
        raise ValueError("--model names a shipped model: do not combine it with --params/--config")
    return model


def check_image(image_bgr: Any, name: str = "image") -> np.ndarray:
    """Validate a BGR uint8 (H, W, 3) image; raise :class:`ImageError` explaining what is wrong."""
    if not isinstance(image_bgr, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array (H, W, 3) uint8 BGR, got {type(image_bgr).__name__}")
    if image_bgr.ndim == 2 or (image_bgr.ndim == 3 and image_bgr.shape[2] == 1):
        raise ImageError(f"{name}: grayscale image of shape {image_bgr.shape}; convert it with "
                         "cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)")
    if image_bgr.ndim != 3 or image_bgr.shape[2] not in (3, 4):
        raise ImageError(f"{name}: expected shape (H, W, 3), got {image_bgr.shape}")
    if image_bgr.shape[2] == 4:
        raise ImageError(f"{name}: 4-channel (BGRA) image; drop alpha with "
                         "cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)")
    if image_bgr.dtype != np.uint8:
        raise ImageError(f"{name}: expected dtype uint8, got {image_bgr.dtype} (16-bit or float images "
                         "must be converted to 8 bits, e.g. (img / 257).astype(np.uint8))")
    if image_bgr.shape[0] < 8 or image_bgr.shape[1] < 8:
        raise ImageError(f"{name}: image too small {image_bgr.shape[:2]}")
    return image_bgr




PAD_VALUE = 128  # mid-grey: ~0 after the model's normalisation (x / 127.5 - 1)


def network_image(image_bgr: np.ndarray, input_wh: Tuple[int, int], pad_multiple: int = 0
                  ) -> Tuple[np.ndarray, Tuple[float, float]]:
    """The network's input image: ``image_bgr`` resized to ``input_wh`` (w, h), then padded at the
    bottom and right with :data:`PAD_VALUE` to a multiple of ``pad_multiple`` (0: no padding).
    Returns the BGR uint8 image and the ``(sx, sy)`` scale from input pixels back to the image
    (boxes in the padding are clipped away by :func:`to_image_pixels`)."""
    H, W = image_bgr.shape[:2]
    w, h = input_wh
    img = image_bgr if (w, h) == (W, H) else cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
    if pad_multiple > 0:
        pw, ph = -(-w // pad_multiple) * pad_multiple - w, -(-h // pad_multiple) * pad_multiple - h
        if pw or ph:
            img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return img, (W / float(w), H / float(h))


def to_image_pixels(ids: np.ndarray, scores: np.ndarray, boxes_xyxy_in: np.ndarray,
                    scale: Tuple[float, float], image_hw: Tuple[int, int],
                    threshold: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Network detections ``(K,), (K,), (K, 4)`` in input pixels -> valid boxes in image pixels.

    Drops empty rows (id -1) and scores below ``threshold``, scales by ``scale = (sx, sy)``,
    clips to the image and drops degenerate boxes. Returns ``boxes_xyxy_px (M, 4), scores (M,)``.
    """
    keep = ids >= 0
    if threshold is not None:
        keep &= scores >= threshold
    sc = scores[keep]
    bx = boxes_xyxy_in[keep] * np.array([scale[0], scale[1], scale[0], scale[1]], np.float32)
    H, W = image_hw
    bx[:, 0::2] = np.clip(bx[:, 0::2], 0, W)
    bx[:, 1::2] = np.clip(bx[:, 1::2], 0, H)
    ok = (bx[:, 2] > bx[:, 0]) & (bx[:, 3] > bx[:, 1])
    return bx[ok].astype(np.float32), sc[ok].astype(np.float32)


class Detector:
    """Face detector on one device. Boxes come out in pixels of the original image."""

    def __init__(self, cfg: Config, ssd: SSD, ctx=None, fused: bool = True,
                 source: str = "") -> None:
        self.cfg = cfg
        self.ctx = ctx or mx.cpu()
        self.ssd = ssd
        self.net = SSDInference(ssd, cfg.decode)
        self.fused = fused
        self.source = source
        self._hybridize()

    def _hybridize(self) -> None:
        if self.fused:
            try:
                self.net.hybridize(static_alloc=True, backend="MKLDNN")
                return
            except Exception:  # pragma: no cover - backend missing in this build
                self.fused = False
        self.net.hybridize(static_alloc=True)

    @classmethod
    def from_files(cls, params: str | Path, config: Optional[str | Path] = None, ctx=None,
                   fused: bool = True, overrides=()) -> "Detector":
        """Load ``params`` with its config (default: the ``.yaml`` next to it)."""
        params = Path(params)
        if config is None:
            config = params.with_suffix(".yaml")
        cfg = load_config(config, overrides)
        ssd = SSD(cfg)
        load_params(ssd, params, ctx)
        return cls(cfg, ssd, ctx=ctx, fused=fused, source=str(params))

    @classmethod
    def default(cls, ctx=None, fused: bool = True, overrides=(), model: Optional[str] = None) -> "Detector":
        """A face model shipped in the package: ``model`` names one of :data:`SHIPPED_MODELS`
        (default: :data:`DEFAULT_MODEL`)."""
        params, config = shipped_model_files(model)
        if not params.is_file():
            raise FileNotFoundError(f"the shipped model is missing: {params}")
        return cls.from_files(params, config, ctx=ctx, fused=fused, overrides=overrides)

    def describe(self) -> Dict[str, Any]:
        e = self.cfg.decode
        return {"model": self.source, "width": self.cfg.model.width, "head": self.cfg.model.head,
                "default_size": self.cfg.eval.size, "score_threshold": e.score_threshold, "nms_iou": e.nms_iou,
                "pre_nms_topk": e.pre_nms_topk, "max_detections": e.max_detections,
                "fused": self.fused}

    def input_size(self, width: int, height: int, size: Optional[str] = None) -> Tuple[int, int]:
        """Network input (w, h) for an image of that size (``size`` defaults to ``eval.size``)."""
        w, h = resolve_size(size if size is not None else self.cfg.eval.size, width, height)
        limit = self.cfg.anchors.max_input_size
        if max(w, h) > limit:  # keep within the anchor grid: scale down preserving aspect
            s = limit / float(max(w, h))
            w, h = max(32, int(w * s)), max(32, int(h * s))
        return w, h

    def preprocess(self, image_bgr: np.ndarray, size: Optional[str] = None
                   ) -> Tuple[mx.nd.NDArray, Tuple[float, float]]:
        """BGR uint8 -> (1, 3, h, w) float RGB batch and the (sx, sy) scale back to the image."""
        img = check_image(image_bgr)
        H, W = img.shape[:2]
        img, scale = network_image(img, self.input_size(W, H, size), self.cfg.eval.pad_multiple)
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        x = mx.nd.array(np.ascontiguousarray(rgb.transpose(2, 0, 1))[None], ctx=self.ctx)
        return x, scale

    def postprocess(self, ids, scores, boxes, scale: Tuple[float, float], image_hw: Tuple[int, int],
                    threshold: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        return to_image_pixels(ids[0, :, 0].asnumpy(), scores[0, :, 0].asnumpy(), boxes[0].asnumpy(),
                               scale, image_hw, threshold)

    def predict(self, image_bgr: np.ndarray, size: Optional[str] = None,
                threshold: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Faces in a BGR uint8 image: ``boxes_xyxy_px (K, 4)`` and ``scores (K,)``, best first.

        ``size``: 'original', 'WxH' or 'max-side N' (default ``eval.size``); ``threshold``
        drops scores below it (default: keep everything above ``decode.score_threshold``).
        """
        x, scale = self.preprocess(image_bgr, size)
        ids, scores, boxes = self.net(x)
        return self.postprocess(ids, scores, boxes, scale, image_bgr.shape[:2], threshold)

    def timed_predict(self, image_bgr: np.ndarray, size: Optional[str] = None,
                      threshold: Optional[float] = None):
        """:meth:`predict` plus the wall time in milliseconds."""
        t0 = time.perf_counter()
        out = self.predict(image_bgr, size, threshold)
        return out, (time.perf_counter() - t0) * 1000.0
