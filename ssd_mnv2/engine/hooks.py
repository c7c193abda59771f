"""Training hooks: ``fit`` runs a short loop and calls its hooks at these events, in list order.

================================  ==========================================================
``on_train_begin(run)``           the network, optimizer and data are ready
``on_epoch_begin(run)``           ``run.epoch`` and ``run.start_batch`` are set
``on_loss(run, losses)``          inside ``autograd.record``: may return replacement losses
                                  (the per-device total losses; None keeps them)
``on_backward(run, loss)``        after the backward pass, before the update (``loss``: the
                                  batch's summed total loss)
``on_batch_end(run, losses)``     after the update (``losses``: summed ``loss``, ``cls_loss``,
                                  ``box_loss``); a hook may set ``run.stop``
``on_epoch_end(run, row)``        ``run.epoch`` counts the epochs done; ``row`` (already in
                                  ``run.history``) may get more metrics
``on_stop(run, mid_epoch)``       the run stops early (``run.stop``: Ctrl-C or ``max_iters``)
``on_train_end(run)``             always, also after an exception
================================  ==========================================================

:func:`default_hooks` gives the hooks of a training run, in this order: progress, NaN guard,
evaluation, checkpoints, log files, Ctrl-C, and the iteration limit.
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

from tqdm import tqdm

from ..config import Config, dump_config
from ..io_utils import atomic_write_text
from .checkpoint import rng_state, save_checkpoint
from .schedule import lr_at
from .train_state import TrainRun

__all__ = ["Hook", "ProgressHook", "NanGuardHook", "EvaluationHook", "CheckpointHook",
           "LogFilesHook", "SigintHook", "StopAfterHook", "NonFiniteLossError", "default_hooks"]


class NonFiniteLossError(RuntimeError):
    """Raised when the loss becomes NaN/inf; the last good checkpoint is left intact."""


class Hook:
    """Base class: every event does nothing. Subclasses override the events they need."""

    def on_train_begin(self, run: TrainRun) -> None:
        """The network, optimizer and data are ready; nothing trained yet in this call."""

    def on_epoch_begin(self, run: TrainRun) -> None:
        """An epoch starts (at ``run.start_batch`` when resuming mid-epoch)."""

    def on_loss(self, run: TrainRun, losses: List[Any]) -> Optional[List[Any]]:
        """The per-device total losses, inside ``autograd.record``; return replacements or None."""
        return None

    def on_backward(self, run: TrainRun, loss: float) -> None:
        """Gradients are computed, the optimizer has not updated yet."""

    def on_batch_end(self, run: TrainRun, losses: Dict[str, float]) -> None:
        """The optimizer updated; ``run.iteration`` and the global step count this batch."""

    def on_epoch_end(self, run: TrainRun, row: Dict[str, Any]) -> None:
        """An epoch ended; ``row`` is its line of the logs (in ``run.history``)."""

    def on_stop(self, run: TrainRun, mid_epoch: bool) -> None:
        """The run stops before its last epoch (``run.stop``), mid-epoch or at an epoch's end."""

    def on_train_end(self, run: TrainRun) -> None:
        """``fit`` returns or raises."""


class ProgressHook(Hook):
    """A tqdm bar per epoch (losses, LR, images/s, data-loader wait) on the main process, or
    with ``progress=False`` a line every ``train.log_interval`` iterations."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress
        self.bar = None

    def on_epoch_begin(self, run: TrainRun) -> None:
        """Open the epoch's bar."""
        self.bar = tqdm(total=run.iters_per_epoch - run.start_batch,
                        desc=f"epoch {run.epoch + 1}/{run.cfg.train.epochs}",
                        disable=not (self.progress and run.is_main), dynamic_ncols=True, leave=True)

    def on_batch_end(self, run: TrainRun, losses: Dict[str, float]) -> None:
        """Update the bar, or print a line every ``train.log_interval`` iterations."""
        m, el = run.meter, run.meter.elapsed()
        self.bar.set_postfix(loss=f"{m.mean('loss'):.3f}", cls=f"{m.mean('cls_loss'):.3f}",
                             box=f"{m.mean('box_loss'):.3f}", lr=f"{run.lr:.2e}",
                             ips=f"{m.n_images / el:.1f}", wait=f"{100 * m.wait_s / el:.0f}%")
        self.bar.update(1)
        every = run.cfg.train.log_interval
        if not self.progress and run.is_main and every and m.n_batches % every == 0:
            print(f"epoch {run.epoch + 1} iteration {run.iteration}/{run.iters_per_epoch}: loss "
                  f"{m.mean('loss'):.3f} (cls {m.mean('cls_loss'):.3f}, box {m.mean('box_loss'):.3f}), "
                  f"lr {run.lr:.2e}, {m.n_images / el:.1f} img/s", flush=True)

    def on_epoch_end(self, run: TrainRun, row: Dict[str, Any]) -> None:
        """Close the bar."""
        self._close()

    def on_stop(self, run: TrainRun, mid_epoch: bool) -> None:
        """Close the bar."""
        self._close()

    def on_train_end(self, run: TrainRun) -> None:
        """Close a bar left open by an exception."""
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class NanGuardHook(Hook):
    """Stop with :class:`NonFiniteLossError` when the loss is NaN/inf, before the optimizer
    updates: the weights stay finite and ``last.json`` still names the last good checkpoint."""

    def on_backward(self, run: TrainRun, loss: float) -> None:
        """Raise when ``loss`` is not finite."""
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss} at epoch {run.epoch + 1}, iteration {run.iteration + 1} "
                f"(global step {run.state['global_step']}, lr {run.lr:.3g}); stopping without "
                f"updating. The last good checkpoint ({run.out_dir / 'last.json'}) is intact; "
                "lower solver.lr or check the data, then --resume.")


