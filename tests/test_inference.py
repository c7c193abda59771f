"""detect on images/folders/globs, drawing and blur, the video/webcam loop (tiny random model)."""
import json
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from ssd_mnv2.data.synthetic import make_image, write_photos
from tiny_configs import tiny_config
from ssd_mnv2.inference import VideoSourceError, collect_images, detect_paths, run_video
from ssd_mnv2.model.ssd import build_ssd
from ssd_mnv2.predictor import Detector
from ssd_mnv2.viz import blur_faces, draw_detections


@pytest.fixture(scope="module")
def detector():
    cfg = tiny_config(eval={"display_threshold": 0.0}, decode={"max_detections": 20, "pre_nms_topk": 200})
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    return Detector(cfg, ssd)


def _folder(tmp_path, n=3, corrupt=True):
    d = write_photos(tmp_path / "imgs", n, seed=0, first_in_sub=True)
    if corrupt:
        (d / "broken.jpg").write_bytes(b"not a jpeg at all")
    (d / "notes.txt").write_text("ignored")
    return d


def test_detect_folder_with_corrupt_image(tmp_path, detector):
    d = _folder(tmp_path)
    out = tmp_path / "out"
    s = detect_paths(detector, [d], out, threshold=0.0, wider_txt=True, verbose=False)
    assert s.images == 4 and s.processed == 3
    assert len(s.failed) == 1 and s.failed[0][0].endswith("broken.jpg")
    assert "not a readable image" in s.failed[0][1] and "failed" in s.text()
    doc = json.loads((out / "detections.json").read_text())
    assert len(doc["images"]) == 3 and doc["failed"][0]["path"].endswith("broken.jpg")
    rec = doc["images"][0]
    assert set(rec) >= {"path", "boxes_xyxy_px", "scores", "image_size", "input_size", "output", "wider_txt"}
    assert rec["image_size"] == [160, 120] and rec["input_size"] == [160, 120]  # eval.size original
    assert len(rec["boxes_xyxy_px"]) == len(rec["scores"]) == rec["num_faces"] > 0
    assert doc["model"]["width"] == 0.25 and doc["threshold"] == 0.0
    assert (out / "sub" / "img_0.jpg").is_file() and (out / "img_1.jpg").is_file()
    assert os.path.isfile(rec["wider_txt"])


def test_detect_cli_exit_code_and_glob(tmp_path, detector, monkeypatch, capsys):
    from ssd_mnv2 import cli
    from ssd_mnv2.commands import detect

    d = _folder(tmp_path)
    monkeypatch.setattr(detect, "backend_detector", lambda args: detector)
    rc = cli.main(["detect", str(d / "*.jpg"), "--out", str(tmp_path / "o"), "--threshold", "0.3"])
    assert rc == 1  # broken.jpg failed, the other images were written
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "1 image(s) failed" in err
    assert (tmp_path / "o" / "img_1.jpg").is_file()
    doc = json.loads((tmp_path / "o" / "detections.json").read_text())
    assert all(s >= 0.3 for r in doc["images"] for s in r["scores"])


def test_empty_folder_and_missing_input(tmp_path, detector):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="contains no images"):
        detect_paths(detector, [tmp_path / "empty"], tmp_path / "out", verbose=False)
    with pytest.raises(FileNotFoundError, match="input not found"):
        collect_images([tmp_path / "nope.jpg"])
    with pytest.raises(FileNotFoundError, match="no file matches"):
        collect_images([str(tmp_path / "*.png")])


def test_unwritable_output(tmp_path, detector):
    d = _folder(tmp_path, n=1, corrupt=False)
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(RuntimeError, match="not a folder"):
        detect_paths(detector, [d], f, verbose=False)
    if os.geteuid() != 0:  # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(RuntimeError, match="cannot write"):
            detect_paths(detector, [d], ro / "out", verbose=False)
    with pytest.raises(RuntimeError, match="cannot write|not a folder"):
        detect_paths(detector, [d], f / "sub", verbose=False)


def test_blur_changes_only_inside_boxes():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10.2, 20.7, 60.4, 90.1], [100, 5, 150, 50]], np.float32)
    out = blur_faces(img, boxes)
    changed = np.any(out != img, axis=2)
    inside = np.zeros_like(changed)
    for x1, y1, x2, y2 in np.round(boxes).astype(int):
        inside[y1:y2, x1:x2] = True
    assert not changed[~inside].any()
    assert changed[inside].mean() > 0.9
    pix = blur_faces(img, boxes, method="pixelate")
    assert not np.any(pix != img, axis=2)[~inside].any()
    drawn = draw_detections(img, boxes, np.array([0.9, 0.8]))
    assert drawn.shape == img.shape and np.any(drawn != img) and np.array_equal(img, img.copy())


