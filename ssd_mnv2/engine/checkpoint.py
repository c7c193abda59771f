"""Atomic, pickle-free training checkpoints with exact resume.

Layout under ``out_dir``::

    checkpoints/ep003-it000178/model.params   network parameters (MXNet .params)
                              optim.params    optimizer state (momentum / Adam moments, .params)
                              state.json      epoch, iteration, global step, RNG, best metric, ...
                              config.yaml     the resolved config
    last.json                 {"dir": "checkpoints/ep003-it000178", ...}   (atomic pointer)
    best.json                 pointer to the best checkpoint by dev AP

A checkpoint folder is written under a temporary name and renamed when complete; the pointer is
then replaced atomically. A crash (even SIGKILL) at any moment leaves ``last.json`` pointing at a
complete, loadable checkpoint. Rotation (``keep``) only deletes checkpoints of the run being
saved: ``state["run_id"]`` (kept across ``--resume``) is recorded in every ``state.json``.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import mxnet as mx
import numpy as np

from ..config import Config, config_to_dict, dump_config, load_config
from ..io_utils import atomic_write_text, umask_mode
from ..model.weights import load_params, mxnet_error_reason

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "optimizer_state",
           "set_optimizer_state", "restore_parameters", "CheckpointError", "rng_state", "restore_rng",
           "round_to_bfloat16", "round_optimizer_file"]


class CheckpointError(RuntimeError):
    pass


def rng_state() -> Dict[str, Any]:
    """NumPy's and Python's RNG state as JSON-able lists (``state.json``'s ``rng``)."""
    ns = np.random.get_state()
    return {"numpy": [ns[0], ns[1].tolist(), int(ns[2]), int(ns[3]), float(ns[4])],
            "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}


def restore_rng(rng: Dict[str, Any]) -> None:
    """Set NumPy's and Python's RNG back to a :func:`rng_state`."""
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in rng["python"]))


def _structural_names(trainer: mx.gluon.Trainer, net: Optional[mx.gluon.Block]) -> List[str]:
    """Stable names (``backbone.stages.0.1.gamma``) of the trainer's parameters, by index."""
    if net is None:
        return [p.name for p in trainer._params]
    by_id = {id(p): n for n, p in net._collect_params_with_prefix().items()}
    return [by_id.get(id(p), p.name) for p in trainer._params]


def optimizer_state(trainer: mx.gluon.Trainer, net: Optional[mx.gluon.Block] = None
                    ) -> Dict[str, mx.nd.NDArray]:
    """Optimizer state (first device) as a ``name#k -> NDArray`` dict (no pickle).

    Names are the network's structural parameter names, stable across processes.
    """
    out: Dict[str, mx.nd.NDArray] = {}
    if not trainer._updaters:
        return out
    names = _structural_names(trainer, net)
    states = trainer._updaters[0].states
    for idx in range(len(trainer._params)):
        st = states.get(idx)
        if st is None:
            continue
        parts = st if isinstance(st, (tuple, list)) else (st,)
        for k, arr in enumerate(parts):
            if isinstance(arr, mx.nd.NDArray):
                out[f"{names[idx]}#{k}"] = arr.copyto(mx.cpu())
    return out


def set_optimizer_state(trainer: mx.gluon.Trainer, arrays: Dict[str, mx.nd.NDArray],
                        update_counts: Dict[str, int], num_update: int,
                        net: Optional[mx.gluon.Block] = None, fresh: Sequence[str] = ()) -> None:
    """Restore :func:`optimizer_state` output into every device's updater. Parameters named in
    ``fresh`` (freshly initialised, see :func:`restore_parameters`) start with no state."""
    opt = trainer._optimizer
    by_name = {n: i for i, n in enumerate(_structural_names(trainer, net))}
    by_name.update({p.name: i for i, p in enumerate(trainer._params)})  # older checkpoints
    fresh = set(fresh)
    update_counts = {n: c for n, c in update_counts.items() if n not in fresh}
    grouped: Dict[int, Dict[int, mx.nd.NDArray]] = {}
    for key, arr in arrays.items():
        name, k = key.rsplit("#", 1)
        if name in fresh:
            continue
        if name not in by_name:
            raise CheckpointError(f"optimizer state for unknown parameter {name!r}")
        grouped.setdefault(by_name[name], {})[int(k)] = arr
    for ui, upd in enumerate(trainer._updaters):
        ctx = trainer._contexts[ui] if ui < len(trainer._contexts) else mx.cpu()
        for idx, parts in grouped.items():
            vals = [parts[k].as_in_context(ctx) for k in sorted(parts)]
            upd.states[idx] = vals[0] if len(vals) == 1 else tuple(vals)
            upd.states_synced[idx] = True
    counts = {by_name[n]: int(c) for n, c in update_counts.items() if n in by_name}
    opt._all_index_update_counts = {i: dict(counts) for i in range(max(1, len(trainer._contexts)))}
    opt._index_update_count = opt._all_index_update_counts[0]
    opt.num_update = int(num_update)


