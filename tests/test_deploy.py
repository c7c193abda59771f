"""The deploy package: import structure, one backend vocabulary, the FaceDetector protocol, the
ONNX cache key and the compatibility shims (tiny random model, seconds)."""
import ast
from pathlib import Path
from typing import Dict, List, Set

import mxnet as mx
import numpy as np
import pytest

from synthetic import make_image, tiny_config
from ssd_mnv2.deploy import backends as bk
from ssd_mnv2.deploy import onnx as donnx
from ssd_mnv2.deploy.int8_onednn import QuantizedDetector, int8_available, quantize_detector
from ssd_mnv2.deploy.protocol import FaceDetector
from ssd_mnv2.model.ssd import build_ssd
from ssd_mnv2.predictor import Detector

PKG = Path(__file__).resolve().parent.parent / "ssd_mnv2"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: Set[str]) -> Set[str]:
    """Every ``ssd_mnv2`` module ``path`` imports (top level or inside functions)."""
    name = _module_name(path)
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules)
    return {m for m in found if m.split(".")[0] == "ssd_mnv2" and m != name}


def _library_graph() -> Dict[str, Set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    lib = {m: p for m, p in files.items() if not m.startswith("ssd_mnv2.commands") and m != "ssd_mnv2.cli"}
    return {m: _imports(p, set(files)) for m, p in lib.items()}


def test_library_has_no_import_cycle_and_does_not_import_the_cli():
    graph = _library_graph()
    assert "ssd_mnv2.deploy.backends" in graph and "ssd_mnv2.export" in graph
    command_users = sorted(m for m, deps in graph.items() if any(d.startswith("ssd_mnv2.commands") for d in deps))
    assert command_users == []
    state: Dict[str, int] = {}
    path: List[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if d not in graph:
                continue
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path[path.index(d):] + [d])
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_one_backend_vocabulary_for_cli_bench_and_make_detector():
    from ssd_mnv2 import bench, cli

    assert set(bench.BACKENDS) <= set(bk.BACKEND_CHOICES)
    parser = cli.build_parser()
    for name in bk.BACKEND_CHOICES:  # every name (and alias) is a valid --backend
        assert parser.parse_args(["detect", "x.jpg", "--backend", name]).backend == name
    with pytest.raises(SystemExit):
        parser.parse_args(["detect", "x.jpg", "--backend", "tpu"])
    assert bk.canonical_backend("mxnet-fused") == "mxnet"
    assert bk.bench_backend("mxnet-fused") == "mxnet" and bk.bench_backend("int8") == "mxnet-int8"
    with pytest.raises(ValueError, match="unknown backend"):
        bk.bench_backend("tpu")
    calls = []

    def load(fused):
        calls.append(fused)
        return "det"

    assert bk.make_detector("mxnet-fused", load) == "det" and bk.make_detector("mxnet", load) == "det"
    assert bk.make_detector("mxnet-plain", load) == "det" and calls == [True, True, False]
    for name in ("int8", "mxnet-int8", "onnxruntime-int8"):
        with pytest.raises(ValueError, match="needs --quantized"):
            bk.make_detector(name, load)


@pytest.fixture(scope="module")
def det():
    cfg = tiny_config(decode={"max_detections": 50, "pre_nms_topk": 200})
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    return Detector(cfg, ssd, fused=False, source="random")


def test_every_detector_satisfies_the_protocol(tmp_path, det):
    from ssd_mnv2.tta import TTADetector

    img = make_image(np.random.default_rng(0), (128, 96), 2)[0]
    dets = [det, TTADetector(det, scales="original,0.5x", flip=True)]
    if donnx.onnx_available():
        dets.append(donnx.OnnxDetector(donnx.export_onnx(det, tmp_path / "onnx")["onnx"], threads=1))
    if int8_available():
        quantize_detector(det, [img] * 4, tmp_path / "q", num_calib=4, size="96x96", batch_size=4)
        dets.append(QuantizedDetector.from_dir(tmp_path / "q"))
    assert not isinstance(object(), FaceDetector)
    for d in dets:
        assert isinstance(d, FaceDetector), type(d).__name__
        boxes, scores = d.predict(img, size=None, threshold=0.0)
        assert boxes.shape == (len(scores), 4)
        assert d.input_size(128, 96, "original") == (128, 96)
        assert isinstance(d.describe(), dict) and d.cfg.model.num_classes == 1


def test_onnx_cache_key_covers_the_graph_code(tmp_path, det, monkeypatch):
    pytest.importorskip("onnxruntime")
    files = donnx.graph_source_files()
    names = {str(p.relative_to(PKG)) for p in files}
    assert {"deploy/onnx.py", "deploy/mxnet_symbol.py", "anchors.py", "model/ssd.py"} <= names
    assert all(p.is_file() for p in files)
    p1 = donnx.cached_onnx_export(det, tmp_path)
    edited = tmp_path / "edited.py"
    edited.write_text(files[-1].read_text() + "\n# edited\n")
    monkeypatch.setattr(donnx, "graph_source_files", lambda: files[:-1] + [edited])
    assert donnx.cached_onnx_export(det, tmp_path) != p1  # a code change invalidates the cache


def test_old_import_paths_are_the_deploy_objects():
    from ssd_mnv2 import export as ex
    from ssd_mnv2 import quantize_onnx as qo
    from ssd_mnv2.deploy import int8_onnx, mxnet_symbol

    assert ex.OnnxDetector is donnx.OnnxDetector and ex.make_detector is bk.make_detector
    assert ex.export_mxnet is mxnet_symbol.export_mxnet and ex.QuantizedDetector is QuantizedDetector
    assert qo.quantize_onnx is int8_onnx.quantize_onnx and qo.find_quantized_onnx is int8_onnx.find_quantized_onnx
    for name in ex.__all__:
        assert getattr(ex, name) is not None
