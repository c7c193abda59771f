"""Distributed training on MXNet's parameter-server kvstore, on one machine (127.0.0.1).

The main test starts 1 scheduler, 1 server and 2 workers with ``ssd-mnv2 launch`` and trains the
tiny model with ``dist_sync`` for a few SGD steps. Then:

* every worker holds exactly the same trainable parameters (bitwise);
* they equal a single-process reference that sees the same global batch. dist_sync sums the
  workers' gradients and the trainer divides by the number of workers, so one step is
  ``w -= lr * num_workers * (g_rank0 + g_rank1) / 2`` (``train.lr_scaling: linear``). BatchNorm
  uses the statistics of each worker's own half batch, so the reference does the same: it runs the
  two half batches (the two shards' batches) separately through one network, averages the two
  gradients and makes the same SGD step. Tolerance ``atol=1e-5 + rtol=1e-4``: the only
  differences are float32 rounding (multi-threaded kernels may sum in another order in another
  process, and the reference sums the two gradients in float32 like the server); the parameters
  move by > 1e-3 in these steps, so a wrong LR/rescale rule (x2 or x0.5) or a missing
  aggregation would be caught by orders of magnitude;
* this also guards the start-up race fixed in ``trainer._broadcast_initial_params`` (MXNet's lazy
  first-step broadcast could hand a worker the summed gradient as a weight, about 1 run in 3);
* BatchNorm running statistics are *not* synchronised by a kvstore (each worker keeps the
  moving average of its own batches; rank 0's are the ones saved), so they are not compared;
* the launcher exits 0, and no process of the job or the scheduler port is left behind.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import mxnet as mx
import numpy as np
import psutil
import pytest
import yaml

from ssd_mnv2.data.synthetic import write_wider
from tiny_configs import tiny_config_dict

from ssd_mnv2.config import config_from_dict, load_config
from ssd_mnv2.dist import check_dist_env, dmlc_env, free_port, port_is_free, worker_command

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
STEPS = 3

WORKER_SCRIPT = r'''
"""Run fit() as a dist worker, then save this worker's parameters to rank<R>.params."""
import os, sys
import ssd_mnv2.engine.trainer as tr
from ssd_mnv2.config import load_config

captured = {}
_build, _kv = tr.build_ssd, tr._kvstore

def build_ssd(*a, **k):
    captured["net"] = _build(*a, **k)
    return captured["net"]

def kvstore(cfg):
    out = _kv(cfg)
    captured["rank"] = out[1]
    return out

