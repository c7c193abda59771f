"""Fine-tuning arms: copies of one run's checkpoint, each trained a fixed number of iterations
with one change, so that changes are compared from the same start on the same budget.

An arm is a run folder ``<out>/<name>`` holding a copy of the start checkpoint (weights, Adam
moments, step, LR position, RNG: ``--resume`` continues it exactly) and ``arm.json``::

    {"name": ..., "from": <start checkpoint>, "start_step": s, "target_step": s + iters,
     "overrides": [...]}

:func:`prepare_arm` makes it (once; a second call returns the existing spec, after checking it
asks for the same thing), :func:`remaining_iters` says how many iterations are left to the
target (an interrupted arm continues to the same target step), :func:`extend_arm` raises a
trained (and scored) arm's target: it trains on from where it stopped, and its earlier scores
are kept in ``scored/step<N>/``. ``benchmarks/finetune_arms.py`` trains and scores the arms and
prints :func:`arms_table`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .checkpoint import latest_checkpoint

__all__ = ["parse_arm", "prepare_arm", "extend_arm", "remaining_iters", "arm_checkpoint", "arms_table",
           "SCORE_FILES"]

# what scoring an arm writes into its folder (benchmarks/finetune_arms.py)
SCORE_FILES = ("result.json", "eval", "face_free")


def parse_arm(spec: str) -> Tuple[str, List[str]]:
    """``"NAME KEY=VALUE ..."`` -> ``(name, ["KEY=VALUE", ...])`` (no overrides: the control)."""
    parts = spec.split()
    if not parts:
        raise ValueError("--arm: empty arm spec (expected 'NAME [KEY=VALUE ...]')")
    name, overrides = parts[0], parts[1:]
    if "=" in name or "/" in name or name.startswith("."):
        raise ValueError(f"--arm {spec!r}: the first word is the arm's folder name, got {name!r}")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ValueError(f"--arm {spec!r}: overrides must be KEY=VALUE, got {bad}")
    return name, overrides


def _step(ck: Path) -> int:
    return int(json.loads((ck / "state.json").read_text())["global_step"])


def arm_checkpoint(arm_dir: str | Path) -> Path:
    """The arm's latest checkpoint folder."""
    ck = latest_checkpoint(arm_dir)
    if ck is None:
        raise FileNotFoundError(f"{arm_dir}: no checkpoint (last.json)")
    return ck


def prepare_arm(out_dir: str | Path, name: str, source_run: str | Path, iters: int,
                overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Make arm ``out_dir/name`` from ``source_run``'s latest checkpoint, or from ``source_run``
    itself when it is a checkpoint folder (it holds ``state.json``), or return the spec of the
    one already there, which must have the same overrides and budget. Returns the spec."""
    arm = Path(out_dir) / name
    spec_file = arm / "arm.json"
    if spec_file.is_file():
        spec = json.loads(spec_file.read_text())
        want = {"overrides": list(overrides), "iters": int(iters)}
        have = {"overrides": spec["overrides"], "iters": spec["target_step"] - spec["start_step"]}
        if want != have:
            raise ValueError(f"{arm} exists with {have}, asked for {want}: remove it or use another name")
        return spec
    if iters < 0:
        raise ValueError(f"iterations must be >= 0, got {iters}")
    src = Path(source_run)
    ck = src if (src / "state.json").is_file() else latest_checkpoint(src)
    if ck is None:
        raise FileNotFoundError(f"{source_run}: no checkpoint to start the arm from (last.json)")
    if not (ck / "optim.params").is_file():
        raise FileNotFoundError(f"{ck}: no optim.params (a committed state must be restored first: "
                                f"scripts/train_fpn_model.sh restores training_state/ into runs/)")
    tmp = arm.with_name(arm.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints").mkdir(parents=True)
    shutil.copytree(ck, tmp / "checkpoints" / ck.name)
    (tmp / "last.json").write_text(json.dumps({"dir": f"checkpoints/{ck.name}"}))
    start = _step(ck)
    spec = {"name": name, "from": str(ck), "start_step": start, "target_step": start + int(iters),
            "overrides": list(overrides)}
    (tmp / "arm.json").write_text(json.dumps(spec, indent=1))
    if arm.exists():
        raise ValueError(f"{arm} exists but has no arm.json: remove it or use another name")
    tmp.rename(arm)
    return spec


def extend_arm(out_dir: str | Path, name: str, iters: int, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Raise arm ``out_dir/name``'s budget to ``iters`` iterations from its start (same
    overrides; not fewer than it has): its scores at the old target (:data:`SCORE_FILES`) move to
    ``scored/step<old target>/`` and its ``arm.json`` gets the new target, so the arm trains on
    from its checkpoint (the same run: ``--resume`` continues its step, LR position and RNG) and
    is scored again. Asking for the budget it already has changes nothing. Returns the spec."""
    arm = Path(out_dir) / name
    spec_file = arm / "arm.json"
    if not spec_file.is_file():
        raise FileNotFoundError(f"{arm}: no arm to extend (no arm.json)")
    spec = json.loads(spec_file.read_text())
    have = spec["target_step"] - spec["start_step"]
    if spec["overrides"] != list(overrides):
        raise ValueError(f"{arm} has overrides {spec['overrides']}, asked for {list(overrides)}: "
                         f"an extension keeps the arm's change")
    if iters < have:
        raise ValueError(f"{arm} already has {have} iterations, asked for {iters}: an arm is not shortened")
    if iters == have:
        return spec
    scored = arm / "scored" / f"step{spec['target_step']}"
    for f in SCORE_FILES:  # scores first: an interruption leaves the arm at its old target, unscored
        if (arm / f).exists():
            scored.mkdir(parents=True, exist_ok=True)
            (arm / f).rename(scored / f)
    spec = dict(spec, target_step=spec["start_step"] + int(iters))
    tmp = spec_file.with_name("arm.json.tmp")
    tmp.write_text(json.dumps(spec, indent=1))
    tmp.replace(spec_file)
    return spec


def remaining_iters(arm_dir: str | Path) -> int:
    """Iterations left before the arm reaches its target step (0 when done)."""
    spec = json.loads((Path(arm_dir) / "arm.json").read_text())
    return max(0, spec["target_step"] - _step(arm_checkpoint(arm_dir)))


def _fmt(v: Optional[float], digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def arms_table(results: Sequence[Dict[str, Any]]) -> str:
    """Markdown table of arm results (``result.json`` of ``benchmarks/finetune_arms.py``)."""
    lines = ["| arm | overrides | Easy | Medium | Hard | blank max | blank unpadded max | "
             "patterns >= 0.5 | dev crops >= 0.5 | train min |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ff = r.get("face_free", {})
        blank = max((ff[k]["max_top"] for k in ("blank original", "blank 300x300") if k in ff), default=None)
        unp = ff.get("blank unpadded", {}).get("max_top")
        pat, dev = ff.get("patterns"), ff.get("dev crops")
        pat_s = "" if pat is None else f"{round(pat['share_ge_0.5'] * pat['images'])} / {pat['images']}"
        dev_s = "" if dev is None else f"{100 * dev['share_ge_0.5']:.1f} %"
        ap = r.get("ap", {})
        lines.append(
            f"| {r['name']} | {' '.join(r['overrides']) or '(control)'} | {_fmt(ap.get('easy'))} | "
            f"{_fmt(ap.get('medium'))} | {_fmt(ap.get('hard'))} | {_fmt(blank, 2)} | {_fmt(unp, 2)} | "
            f"{pat_s} | {dev_s} | {_fmt(r.get('train_s', 0) / 60.0, 1)} |")
    return "\n".join(lines)