class EvaluationHook(Hook):
    """Dev AP (official WIDER protocol) every ``train.eval_every`` epochs and after the last one,
    on the main process: adds ``ap_easy``/``ap_medium``/``ap_hard`` to the epoch's row.

    Evaluation goes through a :class:`~ssd_mnv2.predictor.Detector` (through ONNX Runtime when
    installed). The inference layer is imported when the hook is made, i.e. when training
    starts: a run of days must evaluate with the code it started with, not with files edited
    while it trains (a lazy import at the first evaluation would pick those up)."""

    def __init__(self) -> None:
        from ..deploy import onnx
        from .. import predictor
        from ..evaluation import driver, image_list

        self._onnx, self._predictor = onnx, predictor
        self._evaluate, self._image_list = driver, image_list

    def on_epoch_end(self, run: TrainRun, row: Dict[str, Any]) -> None:
        """Evaluate when due; the network is re-hybridised for training afterwards."""
        t = run.cfg.train
        if not (run.is_main and t.eval_every > 0
                and (run.epoch % t.eval_every == 0 or run.epoch == run.last_epoch)):
            return
        row.update(self.dev_ap(run.cfg, run.net, run.ctx[0], run.out_dir, run.epoch))
        if t.hybridize:  # evaluation re-hybridised the shared network for inference
            run.net.hybridize(static_alloc=True, static_shape=True)

    def dev_ap(self, cfg: Config, net, ctx, out_dir: Path, epoch: int) -> Dict[str, Any]:
        """Dev AP with the official WIDER protocol (on ``train.eval_max_images`` images if > 0);
        {} without WIDER validation data."""
        d = cfg.data
        gt = Path(d.val_gt_dir)
        if d.format != "widerface" or not gt.is_dir() or not Path(d.val_images).is_dir():
            return {}
        kw = dict(list_file=self._eval_list(cfg, out_dir), size=cfg.train.eval_size,
                  out_dir=str(out_dir / "eval" / f"epoch{epoch:03d}"))
        det = self._predictor.Detector(cfg, net, ctx=ctx, fused=False, source=f"epoch {epoch}")
        if self._onnx.onnx_available():  # 3-4x faster than MXNet at original size; same detections
            res = self._evaluate_onnx(det, cfg, out_dir, str(gt), kw)
        else:
            res = self._evaluate.evaluate_detector(det, d.val_images, str(gt), **kw)
        return {f"ap_{k}": (None if v is None else float(v)) for k, v in res.get("ap", {}).items()}

    def _eval_list(self, cfg: Config, out_dir: Path) -> Optional[str]:
        """``data.val_list``, or with ``train.eval_max_images`` > 0 a list of the first images."""
        d = cfg.data
        if cfg.train.eval_max_images <= 0:
            return d.val_list
        il = self._image_list
        imgs = il.read_image_list(d.val_list) if d.val_list else il.find_images(d.val_images)
        list_file = str(out_dir / "eval_list.txt")
        atomic_write_text(list_file, "\n".join(imgs[: cfg.train.eval_max_images]) + "\n")
        return list_file

    def _evaluate_onnx(self, det, cfg: Config, out_dir: Path, gt: str, kw: Dict[str, Any]):
        """Evaluate ``det`` exported to ONNX in a temporary folder of ``out_dir`` (removed after)."""
        import shutil
        import tempfile

        tmp = tempfile.mkdtemp(prefix="onnx_", dir=str(out_dir))
        try:
            onnx_det = self._onnx.OnnxDetector(self._onnx.cached_onnx_export(det, tmp), cfg)
            return self._evaluate.evaluate_detector(onnx_det, cfg.data.val_images, gt, **kw)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class CheckpointHook(Hook):
    """Checkpoints on the main process (:func:`~.checkpoint.save_checkpoint`: written under a
    temporary name, renamed, then ``last.json`` replaced atomically; older checkpoints of this
    ``run_id`` rotated out): ``config.yaml`` at the start, a checkpoint after every epoch and at
    an early stop, and ``best.json`` when the epoch's dev hard AP is the best so far."""

    def on_train_begin(self, run: TrainRun) -> None:
        """Write the resolved config next to the logs."""
        if run.is_main:
            dump_config(run.cfg, run.out_dir / "config.yaml")

    def on_epoch_end(self, run: TrainRun, row: Dict[str, Any]) -> None:
        """On a new best hard AP the best checkpoint first, then the epoch's checkpoint (once,
        with the new best_ap in its state)."""
        if not run.is_main:
            return
        ap = row.get("ap_hard")
        if ap is not None and (run.state["best_ap"] is None or ap > run.state["best_ap"]):
            run.state["best_ap"] = ap
            s = dict(run.state, rng=rng_state(), iters_per_epoch=run.iters_per_epoch)
            save_checkpoint(run.out_dir, run.net, None, run.cfg, s, pointer="best.json")
        self.save(run, run.epoch, 0)

    def on_stop(self, run: TrainRun, mid_epoch: bool) -> None:
        """Mid-epoch: save the position (an epoch's end was saved already)."""
        if mid_epoch and run.is_main:
            self.save(run, run.epoch, run.iteration)

    @staticmethod
    def save(run: TrainRun, epoch: int, iteration: int) -> None:
        """Save a resumable checkpoint at (``epoch``, ``iteration``) and point last.json at it."""
        s = dict(run.state)
        s.update(epoch=epoch, iteration=iteration, rng=rng_state(), iters_per_epoch=run.iters_per_epoch,
                 lr=lr_at(run.cfg, max(0, run.state["global_step"] - 1), run.iters_per_epoch,
                          run.base_lr))  # the last step's
        save_checkpoint(run.out_dir, run.net, run.trainer, run.cfg, s)


