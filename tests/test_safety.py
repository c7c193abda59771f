"""Never lose a user's data: output safety, run folders, resume and input errors (issue 14).

One test (or two) per case of the issue, numbered as there:
 1 an output never resolves to an input (detect --out, webcam --output, export --out/--name);
 2 one run per train.out_dir, and rotation only deletes the current run's checkpoints;
 3 --resume with a changed shape or a truncated checkpoint names the file and the parameters;
 4 a corrupt ground-truth .mat is a one-line error naming it;
 5 YAML / --set floats such as 1e-4;
 6 Ctrl-C during `train` exits 130 after saving;
 7 a truncated JPEG is flagged;
 8 evaluate --pred: missing prediction files are an error (--allow-missing), negative widths too;
 9 the pixel limit (eval.max_image_pixels);
10 outputs respect the umask;
11 a temporary ONNX export (unwritable cache) is removed;
12 an empty labels file / a missing data folder: clear errors, no empty run folder left.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import mxnet as mx
import numpy as np
import pytest
import yaml

from synthetic import make_image, tiny_config, tiny_config_dict, write_wider

from ssd_mnv2 import cli
from ssd_mnv2.anchor_lab import make_synthetic_widerface
from ssd_mnv2.config import dump_config, load_config
from ssd_mnv2.engine.checkpoint import CheckpointError, latest_checkpoint, save_checkpoint
from ssd_mnv2.engine.evaluate import evaluate_predictions
from ssd_mnv2.engine.trainer import fit
from ssd_mnv2.inference import detect_paths
from ssd_mnv2.model.ssd import build_ssd
from ssd_mnv2.predictor import Detector

ROOT = Path(__file__).resolve().parents[1]


def _digests(folder: Path) -> dict:
    """{relative path: sha256} of every file under ``folder`` (to prove nothing changed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def detector():
    cfg = tiny_config(eval={"display_threshold": 0.0, "max_detections": 20, "pre_nms_topk": 200})
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    return Detector(cfg, ssd, fused=False)


@pytest.fixture()
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(d / f"img_{i}.jpg"), make_image(rng, (160, 120), 2)[0])
    return d


@pytest.fixture()
def data(tmp_path):
    write_wider(tmp_path / "d", n_images=8, zero_face_every=4)
    return tmp_path / "d"


# ------------------------------------------------------------------------------------ case 5
def test_floats_written_as_people_write_them(tmp_path):
    p = tmp_path / "c.yaml"
    d = tiny_config_dict()
    p.write_text(yaml.safe_dump(d).replace("lr: 0.001", "lr: 1e-4"))
    assert "lr: 1e-4" in p.read_text()
    assert load_config(p).train.lr == pytest.approx(1e-4)
    cfg = load_config(p, ["train.lr=1e-4", "train.wd=5E-5", "train.momentum=.95", "train.step_factor=1.0e1",
                          "train.log_interval=1e2", "train.batch_size=4"])
    t = cfg.train
    assert (t.lr, t.wd, t.momentum, t.step_factor) == (1e-4, 5e-5, 0.95, 10.0)
    assert t.log_interval == 100 and isinstance(t.log_interval, int)  # a whole number: an integer
    assert t.batch_size == 4 and isinstance(t.batch_size, int)  # integers stay integers
    assert load_config(p, ["train.ctx=1e-4x"]).train.ctx == "1e-4x"  # not a number: a string


# ----------------------------------------------------------------------------------- case 10
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_outputs_respect_the_umask(data, tmp_path, photos, detector, umask):
    old = os.umask(umask)
    try:
        detect_paths(detector, [photos], tmp_path / "det", verbose=False)
        fit(tiny_config(data, tmp_path / "run"), max_iters=1, progress=False)
    finally:
        os.umask(old)
    files = [tmp_path / "det" / "detections.json", tmp_path / "run" / "last.json", tmp_path / "run" / "config.yaml"]
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f
    ck = latest_checkpoint(tmp_path / "run")
    assert ck.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (ck / "state.json").stat().st_mode & 0o777 == 0o666 & ~umask
