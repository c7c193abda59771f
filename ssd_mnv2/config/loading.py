"""Loading configs: YAML, type checking, old spellings, ``base:`` inheritance, overrides, dumps.

:func:`load_config` reads a YAML file (:func:`yaml_load`: safe, with YAML 1.2 floats) into a
validated :class:`~ssd_mnv2.config.schema.Config`. Loading is strict: an unknown key, a value of
the wrong type or per-level lists of different lengths raise :class:`ConfigError` naming the key.

Inheritance: a file may start with ``base: other.yaml`` (relative to the file; chains allowed,
cycles are an error). Sections are deep-merged: a child's value replaces the parent's, lists
included. :func:`dump_config` writes the fully resolved config, without ``base``, as plain YAML
lists.

Old spellings still load (configs, run folders and checkpoints written before the
``match``/``loss``/``solver``/``decode`` sections): ``train.lr`` is ``solver.lr``,
``eval.score_threshold`` is ``decode.score_threshold`` etc. (see :data:`LEGACY_KEYS`), in files
and in ``--set`` overrides; giving both spellings with different values is an error.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from .schema import (AnchorCfg, Config, ConfigError, DataCfg, DecodeCfg, EvalCfg, LossCfg, MatchCfg,
                     ModelCfg, SolverCfg, TrainCfg)

__all__ = [
    "LEGACY_KEYS", "load_config", "load_config_dict", "config_from_dict", "config_to_dict",
    "dump_config", "apply_overrides", "DEFAULT_CONFIG", "yaml_load",
]

# the shipped model's config: ssd_mnv2/models/face_mnv2_300.yaml (this file is ssd_mnv2/config/loading.py)
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "models" / "face_mnv2_fpn_300.yaml"


class _YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads every float a person writes as a float.

    PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``1e-4``,
    ``1E5`` and ``1.0e4`` are strings there. Here they are floats, as in YAML 1.2 and Python;
    integers stay integers."""


_FLOAT_TAG = "tag:yaml.org,2002:float"
_YamlLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != _FLOAT_TAG]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YamlLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(stream: Any) -> Any:
    """Parse YAML text (or a file) safely (no Python objects), with :class:`_YamlLoader` floats."""
    loader = _YamlLoader(stream)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _deep_list(value: Any) -> Any:
    """Tuples (and lists) -> lists, recursively (plain YAML/JSON lists)."""
    if isinstance(value, (list, tuple)):
        return [_deep_list(v) for v in value]
    if isinstance(value, dict):
        return {k: _deep_list(v) for k, v in value.items()}
    return value


_SECTION_TYPES: Dict[str, type] = {
    "model": ModelCfg, "anchors": AnchorCfg, "data": DataCfg, "match": MatchCfg, "loss": LossCfg,
    "solver": SolverCfg, "train": TrainCfg, "decode": DecodeCfg, "eval": EvalCfg}

