"""ONNX export, the ONNX export cache and the ONNX Runtime detector (numpy decode + NMS).

ONNX: opset 13, dynamic H and W; input and outputs as the MXNet export
(:mod:`ssd_mnv2.deploy.mxnet_symbol`). With one class the whole graph (decode + NMS) is exported
("full"); with several classes only the raw network is ("raw": logits, offsets, anchors) because
the ONNX NMS conversion suppresses across classes, and :class:`OnnxDetector` decodes and runs
NMS in numpy (:func:`decode_nms_numpy`).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np

from ..boxes import BoxCoder
from ..config import Config, dump_config, load_config
from ..model.ssd import SSDInference
from ..predictor import Detector, check_image, network_image, to_image_pixels
from .mxnet_symbol import BGRInput, export_block, parse_wh

__all__ = ["ONNX_OPSET", "onnx_available", "export_onnx", "decode_nms_numpy", "OnnxDetector",
           "onnx_cache_dir", "graph_source_files", "cached_onnx_export"]

ONNX_OPSET = 13


def onnx_available() -> bool:
    """onnx and onnxruntime are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _onnx_compat(opset: int):
    """Make mxnet 1.9's exporter work with current onnx: target ``opset`` (mxnet has converters
    up to 13; by default it would stamp the newest opset of the installed onnx on the model) and
    provide ``onnx.mapping`` (removed in onnx 1.16) if missing."""
    import onnx
    import onnx.defs

    added = False
    if not hasattr(onnx, "mapping"):
        from onnx import helper

        m = types.ModuleType("onnx.mapping")
        pairs = {}
        for t in onnx.TensorProto.DataType.values():
            try:
                pairs[t] = np.dtype(helper.tensor_dtype_to_np_dtype(t))
            except Exception:
                continue
        m.TENSOR_TYPE_TO_NP_TYPE = pairs
        m.NP_TYPE_TO_TENSOR_TYPE = {}
        for t, d in pairs.items():
            m.NP_TYPE_TO_TENSOR_TYPE.setdefault(d, t)
        m.NP_TYPE_TO_TENSOR_TYPE[np.dtype("float32")] = onnx.TensorProto.FLOAT
        m.NP_TYPE_TO_TENSOR_TYPE[np.dtype("int64")] = onnx.TensorProto.INT64
        m.NP_TYPE_TO_TENSOR_TYPE[np.dtype("bool")] = onnx.TensorProto.BOOL
        onnx.mapping = m
        sys.modules["onnx.mapping"] = m
        added = True
    orig = onnx.defs.onnx_opset_version
    onnx.defs.onnx_opset_version = lambda: opset
    try:
        yield
    finally:
        onnx.defs.onnx_opset_version = orig
        if added:
            del onnx.mapping
            sys.modules.pop("onnx.mapping", None)


def export_onnx(detector: Detector, out_dir: Union[str, Path], size=None, name: str = "face_detector",
                graph: str = "auto", dynamic: bool = True, opset: int = ONNX_OPSET) -> Dict[str, str]:
    """Write ``<out>/<name>.onnx`` (+ ``.yaml`` config, ``-export.json`` meta).

    ``graph``: 'full' (decode + NMS inside, single class only), 'raw' (network outputs; decode
    and NMS done by :class:`OnnxDetector` in numpy) or 'auto' (full when there is one class).
    ``dynamic``: H and W of the input are free (else fixed to ``size``)."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError("ONNX export needs the onnx package: pip install onnx") from None
    cfg = detector.cfg
    if graph == "auto":
        graph = "full" if cfg.model.num_classes == 1 else "raw"
    if graph not in ("full", "raw"):
        raise ValueError(f"graph must be auto, full or raw, got {graph!r}")
    wh = parse_wh(size, cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = str(out / f"{name}.onnx")
    inner = SSDInference(detector.ssd, cfg.decode) if graph == "full" else detector.ssd
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "m")
        block = BGRInput(inner)
        export_block(block, prefix, wh)
        import logging

        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # box_nms class warning: irrelevant for 1 class
        try:
            with _onnx_compat(opset):
                mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params",
                                     in_shapes=[(1, 3, wh[1], wh[0])], in_types=[np.float32],
                                     onnx_file_path=onnx_path, dynamic=dynamic,
                                     dynamic_input_shapes=[(1, 3, None, None)] if dynamic else None)
        finally:
            logging.getLogger().setLevel(level)
    detector._hybridize()  # tracing re-hybridized the shared blocks: restore the detector's mode
    # initializers listed as graph inputs block constant folding in onnxruntime: drop them
    model = onnx.load(onnx_path)
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)
    dump_config(cfg, str(out / f"{name}.yaml"))
    meta = {"format": "onnx", "opset": opset, "graph": graph,
            "input": {"name": keep[0].name, "layout": "NCHW", "channels": "BGR", "dtype": "float32",
                      "range": [0, 255], "traced_size_wh": list(wh), "dynamic_hw": bool(dynamic)},
            "outputs": (["ids (1,K,1)", "scores (1,K,1)", "boxes_xyxy_px (1,K,4)"] if graph == "full"
                        else ["cls_logits (1,N,C+1)", "box_offsets (1,N,4)", "anchors_cxcywh (1,N,4)"]),
            "source": getattr(detector, "source", "")}
    meta_path = str(out / f"{name}-export.json")
    Path(meta_path).write_text(json.dumps(meta, indent=1))
    return {"onnx": onnx_path, "config": str(out / f"{name}.yaml"), "meta": meta_path}


def _nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS, boxes (n, 4) xyxy sorted by descending score; returns kept indices."""
    x1, y1, x2, y2 = boxes.T
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.arange(len(boxes))
    keep: List[int] = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = iw * ih
        ov = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
        order = rest[ov <= iou]
    return np.asarray(keep, np.int64)


