"""Backend choice: one vocabulary for the CLI (``--backend``), the benchmark rows and
:func:`make_detector`.

=================  ==========================================================================
``auto``           int8 with a quantized model, onnxruntime with an ONNX file, else
                   :func:`default_backend` (onnxruntime where installed, else mxnet)
``mxnet``          the MXNet graph fused by oneDNN (alias ``mxnet-fused``)
``mxnet-plain``    the MXNet graph without oneDNN fusion
``onnxruntime``    ONNX Runtime (the MXNet model exported once to the ONNX cache)
``int8``           the int8 model of a ``ssd-mnv2 quantize`` folder, engine from what it holds
``mxnet-int8``     ``int8`` with the oneDNN engine (:mod:`~ssd_mnv2.deploy.int8_onednn`)
``onnxruntime-int8``  ``int8`` with the ONNX Runtime engine (:mod:`~ssd_mnv2.deploy.int8_onnx`)
=================  ==========================================================================

The benchmark names its rows by concrete engine (:data:`BENCH_BACKENDS`); there ``int8`` keeps its
older meaning ``mxnet-int8`` (:func:`bench_backend`). Imports here are light (the CLI builds its
choices from this module before any model code is loaded).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

__all__ = ["BACKENDS", "ALIASES", "BACKEND_CHOICES", "BENCH_BACKENDS", "canonical_backend",
           "bench_backend", "default_backend", "make_detector", "load_quantized"]

BACKENDS: Dict[str, str] = {
    "auto": "onnxruntime where installed, else mxnet (int8 with --quantized)",
    "mxnet": "the oneDNN-fused MXNet graph",
    "mxnet-plain": "the MXNet graph without oneDNN fusion",
    "onnxruntime": "ONNX Runtime; the model is exported once to a cache",
    "int8": "the int8 model of --quantized DIR, ONNX Runtime or oneDNN, whichever the folder holds",
    "mxnet-int8": "a oneDNN int8 model (--quantized DIR)",
    "onnxruntime-int8": "an ONNX Runtime int8 model (--quantized DIR)",
}
ALIASES: Dict[str, str] = {"mxnet-fused": "mxnet"}
BACKEND_CHOICES: Tuple[str, ...] = tuple(BACKENDS) + tuple(ALIASES)
BENCH_BACKENDS: Tuple[str, ...] = ("mxnet-plain", "mxnet-fused", "mxnet-int8", "onnxruntime", "onnxruntime-int8")
_BENCH_ALIASES = {"int8": "mxnet-int8"}  # the benchmark's name before there were two int8 engines


def canonical_backend(name: str) -> str:
    """``name`` with aliases resolved; a ValueError for an unknown one."""
    canon = ALIASES.get(name, name)
    if canon not in BACKENDS:
        raise ValueError(f"unknown backend {name!r} ({', '.join(BACKEND_CHOICES)})")
    return canon


def bench_backend(name: str) -> str:
    """The concrete engine a benchmark row named ``name`` runs (``auto``: :func:`default_backend`)."""
    canon = canonical_backend(_BENCH_ALIASES.get(name, name))
    return default_backend() if canon == "auto" else canon


def default_backend() -> str:
    """'onnxruntime' where onnx + onnxruntime are installed (fastest, same detections), else
    'mxnet' (the oneDNN-fused graph)."""
    from .onnx import onnx_available

    return "onnxruntime" if onnx_available() else "mxnet"


def make_detector(backend: str, load_mxnet: Optional[Callable[..., Any]], onnx: Optional[str] = None,
                  quantized: Optional[str] = None, overrides: Sequence[str] = (),
                  threads: Optional[int] = None) -> Any:
    """A detector for ``backend`` (a name of :data:`BACKEND_CHOICES`).

    ``load_mxnet(fused=...)`` returns the float MXNet detector (used directly, or exported once to
    the ONNX cache, :func:`~ssd_mnv2.deploy.onnx.cached_onnx_export`, when ``onnx`` is not given).
    ``quantized``: folder of a quantized model. 'auto': int8 if ``quantized``, onnxruntime with
    ``onnx``, else :func:`default_backend`."""
    from .onnx import OnnxDetector, cached_onnx_export, onnx_available, onnx_cache_dir

    backend = canonical_backend(backend)
    if backend == "auto":
        backend = "int8" if quantized else ("onnxruntime" if onnx else default_backend())
    if quantized and backend in ("mxnet", "int8"):
        backend = "int8"
    if backend == "mxnet":
        return load_mxnet(fused=True)
    if backend == "mxnet-plain":
        return load_mxnet(fused=False)
    if backend == "onnxruntime":
        if onnx:
            return OnnxDetector(onnx, overrides=overrides, threads=threads)
        if not onnx_available():
            raise RuntimeError("the onnxruntime backend needs: pip install onnx onnxruntime")
        det = load_mxnet(fused=False)
        tmp = None
        try:
            onnx_path = cached_onnx_export(det)
        except OSError as e:  # e.g. a read-only home: export for this run only
            print(f"warning: ONNX cache {onnx_cache_dir()} not writable ({e}); exporting to a "
                  "temporary folder (set SSD_MNV2_CACHE)", file=sys.stderr)
            tmp = tempfile.mkdtemp(prefix="ssd_mnv2_onnx_")
        try:
            if tmp is not None:
                onnx_path = cached_onnx_export(det, tmp)
            od = OnnxDetector(onnx_path, det.cfg, threads=threads)
        finally:  # the session holds the model in memory: a temporary export is not needed any more
            if tmp is not None:
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        od.source = f"{getattr(det, 'source', '')} (ONNX: {'temporary export' if tmp else od.source})"
        return od
    if not quantized:
        raise ValueError(f"--backend {backend} needs --quantized DIR (made by `ssd-mnv2 quantize`)")
    if backend != "int8":
        from .int8_onnx import find_quantized_onnx

        holds = "onnxruntime-int8" if find_quantized_onnx(quantized) is not None else "mxnet-int8"
        if holds != backend:
            raise ValueError(f"--backend {backend}: {quantized} holds a {holds} model")
    return load_quantized(quantized, overrides=overrides, threads=threads)


def load_quantized(path: Union[str, Path], overrides: Sequence[str] = (), threads: Optional[int] = None) -> Any:
    """The int8 model in ``path`` (a folder of ``ssd-mnv2 quantize``, or its file): an ONNX
    Runtime int8 model (``*-int8.onnx``) or a oneDNN one (``*-symbol.json``)."""
    from .int8_onednn import QuantizedDetector
    from .int8_onnx import find_quantized_onnx
    from .onnx import OnnxDetector

    onnx_file = find_quantized_onnx(path)
    if onnx_file is not None:
        det = OnnxDetector(onnx_file, overrides=overrides, threads=threads)
        det.backend = "onnxruntime-int8"
        return det
    return QuantizedDetector.from_dir(path, overrides=overrides)
