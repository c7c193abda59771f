"""Anchor lab: measure faces, compare anchor configurations, propose anchors, run short sweeps.

Everything the ``ssd-mnv2 anchors`` command does is a function of this package, so a notebook
makes the same calls (``notebooks/anchor_experiments.ipynb``: ``from ssd_mnv2 import lab``).

Modules: :mod:`.faces` (measure faces at network-input scale, size bins), :mod:`.stats`
(face-size / ratio statistics), :mod:`.coverage` (anchor coverage of the faces), :mod:`.kmeans`
(k-means with the 1 - IoU distance), :mod:`.suggest` (anchors proposed from the data),
:mod:`.summary` (per-level anchor counts), :mod:`.sweep` (short training runs, evaluated),
:mod:`.scale` (face scale in training samples vs evaluation), :mod:`.report` (markdown tables),
:mod:`.plots` (figures). ``make_synthetic_widerface`` (a tiny WIDER-shaped data set) is
:func:`ssd_mnv2.data.synthetic.make_synthetic_widerface`, re-exported here for notebooks.

Conventions
-----------
* **Face size** ``= sqrt(w * h)`` in pixels of the network input (the same convention as an
  anchor's ``size``: an anchor of size ``s`` and ratio ``r`` has ``w * h = s**2``);
  **aspect ratio** ``= w / h`` (the config's ratio convention).
* **Size bins**: ``<16, 16-32, 32-64, 64-128, 128-256, >256`` px; a face of size exactly 16
  is in ``16-32`` (lower edges inclusive).
* **Where faces are measured** (``measure``), for ``stats``, ``coverage`` and ``suggest``:

  - ``"train"`` (default): **the training resize**. A training sample is a square crop of side
    ``c * min(W, H)`` (``c ~ U(data.crop_scale)``) resized to ``model.image_size``; we take the
    least-zoomed crop ``c = 1``, i.e. every face of the image is scaled by
    ``f = image_size / min(W, H)``. To keep every face (not only those of one crop) the whole
    image is scaled by ``f`` and the anchors are those the fully convolutional network lays on
    that ``round(W f) x round(H f)`` input (:func:`ssd_mnv2.anchors.generate_anchors`); the
    anchor grid, its stride and sizes are the same as in the ``image_size`` square crop.
    Smaller crops (``c < 1``) make the faces of a training sample ``1 / c`` times larger
    (up to ``1 / crop_scale[0]``, x3.3 for the shipped ``[0.3, 1.0]``).
  - any size spec of :func:`ssd_mnv2.sizes.resolve_size` (``"max-side 640"``, ``"640x480"``,
    ``"original"``): the image resized exactly as :class:`ssd_mnv2.predictor.Detector` does
    at inference with that ``size`` (including the ``anchors.max_input_size`` cap).

  Faces are measured once with the *data* config (its ``model.image_size`` and data paths);
  each anchor config then lays its own anchors on those inputs.
* **Coverage**: for each face, IoU with every anchor of its image's input; a face is *covered*
  at ``t`` when its best IoU is ``>= t``. Matched anchors = anchors with IoU ``>= 0.5`` (what
  the target encoder's threshold matching uses with ``match.iou_thresh = 0.5``, before the
  bipartite best-anchor match which gives every face one anchor anyway).
"""
from __future__ import annotations

from ..data.synthetic import make_synthetic_widerface
from .coverage import compare_coverage, coverage, write_coverage
from .faces import BIN_LABELS, SIZE_EDGES, FaceSet, collect_faces, input_geometry, size_bin
from .kmeans import centered_iou, kmeans_iou
from .plots import draw_level_anchors, plot_coverage, plot_face_scales, plot_face_stats, plot_sweep
from .report import format_coverage_table, format_stats_table, format_sweep_table, markdown_table, scale_table
from .scale import augmented_faces, scale_report, scale_row
from .stats import face_stats, write_stats
from .suggest import assign_levels, level_ranges, suggest_anchors
from .summary import anchor_summary
from .sweep import run_sweep

__all__ = [
    "SIZE_EDGES", "BIN_LABELS", "size_bin", "FaceSet", "input_geometry", "collect_faces",
    "face_stats", "format_stats_table", "plot_face_stats", "write_stats",
    "coverage", "compare_coverage", "format_coverage_table", "plot_coverage", "write_coverage",
    "centered_iou", "kmeans_iou", "assign_levels", "level_ranges", "suggest_anchors",
    "anchor_summary", "run_sweep", "format_sweep_table", "plot_sweep",
    "draw_level_anchors", "make_synthetic_widerface", "markdown_table",
    "augmented_faces", "scale_row", "scale_table", "plot_face_scales", "scale_report",
]