def decode_nms_numpy(cls_logits: np.ndarray, offsets: np.ndarray, anchors_cxcywh_px: np.ndarray, cfg: Config,
                     threshold: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numpy twin of :class:`~ssd_mnv2.model.ssd.SSDInference` for one image.

    ``cls_logits (N, C+1)``, ``offsets (N, 4)``, ``anchors_cxcywh_px (N, 4)`` -> ``ids (K,)``,
    ``scores (K,)``, ``boxes_xyxy_px (K, 4)`` in input pixels, best first (class-aware NMS).
    Boxes are decoded by :class:`~ssd_mnv2.boxes.BoxCoder` (the graph's coder).

    Vectorised: scores are thresholded first and only the surviving anchors are decoded.
    ``threshold`` (e.g. the display threshold) raises ``decode.score_threshold`` *before* NMS;
    greedy NMS makes that exact: a box can only be suppressed by a higher-scored one, so the
    boxes scoring >= threshold are the same as with NMS over everything then filtering."""
    e = cfg.decode
    t = e.score_threshold if threshold is None else max(e.score_threshold, float(threshold))
    logits = cls_logits.astype(np.float32, copy=False)
    if logits.shape[1] == 2:  # softmax over (background, face) == sigmoid of the difference
        with np.errstate(over="ignore"):  # exp overflows to inf for confident background: fg = 0
            fg = 1.0 / (1.0 + np.exp(logits[:, :1] - logits[:, 1:]))
    else:
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        fg = z[:, 1:] / z.sum(axis=1, keepdims=True)
    cls_idx, anc_idx = np.nonzero(fg.T > t)  # class-major, as the graph
    sc = fg[anc_idx, cls_idx]
    order = np.argsort(-sc, kind="stable")[:e.pre_nms_topk]
    cls_idx, anc_idx, sc = cls_idx[order], anc_idx[order], sc[order]
    boxes = BoxCoder(cfg.anchors.variances).decode(offsets[anc_idx], anchors_cxcywh_px[anc_idx])  # (n, 4)
    kept = [np.nonzero(cls_idx == c)[0] for c in np.unique(cls_idx)]
    kept = [idx[_nms_numpy(boxes[idx], sc[idx], e.nms_iou)] for idx in kept]
    if not kept:
        return np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
    k = np.concatenate(kept)
    k = k[np.argsort(-sc[k], kind="stable")][:e.max_detections]
    return cls_idx[k].astype(np.float32), sc[k].astype(np.float32), boxes[k]


class OnnxDetector:
    """ONNX Runtime twin of :class:`~ssd_mnv2.predictor.Detector` (same ``predict`` API)."""

    def __init__(self, onnx_path: Union[str, Path], config: Union[None, str, Path, Config] = None,
                 threads: Optional[int] = None, overrides: Sequence[str] = ()) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("the onnxruntime backend needs: pip install onnxruntime") from None
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {onnx_path}")
        if isinstance(config, Config):
            self.cfg = config
        else:
            self.cfg = load_config(config if config is not None else onnx_path.with_suffix(".yaml"), overrides)
        meta_path = onnx_path.with_name(onnx_path.stem + "-export.json")
        self.meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        n = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if n:
            opts.intra_op_num_threads = n
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ValueError(f"{onnx_path}: not a loadable ONNX model: {str(e).splitlines()[0]}") from None
        self.input_name = self.session.get_inputs()[0].name
        outs = self.session.get_outputs()
        self.graph = self.meta.get("graph") or ("full" if len(outs) == 3 and outs[2].shape[-1] == 4
                                                 and outs[0].shape[-1] == 1 else "raw")
        self.source = str(onnx_path)
        self.fused = False
        self.threads = n

    backend = "onnxruntime"

    def describe(self) -> Dict[str, Any]:
        e = self.cfg.decode
        return {"model": self.source, "backend": self.backend, "graph": self.graph,
                "width": self.cfg.model.width, "default_size": self.cfg.eval.size, "score_threshold": e.score_threshold,
                "nms_iou": e.nms_iou, "max_detections": e.max_detections, "threads": self.threads}

    input_size = Detector.input_size

    def preprocess(self, image_bgr: np.ndarray, size: Optional[str] = None):
        img = check_image(image_bgr)
        H, W = img.shape[:2]
        img, scale = network_image(img, self.input_size(W, H, size), self.cfg.eval.pad_multiple)
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)
        return x, scale

    def forward(self, x: np.ndarray):
        return self.session.run(None, {self.input_name: x})

    def postprocess(self, outs, scale, image_hw, threshold=None):
        if self.graph == "full":
            ids, sc, bx = outs[0][0, :, 0], outs[1][0, :, 0], outs[2][0]
        else:  # threshold before NMS: exact (see decode_nms_numpy) and much less NMS work
            ids, sc, bx = decode_nms_numpy(outs[0][0], outs[1][0], outs[2][0], self.cfg, threshold)
        return to_image_pixels(np.asarray(ids), np.asarray(sc), np.asarray(bx, np.float32), scale,
                               image_hw, threshold)

    def predict(self, image_bgr: np.ndarray, size: Optional[str] = None,
                threshold: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        x, scale = self.preprocess(image_bgr, size)
        return self.postprocess(self.forward(x), scale, image_bgr.shape[:2], threshold)



def graph_source_files() -> List[Path]:
    """The files whose code defines the exported graph (the network, the anchors, the BGR wrapper
    and tracing, the ONNX conversion): part of the :func:`cached_onnx_export` key."""
    pkg = Path(__file__).resolve().parent.parent
    return (sorted(pkg.glob("model/*.py")) + [pkg / "anchors.py", pkg / "deploy" / "mxnet_symbol.py",
                                              pkg / "deploy" / "onnx.py"])


def onnx_cache_dir() -> Path:
    """Where exported ONNX models are cached (``$SSD_MNV2_CACHE`` or ``~/.cache/ssd_mnv2``)."""
    root = os.environ.get("SSD_MNV2_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ssd_mnv2")
    return Path(root) / "onnx"


def cached_onnx_export(detector: Detector, cache_dir: Union[None, str, Path] = None) -> str:
    """The raw-graph ONNX file of ``detector``, exported once and reused.

    The cache key is a SHA-256 of the weights (every parameter's bytes), the model and anchor
    config, the opset and the source of the graph's code, so a retrained or reconfigured model never reuses a stale export. The export is
    written to a temporary folder and renamed into place (concurrent runs cannot see half a file)."""
    import hashlib
    import shutil

    from ..config import config_to_dict

    h = hashlib.sha256()
    for name, prm in sorted(detector.ssd.collect_params().items()):
        h.update(name.encode())
        h.update(prm.data().asnumpy().tobytes())
    d = config_to_dict(detector.cfg)
    h.update(json.dumps({k: d[k] for k in ("model", "anchors")}, sort_keys=True).encode())
    h.update(f"opset={ONNX_OPSET},graph=raw".encode())
    for src in graph_source_files():  # the graph's code: a code change invalidates the cache
        h.update(src.read_bytes())
    root = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    final = root / h.hexdigest()[:24]
    onnx_path = final / "model.onnx"
    if onnx_path.is_file():
        return str(onnx_path)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        export_onnx(detector, tmp, name="model", graph="raw")
        try:
            os.replace(tmp, final)
        except OSError:  # another process won the race: use its export
            if not onnx_path.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(onnx_path)
