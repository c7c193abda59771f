"""Typed, validated configuration.

One YAML file -> one frozen :class:`Config` with the sections ``model``, ``anchors``,
``data``, ``match`` (anchor matching), ``loss``, ``solver`` (optimizer and LR schedule),
``train`` (the training run), ``decode`` (the decoder baked into exports: score threshold,
NMS, top-k) and ``eval`` (evaluation/display settings). Loading is strict: an unknown key, a
value of the wrong type or per-level lists of different lengths raise :class:`ConfigError`
naming the key. Derived values (number of levels, anchors per location, strides) are computed
from the config, never stored. Sequences are stored as tuples (deeply frozen); dumps are plain
YAML lists.

Inheritance: a file may start with ``base: other.yaml`` (relative to the file; chains allowed,
cycles are an error). Sections are deep-merged: a child's value replaces the parent's, lists
included. :func:`dump_config` writes the fully resolved config, without ``base``.

Old spellings still load (configs, run folders and checkpoints written before the
``match``/``loss``/``solver``/``decode`` sections): ``train.lr`` is ``solver.lr``,
``eval.score_threshold`` is ``decode.score_threshold`` etc. (see :data:`LEGACY_KEYS`), in files
and in ``--set`` overrides; giving both spellings with different values is an error.

Aspect-ratio convention: a ratio is **width / height**. An anchor of size ``s`` and
ratio ``r`` has ``w = s * sqrt(r)`` and ``h = s / sqrt(r)`` (same area as ``s x s``).

Modules: :mod:`.schema` (the sections, :class:`Config`, :class:`ConfigError`, validation) and
:mod:`.loading` (YAML, type checking, old spellings, ``base:`` inheritance, ``--set``
overrides, dumps). Everything public is importable from ``ssd_mnv2.config``.
"""
from __future__ import annotations

from .loading import (DEFAULT_CONFIG, LEGACY_KEYS, apply_overrides, config_from_dict, config_to_dict,
                      dump_config, load_config, load_config_dict, yaml_load)
from .schema import (AnchorCfg, Config, ConfigError, DataCfg, DecodeCfg, EvalCfg, LossCfg, MatchCfg,
                     ModelCfg, SolverCfg, TrainCfg)

__all__ = [
    "ConfigError", "ModelCfg", "AnchorCfg", "DataCfg", "MatchCfg", "LossCfg", "SolverCfg",
    "TrainCfg", "DecodeCfg", "EvalCfg", "Config", "LEGACY_KEYS",
    "load_config", "load_config_dict", "config_from_dict", "config_to_dict", "dump_config",
    "apply_overrides", "DEFAULT_CONFIG", "yaml_load",
]