# old spelling (section, key) -> new section: keys that moved out of ``train`` and ``eval``
LEGACY_KEYS: Dict[Tuple[str, str], str] = {
    **{("train", k): "match" for k in ("iou_thresh", "ignore_iou")},
    **{("train", k): "loss" for k in ("neg_ratio", "min_hard_negatives", "box_weight")},
    **{("train", k): "solver" for k in ("optimizer", "lr", "momentum", "wd", "warmup_epochs",
                                         "schedule", "step_epochs", "step_factor", "clip_gradient",
                                         "lr_scaling")},
    **{("eval", k): "decode" for k in ("score_threshold", "nms_iou", "pre_nms_topk",
                                        "max_detections")},
}


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """Check (and lightly coerce: int -> float, list -> tuple) ``value`` against annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _check_type(key, value, inner)
    if origin in (tuple, list, List, Sequence):  # Tuple[X, ...] (stored form), List[X]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        return tuple(_check_type(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer():  # 2e8, 1.0e3: a whole number
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def _normalize(data: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """A copy of a config dict with every old spelling moved to its new section (``train.lr`` ->
    ``solver.lr``, ``eval.nms_iou`` -> ``decode.nms_iou``...). Both spellings with different
    values: :class:`ConfigError` naming both keys."""
    out: Dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in (data or {}).items()}
    for (old_sec, key), new_sec in LEGACY_KEYS.items():
        sec = out.get(old_sec)
        if not isinstance(sec, dict) or key not in sec:
            continue
        value = sec.pop(key)
        # type errors name the key as written
        _check_type(f"{old_sec}.{key}", value, typing.get_type_hints(_SECTION_TYPES[new_sec])[key])
        if out.get(new_sec) is None:
            out[new_sec] = {}
        target = out[new_sec]
        if not isinstance(target, dict):
            continue  # reported by config_from_dict ("expected a mapping")
        if key in target and target[key] != value:
            raise ConfigError(f"{old_sec}.{key}={value!r} and {new_sec}.{key}={target[key]!r} both "
                              f"given ({old_sec}.{key} is the old spelling of {new_sec}.{key}): "
                              "keep one")
        target[key] = value
    return out


def _check_keys(data: Mapping[str, Any]) -> None:
    """Sections and keys of a (normalized) config dict are known and well typed (no
    cross-field checks: a file with a ``base`` may be incomplete)."""
    unknown = sorted(set(data) - set(_SECTION_TYPES))
    if unknown:
        hint = " (base: is only read from config files)" if unknown[0] == "base" else ""
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(_SECTION_TYPES)}){hint}")
    for name, sec in data.items():
        if sec is None:
            continue
        cls = _SECTION_TYPES[name]
        if not isinstance(sec, Mapping):
            raise ConfigError(f"{name}: expected a mapping, got {type(sec).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        bad = sorted(set(sec) - known)
        if bad:
            raise ConfigError(f"{name}.{bad[0]}: unknown key (known keys: {', '.join(sorted(known))})")
        for k, v in sec.items():
            _check_type(f"{name}.{k}", v, hints[k])


def _section_from_dict(name: str, cls: type, data: Optional[Mapping[str, Any]]) -> Any:
    """The section ``cls`` from its dict, already checked by :func:`_check_keys` (values
    coerced: int -> float, lists -> tuples)."""
    hints = typing.get_type_hints(cls)
    return cls(**{k: _check_type(f"{name}.{k}", v, hints[k]) for k, v in (data or {}).items()})


def config_from_dict(data: Optional[Mapping[str, Any]]) -> Config:
    """Build and validate a :class:`Config` from a plain dict (as read from YAML; old spellings
    such as ``train.lr`` or ``eval.score_threshold`` are accepted)."""
    data = _normalize(data)
    _check_keys(data)
    sections = {n: _section_from_dict(n, cls, data.get(n)) for n, cls in _SECTION_TYPES.items()}
    return Config(**sections).validate()


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """The config as plain dicts and lists (what :func:`dump_config` writes)."""
    return _deep_list(dataclasses.asdict(cfg))


def _set_path(data: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if len(parts) != 2 or parts[0] not in _SECTION_TYPES:
        raise ConfigError(f"{dotted}: overrides look like section.key=value "
                          f"(sections: {', '.join(_SECTION_TYPES)})")
    section = LEGACY_KEYS.get((parts[0], parts[1]), parts[0])  # train.lr -> solver.lr
    data.setdefault(section, {})
    if data[section] is None:
        data[section] = {}
    data[section][parts[1]] = value


def apply_overrides(data: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a config dict. Old
    spellings (``train.lr``, ``eval.score_threshold``...) set the key in its new section.
    Returns the (normalized) dict."""
    data.update(_normalize(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        key, raw = item.split("=", 1)
        _set_path(data, key.strip(), yaml_load(raw))
    return data


def _read_yaml(path: Path) -> Dict[str, Any]:
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = yaml_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return dict(data or {})


def _merge(parent: Dict[str, Any], child: Mapping[str, Any]) -> Dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else (lists included) replaces."""
    out = dict(parent)
    for k, v in child.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def load_config_dict(path: str | Path, _chain: Tuple[Path, ...] = ()) -> Dict[str, Any]:
    """The config dict of a YAML file with its ``base:`` chain resolved (deep-merged, old
    spellings normalized), not yet validated as a whole. Errors name the file they come from."""
    path = Path(path)
    if not path.is_file():
        if _chain:
            raise ConfigError(f"{_chain[-1]}: base: config file not found: {path}")
        raise FileNotFoundError(f"config file not found: {path}")
    real = path.resolve()
    if real in [p.resolve() for p in _chain]:
        cycle = " -> ".join(str(p) for p in _chain + (path,))
        raise ConfigError(f"base: cycle in config inheritance: {cycle}")
    data = _read_yaml(path)
    base = data.pop("base", None)
    try:
        data = _normalize(data)
        _check_keys(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    if base is None:
        return data
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: base: expected the path of a config file, got {base!r}")
    parent = load_config_dict(path.parent / base, _chain + (path,))
    return _merge(parent, data)


def load_config(path: Optional[str | Path] = None, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config (default: the shipped model's), resolving its ``base:`` chain, and
    apply ``--set`` overrides."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    data = apply_overrides(load_config_dict(path), overrides)
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dump_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically: temp file then rename)."""
    from ..io_utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
