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

from ssd_mnv2.data.synthetic import make_synthetic_widerface, write_photos, write_wider
from tiny_configs import tiny_config, tiny_config_dict

from ssd_mnv2 import cli
from ssd_mnv2.config import dump_config, load_config
from ssd_mnv2.engine.checkpoint import CheckpointError, latest_checkpoint, save_checkpoint
from ssd_mnv2.evaluation.driver import evaluate_predictions
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
    cfg = tiny_config(eval={"display_threshold": 0.0}, decode={"max_detections": 20, "pre_nms_topk": 200})
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    return Detector(cfg, ssd, fused=False)


@pytest.fixture()
def photos(tmp_path):
    return write_photos(tmp_path / "photos", 2, seed=0)


@pytest.fixture()
def data(tmp_path):
    write_wider(tmp_path / "d", n_images=8, zero_face_every=4)
    return tmp_path / "d"


# ------------------------------------------------------------------------------------ case 1
def test_detect_refuses_an_output_folder_holding_its_inputs(tmp_path, photos, detector, monkeypatch, capsys):
    from ssd_mnv2.commands import detect

    monkeypatch.setattr(detect, "backend_detector", lambda args: detector)
    (tmp_path / "link").symlink_to(photos)
    before = _digests(tmp_path)
    for inputs, out in (([photos], photos),                       # the folder itself
                        ([photos], tmp_path),                     # a folder above it
                        ([str(photos / "*.jpg")], tmp_path / "link"),  # the same folder via a link
                        ([photos / "img_0.jpg"], photos)):        # a single file's folder
        rc = cli.main(["detect", *map(str, inputs), "--out", str(out), "--blur"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert "--out" in err and "refusing to write over" in err and "img_0.jpg" in err, err
        assert "Traceback" not in err
    assert _digests(tmp_path) == before  # the photos are untouched, nothing was written
    # an output folder inside the input folder writes over nothing: allowed
    s = detect_paths(detector, [photos], photos / "annotated", verbose=False)
    assert s.processed == 2 and (photos / "annotated" / "img_0.jpg").is_file()


def test_webcam_refuses_to_write_the_video_it_reads(tmp_path, detector, monkeypatch, capsys):
    from ssd_mnv2.commands import webcam

    video = tmp_path / "v.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(5):
        w.write(np.full((120, 160, 3), 40 * i, np.uint8))
    w.release()
    os.link(video, tmp_path / "hard.mp4")
    monkeypatch.setattr(webcam, "backend_detector", lambda args: detector)
    before = video.read_bytes()
    for out in (video, tmp_path / "sub" / ".." / "v.mp4", tmp_path / "hard.mp4"):
        rc = cli.main(["webcam", "--source", str(video), "--output", str(out), "--no-display"])
        err = capsys.readouterr().err
        assert rc == 2 and "--output" in err and "is the input" in err, err
    assert video.read_bytes() == before


def test_export_refuses_to_overwrite_the_model_it_reads(tmp_path, capsys):
    cfg = tiny_config()
    net = build_ssd(cfg)
    net(mx.nd.zeros((1, 3, 96, 96)))
    net.save_parameters(str(tmp_path / "m.params"))
    dump_config(cfg, tmp_path / "m.yaml")
    before = _digests(tmp_path)
    rc = cli.main(["export", "--params", str(tmp_path / "m.params"), "--out", str(tmp_path), "--name", "m",
                   "--set", "decode.nms_iou=0.3", "--size", "96x96"])
    err = capsys.readouterr().err
    assert rc == 2 and "m.yaml" in err and "--out/--name" in err, err
    assert _digests(tmp_path) == before


# ------------------------------------------------------------------------------------ case 2
def test_train_refuses_a_folder_holding_a_run(data, tmp_path, capsys):
    run = tmp_path / "run"
    fit(tiny_config(data, run), max_iters=1, progress=False)
    before = _digests(run)
    cfg_path = tmp_path / "other.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config_dict(data, run, train={"lr": 0.002})))
    rc = cli.main(["train", "--config", str(cfg_path), "--no-progress", "--max-iters", "1"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(run) in err and "already holds a run" in err and "last.json" in err
    assert "--resume" in err and "--out-dir" in err
    assert _digests(run) == before  # last.json, config.yaml and the checkpoints are untouched
    # --resume continues the same run (same run_id in every checkpoint)
    assert cli.main(["train", "--config", str(cfg_path), "--no-progress", "--max-iters", "1",
                     "--resume"]) == 0
    ids = {json.loads(p.read_text())["run_id"] for p in run.glob("checkpoints/*/state.json")}
    assert len(ids) == 1


def test_rotation_only_deletes_checkpoints_of_the_current_run(tmp_path):
    cfg = tiny_config()
    net = build_ssd(cfg)
    net(mx.nd.zeros((1, 3, 96, 96)))

    def save(run_id, epoch):
        save_checkpoint(tmp_path, net, None, cfg, {"epoch": epoch, "iteration": 0, "global_step": epoch,
                                                   "run_id": run_id}, keep=2)

    for e in (3, 4, 5):
        save("old", e)
    old = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert old == ["ep004-it000000", "ep005-it000000"]
    for e in (1, 2, 3):
        save("new", e)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["ep002-it000000", "ep003-it000000"] + old  # the new run kept its own two
    with pytest.raises(CheckpointError, match="another run"):  # never replaces another run's
        save("new", 4)
    assert json.loads((tmp_path / "checkpoints" / "ep004-it000000" / "state.json").read_text())["run_id"] == "old"


# ------------------------------------------------------------------------------------ case 3
def test_resume_with_another_shape_names_the_file_and_the_parameters(data, tmp_path):
    run = tmp_path / "run"
    fit(tiny_config(data, run), max_iters=1, progress=False)
    params = latest_checkpoint(run) / "model.params"
    with pytest.raises(CheckpointError) as e:
        fit(tiny_config(data, run, model={"width": 0.5}), resume=True, max_iters=1, progress=False)
    msg = str(e.value)
    assert str(params) in msg and "'backbone.stages.0.0.weight' has shape (8, 3, 3, 3) in the file" in msg
    assert "(16, " in msg and "mismatched" in msg and "model.width=0.25 (now 0.5)" in msg, msg


def test_truncated_checkpoint_names_the_file(data, tmp_path, capsys):
    run = tmp_path / "run"
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config_dict(data, run)))
    fit(load_config(cfg_path), max_iters=1, progress=False)
    ck = latest_checkpoint(run)
    for name in ("optim.params", "model.params"):
        raw = (ck / name).read_bytes()
        (ck / name).write_bytes(raw[: len(raw) // 2])
        rc = cli.main(["train", "--config", str(cfg_path), "--resume", "--no-progress", "--max-iters", "1"])
        err = capsys.readouterr().err
        assert rc == 2 and str(ck / name) in err and "truncated or corrupt" in err, err
        assert "Traceback" not in err
        (ck / name).write_bytes(raw)


# ------------------------------------------------------------------------------------ case 4
def test_corrupt_ground_truth_mat_is_a_one_line_error(tmp_path, capsys):
    make_synthetic_widerface(tmp_path / "w", n_train=2, n_val=2)
    gt = tmp_path / "w" / "ground_truth"
    pred = tmp_path / "pred" / "0--Parade"
    pred.mkdir(parents=True)
    (pred / "x.txt").write_text("x\n0\n")
    mat = gt / "wider_face_val.mat"
    good = mat.read_bytes()
    for bad in (good[:300], b"not a MATLAB file " * 10):
        mat.write_bytes(bad)
        rc = cli.main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(gt), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert rc == 2 and str(mat) in err and "not a readable MATLAB .mat file" in err, err
        assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------ case 5
def test_floats_written_as_people_write_them(tmp_path):
    p = tmp_path / "c.yaml"
    d = tiny_config_dict()
    p.write_text(yaml.safe_dump(d).replace("lr: 0.001", "lr: 1e-4"))
    assert "lr: 1e-4" in p.read_text()
    assert load_config(p).solver.lr == pytest.approx(1e-4)
    cfg = load_config(p, ["solver.lr=1e-4", "solver.wd=5E-5", "train.momentum=.95", "train.step_factor=1.0e1",
                          "train.log_interval=1e2", "train.batch_size=4"])  # (train.momentum etc.: old spellings)
    s = cfg.solver
    assert (s.lr, s.wd, s.momentum, s.step_factor) == (1e-4, 5e-5, 0.95, 10.0)
    t = cfg.train
    assert t.log_interval == 100 and isinstance(t.log_interval, int)  # a whole number: an integer
    assert t.batch_size == 4 and isinstance(t.batch_size, int)  # integers stay integers
    assert load_config(p, ["train.ctx=1e-4x"]).train.ctx == "1e-4x"  # not a number: a string


# ------------------------------------------------------------------------------------ case 6
def test_ctrl_c_during_train_exits_130_after_saving(data, tmp_path):
    run = tmp_path / "run"
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config_dict(data, run, train={"epochs": 1000})))
    p = subprocess.Popen([sys.executable, "-m", "ssd_mnv2.cli", "train", "--config", str(cfg_path), "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"))
    t0 = time.time()
    while not (run / "last.json").exists():
        assert time.time() - t0 < 120 and p.poll() is None
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130, out[-2000:]
    assert "continue with --resume" in out and "done:" not in out
    assert latest_checkpoint(run) is not None


# ------------------------------------------------------------------------------------ case 7
def test_truncated_jpeg_is_flagged(tmp_path, photos, detector, monkeypatch, capsys):
    raw = (photos / "img_1.jpg").read_bytes()
    (photos / "img_1.jpg").write_bytes(raw[: len(raw) // 2])
    (photos / "trailer.jpg").write_bytes((photos / "img_0.jpg").read_bytes() + b"\0" * 64)  # complete
    s = detect_paths(detector, [photos], tmp_path / "out", verbose=False)
    assert s.processed == 3 and not s.failed and not s.ok
    assert [Path(p).name for p, _ in s.damaged] == ["img_1.jpg"] and "truncated JPEG" in s.damaged[0][1]
    doc = json.loads((tmp_path / "out" / "detections.json").read_text())
    flags = {Path(r["path"]).name: r.get("damaged") for r in doc["images"]}
    assert "truncated JPEG" in flags["img_1.jpg"] and flags["img_0.jpg"] is None and flags["trailer.jpg"] is None
    assert doc["summary"]["damaged"] == 1 and doc["damaged"][0]["path"].endswith("img_1.jpg")
    from ssd_mnv2.commands import detect

    monkeypatch.setattr(detect, "backend_detector", lambda args: detector)
    assert cli.main(["detect", str(photos), "--out", str(tmp_path / "o2")]) == 1
    assert "img_1.jpg: truncated JPEG" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ case 8
def test_evaluate_pred_missing_files_and_negative_widths(tmp_path, capsys):
    make_synthetic_widerface(tmp_path / "w", n_train=2, n_val=4)
    gt = str(tmp_path / "w" / "ground_truth")
    pred = tmp_path / "pred" / "0--Parade"
    pred.mkdir(parents=True)
    for i in range(2):
        (pred / f"0_Parade_dev_00{i}.txt").write_text(f"0_Parade_dev_00{i}\n1\n10 10 20 20 0.9\n")
    with pytest.raises(ValueError, match=r"2 of the 4 images .* no prediction file .*--allow-missing"):
        evaluate_predictions(str(tmp_path / "pred"), gt)
    rc = cli.main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", gt, "--out", str(tmp_path / "o")])
    assert rc == 2 and "--allow-missing" in capsys.readouterr().err
    rc = cli.main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", gt, "--out", str(tmp_path / "o"),
                   "--allow-missing"])
    assert rc == 0 and "warning: 2 of the 4 images" in capsys.readouterr().out
    saved = json.loads((tmp_path / "o" / "wider_eval.json").read_text())
    assert saved["num_images"] == 2 and saved["missing_predictions"] == 2
    (pred / "0_Parade_dev_001.txt").write_text("0_Parade_dev_001\n1\n10 10 -20 20 0.9\n")
    with pytest.raises(ValueError, match=r"0_Parade_dev_001\.txt:3: negative box width"):
        evaluate_predictions(str(tmp_path / "pred"), gt, allow_missing=True)


# ------------------------------------------------------------------------------------ case 9
def _png_header(path: Path, w: int, h: int) -> None:
    """A PNG of a few bytes whose header declares w x h pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_pixel_limit(tmp_path, photos, detector):
    _png_header(photos / "bomb.png", 20000, 20000)
    s = detect_paths(detector, [photos], tmp_path / "out", verbose=False)
    assert s.processed == 2 and [Path(p).name for p, _ in s.failed] == ["bomb.png"]
    msg = s.failed[0][1]
    assert "image of 400 megapixels" in msg and "limit of 120 megapixels" in msg and "eval.max_image_pixels" in msg
    # configurable: a lower limit refuses the 160x120 photos, 0 switches it off
    small = Detector(tiny_config(eval={"max_image_pixels": 10000}), detector.ssd, fused=False)
    s = detect_paths(small, [photos / "img_0.jpg"], tmp_path / "out2", verbose=False)
    assert "160x120 = 0.0192 megapixels is over the limit of 0.01 megapixels" in s.failed[0][1]
    off = Detector(tiny_config(eval={"max_image_pixels": 0}), detector.ssd, fused=False)
    assert detect_paths(off, [photos / "img_0.jpg"], tmp_path / "out3", verbose=False).ok


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


# ----------------------------------------------------------------------------------- case 11
def test_temporary_onnx_export_is_removed(tmp_path, detector, monkeypatch, photos):
    pytest.importorskip("onnxruntime")
    import tempfile

    from ssd_mnv2 import export as ex

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    monkeypatch.setenv("SSD_MNV2_CACHE", str(blocker))  # the cache cannot be created
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    od = ex.make_detector("onnxruntime", lambda fused: detector)
    assert isinstance(od, ex.OnnxDetector)
    assert [p.name for p in tmp.iterdir() if p.name.startswith("ssd_mnv2")] == []
    boxes, scores = od.predict(cv2.imread(str(photos / "img_0.jpg")), threshold=0.0)  # still works
    assert len(scores) > 0
    from ssd_mnv2.bench import _make  # the benchmark's ONNX Runtime backend: same rule

    bd, fwd = _make("onnxruntime", lambda fused: detector, None, None, 1, print)
    assert isinstance(bd, ex.OnnxDetector) and fwd(bd.preprocess(cv2.imread(str(photos / "img_0.jpg")))[0])
    assert [p.name for p in tmp.iterdir() if p.name.startswith("ssd_mnv2")] == []


# ----------------------------------------------------------------------------------- case 12
def test_empty_labels_file_says_so_and_leaves_no_run_folder(data, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    run = tmp_path / "runs" / "a"
    with pytest.raises(ValueError) as e:
        fit(tiny_config(data, run, data={"train_labels": str(empty)}), max_iters=1, progress=False)
    assert str(empty) in str(e.value) and "no image records" in str(e.value)
    assert "batch_size" not in str(e.value)
    assert not (tmp_path / "runs").exists()


def test_missing_data_folder_names_the_key_and_leaves_no_run_folder(data, tmp_path, capsys):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config_dict(data, tmp_path / "runs" / "a")))
    for key, value in (("data.train_images", tmp_path / "nope"), ("data.train_labels", tmp_path / "nope.txt")):
        rc = cli.main(["train", "--config", str(cfg_path), "--set", f"{key}={value}", "--max-iters", "1"])
        err = capsys.readouterr().err
        assert rc == 2 and f"{key}: " in err and str(value) in err, err
    assert not (tmp_path / "runs").exists()
