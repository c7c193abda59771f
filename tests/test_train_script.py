"""scripts/train_fpn_model.sh's ``save`` and ``restore``: the committed training state round-trips
byte for byte, except the Adam moments, which come back rounded to bfloat16 (gzipped and cut into
16 MB parts, joined again on restore)."""
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
    env = dict(os.environ, FPN_RUN=str(run), FPN_SAVED=str(saved), PYTHON=sys.executable,
               FPN_PART_BYTES=str(PART))
    return subprocess.run(["bash", str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=120)


OPTIM = "checkpoints/ep001-it000000/optim.params"
PART = 2**20  # the tests' part size (the script's default: 16 MB)


def _fake_run(run: Path) -> dict:
    """A run folder with one checkpoint; the optimizer file holds 2.5 MB of random float32
    moments (1.3 MB once rounded and gzipped), so the saved copy needs two parts. Returns
    {relative path: bytes} of everything but the optimizer file, whose arrays are returned
    under OPTIM."""
    import mxnet as mx

    rng = np.random.default_rng(0)
    moments = {f"{i}_{k}": rng.standard_normal(2**20 // 4 * 5 // 16).astype(np.float32) * 10.0 ** -rng.integers(1, 9)
               for i in range(4) for k in ("mean", "var")}
    (run / OPTIM).parent.mkdir(parents=True)
    mx.nd.save(str(run / OPTIM), {k: mx.nd.array(v, dtype="float32") for k, v in moments.items()})
    files = {
        "checkpoints/ep001-it000000/model.params": rng.bytes(1000),
        "checkpoints/ep001-it000000/state.json": json.dumps({"epoch": 1, "iteration": 0, "global_step": 5}).encode(),
        "checkpoints/ep001-it000000/config.yaml": b"train:\n  epochs: 1\n",
        "log.csv": b"epoch,loss\n1,2.5\n",
        "config.yaml": b"train:\n  epochs: 2\n",  # the run has begun its next stage
    }
    for rel, data in files.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    (run / "last.json").write_text(json.dumps({"dir": "checkpoints/ep001-it000000"}))
    return dict(files, **{OPTIM: moments})


def test_save_then_restore_round_trips_the_training_state(tmp_path):
    run, saved, restored = tmp_path / "run", tmp_path / "saved", tmp_path / "restored"
    files = _fake_run(run)
    res = _script("save", run, saved)
    assert res.returncode == 0, res.stderr
    ck = saved / "checkpoints" / "ep001-it000000"
    parts = sorted(p.name for p in ck.glob("optim.params.gz.part*"))
    assert parts == ["optim.params.gz.part00", "optim.params.gz.part01"]
    assert not (ck / "optim.params").exists()
    assert all((p.stat().st_size <= PART) for p in ck.glob("optim.params.gz.part*"))
    res = _script("restore", restored, saved)
    assert res.returncode == 0, res.stderr
    assert "continuing from the committed state" in res.stdout and "is ready" in res.stdout
    import mxnet as mx

    from ssd_mnv2.engine.checkpoint import round_to_bfloat16

    moments = files.pop(OPTIM)
    # the state's config is its checkpoint's, not the run's (already the next stage's)
    assert (restored / "config.yaml").read_bytes() == files.pop("config.yaml").replace(b"2", b"1")
    for rel, data in files.items():
        assert (restored / rel).read_bytes() == data, rel
    back = {k: v.asnumpy() for k, v in mx.nd.load(str(restored / OPTIM)).items()}
    assert sorted(back) == sorted(moments)
    for k, v in moments.items():
        np.testing.assert_array_equal(back[k], round_to_bfloat16(v))
        assert np.max(np.abs(back[k] - v) / np.abs(v)) <= 2.0 ** -8
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


def test_bfloat16_rounding_is_to_nearest_with_ties_to_even():
    from ssd_mnv2.engine.checkpoint import round_to_bfloat16

    one_ulp = 2.0 ** -7  # bfloat16's spacing just above 1.0
    a = np.array([1.0, 1.0 + one_ulp / 4, 1.0 + one_ulp * 3 / 4, 1.0 + one_ulp / 2,  # tie -> even (1.0)
                  1.0 + one_ulp * 3 / 2,  # tie -> even (1 + 2 ulp)
                  -3.0e-12, 0.0, np.inf, -np.inf, np.nan], dtype=np.float32)
    r = round_to_bfloat16(a)
    assert r.dtype == np.float32
    assert r[:5].tolist() == [1.0, 1.0, 1.0 + one_ulp, 1.0, 1.0 + 2 * one_ulp]
    assert abs(r[5] + 3.0e-12) <= 3.0e-12 * 2.0 ** -8 and r[5] < 0
    assert r[6] == 0.0 and r[7] == np.inf and r[8] == -np.inf and np.isnan(r[9])
    assert not np.any(r[np.isfinite(r)].view(np.uint32) & 0xFFFF)  # the low halves are zero


def test_an_unknown_model_name_is_an_error(tmp_path):
    env = dict(os.environ, FPN_MODEL="fpn97", FPN_RUN=str(tmp_path / "run"), FPN_SAVED=str(tmp_path / "saved"))
    res = subprocess.run(["bash", str(SCRIPT), "restore"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "FPN_MODEL must be fpn or fpn96, got 'fpn97'" in res.stderr
