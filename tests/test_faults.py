"""Fault behaviour and safe inputs.

* a dist_sync worker killed with SIGKILL makes ``ssd-mnv2 launch`` fail within a bounded time,
  naming the worker, with nothing left running; ``--resume`` then continues from the checkpoint;
* a training process SIGKILLed at random moments (20 times) never leaves a checkpoint that fails
  to load;
* configs are read with ``yaml.safe_load`` (python tags rejected); model files are MXNet
  .params (no pickle); truncated / mismatched .params give errors naming the file and parameter.
"""
from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import mxnet as mx
import pytest
import yaml

from ssd_mnv2.data.synthetic import write_wider
from tiny_configs import tiny_config_dict

from ssd_mnv2.config import ConfigError, config_from_dict, load_config
from ssd_mnv2.dist import free_port, port_is_free
from ssd_mnv2.engine.checkpoint import latest_checkpoint, load_checkpoint
from ssd_mnv2.model.ssd import SSD, build_ssd
from ssd_mnv2.predictor import load_params

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _env(tag: str = "") -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["SSD_MNV2_TEST_TAG"] = tag
    for v in ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER"):
        env.pop(v, None)
    return env


def _leftovers(tag: str):
    import psutil

    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("SSD_MNV2_TEST_TAG") == tag:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def _check_loadable(out_dir: Path, cfg) -> dict:
    """The checkpoint last.json names loads completely (state, optimizer state, parameters)."""
    ck = latest_checkpoint(out_dir)
    assert ck is not None
    loaded = load_checkpoint(ck)
    load_params(SSD(cfg), loaded["params"])
    assert all(isinstance(v, mx.nd.NDArray) for v in loaded["optim"].values())
    return loaded["state"]


