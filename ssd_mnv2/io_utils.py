"""Safe file output: atomic writes (temp file in the same folder, fsync, rename) with ordinary
permissions, and the rule that an output never resolves to an input."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Union

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path", "umask_mode",
           "refuse_output_over_input", "OutputOverInputError"]


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


class OutputOverInputError(ValueError):
    """An output path that resolves to an input file or to a folder holding inputs."""


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def refuse_output_over_input(outputs: Iterable[Union[str, Path]], inputs: Iterable[Union[str, Path]],
                             option: str = "--out") -> None:
    """Raise :class:`OutputOverInputError` if an output resolves to an input, or to a folder
    holding an input (symbolic links, ``..`` and hard links included).

    ``outputs``: the files and folders a command will write (a folder output receives files of
    any name, so it must not hold an input); ``inputs``: the files and folders it reads.
    ``option`` names the output option in the message.
    """
    ins = [(str(i), Path(i).expanduser().resolve()) for i in inputs]
    for out in outputs:
        o = Path(out).expanduser().resolve()
        for shown, i in ins:
            if o == i or _same(o, i):
                raise OutputOverInputError(
                    f"{option} {out} is the input {shown}: refusing to write over an input; "
                    "choose another output path")
            if o in i.parents:
                raise OutputOverInputError(
                    f"{option} {out} is a folder holding the input {shown}: refusing to write "
                    "over inputs; choose an output folder outside the inputs")