def _video(path, n=12, size=(160, 120)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert w.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(n):
        w.write(make_image(rng, size, 2)[0])
    w.release()


def _count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_webcam_loop_on_video_file(tmp_path, detector):
    src = tmp_path / "in.avi"
    _video(src, 12)
    out = tmp_path / "out.avi"
    s = run_video(detector, str(src), display=False, output=str(out), max_frames=5)
    assert s.frames == 5 and "max-frames" in s.reason
    assert _count_frames(out) == 5
    s = run_video(detector, str(src), display=False, output=str(tmp_path / "all.avi"), blur=True)
    assert s.frames == 12 and s.reason == "end of video file"
    assert _count_frames(tmp_path / "all.avi") == 12


def test_webcam_cli_headless(tmp_path, detector, monkeypatch, capsys):
    from ssd_mnv2 import cli
    from ssd_mnv2.commands import webcam

    src = tmp_path / "in.avi"
    _video(src, 4)
    monkeypatch.setattr(webcam, "backend_detector", lambda args: detector)
    rc = cli.main(["webcam", "--source", str(src), "--no-display", "--max-frames", "3",
                   "--output", str(tmp_path / "o.avi")])
    assert rc == 0 and "3 frames" in capsys.readouterr().out


def test_video_source_errors(tmp_path, detector):
    with pytest.raises(VideoSourceError, match="cannot open camera 97"):
        run_video(detector, "97", display=False)
    with pytest.raises(FileNotFoundError, match="video file not found"):
        run_video(detector, str(tmp_path / "missing.mp4"), display=False)
    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 50)
    with pytest.raises(VideoSourceError, match="corrupt"):
        run_video(detector, str(bad), display=False)


def test_fused_equals_plain(tmp_path):
    """oneDNN-fused (conv+BN+ReLU folded) vs plain hybridized outputs, at several input sizes.
    Tolerance: scores 1e-4 absolute, boxes 1e-2 px (float32 re-association of the folded BN)."""
    cfg = tiny_config(decode={"max_detections": 50, "pre_nms_topk": 200})
    ssd = build_ssd(cfg)
    ssd(mx.nd.zeros((1, 3, 96, 96)))
    rng = np.random.default_rng(0)
    for k, p in ssd.collect_params().items():  # non-trivial BN statistics so the folding matters
        if k.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, p.shape)))
        elif k.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.normal(0, 0.3, p.shape)))
    for p in ssd.cls_heads.collect_params(".*weight").values():  # spread the scores: no ties
        p.set_data(mx.nd.array(rng.normal(0, 0.2, p.shape)))
    path = tmp_path / "m.params"
    ssd.save_parameters(str(path))
    dets = []
    for fused in (False, True):
        s = build_ssd(cfg, init=False)
        s.load_parameters(str(path))
        dets.append(Detector(cfg, s, fused=fused))
    assert dets[1].fused and dets[1].net._backend == "MKLDNN"
    for wh in [(128, 96), (160, 120), (128, 96), (200, 150)]:
        img, _ = make_image(rng, wh, 2)
        x, _ = dets[0].preprocess(img)
        a = [o.asnumpy() for o in dets[0].net(x)]
        b = [o.asnumpy() for o in dets[1].net(x)]
        np.testing.assert_allclose(a[1], b[1], atol=1e-4)  # sorted scores agree
        # boxes as sets: near-tied scores may swap order (and so which of two overlapping boxes
        # NMS keeps); every kept box of one must have a twin in the other, except near ties
        ka, kb = a[0][0, :, 0] >= 0, b[0][0, :, 0] >= 0
        assert abs(int(ka.sum()) - int(kb.sum())) <= 2
        ba, bb = a[2][0][ka], b[2][0][kb]
        d = np.abs(ba[:, None, :] - bb[None, :, :]).max(-1).min(1)
        assert (d <= 1e-2).mean() >= 0.95, d


def test_each_model_points_the_model_arguments_at_each_checkpoint_in_turn(tmp_path):
    import argparse

    from ssd_mnv2.commands import add_model_args, each_model

    p = argparse.ArgumentParser()
    add_model_args(p)
    args = p.parse_args([])
    assert list(each_model(args, [])) == ["shipped model"] and args.params is None
    seen = []
    for name in each_model(args, [tmp_path / "a", tmp_path / "b"]):
        seen.append((name, args.params, args.config))
    assert seen == [(str(tmp_path / d), str(tmp_path / d / "model.params"), str(tmp_path / d / "config.yaml"))
                    for d in ("a", "b")]
    args = p.parse_args(["--params", "m.params"])
    assert list(each_model(args, [])) == ["m.params"]