tr.build_ssd, tr._kvstore = build_ssd, kvstore
cfg = load_config(sys.argv[1])
tr.fit(cfg, max_iters=int(sys.argv[2]), progress=False)
captured["net"].save_parameters(os.path.join(sys.argv[3], "rank%d.params" % captured["rank"]))
print("saved rank", captured["rank"], flush=True)
'''


def make_job(tmp_path: Path, n_images: int = 8, **train) -> Path:
    """Synthetic WIDER data + a tiny dist_sync SGD config; returns the config path."""
    write_wider(tmp_path / "data", n_images=n_images, seed=3)
    tr = {"epochs": 50, "kvstore": "dist_sync", "hybridize": True, "batch_size": 2}
    tr.update(train)  # old spellings (lr_scaling=...) are moved by tiny_config_dict
    d = tiny_config_dict(tmp_path / "data", tmp_path / "out", train=tr,
                         solver={"optimizer": "sgd", "lr": 0.02, "momentum": 0.9, "warmup_epochs": 0.0})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def tagged_env(tag: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["SSD_MNV2_TEST_TAG"] = tag  # inherited by every process of the job: find leftovers
    env["OMP_NUM_THREADS"] = "1"    # modest CPU use next to other jobs
    return env


def leftover_processes(tag: str):
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("SSD_MNV2_TEST_TAG") == tag:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def run_launch(args, tag: str, timeout: float = 100):
    t0 = time.monotonic()
    r = subprocess.run([PY, "-m", "ssd_mnv2.cli", "launch"] + args, cwd=str(ROOT), env=tagged_env(tag),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def reference_params(cfg_path: Path, steps: int, num_workers: int = 2):
    """Single process, same init and global batch: the shards' half batches run separately."""
    from mxnet import autograd, gluon

    from ssd_mnv2.data.pipeline import EpochBatchSampler, build_dataset, build_train_samples
    from ssd_mnv2.engine.schedule import lr_at
    from ssd_mnv2.engine.trainer import _freeze, _no_wd_on_bn_and_bias, _seed_everything
    from ssd_mnv2.loss import MultiBoxLoss
    from ssd_mnv2.model.ssd import build_ssd

    cfg = load_config(cfg_path)
    t = cfg.train
    _seed_everything(t.seed)
    net = build_ssd(cfg, ctx=[mx.cpu()])
    _freeze(net, cfg)
    _no_wd_on_bn_and_bias(net)
    if t.hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    dataset = build_dataset(cfg, "train")
    shards = [build_train_samples(cfg, dataset, r, num_workers) for r in range(num_workers)]
    ipe = (len(dataset) // num_workers) // t.batch_size
    base_lr = cfg.solver.lr * num_workers  # lr_scaling: linear
    params = {k: v for k, v in net._collect_params_with_prefix().items() if v.grad_req != "null"}
    trainer = gluon.Trainer(list(params.values()), "sgd", {"learning_rate": base_lr, "wd": cfg.solver.wd, "momentum": cfg.solver.momentum,
                                            "rescale_grad": 1.0 / num_workers}, kvstore=None)
    loss_fn = MultiBoxLoss(cfg.loss.neg_ratio, cfg.loss.box_weight, cfg.loss.min_hard_negatives)
    iters = {}
    for step in range(steps):
        epoch = step // ipe
        grads = None
        for r, samples in enumerate(shards):
            if (r, epoch) not in iters:
                sampler = EpochBatchSampler(len(samples), t.batch_size, t.seed, epoch, 0)
                iters[(r, epoch)] = iter(gluon.data.DataLoader(samples, batch_sampler=sampler,
                                                               num_workers=0))
            x, cls_t, box_t = next(iters[(r, epoch)])
            with autograd.record():
                c, b, _ = net(x)
                _, _, total = loss_fn([c], [b], [cls_t], [box_t])
            autograd.backward(total)
            g = [p.grad().copy() for p in params.values()]
            grads = g if grads is None else [a + b for a, b in zip(grads, g)]  # float32, as the server
        for p, g in zip(params.values(), grads):
            p.grad()[:] = g
        trainer.set_learning_rate(lr_at(cfg, step, ipe, base_lr))
        trainer.step(1)
    init = build_init(cfg)
    return ({k: v.data().asnumpy() for k, v in params.items()}, init)


def build_init(cfg):
    from ssd_mnv2.engine.trainer import _seed_everything
    from ssd_mnv2.model.ssd import build_ssd

    _seed_everything(cfg.train.seed)
    net = build_ssd(cfg, ctx=[mx.cpu()])
    net(mx.nd.zeros((1, 3, cfg.model.image_size, cfg.model.image_size)))
    return {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}


def trainable_names(cfg_path: Path):
    from ssd_mnv2.engine.trainer import _freeze
    from ssd_mnv2.model.ssd import build_ssd

    cfg = load_config(cfg_path)
    net = build_ssd(cfg)
    _freeze(net, cfg)
    net(mx.nd.zeros((1, 3, 96, 96)))
    return net, {k for k, v in net._collect_params_with_prefix().items() if v.grad_req != "null"}


def launch_two_workers(tmp_path: Path, cfg_path: Path):
    """``ssd-mnv2 launch -n 2 -s 1`` of WORKER_SCRIPT; returns (result, seconds, tag, port)."""
    (tmp_path / "worker.py").write_text(WORKER_SCRIPT)
    port = free_port()
    tag = uuid.uuid4().hex
    r, dt = run_launch(["-n", "2", "-s", "1", "--port", str(port), "--",
                        PY, str(tmp_path / "worker.py"), str(cfg_path), str(STEPS), str(tmp_path)], tag)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stdout[-3000:]
    assert "all 2 worker(s) finished successfully" in r.stdout
    time.sleep(0.2)  # nothing left behind
    assert leftover_processes(tag) == []
    assert port_is_free(port)
    return r, dt, tag, port


def rank_params(tmp_path: Path, cfg_path: Path):
    """(net, trainable names, [params of rank 0, rank 1]) as saved by WORKER_SCRIPT."""
    net, trainable = trainable_names(cfg_path)
    w = []
    for rank in (0, 1):
        f = tmp_path / f"rank{rank}.params"
        assert f.is_file(), f"worker of rank {rank} did not save its parameters"
        net.load_parameters(str(f))
        w.append({k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()})
    return net, trainable, w


def assert_equal_workers_and_reference(w, cfg_path: Path, trainable) -> None:
    """Bitwise-equal workers, equal to the single-process reference within float32 rounding."""
    for k in trainable:
        assert np.array_equal(w[0][k], w[1][k]), f"workers differ on {k}"
    ref, init = reference_params(cfg_path, STEPS)
    moved = max(float(np.abs(ref[k] - init[k]).max()) for k in trainable)
    assert moved > 1e-3, f"parameters barely moved ({moved}); the comparison would be vacuous"
    worst = max(float(np.abs(w[0][k] - ref[k]).max()) for k in trainable)
    print(f"max |dist - single| = {worst:.3g} (max parameter change {moved:.3g})")
    for k in trainable:
        np.testing.assert_allclose(w[0][k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)


# ------------------------------------------------------------------------------------------
# fast unit tests
# ------------------------------------------------------------------------------------------
def test_dmlc_env_and_ports():
    env = dmlc_env("worker", 9091, 2, 1)
    assert env == {"DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "9091",
                   "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "2", "DMLC_NODE_HOST": "127.0.0.1"}
    with pytest.raises(ValueError, match="role"):
        dmlc_env("boss", 1, 1, 1)
    port = free_port()
    assert port_is_free(port)
    from ssd_mnv2.cli import COMMANDS

    assert worker_command(["--", "train", "--config", "c.yaml"], COMMANDS)[1:] == [
        "-m", "ssd_mnv2.cli", "train", "--config", "c.yaml"]
    assert worker_command(["python", "x.py"], COMMANDS) == ["python", "x.py"]
    assert worker_command(["train", "x"]) == ["train", "x"]  # without the CLI's list: a program
    with pytest.raises(ValueError, match="cannot be `launch`"):
        worker_command(["launch", "-n", "2"], COMMANDS)
    with pytest.raises(ValueError, match="no worker command"):
        worker_command([])


def test_dist_kvstore_without_launcher_is_a_clear_error(monkeypatch):
    for v in ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(RuntimeError, match="ssd-mnv2 launch"):
        check_dist_env("dist_sync")
    check_dist_env("local")
    monkeypatch.setenv("DMLC_ROLE", "worker")
    with pytest.raises(RuntimeError, match="--kvstore dist_sync"):
        check_dist_env("local")


def _fit_kind(tmp_path, kind, monkeypatch):
    from ssd_mnv2.engine.trainer import fit

    write_wider(tmp_path / "data", n_images=4, seed=1)
    cfg = config_from_dict(tiny_config_dict(tmp_path / "data", tmp_path / f"out_{kind}",
                                            train={"kvstore": kind, "hybridize": False}))
    return fit(cfg, max_iters=1, progress=False)


def test_horovod_missing_is_a_clear_error(tmp_path, monkeypatch):
    try:
        import horovod.mxnet  # noqa: F401
        pytest.skip("horovod is installed here")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="HOROVOD_WITH_MXNET=1 pip install --no-build-isolation horovod"):
        _fit_kind(tmp_path, "horovod", monkeypatch)


def test_server_lr_scheduler_follows_the_schedule_after_pickling():
    """dist_async: the schedule is pickled to the servers with the optimizer; a server counts one
    update per worker push, so num_update // num_workers is the global step."""
    import pickle

    from ssd_mnv2.config import Config, SolverCfg, TrainCfg
    from ssd_mnv2.engine.schedule import ServerLRScheduler, lr_at

    t = Config(solver=SolverCfg(lr=0.01, warmup_epochs=0.5, schedule="cosine"), train=TrainCfg(epochs=4))
    sched = ServerLRScheduler(t, iters_per_epoch=10, base_lr=0.02, num_workers=2, start_step=5)
    opt = mx.optimizer.create("sgd", learning_rate=0.02, lr_scheduler=sched)
    server_opt = pickle.loads(pickle.dumps(opt, 0))  # what KVStore.set_optimizer sends
    for num_update, step in ((0, 5), (1, 5), (2, 6), (7, 8), (40, 25), (90, 50)):
        server_opt.num_update = num_update
        assert server_opt.learning_rate == pytest.approx(lr_at(t, step, 10, 0.02))
    assert lr_at(t, 5, 10, 0.02) != lr_at(t, 25, 10, 0.02)  # the schedule does move


@pytest.mark.parametrize("kind", ["local", "device"])
def test_local_kvstores_train(tmp_path, monkeypatch, kind):
    monkeypatch.delenv("DMLC_ROLE", raising=False)
    res = _fit_kind(tmp_path, kind, monkeypatch)
    assert res.global_step == 1


def test_train_cli_without_launcher_fails_clearly(tmp_path):
    cfg = make_job(tmp_path)
    env = tagged_env("none")
    for v in ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER"):
        env.pop(v, None)
    r = subprocess.run([PY, "-m", "ssd_mnv2.cli", "train", "--config", str(cfg), "--max-iters", "1"],
                       cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "DMLC_" in r.stderr and "ssd-mnv2 launch" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------
# 2 workers + 1 server + scheduler on 127.0.0.1
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dist_sync_two_workers_match_each_other_and_single_process(tmp_path):
    cfg_path = make_job(tmp_path)
    r, dt, _, _ = launch_two_workers(tmp_path, cfg_path)
    print(f"launch took {dt:.1f} s")
    # --- rank 0 wrote the checkpoint (and only rank 0 writes: one folder, one log)
    ck_state = (tmp_path / "out" / "last.json").read_text()
    assert '"iteration"' in ck_state
    _, trainable, w = rank_params(tmp_path, cfg_path)
    # identical trainable parameters on both workers (bitwise: same pulled gradient sums)
    assert_equal_workers_and_reference(w, cfg_path, trainable)


@pytest.mark.slow
def test_dist_async_two_workers_train_with_the_optimizer_on_the_server(tmp_path):
    """dist_async: updates are applied on the server as each worker's gradient arrives."""
    cfg_path = make_job(tmp_path, kvstore="dist_async")
    r, _, _, _ = launch_two_workers(tmp_path, cfg_path)
    assert "the optimizer runs on the servers" in r.stdout
    net, trainable, w = rank_params(tmp_path, cfg_path)
    init = build_init(load_config(cfg_path))
    for rank in (0, 1):
        assert all(np.isfinite(w[rank][k]).all() for k in trainable)
        moved = max(float(np.abs(w[rank][k] - init[k]).max()) for k in trainable)
        assert moved > 1e-3, f"rank {rank}: parameters did not move ({moved}): no server update"
    # rank 0's checkpoint (weights + step; no optimizer state, it lives on the server) loads
    from ssd_mnv2.engine.checkpoint import latest_checkpoint, load_checkpoint

    ck = load_checkpoint(latest_checkpoint(tmp_path / "out"))
    assert ck["state"]["global_step"] == STEPS
    net.load_parameters(str(ck["params"]))


def _horovodrun():
    try:
        import horovod.mxnet  # noqa: F401
    except ImportError:
        return None
    import shutil

    found = shutil.which("horovodrun")
    if found is None:  # installed with --target: the script sits in <target>/bin
        import horovod

        cand = Path(horovod.__file__).resolve().parents[1] / "bin" / "horovodrun"
        found = str(cand) if cand.is_file() else None
    return found


@pytest.mark.slow
@pytest.mark.skipif(_horovodrun() is None, reason="Horovod with MXNet support is not installed "
                    "(HOROVOD_WITH_MXNET=1 pip install horovod)")
def test_horovod_two_ranks_match_each_other_and_single_process(tmp_path):
    """Same contract as dist_sync: allreduce averages the gradients, the LR scales linearly."""
    cfg_path = make_job(tmp_path, kvstore="horovod")
    (tmp_path / "worker.py").write_text(WORKER_SCRIPT)
    tag = uuid.uuid4().hex
    env = tagged_env(tag)
    r = subprocess.run([PY, _horovodrun(), "--gloo", "-np", "2", "-H", "localhost:2", PY,
                        str(tmp_path / "worker.py"), str(cfg_path), str(STEPS), str(tmp_path)],
                       cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stdout[-3000:]
    time.sleep(0.2)
    assert leftover_processes(tag) == []
    _, trainable, w = rank_params(tmp_path, cfg_path)
    assert_equal_workers_and_reference(w, cfg_path, trainable)
