"""Detector: load a model (params + its config) and find faces in BGR images.

    det = Detector.from_files("model.params", "model.yaml")   # or Detector.default()
    boxes_xyxy_px, scores = det.predict(cv2.imread("photo.jpg"))
"""
from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import cv2
import mxnet as mx
import numpy as np

from .config import Config, load_config
from .model.ssd import SSD, SSDInference
from .sizes import parse_size, resolve_size

__all__ = ["Detector", "load_params", "mxnet_error_reason", "check_image", "read_image", "ImageError",
           "image_file_problem",
           "SHIPPED_MODELS", "DEFAULT_MODEL", "shipped_model_files", "DEFAULT_PARAMS", "DEFAULT_CONFIG"]

MODELS_DIR = Path(__file__).resolve().parent / "models"
# The trained models in the package (``ssd_mnv2/models/<name>.params`` + ``<name>.yaml``), see
# MODEL_CARD.md. ``DEFAULT_MODEL`` is what every command uses without --model/--params.
SHIPPED_MODELS: Dict[str, str] = {
    "face_mnv2_300": "MobileNetV2 width 1.0, 300 px training input, square anchors",
}
DEFAULT_MODEL = "face_mnv2_300"


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


class ImageError(ValueError):
    """An input that is not a usable 8-bit colour image."""


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


def _header_pixels(path: Path) -> Optional[Tuple[int, str]]:
    """``(pixels, "WxH = ")`` from the image file's header (nothing decoded; the size is "" when
    PIL refuses to report it), or None when PIL cannot read the header (OpenCV may still
    decode the file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
        return w * h, f"{w}x{h} = "
    except Image.DecompressionBombError as e:  # PIL refuses even to open more than 2 x its limit
        m = re.search(r"\((\d+) pixels\)", str(e))
        n = int(m.group(1)) if m else 2 * int(Image.MAX_IMAGE_PIXELS or 0) + 1
        return n, ""
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _jpeg_truncated(path: Path) -> bool:
    """True when a JPEG file ends before its end-of-image marker (cut off while copying or
    downloading). OpenCV decodes such a file without an error, grey from where it ends."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False  # not a JPEG
        f.seek(-2, 2)
        if f.read(2) == b"\xff\xd9":
            return False  # the usual case: the file ends with the marker
        f.seek(0)
        data = f.read()
    # the marker may be followed by other data: look for it after the first start-of-scan
    # (a thumbnail's end marker sits in an APP segment before it; inside the compressed data
    # 0xFF is always followed by 0x00 or a restart marker, so 0xFFD9 is the end marker)
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False  # not a marker where one should be: leave the verdict to the decoder
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", pos) < 0
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return True  # the file ends before the image data


def image_file_problem(path: str | Path) -> Optional[str]:
    """A problem of an image file that decodes anyway (so far: a truncated JPEG), or None."""
    if _jpeg_truncated(Path(path)):
        return ("truncated JPEG (the file ends before its end-of-image marker): the bottom of the "
                "image is missing")
    return None


def read_image(path: str | Path, max_pixels: int = 0) -> np.ndarray:
    """Read an image file as BGR uint8 (grayscale, alpha and 16-bit are converted).

    ``max_pixels`` > 0: an image whose header declares more pixels is refused with an
    :class:`ImageError` before it is decoded (``eval.max_image_pixels``; a small PNG can declare
    400 megapixels and take gigabytes to decode).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    if max_pixels > 0:
        found = _header_pixels(path)
        if found is not None and found[0] > max_pixels:
            raise ImageError(f"{path}: image of {found[1]}{found[0] / 1e6:.3g} megapixels is over the "
                             f"limit of {max_pixels / 1e6:.3g} megapixels (eval.max_image_pixels; raise it "
                             "with --set eval.max_image_pixels=N, 0 = no limit)")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError(f"{path}: not a readable image file")
    return img


def mxnet_error_reason(e: BaseException) -> str:
    """The one line of an MXNetError that says what went wrong (its text starts with a C++
    "Traceback" that means nothing to a user)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return next((ln for ln in reversed(lines) if "Check" in ln or "Invalid" in ln or "Error" in ln),
                lines[-1] if lines else "unreadable")


def load_params(net: mx.gluon.Block, path: str | Path, ctx=None) -> None:
    """Load a ``.params`` file with an error naming the file and the mismatched parameters (with
    both shapes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    try:
        loaded = mx.nd.load(str(path))
    except mx.base.MXNetError as e:
        raise ValueError(f"{path}: not a valid MXNet .params file (truncated or corrupt, "
                         f"{path.stat().st_size} bytes): {mxnet_error_reason(e)}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a Gluon parameter file (no parameter names)")
    # anchor grids are constants computed from the config (never read from files)
    params = {k: v for k, v in net._collect_params_with_prefix().items() if not k.endswith("anchors")}
    loaded = {k: v for k, v in loaded.items() if not k.endswith("anchors")}
    missing = [k for k in params if k not in loaded]
    extra = [k for k in loaded if k not in params]
    if missing:
        raise ValueError(f"{path}: parameter {missing[0]!r} missing from the file "
                         f"({len(missing)} missing; does the config match the model?)")
    if extra:
        raise ValueError(f"{path}: unexpected parameter {extra[0]!r} in the file "
                         f"({len(extra)} extra; does the config match the model?)")
    # unknown (deferred, 0) dimensions of the model's shape match anything
    wrong = [(k, loaded[k].shape, tuple(p.shape)) for k, p in params.items()
             if p.shape is not None and (len(p.shape) != len(loaded[k].shape) or any(
                 s > 0 and s != a for s, a in zip(p.shape, loaded[k].shape)))]
    if wrong:
        k, in_file, in_model = wrong[0]
        more = "".join(f"; {k2!r} {f2} vs {m2}" for k2, f2, m2 in wrong[1:4])
        more += f"; ... {len(wrong) - 4} more" if len(wrong) > 4 else ""
        raise ValueError(f"{path}: parameter {k!r} has shape {in_file} in the file but "
                         f"{in_model} in the model ({len(wrong)} mismatched{more}; does the config match?)")
    net.load_parameters(str(path), ctx=ctx or mx.cpu())


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
        w, h = self.input_size(W, H, size)
        if (w, h) != (W, H):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        x = mx.nd.array(np.ascontiguousarray(rgb.transpose(2, 0, 1))[None], ctx=self.ctx)
        return x, (W / float(w), H / float(h))

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
