"""CPU threads for MXNet's operators.

MXNet 1.x, when ``OMP_NUM_THREADS`` is not set, uses half the processors on Intel x86 (it assumes
two hyper-threads per core). On a machine without hyper-threading that is half the cores: on a
2-core VM, training and MXNet inference ran on one core (measured: a forward and backward pass
of the FPN model at batch 16, 300 px, 4.9 s with the default, 2.5 s with ``OMP_NUM_THREADS=2``;
training at 448 px 4.1 -> 7.1 images/s). Importing
``ssd_mnv2`` sets ``OMP_NUM_THREADS`` to the number of physical cores this process may use,
unless it is already set or MXNet is already imported (it reads the variable once, at import).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["physical_cores", "default_omp_threads"]


def physical_cores(cpus: Optional[Iterable[int]] = None, sysfs: str = "/sys/devices/system/cpu") -> int:
    """Physical cores among ``cpus`` (default: the CPUs this process may run on): hyper-thread
    siblings (``topology/thread_siblings_list`` in ``sysfs``) count once; a CPU without topology
    information counts as a core of its own."""
    if cpus is None:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for c in cpus:
        try:
            cores.add((Path(sysfs) / f"cpu{c}" / "topology" / "thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(f"cpu{c}")
    return max(1, len(cores))


def default_omp_threads() -> Optional[str]:
    """Set ``OMP_NUM_THREADS`` to :func:`physical_cores` when it is unset and MXNet is not imported
    yet; returns the value in effect (None: MXNet already chose its own)."""
    if "OMP_NUM_THREADS" not in os.environ and "mxnet" not in sys.modules:
        os.environ["OMP_NUM_THREADS"] = str(physical_cores())
    return os.environ.get("OMP_NUM_THREADS")
