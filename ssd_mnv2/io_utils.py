"""Atomic file writes: write to a temp file in the same folder, fsync, then rename; the file
gets the mode an ordinary write gives it (umask)."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path", "umask_mode"]


def umask_mode(directory: bool = False) -> int:
    """The mode an ordinary new file (0666) or folder (0777) gets under the current umask."""
    mask = None
    try:  # Linux >= 4.7 reports it without changing it
        with open("/proc/self/status") as f:
            mask = next((int(ln.split()[1], 8) for ln in f if ln.startswith("Umask:")), None)
    except OSError:
        pass
    if mask is None:  # elsewhere: set it and put it back
        mask = os.umask(0o022)
        os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[str]:
    """Yield a temp path next to ``path``; on success fsync it and rename over ``path``.

    A crash (even SIGKILL) before the rename leaves ``path`` untouched; the rename itself
    is atomic on POSIX file systems.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=str(path.parent))
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file 0600: give it the mode an ordinary write would (the existing
        # file's mode when replacing one, else 0666 minus the umask)
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = umask_mode()
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(str(path.parent), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
