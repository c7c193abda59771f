"""The one image reader (ssd_mnv2.imageio): one EXIF rule for training, evaluation and inference."""
import struct

import cv2
import numpy as np
import pytest

from ssd_mnv2.data.synthetic import voc_xml
from ssd_mnv2.imageio import (ImageError, apply_exif_orientation, exif_orientation, image_size, read_image_bgr,
                              read_image_rgb)


def jpeg_with_orientation(img_bgr: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``img_bgr`` (the stored pixels) with an EXIF APP1 segment holding ``orientation``,
    written by hand (little-endian TIFF header, one IFD entry: tag 0x0112, SHORT) after SOI."""
    ok, buf = cv2.imencode(".jpg", img_bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    jpg = buf.tobytes()
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpg[:2] + app1 + jpg[2:]


def stored_image(h: int = 40, w: int = 64) -> np.ndarray:
    """A smooth asymmetric BGR image: every flip / rotation of it is a different image."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), 255 - (x + y) * 255 // (w + h - 2)],
                    -1).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_rule_is_what_opencv_and_pil_show(tmp_path, orientation):
    from PIL import Image, ImageOps

    p = tmp_path / f"o{orientation}.jpg"
    p.write_bytes(jpeg_with_orientation(stored_image(), orientation))
    assert exif_orientation(p) == orientation
    img = read_image_bgr(p)
    # the same pixels as OpenCV's own EXIF handling (the predictor's reader before issue 15)
    np.testing.assert_array_equal(img, cv2.imread(str(p), cv2.IMREAD_COLOR))
    # the same geometry as PIL.ImageOps.exif_transpose (its JPEG decoder differs by a few levels)
    with Image.open(p) as im:
        pil = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert pil.shape == img.shape
    assert np.abs(pil.astype(int) - img[..., ::-1].astype(int)).max() <= 8
    if orientation != 1:
        stored = cv2.imread(str(p), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        assert stored.shape != img.shape or np.abs(stored.astype(int) - img).max() > 50
    # the header size agrees with the decoded one
    assert image_size(p) == (img.shape[1], img.shape[0])
    np.testing.assert_array_equal(read_image_rgb(p), img[..., ::-1])


def test_apply_exif_orientation_on_a_known_array():
    a = np.arange(6).reshape(2, 3, 1)  # [[0 1 2], [3 4 5]]
    assert apply_exif_orientation(a, 6)[..., 0].tolist() == [[3, 0], [4, 1], [5, 2]]  # 90 CW
    assert apply_exif_orientation(a, 8)[..., 0].tolist() == [[2, 5], [1, 4], [0, 3]]  # 90 CCW
    assert apply_exif_orientation(a, 3)[..., 0].tolist() == [[5, 4, 3], [2, 1, 0]]
    assert apply_exif_orientation(a, 1) is a


def _write_wider_mats(gt_dir, event: str, name: str, boxes_xywh) -> None:
    """The official WIDER FACE val .mat files for one image (every face in every subset)."""
    from scipy.io import savemat

    def cell(items):
        c = np.empty((len(items), 1), dtype=object)
        for i, it in enumerate(items):
            c[i, 0] = it
        return c

    gt_dir.mkdir(parents=True)
    base = {"event_list": cell([np.array([event])]), "file_list": cell([cell([np.array([name])])]),
            "face_bbx_list": cell([cell([np.asarray(boxes_xywh, np.int32).reshape(-1, 4)])])}
    savemat(str(gt_dir / "wider_face_val.mat"), base)
    idx = np.arange(1, len(boxes_xywh) + 1, dtype=np.float64).reshape(-1, 1)
    for s in ("easy", "medium", "hard"):
        savemat(str(gt_dir / f"wider_{s}_val.mat"), dict(base, gt_list=cell([cell([idx])])))


class _Spy:
    """A detector recording the images it is given."""

    def __init__(self):
        self.seen = []

    def predict(self, image_bgr, size=None):
        self.seen.append(image_bgr.copy())
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


def test_one_rule_for_training_evaluation_and_inference(tmp_path):
    """A photo stored sideways with orientation 6 (rotate 90 CW) is read upright, with the same
    pixels, by the training dataset, the WIDER evaluation, the face-set evaluation and the
    predictor (detect)."""
    from ssd_mnv2.data.faceset import load_voc_faceset
    from ssd_mnv2.data.widerface import WiderFaceDataset
    from ssd_mnv2.evaluation.driver import evaluate_detector
    from ssd_mnv2.evaluation.faceset import evaluate_faceset_detector
    from ssd_mnv2.predictor import read_image

    event = tmp_path / "images" / "0--Parade"
    event.mkdir(parents=True)
    p = event / "0_Parade_0.jpg"
    p.write_bytes(jpeg_with_orientation(stored_image(40, 64), 6))
    expected = cv2.rotate(cv2.imread(str(p), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION),
                          cv2.ROTATE_90_CLOCKWISE)
    assert expected.shape == (64, 40, 3)

    # inference (detect, benchmark, calibration)
    np.testing.assert_array_equal(read_image(p), expected)

    # training: a face in the upright image's pixels (x 5..30 of W=40, y 10..50 of H=64)
    labels = tmp_path / "labels.txt"
    labels.write_text("0--Parade/0_Parade_0.jpg\n1\n5 10 25 40 0 0 0 0 0 0\n")
    ds = WiderFaceDataset(str(tmp_path / "images"), str(labels), min_face_px=1)
    assert len(ds) == 1 and ds.num_clipped == 0
    rgb, boxes = ds[0]
    np.testing.assert_array_equal(rgb, expected[..., ::-1])
    np.testing.assert_allclose(boxes, [[5, 10, 30, 50]])

    # WIDER FACE evaluation
    _write_wider_mats(tmp_path / "gt", "0--Parade", "0_Parade_0", [[5, 10, 25, 40]])
    spy = _Spy()
    evaluate_detector(spy, str(tmp_path / "images"), str(tmp_path / "gt"), out_dir=str(tmp_path / "eval"))
    assert len(spy.seen) == 1
    np.testing.assert_array_equal(spy.seen[0], expected)

    # VOC / COCO face-set evaluation (the annotation gives the upright size, as labelme / CVAT)
    anns = tmp_path / "annotations" / "0--Parade"
    anns.mkdir(parents=True)
    (anns / "0_Parade_0.xml").write_text(voc_xml(40, 64, [("face", (6, 11, 30, 50), 0)]))
    faces = load_voc_faceset(str(tmp_path / "images"), str(tmp_path / "annotations"))
    spy = _Spy()
    evaluate_faceset_detector(spy, faces, str(tmp_path / "eval_faces"), verbose=False)
    assert len(spy.seen) == 1
    np.testing.assert_array_equal(spy.seen[0], expected)


def test_corrupt_or_missing_file_gives_a_clear_error_naming_it(tmp_path):
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg at all")
    for read in (read_image_bgr, read_image_rgb):
        with pytest.raises(ImageError, match="broken.jpg: not a readable image file"):
            read(p)
    # an ImageError is also an OSError (what the datasets raised) and a ValueError
    assert issubclass(ImageError, OSError) and issubclass(ImageError, ValueError)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image_bgr(tmp_path / "missing.jpg")
    assert exif_orientation(p) is None
