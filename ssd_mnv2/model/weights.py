"""Loading trained weights: a ``.params`` file into a network, with errors that name the file
and the mismatched parameters (used by training, inference and deployment alike)."""
from __future__ import annotations

from pathlib import Path
from typing import List

import mxnet as mx

__all__ = ["load_params", "mxnet_error_reason"]


def mxnet_error_reason(e: BaseException) -> str:
    """The one line of an MXNetError that says what went wrong (its text starts with a C++
    "Traceback" that means nothing to a user)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return next((ln for ln in reversed(lines) if "Check" in ln or "Invalid" in ln or "Error" in ln),
                lines[-1] if lines else "unreadable")


MISMATCHED = ("error", "reinit", "densify")


def load_params(net: mx.gluon.Block, path: str | Path, ctx=None, mismatched: str = "error",
                source_cfg=None) -> List[str]:
    """Load a ``.params`` file with an error naming the file and the mismatched parameters (with
    both shapes).

    Fine-tuning into a changed head (the net must then be initialised with known shapes):
    ``mismatched="reinit"`` loads every parameter whose shape matches and leaves the others as
    the network initialised them; ``"densify"`` (only ``anchors.density`` changed from
    ``source_cfg``, the file's config) maps the old heads' rows onto the new anchors
    (:mod:`.densify`: the same boxes as before). Returns the names of the parameters not loaded
    as they are in the file (fresh or mapped)."""
    if mismatched not in MISMATCHED:
        raise ValueError(f"mismatched: must be one of {', '.join(MISMATCHED)}, got {mismatched!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    try:
        loaded = mx.nd.load(str(path))
    except mx.base.MXNetError as e:
        raise ValueError(f"{path}: not a valid MXNet .params file (truncated or corrupt, "
                         f"{path.stat().st_size} bytes): {mxnet_error_reason(e)}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a Gluon parameter file (no parameter names)")
    # anchor grids are constants computed from the config (never read from files)
    params = {k: v for k, v in net._collect_params_with_prefix().items() if not k.endswith("anchors")}
    loaded = {k: v for k, v in loaded.items() if not k.endswith("anchors")}
    changed: List[str] = []
    if mismatched == "densify":
        from .densify import densify_head_arrays

        if source_cfg is None:
            raise ValueError(f"{path}: mismatched='densify' needs the file's config (source_cfg)")
        arrays, changed = densify_head_arrays(source_cfg, net.cfg, {k: v.asnumpy() for k, v in loaded.items()})
        loaded = {k: mx.nd.array(v, dtype=loaded[k].dtype) for k, v in arrays.items()}
    missing = [k for k in params if k not in loaded]
    extra = [k for k in loaded if k not in params]
    if missing:
        raise ValueError(f"{path}: parameter {missing[0]!r} missing from the file "
                         f"({len(missing)} missing; does the config match the model?)")
    if extra:
        raise ValueError(f"{path}: unexpected parameter {extra[0]!r} in the file "
                         f"({len(extra)} extra; does the config match the model?)")
    # unknown (deferred, 0) dimensions of the model's shape match anything
    wrong = [(k, loaded[k].shape, tuple(p.shape)) for k, p in params.items()
             if p.shape is not None and (len(p.shape) != len(loaded[k].shape) or any(
                 s > 0 and s != a for s, a in zip(p.shape, loaded[k].shape)))]
    if (wrong and mismatched == "reinit") or mismatched == "densify":
        if any(p.shape is None or 0 in p.shape for p in params.values()):
            raise ValueError(f"{path}: mismatched={mismatched!r} needs a network with known shapes "
                             "(run one forward pass first)")
        skip = {k for k, _, _ in wrong} if mismatched == "reinit" else set()
        if wrong and mismatched == "densify":
            k, in_file, in_model = wrong[0]
            raise ValueError(f"{path}: parameter {k!r} has shape {in_file} after densifying but "
                             f"{in_model} in the model")
        for k, p in params.items():
            if k not in skip:
                p.set_data(loaded[k])
        return sorted(skip | set(changed))
    if wrong:
        k, in_file, in_model = wrong[0]
        more = "".join(f"; {k2!r} {f2} vs {m2}" for k2, f2, m2 in wrong[1:4])
        more += f"; ... {len(wrong) - 4} more" if len(wrong) > 4 else ""
        raise ValueError(f"{path}: parameter {k!r} has shape {in_file} in the file but "
                         f"{in_model} in the model ({len(wrong)} mismatched{more}; does the config match?)")
    net.load_parameters(str(path), ctx=ctx or mx.cpu())
    return []
