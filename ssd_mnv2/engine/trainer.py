"""Training: ``fit(cfg)`` prepares the network, optimizer (kvstore/Horovod) and data, then runs
a short loop whose hooks (:mod:`.hooks`) do the rest: progress, NaN guard, evaluation, atomic
checkpoints with exact resume, logs and curves, Ctrl-C. Multiple devices and MXNet kvstores
(local or distributed).
"""
from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..config import Config
from ..data.loader import EpochLoader
from ..data.pipeline import build_dataset, build_train_samples, canvas_sizes
from ..loss import MultiBoxLoss
from ..model.ssd import SSD, build_ssd
from ..model.weights import load_params
from .checkpoint import (latest_checkpoint, load_checkpoint, restore_parameters, restore_rng,
                         set_optimizer_state)
from .hooks import Hook, NonFiniteLossError, default_hooks
from .run_folder import check_run_folder
from .schedule import ServerLRScheduler, lr_at
from .train_state import EpochMeter, TrainResult, TrainRun

__all__ = ["fit", "parse_ctx", "NonFiniteLossError", "TrainResult", "Hook"]


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
    """Seed Python's, NumPy's and MXNet's RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def _freeze(net: SSD, cfg: Config) -> None:
    """Freeze the first ``train.freeze_stages`` founding backbone stages (1: features[:9], with
    ``model.stride4`` the stride-4 and stride-8 levels' layers alike); optionally freeze backbone BN."""
    for st in list(net.backbone.stages)[: cfg.train.freeze_stages]:
        for p in st.collect_params().values():
            p.grad_req = "null"
    if cfg.train.freeze_bn:
        # Keep the (folded) ImageNet statistics: backbone BN layers use their running stats.
        for bn in net.backbone.batchnorms(3):
            bn._kwargs["use_global_stats"] = True


def _no_wd_on_bn_and_bias(net: SSD) -> None:
    """No weight decay on BatchNorm scales/shifts and biases."""
    for name, p in net.collect_params().items():
        if name.endswith(("gamma", "beta", "bias")):
            p.wd_mult = 0.0


def _kvstore(cfg: Config):
    """``(kvstore, rank, number of workers)`` for ``train.kvstore``: a kind name (local, device),
    a dist_* kvstore (under a launcher), or the initialised Horovod module."""
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




def fit(cfg: Config, resume: bool = False, ctx: Optional[Sequence[mx.Context]] = None,
        max_iters: Optional[int] = None, progress: bool = True,
        hooks: Optional[Sequence[Hook]] = None) -> TrainResult:
    """Train ``cfg``; checkpoints, logs and curves go to ``cfg.train.out_dir``.

    ``resume`` continues exactly from ``out_dir/last.json`` (epoch, iteration, optimizer state,
    LR position, RNG). ``max_iters`` stops after that many iterations in this call (tests,
    benchmarks) and saves a checkpoint. ``hooks`` run after the default ones
    (:func:`~.hooks.default_hooks`) at every event, e.g. to inject faults in tests.
    """
    all_hooks = default_hooks(max_iters, progress) + list(hooks or [])  # imports evaluation now
    run = _prepare(cfg, resume, ctx)
    return _train(run, all_hooks)


def _prepare(cfg: Config, resume: bool, ctx: Optional[Sequence[mx.Context]]) -> TrainRun:
    """Devices, kvstore, run folder, network (restored on resume), data and optimizer."""
    t = cfg.train
    ctx = list(ctx) if ctx else parse_ctx(t.ctx)
    out_dir = Path(t.out_dir)
    kv, rank, num_workers = _kvstore(cfg)
    check_run_folder(cfg, resume, rank == 0)  # one run per folder; out_dir appears with the first file
    state, ck = _initial_state(out_dir, resume)
    _seed_everything(t.seed)
    net, loaded = _build_net(cfg, ctx, ck, state)
    samples, iters_per_epoch = _train_data(cfg, rank, num_workers)
    base_lr = cfg.solver.lr * (num_workers if cfg.solver.lr_scaling == "linear" else 1)
    trainer, on_servers = _make_trainer(cfg, net, kv, rank, num_workers, state, iters_per_epoch, base_lr)
    if loaded is not None:
        _restore_training_state(trainer, net, loaded, state, on_servers)
    history = list(state.get("history", []))
    return TrainRun(cfg=cfg, net=net, trainer=trainer,
                    loss_fn=MultiBoxLoss(cfg.loss.neg_ratio, cfg.loss.box_weight, cfg.loss.min_hard_negatives,
                                         box_loss=cfg.loss.box_loss, variances=cfg.anchors.variances,
                                         iou_target=cfg.loss.iou_target),
                    ctx=ctx, out_dir=out_dir, samples=samples, state=state,
                    iters_per_epoch=iters_per_epoch, base_lr=base_lr, is_main=rank == 0,
                    on_servers=on_servers, history=history, epoch=state["epoch"],
                    result=TrainResult(str(out_dir), state["epoch"], state["global_step"], history))


def _initial_state(out_dir: Path, resume: bool) -> Tuple[Dict[str, Any], Optional[Path]]:
    """A fresh run's state (a resume keeps its run_id from the checkpoint) and, with ``resume``,
    the checkpoint last.json names."""
    state: Dict[str, Any] = {"epoch": 0, "iteration": 0, "global_step": 0, "best_ap": None,
                             "history": [], "run_id": uuid.uuid4().hex}  # a resume keeps its run_id
    ck = latest_checkpoint(out_dir) if resume else None
    if resume and ck is None:
        print(f"--resume: no checkpoint in {out_dir}; starting from scratch")
    return state, ck


def _params_config(params: Path) -> Config:
    """The config a ``.params`` file was trained with: ``NAME.yaml`` beside ``NAME.params`` (a
    published model) or the checkpoint folder's ``config.yaml``."""
    from ..config import load_config

    for cand in (params.with_suffix(".yaml"), params.parent / "config.yaml"):
        if cand.is_file():
            return load_config(cand)
    raise FileNotFoundError(f"train.init_mismatched=densify: no config for {params} "
                            f"(looked for {params.with_suffix('.yaml')} and {params.parent / 'config.yaml'})")


def _build_net(cfg: Config, ctx: List[mx.Context], ck: Optional[Path], state: Dict[str, Any]):
    """The network: from checkpoint ``ck`` (``state`` updated from it), ``train.init_params``
    or the pretrained backbone; frozen stages, no weight decay on BN/bias, hybridised.
    Returns ``(net, loaded checkpoint or None)``."""
    t = cfg.train
    net = build_ssd(cfg, ctx=ctx)
    loaded = None
    if ck is not None:
        loaded = load_checkpoint(ck)
        if t.init_mismatched != "error":
            net(mx.nd.zeros((1, 3, 64, 64), ctx=ctx[0]))  # known shapes: mismatches are handled
        loaded["fresh"] = restore_parameters(net, ck, loaded, cfg, ctx=ctx, mismatched=t.init_mismatched)
        if loaded["fresh"]:
            print(f"{len(loaded['fresh'])} parameters differ in shape from the checkpoint "
                  f"(train.init_mismatched={t.init_mismatched}, no optimizer state): "
                  f"{', '.join(loaded['fresh'])}")
        state.update(loaded["state"])
        print(f"resumed from {ck} (epoch {state['epoch']}, iteration {state['iteration']}, "
              f"step {state['global_step']})")
    elif t.init_params:  # fine-tune: start from a whole trained model (e.g. the shipped one)
        source_cfg = None
        if t.init_mismatched != "error":
            net(mx.nd.zeros((1, 3, 64, 64), ctx=ctx[0]))  # known shapes: mismatches are handled
        if t.init_mismatched == "densify":
            source_cfg = _params_config(Path(t.init_params))
        fresh = load_params(net, t.init_params, ctx=ctx, mismatched=t.init_mismatched,
                            source_cfg=source_cfg)
        print(f"initialised from {t.init_params}" + (
            f" ({len(fresh)} mismatched parameters, train.init_mismatched={t.init_mismatched}: "
            f"{', '.join(fresh)})" if fresh else ""))
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
        # several canvases (data.canvas_sizes): input shapes change from batch to batch
        net.hybridize(static_alloc=True, static_shape=len(canvas_sizes(cfg)) == 1)
    return net, loaded


def _train_data(cfg: Config, rank: int, num_workers: int):
    """This worker's training samples and the number of iterations per epoch."""
    t = cfg.train
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
    return samples, iters_per_epoch


def _optimizer_args(cfg: Config, state: Dict[str, Any], iters_per_epoch: int, base_lr: float,
                    num_workers: int) -> Dict[str, Any]:
    """The optimizer's arguments (LR at the current step, weight decay, gradient scaling, ...)."""
    t = cfg.train
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
    if t.kvstore == "dist_async":  # the optimizer is pickled to the servers: the LR schedule
        opt_args["lr_scheduler"] = ServerLRScheduler(cfg, iters_per_epoch, base_lr, num_workers,  # too
                                                     start_step=state["global_step"])
    return opt_args


def _make_trainer(cfg: Config, net: SSD, kv, rank: int, num_workers: int, state: Dict[str, Any],
                  iters_per_epoch: int, base_lr: float) -> Tuple[Any, bool]:
    """The Gluon trainer on kvstore ``kv`` (Horovod's DistributedTrainer for ``horovod``);
    dist_*: workers checked to start from the same step, rank 0's weights broadcast.
    Returns ``(trainer, whether the optimizer runs on the servers)``."""
    t = cfg.train
    params = {k: v for k, v in net.collect_params().items() if v.grad_req != "null"}
    opt_args = _optimizer_args(cfg, state, iters_per_epoch, base_lr, num_workers)
    on_servers = t.kvstore == "dist_async"  # MXNet runs async updates only on the servers
    if t.kvstore == "horovod":
        import horovod.mxnet as hvd

        trainer = hvd.DistributedTrainer(params, cfg.solver.optimizer, opt_args)
        hvd.broadcast_parameters(net.collect_params(), root_rank=0)  # same start on every worker
        return trainer, on_servers
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
    return trainer, on_servers


def _restore_training_state(trainer, net: SSD, loaded: Dict[str, Any], state: Dict[str, Any],
                            on_servers: bool) -> None:
    """Resume: the optimizer state (not for dist_async, whose optimizer is on the servers) and
    the RNG."""
    if loaded["optim"] and not on_servers:
        set_optimizer_state(trainer, loaded["optim"], state.get("optimizer_update_counts", {}),
                            state.get("optimizer_num_update", 0), net=net, fresh=loaded.get("fresh", ()))
    if "rng" in state:
        restore_rng(state["rng"])


def _emit(hooks: Sequence[Hook], event: str, run: TrainRun, *args) -> None:
    """Call ``event`` on every hook, in order."""
    for h in hooks:
        getattr(h, event)(run, *args)


def _train(run: TrainRun, hooks: Sequence[Hook]) -> TrainResult:
    """The loop: epochs until the last one or an early stop, with the hooks' events around."""
    t = run.cfg.train
    # one DataLoader (its workers forked now, while the process is small) for every epoch
    run.loader = EpochLoader(run.samples, t.batch_size, t.seed, run.cfg.data.num_workers,
                             sizes=run.cfg.data.canvas_sizes)
    try:
        _emit(hooks, "on_train_begin", run)
        while run.epoch < run.last_epoch:
            if _run_epoch(run, hooks):
                break
    finally:
        run.loader.close()
        _emit(hooks, "on_train_end", run)
    return run.result


def _run_epoch(run: TrainRun, hooks: Sequence[Hook]) -> bool:
    """One epoch (from the saved iteration when resuming mid-epoch); True when the run stops."""
    run.start_batch = run.iteration = run.state["iteration"] if run.state["epoch"] == run.epoch else 0
    _emit(hooks, "on_epoch_begin", run)
    run.meter = EpochMeter()
    for batch in _batches(run):
        losses = _step(run, hooks, batch)
        _emit(hooks, "on_batch_end", run, losses)
        if run.stop and run.iteration < run.iters_per_epoch:
            run.state["epoch"], run.state["iteration"] = run.epoch, run.iteration
            _stop(run, hooks, mid_epoch=True)
            return True
    _end_epoch(run, hooks)
    if run.stop:
        _stop(run, hooks, mid_epoch=False)
    return run.stop


def _batches(run: TrainRun) -> Iterator[Tuple[mx.nd.NDArray, ...]]:
    """This epoch's batches from ``run.iteration`` on (a deterministic order per epoch and
    seed); the time spent waiting for them goes to ``run.meter``."""
    data_iter = run.loader.epoch(run.epoch, run.start_batch)
    while run.iteration < run.iters_per_epoch:
        t0 = time.perf_counter()
        try:
            batch = next(data_iter)
        except StopIteration:
            return
        run.meter.wait_s += time.perf_counter() - t0
        yield batch


def _step(run: TrainRun, hooks: Sequence[Hook], batch) -> Dict[str, float]:
    """One optimizer step on ``batch`` at the schedule's LR; returns the summed losses."""
    run.lr = lr_at(run.cfg, run.state["global_step"], run.iters_per_epoch, run.base_lr)
    if not run.on_servers:  # dist_async: the servers' ServerLRScheduler sets it
        run.trainer.set_learning_rate(run.lr)
    cls_l, box_l, total_l = _forward_backward(run, hooks, batch)
    v_total = sum(float(l.sum().asscalar()) for l in total_l)
    _emit(hooks, "on_backward", run, v_total)
    run.trainer.step(1)
    losses = {"loss": v_total, "cls_loss": sum(float(l.sum().asscalar()) for l in cls_l),
              "box_loss": sum(float(l.sum().asscalar()) for l in box_l)}
    run.meter.add(losses, batch[0].shape[0])
    run.iteration += 1
    run.state["global_step"] += 1
    run.iters_this_call += 1
    return losses


def _forward_backward(run: TrainRun, hooks: Sequence[Hook], batch):
    """Forward on every device, the loss (hooks' ``on_loss`` may replace it), backward."""
    data, cls_t, box_t = (gluon.utils.split_and_load(b, run.ctx, even_split=False) for b in batch[:3])
    with autograd.record():
        cls_p, box_p, anchors = [], [], []
        for x in data:
            c, b, a = run.net(x)
            cls_p.append(c)
            box_p.append(b)
            anchors.append(a)
        cls_l, box_l, total_l = run.loss_fn(cls_p, box_p, cls_t, box_t, anchors)
        for h in hooks:
            total_l = h.on_loss(run, total_l) or total_l
    autograd.backward(total_l)
    return cls_l, box_l, total_l


def _end_epoch(run: TrainRun, hooks: Sequence[Hook]) -> None:
    """The epoch's row into the history and the state, then the hooks (evaluate, save, log)."""
    row = run.meter.row(run.epoch, run.iteration, run.lr)
    run.epoch += 1
    run.history.append(row)
    run.state.update(epoch=run.epoch, iteration=0, history=run.history)
    _emit(hooks, "on_epoch_end", run, row)
    run.result.epochs_done, run.result.global_step = run.epoch, run.state["global_step"]


def _stop(run: TrainRun, hooks: Sequence[Hook], mid_epoch: bool) -> None:
    """An early stop: record it in the result, then the hooks (save, say how to continue)."""
    run.result.interrupted = run.interrupted
    run.result.epochs_done, run.result.global_step = run.epoch, run.state["global_step"]
    _emit(hooks, "on_stop", run, mid_epoch)
