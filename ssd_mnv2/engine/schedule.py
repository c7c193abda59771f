"""Learning-rate schedule as a pure function of the global iteration (exact resume for free)."""
from __future__ import annotations

import math

from ..config import Config

__all__ = ["lr_at", "ServerLRScheduler"]


def lr_at(cfg: Config, step: int, iters_per_epoch: int, base_lr: float | None = None) -> float:
    """LR at global iteration ``step``: linear warm-up, then cosine (to 0) or step decay
    (``cfg.solver``; the schedule spans ``cfg.train.epochs``)."""
    solver = cfg.solver
    lr0 = solver.lr if base_lr is None else base_lr
    warm = int(round(solver.warmup_epochs * iters_per_epoch))
    total = max(1, cfg.train.epochs * iters_per_epoch)
    if warm > 0 and step < warm:
        return lr0 * (0.1 + 0.9 * step / warm)
    if solver.schedule == "cosine":
        t = min(1.0, (step - warm) / max(1, total - warm))
        return lr0 * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))
    epoch = step / max(1, iters_per_epoch)
    drops = sum(1 for e in solver.step_epochs if epoch >= e)
    return lr0 * (solver.step_factor ** drops)


class ServerLRScheduler:
    """The :func:`lr_at` schedule as an MXNet ``lr_scheduler``, for optimizers that run on the
    parameter servers (``dist_async``: MXNet's only asynchronous mode is ``update_on_kvstore``).

    It is pickled to the servers with the optimizer. A server's optimizer counts one update per
    worker push, so ``num_update`` advances ``num_workers`` times per global step:
    step = ``start_step + num_update // num_workers`` (``start_step``: the step resumed from).
    """

    def __init__(self, cfg: Config, iters_per_epoch: int, base_lr: float, num_workers: int = 1,
                 start_step: int = 0) -> None:
        self.cfg = cfg
        self.iters_per_epoch = int(iters_per_epoch)
        self.base_lr = float(base_lr)  # MXNet's Optimizer sets this attribute too
        self._lr0 = float(base_lr)
        self.num_workers = max(1, int(num_workers))
        self.start_step = int(start_step)

    def step_of(self, num_update: int) -> int:
        return self.start_step + int(num_update) // self.num_workers

    def __call__(self, num_update: int) -> float:
        return lr_at(self.cfg, self.step_of(num_update), self.iters_per_epoch, self._lr0)
