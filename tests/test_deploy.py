"""The deploy package: import structure, one backend vocabulary, the FaceDetector protocol, the
ONNX cache key and the compatibility shims (tiny random model, seconds)."""
import ast
from pathlib import Path
from typing import Dict, List, Set

import mxnet as mx
import numpy as np
import pytest

from ssd_mnv2.data.synthetic import make_image
from tiny_configs import tiny_config
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


def _import_froms(path: Path, tree=None):
    """``(absolute module, ImportFrom node)`` of every ``from X import ...`` in ``path`` (any depth;
    ``tree``: the parsed file or a part of it)."""
    name = _module_name(path)
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree if tree is not None else ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            yield mod, node


def _imports(path: Path, modules: Set[str], module_level: bool = False) -> Set[str]:
    """Every ``ssd_mnv2`` module ``path`` imports (top level or inside functions; with
    ``module_level`` only the imports that run when the module is imported)."""
    name = _module_name(path)
    found: Set[str] = set()
    tree = ast.parse(path.read_text())
    if module_level:
        tree = ast.Module(body=[n for n in tree.body
                                if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))],
                          type_ignores=[])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    for mod, node in _import_froms(path, tree):
        found.add(mod)
        found.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules)
    return {m for m in found if m.split(".")[0] == "ssd_mnv2" and m != name}


def _library_graph() -> Dict[str, Set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    lib = {m: p for m, p in files.items() if not m.startswith("ssd_mnv2.commands") and m != "ssd_mnv2.cli"}
    return {m: _imports(p, set(files)) for m, p in lib.items()}


def test_library_has_no_import_cycle_and_does_not_import_the_cli():
    """The graph counts module-level AND function-level imports (a lazy import inside a function
    still ties the two modules), over every ssd_mnv2/**/*.py but the CLI (commands/, cli.py)."""
    graph = _library_graph()
    assert "ssd_mnv2.deploy.backends" in graph and "ssd_mnv2.export" in graph
    assert "ssd_mnv2.lab.sweep" in graph and "ssd_mnv2.evaluation.driver" in graph
    assert "ssd_mnv2.dist" in graph and "ssd_mnv2.engine.trainer" in graph
    assert "ssd_mnv2.evaluation.driver" in graph["ssd_mnv2.engine.hooks"]  # function-level import
    cli_users = sorted(m for m, deps in graph.items()
                       if any(d == "ssd_mnv2.cli" or d.startswith(("ssd_mnv2.cli.", "ssd_mnv2.commands"))
                              for d in deps))
    assert cli_users == []  # the library never depends on the command line
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



# compatibility shims that re-export the old module's private names on purpose
PRIVATE_REEXPORTS = {"ssd_mnv2.export", "ssd_mnv2.quantize_onnx"}


def test_no_module_imports_another_modules_private_names():
    """A helper shared between modules is public in its module (no ``from .x import _helper``)."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        name = _module_name(path)
        if name in PRIVATE_REEXPORTS:
            continue
        for mod, node in _import_froms(path):
            if mod and mod.split(".")[0] == "ssd_mnv2" and mod != name:
                bad += [f"{name}:{node.lineno} imports {mod}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert bad == []


def test_engine_loads_weights_from_the_model_layer_not_the_inference_layer():
    """Training imports the inference layer (predictor, deploy) only lazily, for evaluation."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    for m, p in files.items():
        if m.startswith("ssd_mnv2.engine") or m == "ssd_mnv2.dist":
            bad = sorted(d for d in _imports(p, set(files), module_level=True)
                         if d.startswith(("ssd_mnv2.predictor", "ssd_mnv2.deploy", "ssd_mnv2.inference")))
            assert bad == [], f"{m} imports {bad} at module level"
    trainer_deps = _imports(PKG / "engine" / "trainer.py", set(files)) | _imports(
        PKG / "engine" / "checkpoint.py", set(files))
    assert "ssd_mnv2.model.weights" in trainer_deps and "ssd_mnv2.predictor" not in trainer_deps


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
