"""One Gluon DataLoader for a whole training run: :class:`EpochLoader`.

Gluon forks its data workers when a ``DataLoader`` is built. Building one per epoch forks them
from the training process as it is at that epoch's end: at a 512 px canvas that process holds
about 12 GB, and the copy-on-write children took the machine's total from 12 to 23 GB within
seconds, which got two runs OOM-killed at an epoch boundary. ``EpochLoader`` builds the loader
once, before the first step, while the process is small, and hands it each epoch's sampler.
"""
from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence

from mxnet import gluon

from .pipeline import EpochBatchSampler

__all__ = ["EpochLoader"]


class _CurrentSampler:
    """The batch sampler the DataLoader holds: it delegates to the epoch's sampler."""

    def __init__(self) -> None:
        self.current: Optional[EpochBatchSampler] = None

    def _sampler(self) -> EpochBatchSampler:
        if self.current is None:
            raise RuntimeError("EpochLoader: call epoch(...) before iterating")
        return self.current

    def __iter__(self):
        return iter(self._sampler())

    def __len__(self) -> int:
        return len(self._sampler())


class EpochLoader:
    """Batches of ``samples`` for any epoch, from one DataLoader and one set of workers.

    ``epoch(e, start_batch)`` iterates epoch ``e``'s batches (the order of
    :class:`~.pipeline.EpochBatchSampler`: a function of seed and epoch only) from
    ``start_batch`` on. ``close()`` ends the workers (also when the loader is collected).
    """

    def __init__(self, samples: Any, batch_size: int, seed: int, num_workers: int,
                 sizes: Sequence[int] = (), prefetch: Optional[int] = None) -> None:
        self.batch_size, self.seed, self.sizes = int(batch_size), int(seed), tuple(sizes)
        self.num_samples = len(samples)
        self._sampler = _CurrentSampler()
        self._loader: Optional[gluon.data.DataLoader] = gluon.data.DataLoader(
            samples, batch_sampler=self._sampler, num_workers=num_workers, thread_pool=False,
            prefetch=2 * max(1, num_workers) if prefetch is None else prefetch)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator:
        """An iterator over epoch ``epoch``'s batches, from batch ``start_batch`` on."""
        if self._loader is None:
            raise RuntimeError("EpochLoader: used after close()")
        self._sampler.current = EpochBatchSampler(self.num_samples, self.batch_size, self.seed,
                                                  epoch, start_batch, sizes=self.sizes)
        return iter(self._loader)

    @property
    def worker_pids(self) -> List[int]:
        """The pids of the data worker processes (empty with ``num_workers=0``).

        MXNet 1.9.1 has no public handle on the pool: this reads the DataLoader's ``_worker_pool``.
        """
        pool = getattr(self._loader, "_worker_pool", None)
        return sorted(p.pid for p in getattr(pool, "_pool", []) or [])

    def close(self) -> None:
        """Terminate and reap the workers (idempotent)."""
        pool = getattr(self._loader, "_worker_pool", None)
        if pool is not None:
            pool.terminate()
            pool.join()
            self._loader._worker_pool = None
        self._loader = None
