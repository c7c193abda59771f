"""scripts/train_fpn_model.sh's ``save`` and ``restore``: the committed training state round-trips
byte for byte (the Adam moments gzipped and cut into 16 MB parts, joined again on restore)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_fpn_model.sh"


def _script(mode: str, run: Path, saved: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, FPN_RUN=str(run), FPN_SAVED=str(saved), PYTHON=sys.executable)
    return subprocess.run(["bash", str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=120)


def _fake_run(run: Path) -> dict:
    """A run folder with one checkpoint; the optimizer file is incompressible and over 16 MB,
    so the saved copy needs two parts. Returns {relative path: bytes}."""
    rng = np.random.default_rng(0)
    files = {
        "checkpoints/ep001-it000000/model.params": rng.bytes(1000),
        "checkpoints/ep001-it000000/optim.params": rng.bytes(17 * 2**20),
        "checkpoints/ep001-it000000/state.json": json.dumps({"epoch": 1, "iteration": 0, "global_step": 5}).encode(),
        "checkpoints/ep001-it000000/config.yaml": b"train:\n  epochs: 1\n",
        "log.csv": b"epoch,loss\n1,2.5\n",
        "config.yaml": b"train:\n  epochs: 1\n",
    }
    for rel, data in files.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    (run / "last.json").write_text(json.dumps({"dir": "checkpoints/ep001-it000000"}))
    return files


def test_save_then_restore_round_trips_the_training_state(tmp_path):
    run, saved, restored = tmp_path / "run", tmp_path / "saved", tmp_path / "restored"
    files = _fake_run(run)
    res = _script("save", run, saved)
    assert res.returncode == 0, res.stderr
    ck = saved / "checkpoints" / "ep001-it000000"
    parts = sorted(p.name for p in ck.glob("optim.params.gz.part*"))
    assert parts == ["optim.params.gz.part00", "optim.params.gz.part01"]
    assert not (ck / "optim.params").exists()
    assert all((p.stat().st_size <= 16 * 2**20) for p in ck.glob("optim.params.gz.part*"))
    res = _script("restore", restored, saved)
    assert res.returncode == 0, res.stderr
    assert "continuing from the committed state" in res.stdout and "is ready" in res.stdout
    for rel, data in files.items():
        assert (restored / rel).read_bytes() == data, rel
    assert not list(restored.glob("checkpoints/*/optim.params.gz*"))
    # a second restore leaves an existing run folder alone (it may have trained on)
    (restored / "log.csv").write_bytes(b"trained on\n")
    assert _script("restore", restored, saved).returncode == 0
    assert (restored / "log.csv").read_bytes() == b"trained on\n"


def test_restore_without_any_state_is_an_error(tmp_path):
    res = _script("restore", tmp_path / "run", tmp_path / "saved")
    assert res.returncode == 1
    assert "nothing to restore" in res.stderr and str(tmp_path / "saved") in res.stderr


def test_save_without_a_checkpoint_is_an_error(tmp_path):
    res = _script("save", tmp_path / "run", tmp_path / "saved")
    assert res.returncode != 0
    assert "no checkpoint in" in res.stderr