class LogFilesHook(Hook):
    """After every epoch (main process): log.csv, log.json and curves.png in ``out_dir``
    (written atomically), and the epoch's row printed as one JSON line."""

    def on_epoch_end(self, run: TrainRun, row: Dict[str, Any]) -> None:
        """Rewrite the logs from ``run.history`` and print ``row``."""
        if run.is_main:
            write_logs(run.out_dir, run.history)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))


class SigintHook(Hook):
    """Ctrl-C on the main process: finish the current step, stop like at ``max_iters`` (the
    checkpoint hook saves), print 'continue with --resume' and return ``interrupted=True``
    (``ssd-mnv2 train`` then exits 130). A second Ctrl-C aborts without saving."""

    def __init__(self) -> None:
        self._old = None

    def on_train_begin(self, run: TrainRun) -> None:
        """Install the handler (main process, main thread only)."""
        if not (run.is_main and threading.current_thread() is threading.main_thread()):
            return

        def on_sigint(signum, frame):  # finish the current step, then save and exit
            if run.interrupted:
                raise KeyboardInterrupt
            run.interrupted = run.stop = True
            print("\nCtrl-C: finishing this step, saving a checkpoint and exiting "
                  "(press again to abort without saving)")
        self._old = signal.signal(signal.SIGINT, on_sigint)

    def on_stop(self, run: TrainRun, mid_epoch: bool) -> None:
        """Say where the run was saved and how to continue it."""
        if not (run.interrupted and run.is_main):
            return
        where = (f"epoch {run.epoch + 1} iteration {run.iteration}" if mid_epoch
                 else f"the end of epoch {run.epoch}")
        print(f"saved {run.out_dir / 'last.json'} at {where}; continue with --resume")

    def on_train_end(self, run: TrainRun) -> None:
        """Put the previous handler back."""
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


class StopAfterHook(Hook):
    """Stop after ``max_iters`` iterations in this call (tests, benchmarks); the checkpoint hook
    saves the position."""

    def __init__(self, max_iters: int) -> None:
        self.max_iters = max_iters

    def on_batch_end(self, run: TrainRun, losses: Dict[str, float]) -> None:
        """Request the stop once enough iterations ran."""
        if run.iters_this_call >= self.max_iters:
            run.stop = True


def default_hooks(max_iters: Optional[int] = None, progress: bool = True) -> List[Hook]:
    """The hooks of a training run, in the order their events run."""
    hooks: List[Hook] = [ProgressHook(progress), NanGuardHook(), EvaluationHook(), CheckpointHook(),
                         LogFilesHook(), SigintHook()]
    if max_iters is not None:
        hooks.append(StopAfterHook(max_iters))
    return hooks


def _plot_curves(history: List[Dict[str, Any]], png: Path) -> None:
    """Loss, LR and dev AP by epoch, written atomically to ``png``."""
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


def write_logs(out_dir: Path, history: List[Dict[str, Any]]) -> None:
    """log.csv (columns in order of first appearance), log.json and curves.png."""
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