def round_to_bfloat16(a: np.ndarray) -> np.ndarray:
    """float32 ``a`` rounded to the nearest bfloat16 value (ties to even), still as float32: the
    low 16 bits of every value are zero (relative error <= 2**-8; below float32's smallest normal,
    1.2e-38, the absolute error is under 1e-40 instead; NaN and inf stay as they are).
    The committed training state stores its Adam moments so (they gzip to half the size)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    special = ~np.isfinite(a)
    out[special] = a[special]
    return out


def round_optimizer_file(src: str | Path, dst: str | Path) -> None:
    """Write the optimizer state ``src`` (an ``optim.params``) to ``dst`` with every float32 array
    rounded by :func:`round_to_bfloat16`; other dtypes are copied unchanged."""
    try:
        arrays = mx.nd.load(str(src))
    except mx.base.MXNetError as e:
        raise CheckpointError(f"{src}: unreadable (truncated or corrupt): {mxnet_error_reason(e)}") from e
    if isinstance(arrays, list):
        arrays = {}
    out = {k: (mx.nd.array(round_to_bfloat16(v.asnumpy()), dtype="float32") if v.dtype == np.float32 else v)
           for k, v in arrays.items()}
    mx.nd.save(str(dst), out)


def _update_counts(trainer: mx.gluon.Trainer, net: Optional[mx.gluon.Block] = None) -> Dict[str, int]:
    counts = getattr(trainer._optimizer, "_index_update_count", {}) or {}
    names = _structural_names(trainer, net)
    return {names[i]: int(c) for i, c in counts.items() if i < len(names)}


def save_checkpoint(out_dir: str | Path, net: mx.gluon.Block, trainer: Optional[mx.gluon.Trainer],
                    cfg: Config, state: Dict[str, Any], keep: int = 2, pointer: str = "last.json"
                    ) -> Path:
    """Write a complete checkpoint folder, then atomically point ``pointer`` at it."""
    out_dir = Path(out_dir)
    ck_root = out_dir / "checkpoints"
    ck_root.mkdir(parents=True, exist_ok=True)
    name = f"ep{state['epoch']:03d}-it{state['iteration']:06d}"
    if pointer != "last.json":
        name = f"{Path(pointer).stem}-{name}"
    final = ck_root / name
    other = _run_id(final) if final.is_dir() else None
    if other is not None and other != state.get("run_id"):
        raise CheckpointError(f"{final} belongs to another run (run_id {other}): not replacing it "
                              "(one run per train.out_dir)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=str(ck_root)))
    try:
        os.chmod(tmp, umask_mode(directory=True))  # mkdtemp makes it 0700: an ordinary folder
        net.save_parameters(str(tmp / "model.params"))
        full_state = dict(state)
        if trainer is not None:
            mx.nd.save(str(tmp / "optim.params"), optimizer_state(trainer, net))
            full_state["optimizer_update_counts"] = _update_counts(trainer, net)
            full_state["optimizer_num_update"] = int(trainer._optimizer.num_update)
        dump_config(cfg, tmp / "config.yaml")
        (tmp / "state.json").write_text(json.dumps(full_state, indent=1))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            _delete(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(out_dir / pointer, json.dumps({"dir": str(final.relative_to(out_dir)),
                                                     "epoch": state["epoch"],
                                                     "iteration": state["iteration"]}))
    _prune(out_dir, keep, state.get("run_id"))
    return final


def _referenced(out_dir: Path) -> List[str]:
    refs = []
    for ptr in out_dir.glob("*.json"):
        try:
            d = json.loads(ptr.read_text())
            if isinstance(d, dict) and "dir" in d:
                refs.append(Path(d["dir"]).name)
        except (ValueError, OSError):
            continue
    return refs


def _run_id(ck_dir: Path) -> Optional[str]:
    """The ``run_id`` in a checkpoint's state.json (None: older checkpoints, or unreadable)."""
    try:
        st = json.loads((ck_dir / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return st.get("run_id") if isinstance(st, dict) else None


def _prune(out_dir: Path, keep: int, run_id: Optional[str] = None) -> None:
    """Delete the checkpoints of run ``run_id`` beyond the newest ``keep`` (never a pointer's
    target, never another run's), unreferenced best-* of that run, and leftovers of
    interrupted writes."""
    ck_root = out_dir / "checkpoints"
    refs = set(_referenced(out_dir))
    mine = [p for p in ck_root.iterdir() if p.is_dir() and not p.name.startswith(".")
            and _run_id(p) == run_id]
    regular = sorted(p for p in mine if p.name.startswith("ep"))
    for p in regular[:-keep] if keep > 0 else []:
        if p.name not in refs:
            _delete(p)
    for p in mine:  # unreferenced best-* of this run
        if p.name.startswith("best-") and p.name not in refs:
            _delete(p)
    for p in ck_root.iterdir():  # leftovers of interrupted writes and deletions
        if p.name.startswith("."):
            shutil.rmtree(p, ignore_errors=True)


def _delete(ck_dir: Path) -> None:
    """Remove a checkpoint folder: first renamed to a hidden name, so that a deletion cut short
    (SIGKILL) leaves a leftover the next rotation removes, never a half checkpoint without its
    state.json (whose run could no longer be told)."""
    hidden = ck_dir.with_name(f".deleting-{ck_dir.name}")
    try:
        os.replace(ck_dir, hidden)
    except OSError:
        return
    shutil.rmtree(hidden, ignore_errors=True)


def latest_checkpoint(out_dir: str | Path, pointer: str = "last.json") -> Optional[Path]:
    """The checkpoint folder ``pointer`` names, or None when there is none."""
    ptr = Path(out_dir) / pointer
    if not ptr.is_file():
        return None
    try:
        d = json.loads(ptr.read_text())
    except ValueError as e:
        raise CheckpointError(f"{ptr}: corrupt pointer file: {e}") from None
    path = Path(out_dir) / d["dir"]
    if not (path / "model.params").is_file():
        raise CheckpointError(f"{ptr}: points at {path}, which has no model.params")
    return path


def load_checkpoint(ck_dir: str | Path) -> Dict[str, Any]:
    """Read a checkpoint folder: ``{"params": path, "optim": dict, "state": dict, "config": Config}``."""
    ck_dir = Path(ck_dir)
    try:
        state = json.loads((ck_dir / "state.json").read_text())
    except ValueError as e:
        raise CheckpointError(f"{ck_dir / 'state.json'}: corrupt checkpoint state: {e}") from None
    optim = {}
    if (ck_dir / "optim.params").is_file():
        try:
            optim = mx.nd.load(str(ck_dir / "optim.params"))
        except mx.base.MXNetError as e:
            raise CheckpointError(f"{ck_dir / 'optim.params'}: unreadable (truncated or corrupt): "
                                  f"{mxnet_error_reason(e)}") from None
        if isinstance(optim, list):  # an empty dict is saved as an empty list
            optim = {}
    return {"params": ck_dir / "model.params", "optim": optim, "state": state,
            "config": load_config(ck_dir / "config.yaml")}


def _config_changes(old: Config, new: Config, sections=("model", "anchors")) -> List[str]:
    """``section.key=old (now new)`` for every value of ``sections`` that differs."""
    a, b = config_to_dict(old), config_to_dict(new)
    return [f"{sec}.{k}={a[sec][k]!r} (now {b[sec][k]!r})"
            for sec in sections for k in a[sec] if a[sec][k] != b[sec].get(k)]


def restore_parameters(net: mx.gluon.Block, ck_dir: str | Path, loaded: Dict[str, Any], cfg: Config,
                       ctx=None, mismatched: str = "error") -> List[str]:
    """Load a checkpoint's ``model.params`` into ``net`` (built from ``cfg``). A truncated file or
    a shape mismatch raises :class:`CheckpointError` naming the file, the mismatched parameters
    with both shapes and the model/anchor settings that differ from the checkpoint's config.
    ``mismatched="reinit"`` / ``"densify"`` (``train.init_mismatched``: a fine-tuning arm into a
    changed head) keeps the mismatched ones freshly initialised / maps the old heads onto a
    densified anchor layout instead; returns their names."""
    try:
        return load_params(net, loaded["params"], ctx=ctx, mismatched=mismatched,
                           source_cfg=loaded["config"])
    except ValueError as e:
        changes = _config_changes(loaded["config"], cfg)
        hint = (f"; this config changed {', '.join(changes)}: resume with the run's config "
                f"({Path(ck_dir) / 'config.yaml'}) or train into a new folder" if changes else "")
        raise CheckpointError(f"cannot resume: {e}{hint}") from None