# ------------------------------------------------------------------------------------------
# a dist_sync worker dies: bounded failure, then --resume
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_killed_worker_fails_the_job_fast_and_resume_continues(tmp_path):
    write_wider(tmp_path / "data", n_images=8, seed=5)
    d = tiny_config_dict(tmp_path / "data", tmp_path / "out",
                         train={"optimizer": "sgd", "lr": 0.01, "warmup_epochs": 0.0, "epochs": 500,
                                "kvstore": "dist_sync", "hybridize": True})
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(d))
    cfg = config_from_dict(d)
    tag = uuid.uuid4().hex
    port = free_port()
    log = open(tmp_path / "launch.log", "w+")
    cmd = [PY, "-m", "ssd_mnv2.cli", "launch", "-n", "2", "-s", "1", "--port", str(port), "--grace", "5",
           "--", "train", "--config", str(cfg_path), "--no-progress"]
    launcher = subprocess.Popen(cmd, cwd=str(ROOT), env=_env(tag), stdout=log, stderr=subprocess.STDOUT)
    try:
        # wait until rank 0 has written an end-of-epoch checkpoint, then kill worker-1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (tmp_path / "out" / "last.json").is_file():
            assert launcher.poll() is None, (tmp_path / "launch.log").read_text()
            time.sleep(0.2)
        assert (tmp_path / "out" / "last.json").is_file(), (tmp_path / "launch.log").read_text()
        text = (tmp_path / "launch.log").read_text()
        pid = int(re.search(r"worker-1 pid (\d+)", text).group(1))
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        rc = launcher.wait(timeout=60)
        took = time.monotonic() - t_kill
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    text = (tmp_path / "launch.log").read_text()
    print(text[-1500:])
    print(f"launcher exited {rc} {took:.1f} s after the kill")
    assert rc != 0
    assert took < 60
    assert re.search(r"FAILED: worker-1 \(pid %d\) was killed by SIGKILL" % pid, text), text[-2000:]
    time.sleep(0.2)
    assert _leftovers(tag) == []
    assert port_is_free(port)
    state = _check_loadable(tmp_path / "out", cfg)
    step0 = state["global_step"]
    assert step0 >= 2

    # restart with --resume: continues from that checkpoint
    tag2 = uuid.uuid4().hex
    r = subprocess.run(cmd[:-1] + ["--resume", "--max-iters", "1", "--no-progress"], cwd=str(ROOT),
                       env=_env(tag2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120)
    print(r.stdout[-1500:])
    assert r.returncode == 0, r.stdout[-3000:]
    assert "resumed from" in r.stdout
    assert _check_loadable(tmp_path / "out", cfg)["global_step"] == step0 + 1
    time.sleep(0.2)
    assert _leftovers(tag2) == []


# ------------------------------------------------------------------------------------------
# SIGKILL at random moments never leaves an unloadable checkpoint
# ------------------------------------------------------------------------------------------
# A fork server: imports MXNet and the package once (no MXNet op runs before fork), then for
# every line on stdin forks a trainer that loops fit(resume=True, max_iters=1) -- i.e. resume,
# one step, checkpoint, again -- printing "SAVE" just before each checkpoint write. The test
# SIGKILLs the trainer at a random moment (half of the time just after a "SAVE").
FORK_SERVER = r'''
import os, sys
import ssd_mnv2.engine.hooks as hooks
import ssd_mnv2.engine.trainer as tr
from ssd_mnv2.config import load_config

cfg = load_config(sys.argv[1])
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        sys.stdin.close()
        save = hooks.save_checkpoint
        def loud_save(*a, **k):
            os.write(1, b"SAVE\n")
            return save(*a, **k)
        hooks.save_checkpoint = loud_save
        try:
            while True:
                tr.fit(cfg, resume=True, max_iters=1, progress=False)
        finally:
            os._exit(3)
    os.write(1, b"PID %d\n" % pid)
    _, status = os.waitpid(pid, 0)
    os.write(1, b"REAPED %d\n" % status)
'''


def _readline(proc, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        ch = os.read(fd, 1)
        if not ch:
            break
        if ch == b"\n":
            return buf.decode("utf-8", "replace")
        buf += ch
    raise TimeoutError(f"no line within {timeout} s (partial: {buf!r})")


@pytest.mark.slow
def test_sigkill_at_random_moments_never_corrupts_the_checkpoint(tmp_path):
    write_wider(tmp_path / "data", n_images=6, seed=7)
    d = tiny_config_dict(tmp_path / "data", tmp_path / "out",
                         train={"warmup_epochs": 0.0, "epochs": 1000, "hybridize": False})
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(d))
    cfg = config_from_dict(d)
    (tmp_path / "fork_server.py").write_text(FORK_SERVER)
    rng = random.Random(0)
    server = subprocess.Popen([PY, str(tmp_path / "fork_server.py"), str(cfg_path)], cwd=str(ROOT),
                              env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    steps, during_save = [], 0
    try:
        for trial in range(20):
            server.stdin.write(b"go\n")
            server.stdin.flush()
            line = _readline(server, 60)
            while not line.startswith("PID "):
                line = _readline(server, 60)
            pid = int(line.split()[1])
            if not (tmp_path / "out" / "last.json").is_file():
                # no checkpoint yet: let the first one complete (the second SAVE follows it)
                for _ in range(2):
                    while _readline(server, 60) != "SAVE":
                        pass
            if trial % 2 == 0:
                # wait for a checkpoint write to start, then kill inside the write window
                while _readline(server, 60) != "SAVE":
                    pass
                time.sleep(rng.uniform(0.0, 0.08))
                during_save += 1
            else:
                time.sleep(rng.uniform(0.0, 1.0))  # anywhere: startup, data, step, write, prune
            os.kill(pid, signal.SIGKILL)
            line = _readline(server, 60)
            while not line.startswith("REAPED"):
                line = _readline(server, 60)
            assert os.WTERMSIG(int(line.split()[1])) == signal.SIGKILL
            if (tmp_path / "out" / "last.json").is_file():
                steps.append(_check_loadable(tmp_path / "out", cfg)["global_step"])
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    took = time.monotonic() - t0
    print(f"20 SIGKILLs ({during_save} right after a checkpoint write began) in {took:.1f} s; "
          f"global steps seen: {steps}")
    assert len(steps) >= 19
    assert steps == sorted(steps) and steps[-1] > steps[0]  # resume kept making progress


# ------------------------------------------------------------------------------------------
# safe inputs
# ------------------------------------------------------------------------------------------
def test_yaml_with_python_object_tag_is_rejected(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"train:\n  lr: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    assert not marker.exists()
    bad.write_text("model: !!python/object/new:collections.OrderedDict [[]]\n")
    with pytest.raises(ConfigError):
        load_config(bad)


def test_model_and_checkpoint_code_paths_use_no_pickle():
    pkg = ROOT / "ssd_mnv2"
    offenders = []
    for f in pkg.rglob("*.py"):
        src = f.read_text(encoding="utf-8")
        for pat in (r"^\s*import (c)?pickle", r"^\s*from (c)?pickle", r"allow_pickle\s*=\s*True",
                    r"yaml\.load\(", r"yaml\.unsafe_load", r"yaml\.full_load", r"Loader\s*=\s*yaml\.(Unsafe|Full)?Loader",
                    r"torch\.load", r"joblib"):
            if re.search(pat, src, re.M):
                offenders.append(f"{f.relative_to(ROOT)}: {pat}")
    assert offenders == []


def test_checkpoint_files_are_mxnet_ndarray_files(tmp_path):
    from ssd_mnv2.engine.trainer import fit

    write_wider(tmp_path / "data", n_images=4, seed=2)
    cfg = config_from_dict(tiny_config_dict(tmp_path / "data", tmp_path / "out",
                                            train={"hybridize": False}))
    fit(cfg, max_iters=1, progress=False)
    ck = latest_checkpoint(tmp_path / "out")
    for name in ("model.params", "optim.params"):
        raw = (ck / name).read_bytes()
        assert raw[:8] == (0x112).to_bytes(8, "little"), f"{name} is not an MXNet NDArray file"
        assert b"\x80\x04\x95" not in raw[:16]  # not a pickle stream
        assert all(isinstance(v, mx.nd.NDArray) for v in mx.nd.load(str(ck / name)).values())
    json.loads((ck / "state.json").read_text())
    yaml.safe_load((ck / "config.yaml").read_text())


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("params")
    cfg = config_from_dict(tiny_config_dict())
    net = build_ssd(cfg)
    net(mx.nd.zeros((1, 3, 96, 96)))
    path = d / "tiny.params"
    net.save_parameters(str(path))
    return cfg, path


def test_truncated_params_error_names_the_file(saved_tiny, tmp_path):
    cfg, path = saved_tiny
    raw = path.read_bytes()
    for cut in (len(raw) // 2, 20, len(raw) - 3):
        bad = tmp_path / f"cut{cut}.params"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError) as e:
            load_params(SSD(cfg), bad)
        msg = str(e.value)
        assert str(bad) in msg and "truncated or corrupt" in msg, msg
        assert "Traceback" not in msg


def test_wrong_params_error_names_the_file_and_the_parameter(saved_tiny):
    _, path = saved_tiny
    # another width: the first backbone conv has 16 instead of 8 filters
    other = config_from_dict(tiny_config_dict(model={"width": 0.5}))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*'backbone\.stages\.0\.0\.weight' has shape"):
        load_params(SSD(other), path)
    # other extra-layer channels
    other = config_from_dict(tiny_config_dict(model={"extra_channels": [[32, 48]]}))
    with pytest.raises(ValueError, match=r"parameter 'backbone\.extras\.0\.3\.weight' has shape \(64, 32, 3, 3\)"):
        load_params(SSD(other), path)
    # a model without the level norms: the file has parameters the model does not
    other = config_from_dict(tiny_config_dict(model={"level_norm": False}))
    with pytest.raises(ValueError, match=r"unexpected parameter 'level_norms\.0\.\w+'"):
        load_params(SSD(other), path)
    # a model with a bigger head: parameters missing from the file
    other = config_from_dict(tiny_config_dict(model={"class_names": ["face", "mask"]}))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*parameter 'cls_heads\.\d\.\w+' has shape"):
        load_params(SSD(other), path)
