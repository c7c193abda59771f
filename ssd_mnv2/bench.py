"""Inference speed: median ms/image per backend and input size, with the stages timed apart.

Stages: ``preprocess`` (check, resize, BGR->RGB, to tensor), ``forward`` (network + softmax +
decode + NMS + top-k, in graph; for onnxruntime the network alone, its decode + NMS are vectorised
numpy in ``postprocess``), ``postprocess`` (to numpy, threshold, scale, clip) and
``end_to_end`` (``predict``: all of them); ``forward_only`` is the network alone (no decode/NMS).
Set the thread count before MXNet is imported (``OMP_NUM_THREADS``): see ``benchmarks/inference.py``.
"""
from __future__ import annotations

import os
import platform
import statistics
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["machine_info", "time_stages", "run_benchmark", "format_table", "run_script", "BACKENDS", "SIZES"]

from .deploy.backends import BENCH_BACKENDS as BACKENDS, bench_backend

SIZES = ("300x300", "640x480")
TARGETS_MS = {"300x300": 8.0, "640x480": 25.0}


def machine_info() -> Dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: Dict[str, Any] = {"cpu": cpu, "logical_cores": os.cpu_count(), "python": platform.python_version(),
                            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)")}
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "").split()
        info["isa"] = " ".join(x for x in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if x in flags)
    except OSError:
        pass
    import mxnet as mx

    info["mxnet"] = mx.__version__
    info["onednn"] = bool(mx.runtime.Features().is_enabled("MKLDNN"))
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = "not installed"
    try:
        load = os.getloadavg()
        info["load_avg_1min"] = round(load[0], 2)
    except OSError:
        pass
    return info


