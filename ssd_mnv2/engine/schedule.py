"""Learning-rate schedule as a pure function of the global iteration (exact resume for free)."""
from __future__ import annotations

import math

from ..config import TrainCfg

__all__ = ["lr_at"]


def lr_at(train: TrainCfg, step: int, iters_per_epoch: int, base_lr: float | None = None) -> float:
    """LR at global iteration ``step``: linear warm-up, then cosine (to 0) or step decay."""
    lr0 = train.lr if base_lr is None else base_lr
    warm = int(round(train.warmup_epochs * iters_per_epoch))
    total = max(1, train.epochs * iters_per_epoch)
    if warm > 0 and step < warm:
        return lr0 * (0.1 + 0.9 * step / warm)
    if train.schedule == "cosine":
        t = min(1.0, (step - warm) / max(1, total - warm))
        return lr0 * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))
    epoch = step / max(1, iters_per_epoch)
    drops = sum(1 for e in train.step_epochs if epoch >= e)
    return lr0 * (train.step_factor ** drops)
