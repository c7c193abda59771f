"""The shipped model loads with no arguments and finds the face in matplotlib's grace_hopper.jpg."""
import json
from pathlib import Path

import cv2
import numpy as np
from matplotlib import cbook

from ssd_mnv2.boxes import iou_matrix
from ssd_mnv2.predictor import DEFAULT_PARAMS, Detector

ROOT = Path(__file__).resolve().parents[1]
# Measured by hand on the 512x600 image: forehead (below the cap) to chin, cheek to cheek.
GRACE_HOPPER_FACE_XYXY = np.array([[172, 120, 352, 338]], np.float32)


def test_shipped_model_finds_grace_hopper():
    assert DEFAULT_PARAMS.stat().st_size < 20 * 2**20
    det = Detector.default()
    img = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    boxes, scores = det.predict(img, threshold=det.cfg.eval.display_threshold)
    assert len(boxes) >= 1
    assert iou_matrix(boxes[:1], GRACE_HOPPER_FACE_XYXY)[0, 0] >= 0.5


def test_quickstart_notebook_executes():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(ROOT / "notebooks" / "quickstart.ipynb"), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    out = json.dumps(nb.cells[3].get("outputs", []))
    assert "face(s)" in out
