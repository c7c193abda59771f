"""Notebooks execute top to bottom (nbclient, in the repository's Python)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _execute(path: Path, env: dict, timeout: int = 120):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(str(path), as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment
    try:
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                         resources={"metadata": {"path": str(NOTEBOOKS)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


# ---------------------------------------------------------------- anchor_experiments.ipynb
@pytest.mark.slow
def test_anchor_experiments_notebook_executes():
    """ANCHOR_NB_DATA=auto (default): the real dev split when ../shared/data is present (~15 s),
    otherwise tiny synthetic data the notebook makes itself; set it to synthetic/real to force."""
    t0 = time.perf_counter()
    nb = _execute(NOTEBOOKS / "anchor_experiments.ipynb",
                  {"ANCHOR_NB_DATA": os.environ.get("ANCHOR_NB_DATA", "auto"),
                   "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    elapsed = time.perf_counter() - t0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "data: real" in text or "data: synthetic" in text
    assert "total anchors:" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert elapsed < 60, f"notebook took {elapsed:.0f} s"
