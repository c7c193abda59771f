"""Tiny model configs for the tests (a few seconds per training step on a CPU). The synthetic data
the tests train and evaluate on is made by :mod:`ssd_mnv2.data.synthetic`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from ssd_mnv2.config import LEGACY_KEYS, Config, config_from_dict


def tiny_config_dict(data_root: Optional[Path] = None, out_dir: Optional[Path] = None,
                     **sections: Dict[str, Any]) -> Dict[str, Any]:
    """A tiny model (width 0.25, 96 px, one extra level + global pool) as a config dict; with
    ``data_root`` its data paths are those of :func:`ssd_mnv2.data.synthetic.write_wider` there."""
    d: Dict[str, Any] = {
        "model": {"width": 0.25, "image_size": 96, "extra_channels": [[32, 64]], "global_pool": True},
        "anchors": {"sizes": [[16], [32], [48], [64], [90]], "ratios": [[1.0]] * 5,
                    "max_input_size": 512},
        "data": {"num_workers": 0, "crop_scale": [0.5, 1.0]},
        "solver": {"optimizer": "adam", "lr": 0.001},
        "train": {"batch_size": 2, "epochs": 2, "pretrained_backbone": "none", "eval_every": 0,
                  "seed": 1, "freeze_bn": False},
        "decode": {"max_detections": 100, "pre_nms_topk": 400},
    }
    if data_root is not None:
        d["data"].update({"train_images": str(data_root / "images"), "train_labels": str(data_root / "labels.txt"),
                          "val_images": str(data_root / "images"), "val_labels": str(data_root / "labels.txt")})
    if out_dir is not None:
        d["train"]["out_dir"] = str(out_dir)
    for k, v in sections.items():  # old spellings (train={"lr": ...}) go to their new section
        for key, value in v.items():
            d.setdefault(LEGACY_KEYS.get((k, key), k), {})[key] = value
    return d


def tiny_config(data_root: Optional[Path] = None, out_dir: Optional[Path] = None, **sections) -> Config:
    """:func:`tiny_config_dict` as a :class:`ssd_mnv2.config.Config`."""
    return config_from_dict(tiny_config_dict(data_root, out_dir, **sections))
