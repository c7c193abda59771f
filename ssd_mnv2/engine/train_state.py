"""What the training loop and its hooks share: :class:`TrainRun` (the network, optimizer, data,
checkpointed ``state`` and the current position), the per-epoch :class:`EpochMeter` and the
:class:`TrainResult` ``fit`` returns."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from ..config import Config

__all__ = ["TrainResult", "EpochMeter", "TrainRun"]


@dataclass
class TrainResult:
    """What ``fit`` returns: where the outputs are, how far it got, and whether Ctrl-C stopped it."""
    out_dir: str
    epochs_done: int
    global_step: int
    history: List[Dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


class EpochMeter:
    """Loss sums, images, data-loader wait and wall time of the current epoch (this call)."""

    def __init__(self) -> None:
        self.sums = {"loss": 0.0, "cls_loss": 0.0, "box_loss": 0.0}
        self.n_batches = 0
        self.n_images = 0
        self.wait_s = 0.0
        self.t0 = time.perf_counter()

    def add(self, losses: Dict[str, float], n_images: int) -> None:
        """Count one batch: its summed losses and its number of images."""
        for k in self.sums:
            self.sums[k] += losses[k]
        self.n_batches += 1
        self.n_images += n_images

    def elapsed(self) -> float:
        """Seconds since the epoch (this call's part of it) started."""
        return time.perf_counter() - self.t0

    def mean(self, key: str) -> float:
        """Mean of a loss over the batches so far."""
        return self.sums[key] / max(1, self.n_batches)

    def row(self, epoch: int, iterations: int, lr: float) -> Dict[str, Any]:
        """The epoch's line of log.csv/log.json (``epoch`` counts from 0 here, from 1 in the row)."""
        el = self.elapsed()
        return {"epoch": epoch + 1, "iterations": iterations, "lr": lr,
                "loss": self.mean("loss"), "cls_loss": self.mean("cls_loss"),
                "box_loss": self.mean("box_loss"),
                "images_per_s": self.n_images / max(el, 1e-9),
                "data_wait_frac": self.wait_s / max(el, 1e-9),
                "epoch_s": el, "time": time.strftime("%Y-%m-%d %H:%M:%S")}


@dataclass
class TrainRun:
    """One training run as the loop and its hooks see it.

    ``state`` is what a checkpoint's state.json records (epoch, iteration, global_step, best_ap,
    history, run_id, ...). ``epoch`` is the epoch being trained (epochs done after its end),
    ``iteration`` the next batch of that epoch. Hooks may set ``stop`` (finish after this step);
    the Ctrl-C handler also sets ``interrupted``.
    """
    cfg: Config
    net: Any
    trainer: Any
    loss_fn: Any
    ctx: List[Any]
    out_dir: Path
    samples: Any
    state: Dict[str, Any]
    iters_per_epoch: int
    base_lr: float
    is_main: bool = True
    on_servers: bool = False
    history: List[Dict[str, Any]] = field(default_factory=list)
    result: TrainResult = None  # type: ignore[assignment]
    epoch: int = 0
    start_batch: int = 0
    iteration: int = 0
    lr: float = 0.0
    iters_this_call: int = 0
    meter: EpochMeter = field(default_factory=EpochMeter)
    stop: bool = False
    interrupted: bool = False
    loader: Any = None  # the run's one EpochLoader (ssd_mnv2.data.loader), built by the loop

    @property
    def last_epoch(self) -> int:
        """The epoch to stop after: ``train.stop_epoch`` (a prefix of the schedule) or ``epochs``."""
        return self.cfg.train.stop_epoch or self.cfg.train.epochs
