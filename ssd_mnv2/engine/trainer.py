"""Training loop: ``fit(cfg)`` — schedule, static hybridize, progress, logs, atomic checkpoints,
exact resume, NaN guard, Ctrl-C, multiple devices and MXNet kvstores (local or distributed).
"""
from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..config import Config, config_to_dict, dump_config
from ..data.pipeline import EpochBatchSampler, build_dataset, build_train_samples
from ..io_utils import atomic_write_text
from ..loss import MultiBoxLoss
from ..model.ssd import SSD, build_ssd
from .checkpoint import (latest_checkpoint, load_checkpoint, restore_parameters, save_checkpoint,
                         set_optimizer_state)
from .run_folder import check_run_folder
from .schedule import ServerLRScheduler, lr_at

__all__ = ["fit", "parse_ctx", "NonFiniteLossError", "TrainResult"]


class NonFiniteLossError(RuntimeError):
    """Raised when the loss becomes NaN/inf; the last good checkpoint is left intact."""


@dataclass
class TrainResult:
    out_dir: str
    epochs_done: int
    global_step: int
    history: List[Dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


def parse_ctx(spec: str) -> List[mx.Context]:
    """``cpu`` / ``cpu:0,cpu:1`` / ``gpu:0,gpu:1`` -> list of contexts."""
    out = []
    for part in str(spec).split(","):
        part = part.strip().lower()
        if not part:
            continue
        kind, _, idx = part.partition(":")
        if kind not in ("cpu", "gpu"):
            raise ValueError(f"--ctx {spec!r}: expected cpu, cpu:N or gpu:N (comma separated)")
        try:
            i = int(idx) if idx else 0
        except ValueError:
            raise ValueError(f"--ctx {spec!r}: device index {idx!r} is not an integer") from None
        out.append(mx.gpu(i) if kind == "gpu" else mx.cpu(i))
    if not out:
        raise ValueError(f"--ctx {spec!r}: no device given")
    return out


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def _freeze(net: SSD, cfg: Config) -> None:
    """Freeze the first ``train.freeze_stages`` backbone stages; optionally freeze backbone BN."""
    for st in list(net.backbone.stages)[: cfg.train.freeze_stages]:
        for p in st.collect_params().values():
            p.grad_req = "null"
    if cfg.train.freeze_bn:
        # Keep the (folded) ImageNet statistics: backbone BN layers use their running stats.
        for bn in net.backbone.batchnorms(3):
            bn._kwargs["use_global_stats"] = True


def _no_wd_on_bn_and_bias(net: SSD) -> None:
    for name, p in net.collect_params().items():
        if name.endswith(("gamma", "beta", "bias")):
            p.wd_mult = 0.0


def _kvstore(cfg: Config):
    from ..dist import check_dist_env

    kind = cfg.train.kvstore
    if kind == "horovod":
        try:
            import horovod.mxnet as hvd  # noqa: F401  (optional dependency)
        except ImportError as e:
            raise RuntimeError(
                f"train.kvstore=horovod needs Horovod with MXNet support ({e}). Build it with "
                "scripts/install_horovod.sh (HOROVOD_WITH_MXNET=1 pip install --no-build-isolation "
                "horovod), launch with `horovodrun -np N "
                "ssd-mnv2 train ... --kvstore horovod`, or use --kvstore dist_sync with "
                "`ssd-mnv2 launch` (see docs/distributed.md).") from None
        hvd.init()
        return hvd, hvd.rank(), hvd.size()
    check_dist_env(kind)  # dist_* without DMLC_* variables, or a launched worker on local
    if kind.startswith("dist"):
        kv = mx.kv.create(kind)
        return kv, kv.rank, kv.num_workers
    return kind, 0, 1


def _check_workers_agree(kv, rank: int, num_workers: int, state: Dict[str, Any], key: int) -> None:
    """dist_*: every worker must start from the same step, or dist_sync would hang or diverge.

    ``key``: a kvstore key the Trainer does not use (its keys are 0 .. number of parameters - 1).
    Keep it small: MXNet picks a key's server with ``(key * 9973) % num_servers`` in int32."""
    mine = mx.nd.zeros((num_workers,))
    mine[rank] = float(state["global_step"])
    kv.init(key, mx.nd.zeros((num_workers,)))
    kv.push(key, mine)  # no optimizer on the servers: they store the sum over workers
    every = mx.nd.zeros((num_workers,))
    kv.pull(key, out=every)
    steps = [int(v) for v in every.asnumpy()]
    if len(set(steps)) > 1:
        raise RuntimeError(
            f"distributed workers start from different steps {steps} (by rank): --resume found "
            "different checkpoints. train.out_dir must be the same folder for every worker (a "
            "shared file system, or copy rank 0's out_dir to every machine before resuming).")


def _broadcast_initial_params(trainer: gluon.Trainer) -> None:
    """dist_*: send rank 0's parameters to every worker *before* the first gradient push.

    Gluon's Trainer does this lazily inside the first ``step()``: per weight, a broadcast (init
    on the server, then an asynchronous pull) immediately followed by the push of that weight's
    gradient. On CPU, MXNet's dist kvstore sends the gradient array itself (``comm_buf = merged``,
    no copy), so that push does not wait for the pending pull; when the other workers' pushes
    arrive first, the server merges them and answers the late pull with the *summed gradient*,
    which the worker then takes as its weight (whole tensors differ between workers). Doing the
    broadcast here and waiting for it removes the race. Parameters must be initialised (not
    deferred) by now."""
    for p in trainer._params:
        # an imperative oneDNN forward (materialising shapes) may have turned weights into oneDNN
        # layout in place, which the kvstore cannot send ("can't generate TBlob for MKLDNN
        # data"): rebuild every array (and its gradient) from a plain copy
        p._init_impl(mx.nd.array(p.data().asnumpy(), dtype=p.dtype), p.list_ctx())
    trainer._init_kvstore()
    trainer._init_params()
    if trainer._params_to_init:  # deferred parameters would be broadcast lazily again
        names = [p.name for p in trainer._params_to_init][:3]
        raise RuntimeError(f"dist kvstore: parameters not initialised before training: {names}")
    mx.nd.waitall()


def _plot_curves(history: List[Dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key, lab in (("loss", "total"), ("cls_loss", "cls"), ("box_loss", "box")):
        axes[0].plot(ep, [h[key] for h in history], marker="o", label=lab)
    axes[0].set_xlabel("epoch"); axes[0].set_ylabel("train loss"); axes[0].legend(); axes[0].grid(alpha=.3)
    axes[1].plot(ep, [h["lr"] for h in history], marker="o")
    axes[1].set_xlabel("epoch"); axes[1].set_ylabel("lr (end of epoch)"); axes[1].grid(alpha=.3)
    for sub in ("easy", "medium", "hard"):
        pts = [(h["epoch"], h[f"ap_{sub}"]) for h in history if h.get(f"ap_{sub}") is not None]
        if pts:
            axes[2].plot(*zip(*pts), marker="o", label=sub)
    axes[2].set_xlabel("epoch"); axes[2].set_ylabel("dev AP"); axes[2].grid(alpha=.3)
    if axes[2].lines:
        axes[2].legend()
    fig.tight_layout()
    tmp = png.with_name("." + png.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, png)


def _write_logs(out_dir: Path, history: List[Dict[str, Any]]) -> None:
    keys: List[str] = []
    for h in history:
        keys += [k for k in h if k not in keys]
    rows = [",".join(keys)] + [",".join("" if h.get(k) is None else str(h.get(k)) for k in keys)
                               for h in history]
    atomic_write_text(out_dir / "log.csv", "\n".join(rows) + "\n")
    atomic_write_text(out_dir / "log.json", json.dumps(history, indent=1))
    try:
        _plot_curves(history, out_dir / "curves.png")
    except Exception as e:  # a plotting problem must never stop training
        print(f"warning: could not plot curves: {e}")


def _evaluate(cfg: Config, net: SSD, ctx, out_dir: Path, epoch: int) -> Dict[str, Any]:
    """Dev AP with the official WIDER protocol (on ``train.eval_max_images`` images if > 0)."""
    from ..deploy.onnx import OnnxDetector, cached_onnx_export, onnx_available
    from ..predictor import Detector
    from .evaluate import find_images, evaluate_detector, read_image_list

    d = cfg.data
    gt = Path(d.val_gt_dir)
    if d.format != "widerface" or not gt.is_dir() or not Path(d.val_images).is_dir():
        return {}
    list_file = d.val_list
    if cfg.train.eval_max_images > 0:
        imgs = read_image_list(d.val_list) if d.val_list else find_images(d.val_images)
        imgs = imgs[: cfg.train.eval_max_images]
        list_file = str(out_dir / "eval_list.txt")
        atomic_write_text(list_file, "\n".join(imgs) + "\n")
    det = Detector(cfg, net, ctx=ctx, fused=False, source=f"epoch {epoch}")
    eval_dir = out_dir / "eval" / f"epoch{epoch:03d}"
    if onnx_available():  # 3-4x faster than MXNet at original size; same detections
        import shutil
        import tempfile

        tmp = tempfile.mkdtemp(prefix="onnx_", dir=str(out_dir))
        try:
            det = OnnxDetector(cached_onnx_export(det, tmp), cfg)
            res = evaluate_detector(det, d.val_images, str(gt), list_file=list_file,
                                    size=cfg.train.eval_size, out_dir=str(eval_dir))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        res = evaluate_detector(det, d.val_images, str(gt), list_file=list_file,
                                size=cfg.train.eval_size, out_dir=str(eval_dir))
    ap = res.get("ap", {})
    return {f"ap_{k}": (None if v is None else float(v)) for k, v in ap.items()}


def fit(cfg: Config, resume: bool = False, ctx: Optional[Sequence[mx.Context]] = None,
        max_iters: Optional[int] = None, progress: bool = True,
        poison_nan_at: Optional[int] = None) -> TrainResult:
    """Train ``cfg``; checkpoints, logs and curves go to ``cfg.train.out_dir``.

    ``resume`` continues exactly from ``out_dir/last.json`` (epoch, iteration, optimizer state,
    LR position, RNG). ``max_iters`` stops after that many iterations in this call (tests,
    benchmarks) and saves a checkpoint. ``poison_nan_at`` injects a NaN loss at that global step
    (used to test the guard).
    """
    t = cfg.train
    from ..deploy import onnx as _onnx  # noqa: F401  (imported up front: a long run must not
    from .. import predictor as _predictor  # noqa: F401  pick up files edited while it trains)
    from . import evaluate as _evaluate_mod  # noqa: F401

    ctx = list(ctx) if ctx else parse_ctx(t.ctx)
    out_dir = Path(t.out_dir)
    kv, rank, num_workers = _kvstore(cfg)
    is_main = rank == 0
    check_run_folder(cfg, resume, is_main)  # one run per folder; out_dir appears with the first file

    state: Dict[str, Any] = {"epoch": 0, "iteration": 0, "global_step": 0, "best_ap": None,
                             "history": [], "run_id": uuid.uuid4().hex}  # a resume keeps its run_id
    ck = latest_checkpoint(out_dir) if resume else None
    if resume and ck is None:
        print(f"--resume: no checkpoint in {out_dir}; starting from scratch")
    _seed_everything(t.seed)

    net = build_ssd(cfg, ctx=ctx)
    if ck is not None:
        loaded = load_checkpoint(ck)
        restore_parameters(net, ck, loaded, cfg, ctx=ctx)
        state.update(loaded["state"])
        print(f"resumed from {ck} (epoch {state['epoch']}, iteration {state['iteration']}, "
              f"step {state['global_step']})")
    elif t.init_params:
        # fine-tune: start from a whole trained model (e.g. the shipped one), fresh optimizer
        from ..predictor import load_params

        load_params(net, t.init_params, ctx=ctx)
        print(f"initialised from {t.init_params}")
    elif t.pretrained_backbone.lower() != "none":
        from ..model.pretrained import load_pretrained_backbone

        net(mx.nd.zeros((1, 3, 64, 64), ctx=ctx[0]))  # materialise deferred shapes
        desc = load_pretrained_backbone(net.backbone.feature_layers(), t.pretrained_backbone,
                                        cfg.model.width)
        print(f"backbone: {desc}")
    if t.kvstore.startswith("dist"):  # materialise every parameter: all are broadcast up front
        net(mx.nd.zeros((1, 3, 64, 64), ctx=ctx[0]))
    _freeze(net, cfg)
    _no_wd_on_bn_and_bias(net)
    if t.hybridize:
        net.hybridize(static_alloc=True, static_shape=True)

    dataset = build_dataset(cfg, "train")
    if getattr(dataset, "skipped", None):
        print(f"data: {len(dataset.skipped)} problem(s) skipped (data.skip_bad=true); first: "
              f"{dataset.skipped[0]}")
    samples = build_train_samples(cfg, dataset, rank, num_workers)
    # every worker runs the same number of steps (a dist_sync step waits for all workers): the
    # smallest shard (len(dataset) // num_workers images) decides
    iters_per_epoch = (len(dataset) // num_workers if num_workers > 1 else len(samples)) // t.batch_size
    if t.max_iters_per_epoch > 0:
        iters_per_epoch = min(iters_per_epoch, t.max_iters_per_epoch)
    if iters_per_epoch < 1:
        raise ValueError(f"train.batch_size={t.batch_size} is larger than the data set "
                         f"({len(samples)} images for this worker)")
    base_lr = cfg.solver.lr * (num_workers if cfg.solver.lr_scaling == "linear" else 1)

    params = {k: v for k, v in net.collect_params().items() if v.grad_req != "null"}
    opt_args: Dict[str, Any] = {"learning_rate": lr_at(cfg, state["global_step"], iters_per_epoch, base_lr),
                                "wd": cfg.solver.wd,
                                # the loss is already normalised by the positives of all devices,
                                # so the summed per-device gradients are the batch gradient
                                "rescale_grad": 1.0}
    if t.kvstore.startswith("dist") and num_workers > 1:
        # dist_* kvstores sum the workers' gradients: average them (as Horovod does), so that
        # solver.lr_scaling alone decides how the LR grows with the global batch
        opt_args["rescale_grad"] /= num_workers
    if cfg.solver.optimizer == "sgd":
        opt_args["momentum"] = cfg.solver.momentum
    if cfg.solver.clip_gradient > 0:
        opt_args["clip_gradient"] = cfg.solver.clip_gradient
    on_servers = t.kvstore == "dist_async"  # MXNet runs async updates only on the servers
    if on_servers:
        # the optimizer is pickled to the servers: the LR schedule must travel with it
        opt_args["lr_scheduler"] = ServerLRScheduler(cfg, iters_per_epoch, base_lr, num_workers,
                                                     start_step=state["global_step"])
    if t.kvstore == "horovod":
        import horovod.mxnet as hvd

        trainer = hvd.DistributedTrainer(params, cfg.solver.optimizer, opt_args)
        hvd.broadcast_parameters(net.collect_params(), root_rank=0)  # same start on every worker
    else:
        trainer = gluon.Trainer(params, cfg.solver.optimizer, opt_args, kvstore=kv,
                                update_on_kvstore=True if on_servers else
                                False if t.kvstore != "local" else None)
        if t.kvstore.startswith("dist"):
            if on_servers:  # an async server without its optimizer refuses plain pushes
                print("dist_async: the optimizer runs on the servers; its state (momentum, Adam "
                      "moments) is not checkpointed, --resume restarts it at the saved step and LR")
            else:
                _check_workers_agree(kv, rank, num_workers, state, key=len(params))
            _broadcast_initial_params(trainer)
    if ck is not None and loaded["optim"] and not on_servers:
        set_optimizer_state(trainer, loaded["optim"], state.get("optimizer_update_counts", {}),
                            state.get("optimizer_num_update", 0), net=net)
    if ck is not None and "rng" in state:
        _restore_rng(state["rng"])
    loss_fn = MultiBoxLoss(cfg.loss.neg_ratio, cfg.loss.box_weight, cfg.loss.min_hard_negatives)

    def rng_state() -> Dict[str, Any]:
        ns = np.random.get_state()
        return {"numpy": [ns[0], ns[1].tolist(), int(ns[2]), int(ns[3]), float(ns[4])],
                "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}

    def checkpoint(epoch: int, iteration: int) -> None:
        if not is_main:
            return
        s = {k: v for k, v in state.items()}
        s.update(epoch=epoch, iteration=iteration, rng=rng_state(), iters_per_epoch=iters_per_epoch,
                 lr=lr_at(cfg, max(0, state["global_step"] - 1), iters_per_epoch, base_lr))  # last step's
        save_checkpoint(out_dir, net, trainer, cfg, s)

    if is_main:
        dump_config(cfg, out_dir / "config.yaml")
    history: List[Dict[str, Any]] = list(state.get("history", []))
    result = TrainResult(str(out_dir), state["epoch"], state["global_step"], history)
    iters_this_call = 0
    interrupted = {"flag": False}
    old_handler = None
    if is_main and threading_is_main():
        def _on_sigint(signum, frame):  # finish the current step, then save and exit
            if interrupted["flag"]:
                raise KeyboardInterrupt
            interrupted["flag"] = True
            print("\nCtrl-C: finishing this step, saving a checkpoint and exiting "
                  "(press again to abort without saving)")
        old_handler = signal.signal(signal.SIGINT, _on_sigint)

    from tqdm import tqdm

    try:
        epoch = state["epoch"]
        last_epoch = t.stop_epoch or t.epochs  # stop_epoch: a prefix of the t.epochs schedule
        while epoch < last_epoch:
            start_batch = state["iteration"] if state["epoch"] == epoch else 0
            sampler = EpochBatchSampler(len(samples), t.batch_size, t.seed, epoch, start_batch)
            loader = gluon.data.DataLoader(samples, batch_sampler=sampler,
                                           num_workers=cfg.data.num_workers,
                                           thread_pool=False, prefetch=2 * max(1, cfg.data.num_workers))
            n_total = iters_per_epoch - start_batch
            bar = tqdm(total=n_total, desc=f"epoch {epoch + 1}/{t.epochs}", disable=not (progress and is_main),
                       dynamic_ncols=True, leave=True)
            sums = {"loss": 0.0, "cls_loss": 0.0, "box_loss": 0.0}
            n_seen = 0
            wait_s = 0.0
            t_epoch = time.perf_counter()
            it = start_batch
            data_iter = iter(loader)
            while it < iters_per_epoch:
                t0 = time.perf_counter()
                try:
                    batch = next(data_iter)
                except StopIteration:
                    break
                wait_s += time.perf_counter() - t0
                lr = lr_at(cfg, state["global_step"], iters_per_epoch, base_lr)
                if not on_servers:  # dist_async: the servers' ServerLRScheduler sets it
                    trainer.set_learning_rate(lr)
                data = gluon.utils.split_and_load(batch[0], ctx, even_split=False)
                cls_t = gluon.utils.split_and_load(batch[1], ctx, even_split=False)
                box_t = gluon.utils.split_and_load(batch[2], ctx, even_split=False)
                with autograd.record():
                    cls_p, box_p = [], []
                    for x in data:
                        c, b, _ = net(x)
                        cls_p.append(c)
                        box_p.append(b)
                    cls_l, box_l, total_l = loss_fn(cls_p, box_p, cls_t, box_t)
                    if poison_nan_at is not None and state["global_step"] == poison_nan_at:
                        total_l = [l * float("nan") for l in total_l]
                autograd.backward(total_l)
                v_total = sum(float(l.sum().asscalar()) for l in total_l)
                if not math.isfinite(v_total):
                    raise NonFiniteLossError(
                        f"loss is {v_total} at epoch {epoch + 1}, iteration {it + 1} "
                        f"(global step {state['global_step']}, lr {lr:.3g}); stopping without "
                        f"updating. The last good checkpoint ({out_dir / 'last.json'}) is intact; "
                        "lower solver.lr or check the data, then --resume.")
                trainer.step(1)
                v_cls = sum(float(l.sum().asscalar()) for l in cls_l)
                v_box = sum(float(l.sum().asscalar()) for l in box_l)
                bs = batch[0].shape[0]
                sums["loss"] += v_total; sums["cls_loss"] += v_cls; sums["box_loss"] += v_box
                n_seen += bs
                n_it = it - start_batch + 1
                it += 1
                state["global_step"] += 1
                iters_this_call += 1
                el = time.perf_counter() - t_epoch
                bar.set_postfix(loss=f"{sums['loss'] / n_it:.3f}", cls=f"{sums['cls_loss'] / n_it:.3f}",
                                box=f"{sums['box_loss'] / n_it:.3f}", lr=f"{lr:.2e}",
                                ips=f"{n_seen / el:.1f}", wait=f"{100 * wait_s / el:.0f}%")
                bar.update(1)
                if not progress and is_main and t.log_interval and n_it % t.log_interval == 0:
                    print(f"epoch {epoch + 1} iteration {it}/{iters_per_epoch}: loss {sums['loss'] / n_it:.3f} "
                          f"(cls {sums['cls_loss'] / n_it:.3f}, box {sums['box_loss'] / n_it:.3f}), "
                          f"lr {lr:.2e}, {n_seen / el:.1f} img/s", flush=True)
                stop_now = interrupted["flag"] or (max_iters is not None and iters_this_call >= max_iters)
                if stop_now and it < iters_per_epoch:
                    state["epoch"], state["iteration"] = epoch, it
                    checkpoint(epoch, it)
                    bar.close()
                    result.interrupted = interrupted["flag"]
                    result.epochs_done, result.global_step = epoch, state["global_step"]
                    if interrupted["flag"]:
                        print(f"saved {out_dir / 'last.json'} at epoch {epoch + 1} iteration {it}; "
                              "continue with --resume")
                    return result
            bar.close()
            el = time.perf_counter() - t_epoch
            row: Dict[str, Any] = {"epoch": epoch + 1, "iterations": it, "lr": lr,
                                   "loss": sums["loss"] / max(1, it - start_batch),
                                   "cls_loss": sums["cls_loss"] / max(1, it - start_batch),
                                   "box_loss": sums["box_loss"] / max(1, it - start_batch),
                                   "images_per_s": n_seen / max(el, 1e-9),
                                   "data_wait_frac": wait_s / max(el, 1e-9),
                                   "epoch_s": el, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
            epoch += 1
            if is_main and t.eval_every > 0 and (epoch % t.eval_every == 0 or epoch == last_epoch):
                row.update(_evaluate(cfg, net, ctx[0], out_dir, epoch))
                if t.hybridize:  # evaluation re-hybridised the shared network for inference
                    net.hybridize(static_alloc=True, static_shape=True)
            history.append(row)
            state.update(epoch=epoch, iteration=0, history=history)
            ap = row.get("ap_hard") if row.get("ap_hard") is not None else None
            if is_main:
                checkpoint(epoch, 0)
                if ap is not None and (state["best_ap"] is None or ap > state["best_ap"]):
                    state["best_ap"] = ap
                    s = dict(state, rng=rng_state(), iters_per_epoch=iters_per_epoch)
                    save_checkpoint(out_dir, net, None, cfg, s, pointer="best.json")
                    checkpoint(epoch, 0)  # record best_ap in last.json's state too
                _write_logs(out_dir, history)
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))
            result.epochs_done, result.global_step = epoch, state["global_step"]
            if interrupted["flag"] or (max_iters is not None and iters_this_call >= max_iters):
                result.interrupted = interrupted["flag"]
                if interrupted["flag"] and is_main:
                    print(f"saved {out_dir / 'last.json'} at the end of epoch {epoch}; "
                          "continue with --resume")
                return result
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    return result


def _restore_rng(rng: Dict[str, Any]) -> None:
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in rng["python"]))


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
