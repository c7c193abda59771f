import os
import sys
from pathlib import Path

# one thread: MXNet's CPU random init and float reductions are then reproducible across
# processes (the distributed test compares workers with a single-process reference)
os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache(tmp_path_factory):
    """ONNX exports of the default (onnxruntime) backend go to a temporary cache, not ~/.cache."""
    os.environ["SSD_MNV2_CACHE"] = str(tmp_path_factory.mktemp("ssd_mnv2_cache"))
    yield
