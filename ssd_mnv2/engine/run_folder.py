"""The run folder rule: one run per ``train.out_dir``, checked before anything is written.

* Without ``--resume`` the folder must not hold files of a run (``last.json``, logs, curves,
  ``config.yaml``, checkpoints...): training would replace them and mix two runs. The error
  names ``--resume`` and how to pick another folder.
* With ``--resume`` and no ``last.json``, the folder must not hold another run's checkpoints or
  logs either (a run that stopped before its first checkpoint leaves only ``config.yaml``, and
  resuming it starts from scratch).
* The data the run reads must exist; errors name the config key.

Nothing is created here: the folder appears with the run's first file, so a run that fails
while loading its data leaves no empty folder behind.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

from ..config import Config

__all__ = ["RunFolderError", "RUN_FILES", "run_files", "check_data_paths", "check_run_folder"]

# what a run writes into train.out_dir (files, then folders)
RUN_FILES = ("last.json", "best.json", "config.yaml", "log.csv", "log.json", "curves.png",
             "eval_list.txt", "checkpoints/", "eval/")


class RunFolderError(ValueError):
    """``train.out_dir`` cannot be used for this run (the message says why and what to do)."""


def run_files(out_dir: str | Path) -> List[str]:
    """The entries of :data:`RUN_FILES` present in ``out_dir`` (folders only when not empty)."""
    out = Path(out_dir)
    found = []
    for name in RUN_FILES:
        p = out / name.rstrip("/")
        if name.endswith("/") and p.is_dir():
            if any(p.iterdir()):
                found.append(name)
        elif p.exists():
            found.append(name)
    return found


def check_data_paths(cfg: Config, split: str = "train") -> None:
    """The images folder and labels file of ``split`` exist (FileNotFoundError naming the key)."""
    d = cfg.data
    images_key, labels_key = f"data.{split}_images", f"data.{split}_labels"
    images, labels = getattr(d, f"{split}_images"), getattr(d, f"{split}_labels")
    if not Path(images).is_dir():
        what = "VOC root folder" if d.format == "voc" else "images folder"
        raise FileNotFoundError(f"{images_key}: {what} not found: {images}")
    if d.format == "widerface" and not Path(labels).is_file():
        raise FileNotFoundError(f"{labels_key}: label file not found: {labels}")


def check_run_folder(cfg: Config, resume: bool, is_main: bool = True) -> None:
    """Refuse to start when ``train.out_dir`` holds a run this one would overwrite or mix with
    (:class:`RunFolderError`), or when the training data is missing (FileNotFoundError).
    Workers other than the main one (``is_main``) write nothing and check only the data."""
    check_data_paths(cfg, "train")
    if not is_main:
        return
    out = Path(cfg.train.out_dir)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"train.out_dir {out} exists and is not a folder")
    found = run_files(out)
    other = ("choose another folder with --out-dir DIR (or --set train.out_dir=DIR), or move "
             "the old run away")
    if not resume and found:
        raise RunFolderError(f"train.out_dir {out} already holds a run ({', '.join(found)}): "
                             f"continue it with --resume, or {other}")
    progress = [f for f in found if f != "config.yaml"]
    if resume and not (out / "last.json").is_file() and progress:
        raise RunFolderError(f"--resume: train.out_dir {out} has no last.json to resume from but "
                             f"holds files of a run ({', '.join(progress)}); {other}")