def _median_ms(fn: Callable[[], Any], reps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(ts)


def time_stages(det: Any, image_bgr: np.ndarray, reps: int = 50, warmup: int = 5,
                forward_only: Optional[Callable[[Any], Any]] = None) -> Dict[str, float]:
    """Median milliseconds of each stage of ``det`` on ``image_bgr`` at its own size."""
    size = f"{image_bgr.shape[1]}x{image_bgr.shape[0]}"
    x, scale = det.preprocess(image_bgr, size)
    is_mx = hasattr(det, "net")

    def fwd():
        if is_mx:
            outs = det.net(x)
            outs[0].wait_to_read()
            for o in outs:
                o.wait_to_read()
            return outs
        return det.forward(x)

    outs = fwd()
    res = {
        "end_to_end": _median_ms(lambda: det.predict(image_bgr, size=size), reps, warmup),
        "preprocess": _median_ms(lambda: det.preprocess(image_bgr, size), reps, warmup),
        "forward": _median_ms(fwd, reps, warmup),
        "postprocess": _median_ms(lambda: det.postprocess(outs, scale, image_bgr.shape[:2])
                                  if not is_mx else det.postprocess(*outs, scale, image_bgr.shape[:2]),
                                  reps, warmup),
    }
    if forward_only is not None:
        forward_only(x)
        res["forward_only"] = _median_ms(lambda: forward_only(x), reps, warmup)
    return res


def _mx_forward_only(det: Any) -> Callable[[Any], Any]:
    """The SSD network alone, hybridized like ``det`` (fused or not)."""
    import mxnet as mx
    from mxnet.gluon.block import HybridBlock

    class _Raw(HybridBlock):
        def __init__(self, ssd):
            super().__init__()
            self.ssd = ssd

        def hybrid_forward(self, F, x):
            return self.ssd(x)

    raw = _Raw(det.ssd)
    if getattr(det, "fused", False):
        raw.hybridize(static_alloc=True, backend="MKLDNN")
    else:
        raw.hybridize(static_alloc=True)
    det._hybridize()

    def run(x):
        outs = raw(x)
        mx.nd.waitall()
        return outs

    return run


def _synthetic_image(w: int, h: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (7, 7), 0)
    for _ in range(6):
        s = int(rng.integers(20, max(21, min(w, h) // 3)))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        cv2.ellipse(img, (x + s // 2, y + s // 2), (s // 2, int(s * 0.6)), 0, 0, 360,
                    tuple(int(c) for c in rng.integers(120, 230, 3)), -1)
    return img


def run_benchmark(load_mxnet: Callable[..., Any], backends: Sequence[str] = BACKENDS,
                  sizes: Sequence[str] = SIZES, reps: int = 50, warmup: int = 5,
                  image: Optional[np.ndarray] = None, quantized: Optional[str] = None,
                  calib_images: Optional[str] = None, threads: Optional[int] = None,
                  log: Callable[[str], None] = print, overrides: Sequence[str] = ()) -> List[Dict[str, Any]]:
    """Rows of ``{backend, size, <stage>: ms, fps}``; a backend that cannot run gives a row with
    ``error``. ``load_mxnet(fused=...)`` returns a float :class:`~ssd_mnv2.predictor.Detector`;
    ``overrides`` (``--set``) also apply to a saved quantized model's config."""
    import cv2

    from .sizes import parse_size

    rows: List[Dict[str, Any]] = []
    images = {}
    for s in sizes:
        kind, wh = parse_size(s)
        if kind != "fixed":
            raise ValueError(f"benchmark sizes must be WxH, got {s!r}")
        images[s] = (cv2.resize(image, wh, interpolation=cv2.INTER_AREA) if image is not None
                     else _synthetic_image(*wh))
    for b in backends:
        try:
            det, fwd_only = _make(b, load_mxnet, quantized, calib_images, threads, log, overrides)
        except Exception as e:  # report and go on with the other backends
            log(f"{b}: cannot run: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            for s in sizes:
                rows.append({"backend": b, "size": s, "error": str(e).splitlines()[0] if str(e) else type(e).__name__})
            continue
        for s in sizes:
            r = time_stages(det, images[s], reps, warmup, fwd_only)
            r.update(backend=b, size=s, fps=1000.0 / r["end_to_end"])
            log(f"{b:12s} {s:8s} end to end {r['end_to_end']:7.2f} ms  ({r['fps']:.1f} FPS)")
            rows.append(r)
    return rows


def _pick_quantized(quantized, onnx: bool) -> Optional[str]:
    """The folder (of ``--quantized``, one or several) holding an int8 model of that engine."""
    from .deploy.int8_onnx import find_quantized_onnx

    for q in ([quantized] if isinstance(quantized, str) else list(quantized or [])):
        if (find_quantized_onnx(q) is not None) == onnx:
            return q
    return None


def _quantize_on_the_fly(backend: str, quantize: Callable[[Any, str, int], Any], calib_images,
                         log: Callable[[str], None]) -> str:
    """``quantize(images, out_dir, num_calib)`` into a temporary folder (the caller removes it
    once the model is loaded); without calibration images, 16 synthetic ones (fine for speed,
    not for accuracy: labelled so)."""
    folder = tempfile.mkdtemp(prefix=f"ssd_mnv2_{backend}_")
    try:
        if calib_images:
            log(f"{backend}: quantizing on the fly (calibration: {calib_images})")
            quantize(calib_images, folder, 200)
        else:
            log(f"{backend}: quantizing on the fly (16 synthetic calibration images: speed only)")
            quantize([_synthetic_image(300, 300, i) for i in range(16)], folder, 16)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _make(backend: str, load_mxnet, quantized, calib_images, threads, log, overrides=()):
    """The detector of benchmark row ``backend`` and its network-only forward."""
    backend = bench_backend(backend)
    if backend in ("mxnet-plain", "mxnet"):
        det = load_mxnet(fused=backend == "mxnet")
        if backend == "mxnet" and not det.fused:
            raise RuntimeError("the MKLDNN (oneDNN) fusion backend is unavailable in this MXNet build")
        return det, _mx_forward_only(det)
    if backend == "onnxruntime-int8":
        from .deploy.int8_onnx import find_quantized_onnx, quantize_onnx
        from .deploy.onnx import OnnxDetector, onnx_available

        if not onnx_available():
            raise RuntimeError("onnx/onnxruntime not installed")
        folder = _pick_quantized(quantized, onnx=True)
        tmp = None if folder else _quantize_on_the_fly(
            backend, lambda src, out, n: quantize_onnx(load_mxnet(fused=False), src, out, num_calib=n),
            calib_images, log)
        try:
            det = OnnxDetector(find_quantized_onnx(folder or tmp), overrides=overrides, threads=threads)
        finally:  # loaded into memory: the temporary model is not needed any more
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        return det, det.forward
    if backend == "mxnet-int8":
        import mxnet as mx

        from .deploy.int8_onednn import QuantizedDetector, quantize_detector

        folder = _pick_quantized(quantized, onnx=False)
        tmp = None if folder else _quantize_on_the_fly(
            backend, lambda src, out, n: quantize_detector(load_mxnet(fused=False), src, out, num_calib=n),
            calib_images, log)
        try:
            det = QuantizedDetector.from_dir(folder or tmp, overrides=overrides)
        finally:  # loaded into memory: the temporary model is not needed any more
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)

        def fwd(x, block=det.ssd):
            outs = block(x)
            mx.nd.waitall()
            return outs

        return det, fwd
    if backend == "onnxruntime":
        from .deploy.onnx import OnnxDetector, export_onnx, onnx_available

        if not onnx_available():
            raise RuntimeError("onnx/onnxruntime not installed")
        tmp = tempfile.mkdtemp(prefix="ssd_mnv2_onnx_")
        try:
            mxdet = load_mxnet(fused=False)
            raw = export_onnx(mxdet, tmp, name="raw", graph="raw")  # what the onnxruntime backend runs
            det = OnnxDetector(raw["onnx"], mxdet.cfg, threads=threads)
        finally:  # loaded into memory: the temporary export is not needed any more
            shutil.rmtree(tmp, ignore_errors=True)
        return det, det.forward
    raise AssertionError(f"no benchmark for backend {backend!r}")  # bench_backend() checked the name


def format_table(rows: Sequence[Dict[str, Any]], info: Dict[str, Any], model: str) -> str:
    lines = [f"model: {model}",
             "machine: " + ", ".join(f"{k}={v}" for k, v in info.items()),
             "",
             "| backend | input | end to end ms | FPS | preprocess | forward | postprocess | forward only | target |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['size']} | n/a | | | | | | {r['error']} |")
            continue
        t = TARGETS_MS.get(r["size"])
        ok = "" if t is None else (f"<= {t:g} ms " + ("ok" if r["end_to_end"] <= t else "MISSED"))
        lines.append(f"| {r['backend']} | {r['size']} | {r['end_to_end']:.2f} | {r['fps']:.1f} | "
                     f"{r['preprocess']:.2f} | {r['forward']:.2f} | {r['postprocess']:.2f} | "
                     f"{r.get('forward_only', float('nan')):.2f} | {ok} |")
    lines.append("")
    lines.append("median over repetitions; end to end = predict() on a BGR uint8 image of that size "
                 "(input size = image size). forward: the network + decode + NMS in graph (mxnet backends); "
                 "onnxruntime backends run the network alone and decode + NMS in vectorised numpy (postprocess).")
    return "\n".join(lines)


def load_mxnet_factory(params: Optional[str], config: Optional[str], overrides: Sequence[str] = (),
                       model: Optional[str] = None) -> Tuple[Callable[..., Any], str]:
    """``load(fused=...)`` for the model named by params/config (or the shipped ``model``,
    default the default one), or random weights (labelled) for a config without params."""
    from .predictor import Detector, shipped_model_files

    if params is None and config is None:
        shipped_params, shipped_cfg = shipped_model_files(model)
        if shipped_params.is_file():
            params, config = str(shipped_params), str(shipped_cfg)
    if params is not None:
        def load(fused=True):
            return Detector.from_files(params, config, fused=fused, overrides=overrides)
        return load, params
    import mxnet as mx

    from .config import load_config
    from .model.ssd import build_ssd

    cfg = load_config(config, overrides)
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, cfg.model.image_size, cfg.model.image_size)))
    tmp = tempfile.mkdtemp(prefix="ssd_mnv2_bench_")
    path = os.path.join(tmp, "random.params")
    ssd.save_parameters(path)

    def load_random(fused=True):
        s = build_ssd(cfg, init=False)
        s.load_parameters(path)
        return Detector(cfg, s, fused=fused, source="RANDOM WEIGHTS (speed only)")

    return load_random, f"RANDOM WEIGHTS (speed only), config {config or 'shipped yaml'}"


def benchmark_main(args) -> int:
    """Entry point shared by ``ssd-mnv2 benchmark`` and ``benchmarks/inference.py``."""
    import json
    import sys

    from .imageio import read_image
    from .predictor import model_choice

    name = model_choice(getattr(args, "model", None), args.params, args.config)
    load, model = load_mxnet_factory(args.params, args.config, args.overrides, name)
    image = read_image(args.image) if args.image else None
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    info = machine_info()
    info["threads"] = args.threads
    rows = run_benchmark(load, backends, sizes, reps=args.reps, warmup=args.warmup, image=image,
                         quantized=args.quantized, calib_images=args.calib_images, threads=args.threads,
                         log=lambda m: print(m, file=sys.stderr, flush=True), overrides=args.overrides)
    print(format_table(rows, info, model))
    if args.json:
        from .io_utils import atomic_write_text

        atomic_write_text(args.json, json.dumps({"machine": info, "model": model, "rows": rows}, indent=1))
    return 0


def run_script(main: Callable[[], int], prog: str) -> None:
    """Exit with ``main()``'s status; a missing file or a bad value is one line
    ``prog: error: ...`` on stderr and status 2 (no traceback)."""
    import sys

    try:
        sys.exit(main())
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
